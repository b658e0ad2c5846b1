// Package dashboard owns the two dashboards: the staff dashboard (a tenant's
// subscribers, invoices and revenue in a handful of aggregate statements) and
// the customer portal's dashboard (one subscriber's account). Both read
// through ent, so the viewer's tenant filters every statement; a cache can
// wrap Service.Staff without changing it.
package dashboard

import (
	"context"
	"fmt"
	"github.com/ispgraph/ispgraph/internal/cache"
	"time"

	"entgo.io/ent/dialect/sql"
	"golang.org/x/sync/errgroup"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networksession"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Dashboard is a tenant's figures for staff.
type Dashboard struct {
	Subscribers             SubscriberStats
	Invoices                InvoiceStats
	Revenue                 RevenueStats
	MonthlyRecurringRevenue money.Money
	OnlineSessions          int
	GeneratedAt             time.Time
}

// SubscriberStats count subscribers by status. Expired counts those with
// status EXPIRED or an expiry in the past, whatever their status.
type SubscriberStats struct {
	Total, Active, Suspended, Inactive, Expired int
	ByServiceType                               []*ServiceTypeCount
}

// ServiceTypeCount counts the subscribers of one service type.
type ServiceTypeCount struct {
	ServiceType              networkuser.ServiceType
	Total, Active, Suspended int
}

// InvoiceStats count invoices (drafts and cancelled ones aside) and sum them.
// Overdue invoices are OVERDUE ones and PENDING ones past their due date;
// Pending are the other PENDING ones. Pending and overdue amounts are what is
// still unpaid; Total and Paid amounts are invoice totals.
type InvoiceStats struct {
	Total, Pending, Overdue, Paid                         int
	TotalAmount, PendingAmount, OverdueAmount, PaidAmount money.Money
}

// RevenueStats sum completed payments by when they were paid, in the
// tenant's time zone: since midnight, since the 1st of the month, since 1 January.
type RevenueStats struct {
	Today, ThisMonth, ThisYear money.Money
}

// Service computes dashboards.
type Service struct {
	Client  *ent.Client
	Billing *billing.Service
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Cache keeps the staff dashboard for its TTL class; every change to the
	// data it counts invalidates it (internal/cache). Nil computes every time.
	Cache *cache.Cache
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Staff returns the dashboard of the viewer's tenant in five statements: the
// tenant (its time zone), subscribers with recurring revenue, invoices,
// revenue and online sessions.
func (s *Service) Staff(ctx context.Context) (*Dashboard, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return nil, apperr.E(apperr.Unauthenticated, "log in first: send Authorization: Bearer <token>")
	}
	return cache.Get(ctx, s.Cache, cache.ClassDashboard, v.TenantID, "staff", s.staff)
}

// staff computes the staff dashboard of the viewer's tenant.
func (s *Service) staff(ctx context.Context) (*Dashboard, error) {
	v := viewer.FromContext(ctx)
	t, err := s.Client.Tenant.Get(ctx, v.TenantID)
	if err != nil {
		return nil, fmt.Errorf("dashboard: tenant: %w", err)
	}
	loc, err := time.LoadLocation(t.Timezone)
	if err != nil {
		loc = time.UTC
	}
	now := s.now()
	d := &Dashboard{GeneratedAt: now.UTC()}
	// The four aggregates read different tables and fill different parts
	// of d: run at once on their own connections, the dashboard takes the
	// time of the slowest instead of the sum (the benchmark's request (c)).
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.subscribers(gctx, now, d) })
	g.Go(func() error { return s.invoices(gctx, now, d) })
	g.Go(func() error { return s.revenue(gctx, now.In(loc), d) })
	g.Go(func() error {
		n, err := s.Client.NetworkSession.Query().Where(networksession.StatusEQ(networksession.StatusACTIVE)).Count(gctx)
		if err != nil {
			return fmt.Errorf("dashboard: online sessions: %w", err)
		}
		d.OnlineSessions = n
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return d, nil
}

// subscribers counts subscribers by service type and status, and sums the
// monthly value of active subscribers' packages (daily packages count 30
// days, one-time packages nothing), in one statement.
func (s *Service) subscribers(ctx context.Context, now time.Time, d *Dashboard) error {
	var rows []struct {
		ServiceType string `json:"service_type"`
		Total       int    `json:"total"`
		Active      int    `json:"active"`
		Suspended   int    `json:"suspended"`
		Inactive    int    `json:"inactive"`
		Expired     int    `json:"expired"`
		MRR         int64  `json:"mrr"`
	}
	err := s.Client.NetworkUser.Query().
		Modify(func(sel *sql.Selector) {
			p := sql.Table(servicepackage.Table)
			status, expires := sel.C(networkuser.FieldStatus), sel.C(networkuser.FieldExpiresAt)
			sel.LeftJoin(p).On(sel.C(networkuser.FieldPackageID), p.C(servicepackage.FieldID))
			sel.Select(sel.C(networkuser.FieldServiceType)).
				AppendSelectExprAs(sql.Raw("COUNT(*)"), "total").
				AppendSelectExprAs(countWhen(status+" = ?", string(networkuser.StatusACTIVE)), "active").
				AppendSelectExprAs(countWhen(status+" = ?", string(networkuser.StatusSUSPENDED)), "suspended").
				AppendSelectExprAs(countWhen(status+" = ?", string(networkuser.StatusINACTIVE)), "inactive").
				AppendSelectExprAs(countWhen(status+" = ? OR "+expires+" < ?", string(networkuser.StatusEXPIRED), now), "expired").
				AppendSelectExprAs(sql.ExprFunc(func(b *sql.Builder) {
					cycle, price := p.C(servicepackage.FieldBillingCycle), p.C(servicepackage.FieldPrice)
					b.WriteString("COALESCE(SUM(CASE WHEN " + status + " = ").Arg(string(networkuser.StatusACTIVE)).
						WriteString(" AND " + cycle + " = ").Arg(string(servicepackage.BillingCycleMONTHLY)).
						WriteString(" THEN " + price + " WHEN " + status + " = ").Arg(string(networkuser.StatusACTIVE)).
						WriteString(" AND " + cycle + " = ").Arg(string(servicepackage.BillingCycleDAILY)).
						WriteString(" THEN " + price + " * 30 ELSE 0 END), 0)")
				}), "mrr").
				GroupBy(sel.C(networkuser.FieldServiceType)).
				OrderBy(sel.C(networkuser.FieldServiceType))
		}).
		Scan(ctx, &rows)
	if err != nil {
		return fmt.Errorf("dashboard: subscribers: %w", err)
	}
	st := &d.Subscribers
	st.ByServiceType = []*ServiceTypeCount{}
	for _, r := range rows {
		st.Total += r.Total
		st.Active += r.Active
		st.Suspended += r.Suspended
		st.Inactive += r.Inactive
		st.Expired += r.Expired
		d.MonthlyRecurringRevenue += money.Money(r.MRR)
		st.ByServiceType = append(st.ByServiceType, &ServiceTypeCount{
			ServiceType: networkuser.ServiceType(r.ServiceType),
			Total:       r.Total, Active: r.Active, Suspended: r.Suspended,
		})
	}
	return nil
}

// invoices counts and sums invoices by status, splitting PENDING ones at
// their due date, in one statement.
func (s *Service) invoices(ctx context.Context, now time.Time, d *Dashboard) error {
	var rows []struct {
		Status        string `json:"status"`
		Count         int    `json:"count"`
		Total         int64  `json:"total"`
		Unpaid        int64  `json:"unpaid"`
		PastDue       int    `json:"past_due"`
		PastDueUnpaid int64  `json:"past_due_unpaid"`
	}
	err := s.Client.Invoice.Query().
		Where(invoice.StatusNotIn(invoice.StatusDRAFT, invoice.StatusCANCELLED)).
		Modify(func(sel *sql.Selector) {
			total, paid, due := sel.C(invoice.FieldTotal), sel.C(invoice.FieldAmountPaid), sel.C(invoice.FieldDueDate)
			sel.Select(sel.C(invoice.FieldStatus)).
				AppendSelectExprAs(sql.Raw("COUNT(*)"), "count").
				AppendSelectExprAs(sql.Raw("COALESCE(SUM("+total+"), 0)"), "total").
				AppendSelectExprAs(sql.Raw("COALESCE(SUM("+total+" - "+paid+"), 0)"), "unpaid").
				AppendSelectExprAs(countWhen(due+" < ?", now), "past_due").
				AppendSelectExprAs(sql.ExprFunc(func(b *sql.Builder) {
					b.WriteString("COALESCE(SUM(CASE WHEN " + due + " < ").Arg(now).
						WriteString(" THEN " + total + " - " + paid + " ELSE 0 END), 0)")
				}), "past_due_unpaid").
				GroupBy(sel.C(invoice.FieldStatus))
		}).
		Scan(ctx, &rows)
	if err != nil {
		return fmt.Errorf("dashboard: invoices: %w", err)
	}
	st := &d.Invoices
	for _, r := range rows {
		st.Total += r.Count
		st.TotalAmount += money.Money(r.Total)
		switch invoice.Status(r.Status) {
		case invoice.StatusPAID:
			st.Paid += r.Count
			st.PaidAmount += money.Money(r.Total)
		case invoice.StatusOVERDUE:
			st.Overdue += r.Count
			st.OverdueAmount += money.Money(r.Unpaid)
		case invoice.StatusPENDING:
			st.Overdue += r.PastDue
			st.OverdueAmount += money.Money(r.PastDueUnpaid)
			st.Pending += r.Count - r.PastDue
			st.PendingAmount += money.Money(r.Unpaid - r.PastDueUnpaid)
		}
	}
	return nil
}

// revenue sums completed payments since the start of the tenant's day, month
// and year, in one statement. now is in the tenant's time zone.
func (s *Service) revenue(ctx context.Context, now time.Time, d *Dashboard) error {
	y, m, day := now.Date()
	loc := now.Location()
	today := time.Date(y, m, day, 0, 0, 0, 0, loc).UTC()
	month := time.Date(y, m, 1, 0, 0, 0, 0, loc).UTC()
	year := time.Date(y, 1, 1, 0, 0, 0, 0, loc).UTC()
	var rows []struct {
		Today int64 `json:"today"`
		Month int64 `json:"month"`
		Year  int64 `json:"year"`
	}
	err := s.Client.Payment.Query().
		Where(payment.StatusEQ(payment.StatusCOMPLETED), payment.PaidAtGTE(year)).
		Modify(func(sel *sql.Selector) {
			amount, paidAt := sel.C(payment.FieldAmount), sel.C(payment.FieldPaidAt)
			since := func(t time.Time) sql.Querier {
				return sql.ExprFunc(func(b *sql.Builder) {
					b.WriteString("COALESCE(SUM(CASE WHEN " + paidAt + " >= ").Arg(t).
						WriteString(" THEN " + amount + " ELSE 0 END), 0)")
				})
			}
			sel.Select().
				AppendSelectExprAs(since(today), "today").
				AppendSelectExprAs(since(month), "month").
				AppendSelectExprAs(sql.Raw("COALESCE(SUM("+amount+"), 0)"), "year")
		}).
		Scan(ctx, &rows)
	if err != nil {
		return fmt.Errorf("dashboard: revenue: %w", err)
	}
	if len(rows) == 1 {
		d.Revenue = RevenueStats{Today: money.Money(rows[0].Today), ThisMonth: money.Money(rows[0].Month), ThisYear: money.Money(rows[0].Year)}
	}
	return nil
}

// countWhen renders COUNT(CASE WHEN cond THEN 1 END), binding cond's "?"
// placeholders to args in order; it works on Postgres and SQLite alike.
func countWhen(cond string, args ...any) sql.Querier {
	return sql.ExprFunc(func(b *sql.Builder) {
		b.WriteString("COUNT(CASE WHEN ")
		for i, part := range splitPlaceholders(cond) {
			if i > 0 {
				b.Arg(args[i-1])
			}
			b.WriteString(part)
		}
		b.WriteString(" THEN 1 END)")
	})
}

// splitPlaceholders splits s at each "?".
func splitPlaceholders(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
