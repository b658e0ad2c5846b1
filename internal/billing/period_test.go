package billing

import (
	"github.com/ispgraph/ispgraph/internal/tax"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/internal/money"
)

func TestComputeChargeTable(t *testing.T) {
	m := money.MustParse
	cases := []struct {
		name               string
		price              string
		cycle              servicepackage.BillingCycle
		days, taxBP        int
		amount, tax, total string
	}{
		{"monthly no tax", "500.00", servicepackage.BillingCycleMONTHLY, 31, 0, "500.00", "0.00", "500.00"},
		{"monthly 5%", "500.00", servicepackage.BillingCycleMONTHLY, 28, 500, "500.00", "25.00", "525.00"},
		{"monthly 15% rounds half up", "0.10", servicepackage.BillingCycleMONTHLY, 0, 1500, "0.10", "0.02", "0.12"}, // 0.015 → 0.02
		{"monthly 7.5% rounds down", "0.13", servicepackage.BillingCycleMONTHLY, 0, 750, "0.13", "0.01", "0.14"},    // 0.00975 → 0.01
		{"one-time", "1500.00", servicepackage.BillingCycleONETIME, 0, 500, "1500.00", "75.00", "1575.00"},
		{"daily 30 days is the price", "30.00", servicepackage.BillingCycleDAILY, 30, 0, "30.00", "0.00", "30.00"},
		{"daily 31 days", "30.00", servicepackage.BillingCycleDAILY, 31, 0, "31.00", "0.00", "31.00"},
		{"daily leap February", "800.00", servicepackage.BillingCycleDAILY, 29, 500, "773.33", "38.67", "812.00"},
		{"daily February", "800.00", servicepackage.BillingCycleDAILY, 28, 500, "746.67", "37.33", "784.00"},
		{"daily one day rounds once", "10.00", servicepackage.BillingCycleDAILY, 1, 0, "0.33", "0.00", "0.33"},
		{"daily zero days", "10.00", servicepackage.BillingCycleDAILY, 0, 500, "0.00", "0.00", "0.00"},
	}
	for _, c := range cases {
		got := ComputeCharge(m(c.price), c.cycle, c.days, tax.Effective(nil, c.taxBP))
		if got.Amount != m(c.amount) || got.Tax != m(c.tax) || got.Total != m(c.total) {
			t.Errorf("%s: got %s + %s = %s, want %s + %s = %s", c.name, got.Amount, got.Tax, got.Total, c.amount, c.tax, c.total)
		}
	}
}

// exactRound is price×num/den rounded half away from zero, in big rationals.
func exactRound(v, num, den int64) int64 {
	r := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(v), big.NewInt(num)), big.NewInt(den))
	neg := r.Sign() < 0
	r.Abs(r)
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

// TestComputeChargeProperties checks random charges against exact rational
// arithmetic: one rounding per step, totals that add up, no drift.
func TestComputeChargeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cycles := []servicepackage.BillingCycle{servicepackage.BillingCycleDAILY, servicepackage.BillingCycleMONTHLY, servicepackage.BillingCycleONETIME}
	for i := 0; i < 200_000; i++ {
		price := money.Money(rng.Int64N(100_000_000)) // up to 1,000,000.00
		cycle := cycles[rng.IntN(len(cycles))]
		days := rng.IntN(32)
		taxBP := rng.IntN(3001)
		c := ComputeCharge(price, cycle, days, tax.Effective(nil, taxBP))
		wantAmount := int64(price)
		if cycle == servicepackage.BillingCycleDAILY {
			wantAmount = exactRound(int64(price), int64(days), DailyDivisor)
		}
		if int64(c.Amount) != wantAmount {
			t.Fatalf("%s %s × %d days: amount %s, want %d", cycle, price, days, c.Amount, wantAmount)
		}
		if int64(c.Tax) != exactRound(int64(c.Amount), int64(taxBP), 10_000) {
			t.Fatalf("tax of %s at %d bp: %s", c.Amount, taxBP, c.Tax)
		}
		if c.Total != c.Amount+c.Tax || c.Tax < 0 || c.Amount < 0 {
			t.Fatalf("total %s != %s + %s", c.Total, c.Amount, c.Tax)
		}
		// Rounding loses at most half a minor unit per step.
		if cycle == servicepackage.BillingCycleDAILY {
			diff := new(big.Rat).Sub(new(big.Rat).SetInt64(int64(c.Amount)), big.NewRat(int64(price)*int64(days), DailyDivisor))
			if diff.Abs(diff).Cmp(big.NewRat(1, 2)) > 0 {
				t.Fatalf("amount %s drifts from %s×%d/30", c.Amount, price, days)
			}
		}
	}
}

// TestDailyAddsUp: billing the days of a month one by one can differ from
// billing them at once only by the rounding of each piece; billing the whole
// period at once (what generation does) rounds exactly once.
func TestDailyWholePeriodRoundsOnce(t *testing.T) {
	price := money.MustParse("1000.00")
	whole := ComputeCharge(price, servicepackage.BillingCycleDAILY, 31, nil).Amount
	if whole != money.MustParse("1033.33") {
		t.Fatalf("31 days of 1000.00: %s", whole)
	}
}

