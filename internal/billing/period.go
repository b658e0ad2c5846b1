package billing

import (
	"fmt"
	"time"
	_ "time/tzdata" // tenants' time zones must load on hosts without a zoneinfo database

	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/tax"
)

// Period is one monthly billing period in a tenant's time zone. Start is local
// midnight of the 1st, End the last second of the month, Due the end plus the
// tenant's grace days (counted in local calendar days). All are in loc; store
// them as UTC.
type Period struct {
	Year  int
	Month time.Month
	Start time.Time
	End   time.Time
	Due   time.Time
}

// String is the period as the API names it: "2026-02".
func (p Period) String() string { return fmt.Sprintf("%04d-%02d", p.Year, int(p.Month)) }

// MonthPeriod returns the period of month in loc with the due date graceDays
// after its end.
func MonthPeriod(year int, month time.Month, loc *time.Location, graceDays int) Period {
	start := time.Date(year, month, 1, 0, 0, 0, 0, loc)
	end := start.AddDate(0, 1, 0).Add(-time.Second)
	return Period{
		Year:  start.Year(),
		Month: start.Month(),
		Start: start,
		End:   end,
		Due:   end.AddDate(0, 0, graceDays),
	}
}

// PeriodAt returns the period containing instant t in loc.
func PeriodAt(t time.Time, loc *time.Location, graceDays int) Period {
	l := t.In(loc)
	return MonthPeriod(l.Year(), l.Month(), loc, graceDays)
}

// ParsePeriod reads "YYYY-MM"; an empty s means the period containing now.
func ParsePeriod(s string, now time.Time, loc *time.Location, graceDays int) (Period, error) {
	if s == "" {
		return PeriodAt(now, loc, graceDays), nil
	}
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Year() < 2000 || t.Year() > 9999 {
		return Period{}, apperr.E(apperr.BadUserInput, "period %q is not a month such as \"2026-02\"", s)
	}
	return MonthPeriod(t.Year(), t.Month(), loc, graceDays), nil
}

// LoadLocation loads a tenant's IANA time zone, naming the tenant's setting
// in the error.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, apperr.Wrap(apperr.BadUserInput, err, "the tenant's time zone %q is not an IANA time zone name", name)
	}
	return loc, nil
}

// DaysBetween returns the number of local calendar days from the day of from
// to the day of to, both included (1 when they fall on the same day, 0 when
// to is before from).
func DaysBetween(from, to time.Time, loc *time.Location) int {
	f, t := from.In(loc), to.In(loc)
	fd := time.Date(f.Year(), f.Month(), f.Day(), 12, 0, 0, 0, time.UTC)
	td := time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, time.UTC)
	if td.Before(fd) {
		return 0
	}
	return int(td.Sub(fd).Hours()/24) + 1
}

// DailyDivisor is the number of days a daily-cycle package's price covers:
// the original system bills price ÷ 30 × days.
const DailyDivisor = 30

// Charge is the amounts of one invoice.
type Charge struct {
	Amount money.Money // before tax
	Tax    money.Money
	Total  money.Money // Amount + Tax
	Days   int         // days billed (daily cycle), else 0
}

// ComputeCharge prices one period of a package: the full price for monthly
// and one-time packages, price × days ÷ 30 for daily ones (one rounding, half
// away from zero), then the taxes (package tax: inclusive ones are inside the
// price, exclusive ones added to it). Total is always exactly Amount + Tax.
func ComputeCharge(price money.Money, cycle servicepackage.BillingCycle, days int, taxes []tax.Tax) Charge {
	c := Charge{Amount: price}
	if cycle == servicepackage.BillingCycleDAILY {
		c.Days = days
		c.Amount = price.MulRate(int64(days), DailyDivisor)
	}
	r := tax.Apply(c.Amount, taxes)
	c.Amount, c.Tax, c.Total = r.Net, r.Tax, r.Total
	return c
}
