package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/webhookendpoint"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Event is the JSON body of a delivery.
type Event struct {
	// ID is the idempotency id: the same on every attempt, every
	// redelivery and for every endpoint the event goes to.
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	CreatedAt time.Time      `json:"createdAt"`
	Tenant    string         `json:"tenant"` // the tenant's slug
	Data      map[string]any `json:"data"`
}

// eventOf says which event an entity reaching status causes (create: it was
// created with it), or "".
func eventOf(typ, status string, create bool) string {
	switch typ {
	case ent.TypePayment:
		switch status {
		case string(payment.StatusCOMPLETED):
			return PaymentCompleted
		case string(payment.StatusREFUNDED):
			if !create {
				return PaymentRefunded
			}
		}
	case ent.TypeInvoice:
		if create {
			return InvoiceCreated
		}
		if status == string(invoice.StatusOVERDUE) {
			return InvoiceOverdue
		}
	case ent.TypeNetworkUser:
		if create {
			return "" // a new subscriber was not activated or suspended
		}
		switch status {
		case string(networkuser.StatusSUSPENDED):
			return SubscriberSuspended
		case string(networkuser.StatusACTIVE):
			return SubscriberActivated
		}
	}
	return ""
}

// Hook records the events of payments, invoices and subscribers: whatever
// path changes them (a staff mutation, a gateway webhook, a job), an
// entity whose status becomes one that partners subscribe to — and an
// invoice created — gets one delivery per enabled endpoint of its tenant
// subscribed to the event, and a DeliverWebhook job in the outbox, in the
// transaction of the change: rolled back with it, never lost after it.
// A status written with the value it had causes nothing. Register it once,
// in the composition root.
func (s *Service) Hook() ent.Hook {
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			switch m.Type() {
			case ent.TypePayment, ent.TypeInvoice, ent.TypeNetworkUser:
			default:
				return next.Mutate(ctx, m)
			}
			create := m.Op().Is(ent.OpCreate)
			if !create && !m.Op().Is(ent.OpUpdate|ent.OpUpdateOne) {
				return next.Mutate(ctx, m)
			}
			sv, set := m.Field("status")
			status := fmt.Sprint(sv)
			if !set && !create {
				return next.Mutate(ctx, m)
			}
			kind := eventOf(m.Type(), status, create)
			if kind == "" {
				return next.Mutate(ctx, m)
			}
			var changed []int
			if !create {
				var err error
				if changed, err = changing(ctx, m, status); err != nil {
					return nil, err
				}
				if len(changed) == 0 {
					return next.Mutate(ctx, m)
				}
			}
			v, err := next.Mutate(ctx, m)
			if err != nil {
				return v, err
			}
			c := clientOf(m)
			var ents []any
			switch {
			case create, m.Op().Is(ent.OpUpdateOne):
				ents = []any{v}
			default:
				if ents, err = load(ctx, c, m.Type(), changed); err != nil {
					return nil, err
				}
			}
			if err := s.record(ctx, c, kind, ents); err != nil {
				return nil, err
			}
			return v, nil
		})
	}
}

// clientOf is the mutation's client: the transaction's when in one.
func clientOf(m ent.Mutation) *ent.Client {
	return m.(interface{ Client() *ent.Client }).Client()
}

// changing returns the ids the update will move to status from another one.
func changing(ctx context.Context, m ent.Mutation, status string) ([]int, error) {
	if m.Op().Is(ent.OpUpdateOne) {
		id, ok := m.(interface{ ID() (int, bool) }).ID()
		if !ok {
			return nil, nil
		}
		old, err := m.OldField(ctx, "status")
		if err != nil {
			return nil, err
		}
		if fmt.Sprint(old) == status {
			return nil, nil
		}
		return []int{id}, nil
	}
	ids, err := m.(interface {
		IDs(context.Context) ([]int, error)
	}).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	c := clientOf(m)
	switch m.Type() {
	case ent.TypePayment:
		return c.Payment.Query().Where(payment.IDIn(ids...), payment.StatusNEQ(payment.Status(status))).IDs(ctx)
	case ent.TypeInvoice:
		return c.Invoice.Query().Where(invoice.IDIn(ids...), invoice.StatusNEQ(invoice.Status(status))).IDs(ctx)
	case ent.TypeNetworkUser:
		return c.NetworkUser.Query().Where(networkuser.IDIn(ids...), networkuser.StatusNEQ(networkuser.Status(status))).IDs(ctx)
	}
	return nil, nil
}