// TestCreditSettlementProperty: for random payment sequences, amount paid
// never exceeds the total, and payments = amount paid + credit, always.
func TestCreditSettlementProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 50_000; i++ {
		total := money.Money(1 + rng.Int64N(200_000))
		creditApplied := money.Money(rng.Int64N(int64(total) + 1))
		var paid, credit money.Money
		raw := creditApplied
		for k := 0; k < 1+rng.IntN(5); k++ {
			delta := money.Money(1 + rng.Int64N(int64(total)))
			if rng.IntN(4) == 0 && paid > 0 {
				delta = -min(delta, paid) // a refund
			}
			raw += delta
			paid += delta
			credit += max(0, raw-total) - max(0, raw-delta-total)
			amountPaid := min(raw, total)
			if amountPaid > total || credit < 0 {
				t.Fatalf("amount paid %s of %s, credit %s", amountPaid, total, credit)
			}
			if paid+creditApplied != amountPaid+credit {
				t.Fatalf("payments %s + credit applied %s != amount paid %s + credit %s", paid, creditApplied, amountPaid, credit)
			}
		}
	}
}

func TestPeriodsInTimeZones(t *testing.T) {
	dhaka, _ := time.LoadLocation("Asia/Dhaka")      // UTC+6
	bogota, _ := time.LoadLocation("America/Bogota") // UTC−5, no daylight saving
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name            string
		loc             *time.Location
		period          string
		start, end, due string
		days            int
	}{
		// Leap February 2028 in UTC+6: starts the evening before in UTC.
		{"dhaka leap", dhaka, "2028-02", "2028-01-31T18:00:00Z", "2028-02-29T17:59:59Z", "2028-03-07T17:59:59Z", 29},
		// In UTC−5 the last local second of February is already March 1st in UTC.
		{"bogota leap", bogota, "2028-02", "2028-02-01T05:00:00Z", "2028-03-01T04:59:59Z", "2028-03-08T04:59:59Z", 29},
		{"dhaka year end", dhaka, "2026-12", "2026-11-30T18:00:00Z", "2026-12-31T17:59:59Z", "2027-01-07T17:59:59Z", 31},
		{"bogota year end", bogota, "2026-12", "2026-12-01T05:00:00Z", "2027-01-01T04:59:59Z", "2027-01-08T04:59:59Z", 31},
		{"bogota non-leap", bogota, "2027-02", "2027-02-01T05:00:00Z", "2027-03-01T04:59:59Z", "2027-03-08T04:59:59Z", 28},
	}
	for _, c := range cases {
		p, err := ParsePeriod(c.period, time.Time{}, c.loc, 7)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Start.Equal(utc(c.start)) || !p.End.Equal(utc(c.end)) || !p.Due.Equal(utc(c.due)) {
			t.Errorf("%s: %s – %s due %s", c.name, p.Start.UTC(), p.End.UTC(), p.Due.UTC())
		}
		if d := DaysBetween(p.Start, p.End, c.loc); d != c.days {
			t.Errorf("%s: %d days, want %d", c.name, d, c.days)
		}
	}

	// The current period is the local month: at 2026-01-31 20:00 UTC it is
	// already February in Dhaka and still January in Bogota.
	now := utc("2026-01-31T20:00:00Z")
	if p := PeriodAt(now, dhaka, 7); p.String() != "2026-02" {
		t.Errorf("dhaka: %s", p)
	}
	if p := PeriodAt(now, bogota, 7); p.String() != "2026-01" {
		t.Errorf("bogota: %s", p)
	}
	// And on New Year's Eve in UTC it is the new year in Dhaka: the invoice
	// number's year follows the local period.
	if p := PeriodAt(utc("2026-12-31T19:00:00Z"), dhaka, 7); p.Year != 2027 || p.Month != time.January {
		t.Errorf("dhaka new year: %s", p)
	}
	if _, err := ParsePeriod("2026-13", now, dhaka, 7); err == nil {
		t.Error("2026-13 accepted")
	}
}

func TestTransitions(t *testing.T) {
	allowed := map[[2]invoice.Status]bool{
		{invoice.StatusDRAFT, invoice.StatusPENDING}:     true,
		{invoice.StatusDRAFT, invoice.StatusCANCELLED}:   true,
		{invoice.StatusPENDING, invoice.StatusPAID}:      true,
		{invoice.StatusPENDING, invoice.StatusOVERDUE}:   true,
		{invoice.StatusPENDING, invoice.StatusCANCELLED}: true,
		{invoice.StatusOVERDUE, invoice.StatusPAID}:      true,
		{invoice.StatusOVERDUE, invoice.StatusCANCELLED}: true,
		{invoice.StatusPAID, invoice.StatusPENDING}:      true,
		{invoice.StatusPAID, invoice.StatusOVERDUE}:      true,
	}
	for _, from := range []invoice.Status{invoice.StatusDRAFT, invoice.StatusPENDING, invoice.StatusPAID, invoice.StatusCANCELLED, invoice.StatusOVERDUE} {
		for _, to := range []invoice.Status{invoice.StatusDRAFT, invoice.StatusPENDING, invoice.StatusPAID, invoice.StatusCANCELLED, invoice.StatusOVERDUE} {
			if got := CanTransition(from, to); got != allowed[[2]invoice.Status{from, to}] {
				t.Errorf("%s → %s: %v", from, to, got)
			}
		}
	}
}
