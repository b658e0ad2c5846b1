// Package billing owns the money rules of ispgraph: balances, invoice
// generation, payments, credits, overdue marking and suspension.
package billing

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/money"
)

// Service computes and changes billing state. Every change runs in one
// transaction (the caller's, when ctx carries one) with the row locks that
// keep it exact when other changes run at once, and writes the jobs it causes
// into the outbox in that same transaction.
type Service struct {
	Client *ent.Client
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// OpenStatuses are the invoice states that still expect money.
var OpenStatuses = []invoice.Status{invoice.StatusPENDING, invoice.StatusOVERDUE}

// AmountsDue returns, per subscriber id, the unpaid part of its open invoices,
// in one statement for all ids. Subscribers with nothing due are absent.
func (s *Service) AmountsDue(ctx context.Context, client *ent.Client, ids []int) (map[int]money.Money, error) {
	var rows []struct {
		NetworkUserID int   `json:"network_user_id"`
		Due           int64 `json:"due"`
	}
	err := client.Invoice.Query().
		Where(invoice.NetworkUserIDIn(ids...), invoice.StatusIn(OpenStatuses...)).
		GroupBy(invoice.FieldNetworkUserID).
		Aggregate(func(sel *sql.Selector) string {
			return sql.As(fmt.Sprintf("COALESCE(SUM(%s - %s), 0)", sel.C(invoice.FieldTotal), sel.C(invoice.FieldAmountPaid)), "due")
		}).
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("billing: amounts due: %w", err)
	}
	out := make(map[int]money.Money, len(rows))
	for _, r := range rows {
		out[r.NetworkUserID] = money.Money(r.Due)
	}
	return out, nil
}

// AmountDueColumn is the column SelectAmountDue adds to a subscriber query.
const AmountDueColumn = "amount_due"

// SelectAmountDue is a modifier of subscriber (network_users) queries that
// adds, as AmountDueColumn, each row's amount due computed as AmountsDue
// computes it: the page of subscribers and their amounts due in one
// statement instead of two. Read it with AmountDueOf.
//
//	client.NetworkUser.Query().Modify(billing.SelectAmountDue)
func SelectAmountDue(s *sql.Selector) {
	s.AppendSelectExprAs(sql.Expr(AmountDueSQL(s.C(networkuser.FieldTenantID), s.C(networkuser.FieldID))), AmountDueColumn)
}

// AmountDueSQL is the scalar subquery behind SelectAmountDue, in
// parentheses: the amount due, a BIGINT, of the subscriber whose tenant and
// id are the columns tenantCol and idCol (quoted column references such as
// s.C("tenant_id")). It is plain text with no arguments (the open statuses
// are constants written as literals), so a caller may build it once and
// reuse it.
func AmountDueSQL(tenantCol, idCol string) string {
	const a = `"amount_due_invoices"`
	open := ""
	for i, st := range OpenStatuses {
		if i > 0 {
			open += ", "
		}
		open += "'" + strings.ReplaceAll(string(st), "'", "''") + "'"
	}
	// The invoices of a subscriber are in its tenant (the tenant mixin
	// refuses any other edge); matching tenant_id lets the
	// (tenant_id, network_user_id, issued_at) index serve the sum.
	return `(SELECT CAST(COALESCE(SUM(` + a + `."` + invoice.FieldTotal + `" - ` + a + `."` + invoice.FieldAmountPaid + `"), 0) AS BIGINT) FROM "` +
		invoice.Table + `" AS ` + a + ` WHERE ` + a + `."` + invoice.FieldTenantID + `" = ` + tenantCol + ` AND ` +
		a + `."` + invoice.FieldNetworkUserID + `" = ` + idCol + ` AND ` + a + `."` + invoice.FieldStatus + `" IN (` + open + `))`
}

// PaymentsByID returns ps in id order, the order every path answers an
// invoice's payments in: entgql's eager loading reads them in no order
// (Postgres returns them as they lie on disk, and an update such as a
// refund or a failed attempt moves a row). ps itself is left as it is (the
// loaded edge may be read by another alias at once); a sorted ps is
// returned as it is.
func PaymentsByID(ps []*ent.Payment) []*ent.Payment {
	byID := func(a, b *ent.Payment) int { return cmp.Compare(a.ID, b.ID) }
	if slices.IsSortedFunc(ps, byID) {
		return ps
	}
	ps = slices.Clone(ps)
	slices.SortFunc(ps, byID)
	return ps
}

// BalanceOf is nu's balance given its amount due: the unpaid part of its
// open invoices less its credit.
func BalanceOf(due money.Money, nu *ent.NetworkUser) money.Money { return due - nu.Credit }