// load reads entities of a type by id after a bulk update.
func load(ctx context.Context, c *ent.Client, typ string, ids []int) ([]any, error) {
	var out []any
	switch typ {
	case ent.TypePayment:
		ps, err := c.Payment.Query().Where(payment.IDIn(ids...)).All(ctx)
		for _, p := range ps {
			out = append(out, p)
		}
		return out, err
	case ent.TypeInvoice:
		is, err := c.Invoice.Query().Where(invoice.IDIn(ids...)).All(ctx)
		for _, i := range is {
			out = append(out, i)
		}
		return out, err
	case ent.TypeNetworkUser:
		ns, err := c.NetworkUser.Query().Where(networkuser.IDIn(ids...)).All(ctx)
		for _, n := range ns {
			out = append(out, n)
		}
		return out, err
	}
	return nil, nil
}

// tenantOf is the tenant of an entity the hook saw.
func tenantOf(e any) int {
	switch e := e.(type) {
	case *ent.Payment:
		return e.TenantID
	case *ent.Invoice:
		return e.TenantID
	case *ent.NetworkUser:
		return e.TenantID
	}
	return 0
}

// record writes the deliveries of one kind of event for ents.
func (s *Service) record(ctx context.Context, c *ent.Client, kind string, ents []any) error {
	byTenant := map[int][]any{}
	var order []int
	for _, e := range ents {
		t := tenantOf(e)
		if t <= 0 {
			continue
		}
		if _, ok := byTenant[t]; !ok {
			order = append(order, t)
		}
		byTenant[t] = append(byTenant[t], e)
	}
	for _, tid := range order {
		// The deliveries belong to the entity's tenant, whoever changed it.
		tctx := viewer.ForTenant(ctx, tid)
		eps, err := c.WebhookEndpoint.Query().
			Where(webhookendpoint.Enabled(true)).
			Order(ent.Asc(webhookendpoint.FieldID)).
			All(tctx)
		if err != nil {
			return fmt.Errorf("webhook: endpoints: %w", err)
		}
		var subscribed []*ent.WebhookEndpoint
		for _, ep := range eps {
			for _, e := range ep.Events {
				if e == kind {
					subscribed = append(subscribed, ep)
					break
				}
			}
		}
		if len(subscribed) == 0 {
			continue
		}
		t, err := c.Tenant.Get(tctx, tid)
		if err != nil {
			return fmt.Errorf("webhook: tenant: %w", err)
		}
		for _, e := range byTenant[tid] {
			id, err := newEventID()
			if err != nil {
				return err
			}
			now := s.now().UTC().Truncate(time.Millisecond)
			body, err := json.Marshal(Event{ID: id, Type: kind, CreatedAt: now, Tenant: t.Slug, Data: s.data(e, t.Currency)})
			if err != nil {
				return fmt.Errorf("webhook: payload: %w", err)
			}
			for _, ep := range subscribed {
				d, err := c.WebhookDelivery.Create().SetEndpointID(ep.ID).SetEventID(id).SetEventType(kind).
					SetPayload(string(body)).SetCreatedAt(now).SetNextAttemptAt(now).Save(tctx)
				if err != nil {
					return fmt.Errorf("webhook: delivery: %w", err)
				}
				if err := outbox.Enqueue(tctx, c, jobs.DeliverWebhookArgs{TenantID: tid, DeliveryID: d.ID},
					outbox.DedupKey(fmt.Sprintf("webhook:%d:0", d.ID))); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// data is an event's data: ids opaque as the API shows them, amounts as
// decimal strings in the tenant's currency, enum values as in the API.
func (s *Service) data(e any, currency string) map[string]any {
	id := func(n int) string { return s.IDs.Encode(n) }
	optID := func(n *int) any {
		if n == nil {
			return nil
		}
		return id(*n)
	}
	switch e := e.(type) {
	case *ent.Payment:
		return map[string]any{"payment": map[string]any{
			"id": id(e.ID), "number": e.Number, "amount": e.Amount.In(currency), "currency": currency,
			"method": string(e.Method), "status": string(e.Status), "transactionID": e.TransactionID,
			"invoiceID": optID(e.InvoiceID), "networkUserID": id(e.NetworkUserID),
			"paymentGatewayID": optID(e.PaymentGatewayID), "paidAt": e.PaidAt, "refundedAt": e.RefundedAt,
		}}
	case *ent.Invoice:
		return map[string]any{"invoice": map[string]any{
			"id": id(e.ID), "number": e.Number, "status": string(e.Status), "currency": currency,
			"amount": e.Amount.In(currency), "tax": e.Tax.In(currency), "total": e.Total.In(currency),
			"amountPaid": e.AmountPaid.In(currency), "issuedAt": e.IssuedAt, "dueDate": e.DueDate,
			"periodStart": e.PeriodStart, "periodEnd": e.PeriodEnd, "networkUserID": id(e.NetworkUserID),
		}}
	case *ent.NetworkUser:
		return map[string]any{"networkUser": map[string]any{
			"id": id(e.ID), "username": e.Username, "status": string(e.Status),
			"suspensionReason": e.SuspensionReason, "suspendedAt": e.SuspendedAt,
		}}
	}
	return map[string]any{}
}
