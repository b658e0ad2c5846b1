// Package billing owns the money rules of ispgraph: balances, invoice
// generation, payments, credits, overdue marking and suspension.
package billing

import (
	"context"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
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

// Balance returns what the subscriber owes now: the unpaid part of its open
// invoices less its credit (negative when in credit).
func (s *Service) Balance(ctx context.Context, nu *ent.NetworkUser) (money.Money, error) {
	due, err := s.AmountsDue(ctx, s.Client, []int{nu.ID})
	if err != nil {
		return 0, err
	}
	return due[nu.ID] - nu.Credit, nil
}