// AmountDueOf returns the amount due SelectAmountDue loaded with nu; ok is
// false when the query that loaded nu did not select it.
func AmountDueOf(nu *ent.NetworkUser) (money.Money, bool) {
	v, err := nu.Value(AmountDueColumn)
	if err != nil {
		return 0, false
	}
	switch x := v.(type) {
	case int64:
		return money.Money(x), true
	case int:
		return money.Money(x), true
	case float64:
		return money.Money(x), true
	case []byte:
		n, err := strconv.ParseInt(string(x), 10, 64)
		return money.Money(n), err == nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return money.Money(n), err == nil
	}
	return 0, false
}

// Balance returns what the subscriber owes now: the unpaid part of its open
// invoices less its credit (negative when in credit).
func (s *Service) Balance(ctx context.Context, nu *ent.NetworkUser) (money.Money, error) {
	due, err := s.AmountsDue(ctx, s.Client, []int{nu.ID})
	if err != nil {
		return 0, err
	}
	return BalanceOf(due[nu.ID], nu), nil
}

// InvoiceCounts are a subscriber's invoices by state. Overdue counts OVERDUE
// invoices and PENDING ones past their due date; Pending counts the rest of
// the PENDING ones.
type InvoiceCounts struct {
	Total, Draft, Pending, Overdue, Paid, Cancelled int
}

// CountInvoices returns, per subscriber id, its invoices by state, in one
// statement for all ids. Subscribers without invoices are absent.
func (s *Service) CountInvoices(ctx context.Context, client *ent.Client, ids []int, now time.Time) (map[int]InvoiceCounts, error) {
	var rows []struct {
		NetworkUserID int    `json:"network_user_id"`
		Status        string `json:"status"`
		Count         int    `json:"count"`
		PastDue       int    `json:"past_due"`
	}
	err := client.Invoice.Query().
		Where(invoice.NetworkUserIDIn(ids...)).
		Modify(func(s *sql.Selector) {
			s.Select(s.C(invoice.FieldNetworkUserID), s.C(invoice.FieldStatus)).
				AppendSelectExprAs(sql.Raw("COUNT(*)"), "count").
				AppendSelectExprAs(CountWhen(s.C(invoice.FieldDueDate), "<", now), "past_due").
				GroupBy(s.C(invoice.FieldNetworkUserID), s.C(invoice.FieldStatus))
		}).
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("billing: count invoices: %w", err)
	}
	out := make(map[int]InvoiceCounts, len(ids))
	for _, r := range rows {
		c := out[r.NetworkUserID]
		c.Total += r.Count
		switch invoice.Status(r.Status) {
		case invoice.StatusDRAFT:
			c.Draft += r.Count
		case invoice.StatusPENDING:
			c.Overdue += r.PastDue
			c.Pending += r.Count - r.PastDue
		case invoice.StatusOVERDUE:
			c.Overdue += r.Count
		case invoice.StatusPAID:
			c.Paid += r.Count
		case invoice.StatusCANCELLED:
			c.Cancelled += r.Count
		}
		out[r.NetworkUserID] = c
	}
	return out, nil
}

// PaymentsTotals returns, per invoice id, the sum of its completed payments,
// in one statement for all ids. Invoices without one are absent.
func (s *Service) PaymentsTotals(ctx context.Context, client *ent.Client, invoiceIDs []int) (map[int]money.Money, error) {
	var rows []struct {
		InvoiceID int   `json:"invoice_id"`
		Sum       int64 `json:"sum"`
	}
	err := client.Payment.Query().
		Where(payment.InvoiceIDIn(invoiceIDs...), payment.StatusEQ(payment.StatusCOMPLETED)).
		GroupBy(payment.FieldInvoiceID).
		Aggregate(ent.As(ent.Sum(payment.FieldAmount), "sum")).
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("billing: payments totals: %w", err)
	}
	out := make(map[int]money.Money, len(rows))
	for _, r := range rows {
		out[r.InvoiceID] = money.Money(r.Sum)
	}
	return out, nil
}

// CountWhen renders COUNT(CASE WHEN column op arg THEN 1 END) with arg
// bound; it works on Postgres and SQLite alike.
func CountWhen(column, op string, arg any) sql.Querier {
	return sql.ExprFunc(func(b *sql.Builder) {
		b.WriteString("COUNT(CASE WHEN ").WriteString(column).WriteString(" " + op + " ").Arg(arg).WriteString(" THEN 1 END)")
	})
}
