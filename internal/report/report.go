// Package report owns the billing reports staff request: storing a request
// with its job (Request), generating it (Generate: the rows of each report
// type, Compute, stored with the report's status) and the column order of
// each type (Columns).
package report

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/billingreport"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Columns is the column order of each report type, for CSV.
var Columns = map[billingreport.Type][]string{
	billingreport.TypeMONTHLY_REVENUE:     {"month", "payments", "revenue"},
	billingreport.TypeAR_AGING:            {"bucket", "invoices", "amount_due"},
	billingreport.TypeCOLLECTIONS:         {"method", "gateway", "payments", "amount"},
	billingreport.TypeOVERDUE_SUBSCRIBERS: {"username", "full_name", "phone", "overdue_invoices", "amount_due", "oldest_due_date"},
}

// Request stores a QUEUED report and its GenerateBillingReport job through
// client, which must be the caller's transaction: the report and its job are
// committed together or not at all.
func Request(ctx context.Context, client *ent.Client, typ billingreport.Type, params map[string]string) (*ent.BillingReport, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return nil, apperr.E(apperr.Unauthenticated, "log in first")
	}
	c := client.BillingReport.Create().SetType(typ).SetParameters(params)
	if v.UserID > 0 {
		c.SetRequestedByID(v.UserID)
	}
	r, err := c.Save(ctx)
	if err != nil {
		return nil, err
	}
	if err := outbox.Enqueue(ctx, client, jobs.GenerateBillingReportArgs{TenantID: v.TenantID, ReportID: r.ID}); err != nil {
		return nil, err
	}
	return r, nil
}

// Generate computes report reportID of the tenant in ctx and stores its rows
// (QUEUED → RUNNING → DONE). A DONE report is left alone and a rerun after a
// failure replaces the rows, so running it twice has the effect of once. On
// an error the report keeps it; with last (the job's last attempt) it is
// also marked FAILED.
func Generate(ctx context.Context, client *ent.Client, tenantID, reportID int, now time.Time, last bool, log *slog.Logger) error {
	r, err := client.BillingReport.Get(ctx, reportID)
	if ent.IsNotFound(err) {
		log.Warn("report not found")
		return nil
	}
	if err != nil {
		return err
	}
	if r.Status == billingreport.StatusDONE {
		log.Info("report already done")
		return nil
	}
	if err := client.BillingReport.UpdateOneID(r.ID).SetStatus(billingreport.StatusRUNNING).SetStartedAt(now).ClearError().Exec(ctx); err != nil {
		return err
	}
	// The report's own reads may come from a replica (DATABASE_REPLICA_URL)
	// up to its maximum lag behind; its writes above and below go to the
	// primary.
	rows, err := Compute(database.LagTolerant(ctx), client, tenantID, r.Type, r.Parameters, now)
	if err != nil {
		msg := strings.TrimSpace(err.Error())
		if len(msg) > 500 {
			msg = msg[:500]
		}
		upd := client.BillingReport.UpdateOneID(r.ID).SetError(msg)
		if last {
			upd.SetStatus(billingreport.StatusFAILED).SetFinishedAt(time.Now())
		}
		_ = upd.Exec(context.WithoutCancel(ctx))
		return err
	}
	log.Info("report done", "type", r.Type, "rows", len(rows))
	return client.BillingReport.UpdateOneID(r.ID).
		SetRows(rows).SetStatus(billingreport.StatusDONE).SetFinishedAt(time.Now()).Exec(ctx)
}

// Compute computes the rows of one report type for the tenant in ctx.
// Parameters: "from" and "to" (YYYY-MM-DD, in the tenant's time zone) bound
// revenue and collections; the default is the twelve months up to now.
func Compute(ctx context.Context, client *ent.Client, tenantID int, typ billingreport.Type, params map[string]string, now time.Time) ([]map[string]string, error) {
	ten, err := client.Tenant.Get(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(ten.Timezone)
	if err != nil {
		loc = time.UTC
	}
	from := time.Date(now.In(loc).Year()-1, now.In(loc).Month()+1, 1, 0, 0, 0, 0, loc)
	to := now
	if s := params["from"]; s != "" {
		if from, err = time.ParseInLocation("2006-01-02", s, loc); err != nil {
			return nil, fmt.Errorf("parameter from=%q: want YYYY-MM-DD", s)
		}
	}
	if s := params["to"]; s != "" {
		t, err := time.ParseInLocation("2006-01-02", s, loc)
		if err != nil {
			return nil, fmt.Errorf("parameter to=%q: want YYYY-MM-DD", s)
		}
		to = t.AddDate(0, 0, 1)
	}
	switch typ {
	case billingreport.TypeMONTHLY_REVENUE:
		return monthlyRevenue(ctx, client, ten.Currency, loc, from, to)
	case billingreport.TypeAR_AGING:
		return arAging(ctx, client, ten.Currency, now)
	case billingreport.TypeCOLLECTIONS:
		return collections(ctx, client, ten.Currency, from, to)
	case billingreport.TypeOVERDUE_SUBSCRIBERS:
		return overdueSubscribers(ctx, client, ten.Currency, loc, now)
	}
	return nil, fmt.Errorf("unknown report type %s", typ)
}

func monthlyRevenue(ctx context.Context, client *ent.Client, cur string, loc *time.Location, from, to time.Time) ([]map[string]string, error) {
	ps, err := client.Payment.Query().
		Where(payment.StatusEQ(payment.StatusCOMPLETED), payment.PaidAtGTE(from), payment.PaidAtLT(to)).
		Select(payment.FieldPaidAt, payment.FieldAmount).All(ctx)
	if err != nil {
		return nil, err
	}
	type agg struct {
		n   int
		sum money.Money
	}
	by := map[string]*agg{}
	for m := time.Date(from.In(loc).Year(), from.In(loc).Month(), 1, 0, 0, 0, 0, loc); m.Before(to); m = m.AddDate(0, 1, 0) {
		by[m.Format("2006-01")] = &agg{}
	}
	for _, p := range ps {
		k := p.PaidAt.In(loc).Format("2006-01")
		if by[k] == nil {
			by[k] = &agg{}
		}
		by[k].n++
		by[k].sum += p.Amount
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, map[string]string{"month": k, "payments": strconv.Itoa(by[k].n), "revenue": by[k].sum.In(cur)})
	}
	return rows, nil
}

