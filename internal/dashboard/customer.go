package dashboard

import (
	"context"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networksession"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// RecentItems is how many invoices and payments the customer dashboard lists.
const RecentItems = 5

// CustomerDashboard is one subscriber's account on the customer portal.
type CustomerDashboard struct {
	NetworkUser *ent.NetworkUser
	Package     *ent.ServicePackage
	Status      networkuser.Status
	// AmountDue is the unpaid part of open invoices; Balance is AmountDue
	// less the subscriber's credit.
	AmountDue, Balance money.Money
	// NextDueInvoice is the open invoice due soonest (nil when none).
	NextDueInvoice *ent.Invoice
	RecentInvoices []*ent.Invoice
	RecentPayments []*ent.Payment
	// CurrentSession is the newest active session (nil when offline).
	CurrentSession *ent.NetworkSession
	Usage          Usage
}

// UsageDays is how far back the customer dashboard's usage reaches.
const UsageDays = 30

// Usage is what a subscriber's sessions carried over the last UsageDays
// days, as the routers reported it: sessions seen since Since, their bytes
// (in = from the customer, out = to the customer, RouterOS's view) and time
// online.
type Usage struct {
	Since             time.Time
	Sessions          int
	BytesIn, BytesOut int64
	UptimeSeconds     int64
}

// Customer returns the dashboard of the customer viewer's own account. Staff
// and partners have no account of their own: they get FORBIDDEN.
func (s *Service) Customer(ctx context.Context) (*CustomerDashboard, error) {
	v := viewer.FromContext(ctx)
	switch {
	case !v.HasTenant():
		return nil, apperr.E(apperr.Unauthenticated, "log in first: send Authorization: Bearer <token>")
	case v.Kind != viewer.Customer || v.NetworkUserID == 0:
		return nil, apperr.E(apperr.Forbidden, "customerDashboard is for subscribers logged in with customerLogin; staff use dashboard")
	}
	id := v.NetworkUserID
	nu, err := s.Client.NetworkUser.Query().Where(networkuser.ID(id)).WithPackage().Only(ctx)
	if err != nil {
		return nil, fmt.Errorf("dashboard: subscriber: %w", err)
	}
	d := &CustomerDashboard{NetworkUser: nu, Package: nu.Edges.Package, Status: nu.Status}
	due, err := s.Billing.AmountsDue(ctx, s.Client, []int{id})
	if err != nil {
		return nil, err
	}
	d.AmountDue = due[id]
	d.Balance = d.AmountDue - nu.Credit
	next, err := s.Client.Invoice.Query().
		Where(invoice.NetworkUserID(id), invoice.StatusIn(billing.OpenStatuses...)).
		Order(ent.Asc(invoice.FieldDueDate), ent.Asc(invoice.FieldID)).
		First(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, fmt.Errorf("dashboard: next due invoice: %w", err)
	}
	d.NextDueInvoice = next
	if d.RecentInvoices, err = s.Client.Invoice.Query().
		Where(invoice.NetworkUserID(id)).
		Order(ent.Desc(invoice.FieldIssuedAt), ent.Desc(invoice.FieldID)).
		Limit(RecentItems).All(ctx); err != nil {
		return nil, fmt.Errorf("dashboard: recent invoices: %w", err)
	}
	if d.RecentPayments, err = s.Client.Payment.Query().
		Where(payment.NetworkUserID(id)).
		Order(ent.Desc(payment.FieldCreatedAt), ent.Desc(payment.FieldID)).
		Limit(RecentItems).All(ctx); err != nil {
		return nil, fmt.Errorf("dashboard: recent payments: %w", err)
	}
	sess, err := s.Client.NetworkSession.Query().
		Where(networksession.NetworkUserID(id), networksession.StatusEQ(networksession.StatusACTIVE)).
		Order(ent.Desc(networksession.FieldStartedAt), ent.Desc(networksession.FieldID)).
		First(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, fmt.Errorf("dashboard: current session: %w", err)
	}
	d.CurrentSession = sess
	d.Usage.Since = s.now().Add(-UsageDays * 24 * time.Hour).UTC()
	recent, err := s.Client.NetworkSession.Query().
		Where(networksession.NetworkUserID(id), networksession.LastSeenAtGTE(d.Usage.Since)).
		Select(networksession.FieldBytesIn, networksession.FieldBytesOut, networksession.FieldUptimeSeconds).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("dashboard: usage: %w", err)
	}
	for _, r := range recent {
		d.Usage.Sessions++
		d.Usage.BytesIn += r.BytesIn
		d.Usage.BytesOut += r.BytesOut
		d.Usage.UptimeSeconds += r.UptimeSeconds
	}
	return d, nil
}