var agingBuckets = []struct {
	name    string
	maxDays int
}{{"current", 0}, {"1-30", 30}, {"31-60", 60}, {"61-90", 90}, {"90+", 1 << 30}}

func arAging(ctx context.Context, client *ent.Client, cur string, now time.Time) ([]map[string]string, error) {
	invs, err := client.Invoice.Query().
		Where(invoice.StatusIn(invoice.StatusPENDING, invoice.StatusOVERDUE)).
		Select(invoice.FieldDueDate, invoice.FieldTotal, invoice.FieldAmountPaid).All(ctx)
	if err != nil {
		return nil, err
	}
	n := make([]int, len(agingBuckets))
	sum := make([]money.Money, len(agingBuckets))
	for _, inv := range invs {
		days := int(now.Sub(inv.DueDate).Hours() / 24)
		for i, b := range agingBuckets {
			if days <= b.maxDays {
				n[i]++
				sum[i] += inv.Total - inv.AmountPaid
				break
			}
		}
	}
	rows := make([]map[string]string, len(agingBuckets))
	for i, b := range agingBuckets {
		rows[i] = map[string]string{"bucket": b.name, "invoices": strconv.Itoa(n[i]), "amount_due": sum[i].In(cur)}
	}
	return rows, nil
}

func collections(ctx context.Context, client *ent.Client, cur string, from, to time.Time) ([]map[string]string, error) {
	var groups []struct {
		Method    string `json:"method"`
		GatewayID *int   `json:"payment_gateway_id"`
		Count     int    `json:"count"`
		Sum       int64  `json:"sum"`
	}
	err := client.Payment.Query().
		Where(payment.StatusEQ(payment.StatusCOMPLETED), payment.PaidAtGTE(from), payment.PaidAtLT(to)).
		GroupBy(payment.FieldMethod, payment.FieldPaymentGatewayID).
		Aggregate(ent.Count(), ent.Sum(payment.FieldAmount)).Scan(ctx, &groups)
	if err != nil {
		return nil, err
	}
	gws, err := client.PaymentGateway.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	for _, g := range gws {
		names[g.ID] = g.Name
	}
	rows := make([]map[string]string, 0, len(groups))
	for _, g := range groups {
		gw := ""
		if g.GatewayID != nil {
			gw = names[*g.GatewayID]
		}
		rows = append(rows, map[string]string{"method": g.Method, "gateway": gw, "payments": strconv.Itoa(g.Count), "amount": money.Money(g.Sum).In(cur)})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i]["method"] != rows[j]["method"] {
			return rows[i]["method"] < rows[j]["method"]
		}
		return rows[i]["gateway"] < rows[j]["gateway"]
	})
	return rows, nil
}

func overdueSubscribers(ctx context.Context, client *ent.Client, cur string, loc *time.Location, now time.Time) ([]map[string]string, error) {
	invs, err := client.Invoice.Query().
		Where(billing.Overdue(now)).
		Select(invoice.FieldNetworkUserID, invoice.FieldDueDate, invoice.FieldTotal, invoice.FieldAmountPaid).All(ctx)
	if err != nil {
		return nil, err
	}
	type agg struct {
		n      int
		due    money.Money
		oldest time.Time
	}
	by := map[int]*agg{}
	var ids []int
	for _, inv := range invs {
		a := by[inv.NetworkUserID]
		if a == nil {
			a = &agg{oldest: inv.DueDate}
			by[inv.NetworkUserID] = a
			ids = append(ids, inv.NetworkUserID)
		}
		a.n++
		a.due += inv.Total - inv.AmountPaid
		if inv.DueDate.Before(a.oldest) {
			a.oldest = inv.DueDate
		}
	}
	users, err := client.NetworkUser.Query().Where(networkuser.IDIn(ids...)).
		Select(networkuser.FieldUsername, networkuser.FieldFullName, networkuser.FieldPhone).All(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Username < users[j].Username })
	rows := make([]map[string]string, 0, len(users))
	for _, u := range users {
		a := by[u.ID]
		rows = append(rows, map[string]string{
			"username": u.Username, "full_name": u.FullName, "phone": u.Phone,
			"overdue_invoices": strconv.Itoa(a.n), "amount_due": a.due.In(cur),
			"oldest_due_date": a.oldest.In(loc).Format("2006-01-02"),
		})
	}
	return rows, nil
}
