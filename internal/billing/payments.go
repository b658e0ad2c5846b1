package billing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// PaymentInput is a payment to record against an invoice.
type PaymentInput struct {
	InvoiceID        int
	Amount           money.Money
	Method           payment.Method
	IdempotencyKey   string
	TransactionID    *string
	PaymentGatewayID *int
}

// maxKeyLen bounds idempotency keys: long enough for any UUID or composite key.
const maxKeyLen = 200

func (in *PaymentInput) normalize() error {
	in.IdempotencyKey = strings.TrimSpace(in.IdempotencyKey)
	if in.TransactionID != nil {
		t := strings.TrimSpace(*in.TransactionID)
		in.TransactionID = &t
		if t == "" {
			in.TransactionID = nil
		}
	}
	switch {
	case in.Amount <= 0:
		return apperr.E(apperr.BadUserInput, "amount must be more than zero (got %s)", in.Amount)
	case in.IdempotencyKey == "":
		return apperr.E(apperr.BadUserInput, "idempotencyKey is required: choose one per payment (e.g. a UUID) and reuse it on retries")
	case len(in.IdempotencyKey) > maxKeyLen:
		return apperr.E(apperr.BadUserInput, "idempotencyKey is longer than %d characters", maxKeyLen)
	case payment.MethodValidator(in.Method) != nil:
		return apperr.E(apperr.BadUserInput, "unknown payment method %q", in.Method)
	case in.Method == payment.MethodGATEWAY && in.PaymentGatewayID == nil:
		return apperr.E(apperr.BadUserInput, "a GATEWAY payment needs paymentGatewayID")
	}
	return nil
}

// sameAs reports whether p was recorded from the same input.
func (in *PaymentInput) sameAs(p *ent.Payment) bool {
	eqInt := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	eqStr := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return p.InvoiceID != nil && *p.InvoiceID == in.InvoiceID &&
		p.Amount == in.Amount && p.Method == in.Method &&
		eqStr(p.TransactionID, in.TransactionID) && eqInt(p.PaymentGatewayID, in.PaymentGatewayID)
}

// RecordPayment records money received against an invoice. Retrying with the
// same idempotency key and input returns the payment recorded first; the same
// key with other input is refused with CONFLICT. A payment through a gateway
// stays PENDING and a ProcessPayment job is enqueued to verify it (the job
// then calls CompletePayment or FailPayment); any other payment completes at
// once: the invoice's amount paid and status change in this transaction, and
// what exceeds the unpaid part becomes the subscriber's credit.
func (s *Service) RecordPayment(ctx context.Context, in PaymentInput) (*ent.Payment, error) {
	if err := in.normalize(); err != nil {
		return nil, err
	}
	var out *ent.Payment
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		// The invoice lock serialises every payment to it, retries included:
		// a retry waits here until the first attempt commits, then finds it.
		inv, err := lockInvoice(ctx, c, in.InvoiceID)
		if err != nil {
			return err
		}
		// The subscriber next, before any write (see lockPaymentInOrder).
		if _, err := lockNetworkUser(ctx, c, inv.NetworkUserID); err != nil {
			return err
		}
		prior, err := c.Payment.Query().Where(payment.IdempotencyKey(in.IdempotencyKey)).Only(ctx)
		switch {
		case err == nil && in.sameAs(prior):
			out = prior
			return nil
		case err == nil:
			return conflict("idempotency key %q was already used for payment %s with different details: use a new key for a new payment", in.IdempotencyKey, prior.Number)
		case !ent.IsNotFound(err):
			return err
		}
		switch inv.Status {
		case invoice.StatusPENDING, invoice.StatusOVERDUE:
		case invoice.StatusPAID:
			return conflict("invoice %s is already paid in full", inv.Number)
		default:
			return conflict("invoice %s is %s and takes no payments", inv.Number, inv.Status)
		}
		pending := in.PaymentGatewayID != nil
		if pending {
			gw, err := c.PaymentGateway.Get(ctx, *in.PaymentGatewayID)
			if err != nil {
				return notFound(err, "payment gateway")
			}
			if !gw.Active {
				return conflict("payment gateway %s is not active", gw.Name)
			}
		}
		t, loc, err := s.tenantLoc(ctx, c)
		if err != nil {
			return err
		}
		now := s.now()
		year := now.In(loc).Year()
		n, err := nextNumber(ctx, c, fmt.Sprintf(PaymentSequence, year))
		if err != nil {
			return err
		}
		create := c.Payment.Create().
			SetNetworkUserID(inv.NetworkUserID).SetInvoiceID(inv.ID).
			SetNumber(formatNumber(PaymentPrefix, year, n)).
			SetAmount(in.Amount).SetMethod(in.Method).
			SetIdempotencyKey(in.IdempotencyKey).
			SetNillableTransactionID(in.TransactionID).
			SetNillablePaymentGatewayID(in.PaymentGatewayID)
		if v := viewer.FromContext(ctx); v != nil && v.UserID > 0 && (v.Kind == viewer.Staff || v.Kind == viewer.Operator) {
			create.SetCollectedByID(v.UserID)
		}
		if pending {
			create.SetStatus(payment.StatusPENDING)
		} else {
			create.SetStatus(payment.StatusCOMPLETED).SetPaidAt(now)
		}
		p, err := create.Save(ctx)
		if ent.IsConstraintError(err) {
			if strings.Contains(err.Error(), "idempotency") {
				return apperr.Wrap(apperr.Conflict, err, "idempotency key %q is being used by another payment at the same time: use a new key for a new payment", in.IdempotencyKey)
			}
			return apperr.Wrap(apperr.Conflict, err, "transaction id %q was already recorded for this gateway", deref(in.TransactionID))
		}
		if err != nil {
			return fmt.Errorf("billing: create payment: %w", err)
		}
		if pending {
			out = p
			return outbox.Enqueue(ctx, c, jobs.ProcessPaymentArgs{TenantID: t.ID, PaymentID: p.ID},
				outbox.DedupKey(fmt.Sprintf("payment:%d:process", p.ID)))
		}
		if _, err := s.settle(ctx, c, inv, p.Amount, now, "payment "+p.Number); err != nil {
			return err
		}
		out = p
		return nil
	})
	return out, err
}

// CompletePayment marks a PENDING payment COMPLETED once its gateway has
// confirmed it: the invoice's amount paid, status and the subscriber's credit
// change in the same transaction, as for a payment recorded at the counter.
// providerRef is the gateway's own reference for the confirmation, kept in
// the payment's gateway payload. It need not equal the payment's transaction
// id (SSLCommerz confirms a tran_id with its bank_tran_id): the caller has
// verified that transaction id with the gateway.
// It is idempotent: completing a COMPLETED payment returns it unchanged; a
// FAILED or REFUNDED payment is refused with CONFLICT. ctx must act for the
// payment's tenant (viewer.ForTenant in a job).
func (s *Service) CompletePayment(ctx context.Context, paymentID int, providerRef string) (*ent.Payment, error) {
	var out *ent.Payment
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		p, err := lockPaymentInOrder(ctx, c, paymentID)
		if err != nil {
			return err
		}
		switch p.Status {
		case payment.StatusCOMPLETED:
			out = p
			return nil
		case payment.StatusPENDING:
		default:
			return conflict("payment %s is %s and cannot be completed", p.Number, p.Status)
		}
		now := s.now()
		upd := c.Payment.UpdateOne(p).SetStatus(payment.StatusCOMPLETED).SetPaidAt(now)
		if providerRef != "" {
			payload := map[string]any{}
			for k, v := range p.GatewayPayload {
				payload[k] = v
			}
			payload["provider_ref"] = providerRef
			upd.SetGatewayPayload(payload)
		}
		if out, err = upd.Save(ctx); err != nil {
			return err
		}
		return s.applyToInvoice(ctx, c, p, p.Amount, now, "payment "+p.Number)
	})
	return out, err
}

// FailPayment marks a PENDING payment FAILED with a reason (the gateway
// declined it or verification gave up). Failing a FAILED payment returns it
// unchanged; a COMPLETED or REFUNDED payment is refused with CONFLICT.
func (s *Service) FailPayment(ctx context.Context, paymentID int, reason string) (*ent.Payment, error) {
	if reason == "" {
		reason = "not confirmed by the gateway"
	}
	var out *ent.Payment
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		p, err := lockPayment(ctx, c, paymentID)
		if err != nil {
			return err
		}
		switch p.Status {
		case payment.StatusFAILED:
			out = p
			return nil
		case payment.StatusPENDING:
		default:
			return conflict("payment %s is %s and cannot fail", p.Number, p.Status)
		}
		out, err = c.Payment.UpdateOne(p).SetStatus(payment.StatusFAILED).SetFailureReason(reason).Save(ctx)
		return err
	})
	return out, err
}

// RefundPayment reverses a COMPLETED payment: it becomes REFUNDED, its
// invoice's amount paid drops by what the payment contributed and a PAID
// invoice reopens (PENDING, or OVERDUE when past its due date). Credit the
// payment had created is taken back; when that credit was already spent on a
// later invoice the refund is refused with CONFLICT.
func (s *Service) RefundPayment(ctx context.Context, paymentID int, reason string) (*ent.Payment, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, apperr.E(apperr.BadUserInput, "give a reason for the refund")
	}
	var out *ent.Payment
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		p, err := lockPaymentInOrder(ctx, c, paymentID)
		if err != nil {
			return err
		}
		switch p.Status {
		case payment.StatusCOMPLETED:
		case payment.StatusREFUNDED:
			return conflict("payment %s was already refunded", p.Number)
		case payment.StatusPENDING:
			return conflict("payment %s is still pending: it can fail, not be refunded", p.Number)
		default:
			return conflict("payment %s is %s: only completed payments can be refunded", p.Number, p.Status)
		}
		now := s.now()
		payload := map[string]any{}
		for k, v := range p.GatewayPayload {
			payload[k] = v
		}
		payload["refund_reason"] = reason
		out, err = c.Payment.UpdateOne(p).SetStatus(payment.StatusREFUNDED).SetRefundedAt(now).
			SetGatewayPayload(payload).Save(ctx)
		if err != nil {
			return err
		}
		if err := s.applyToInvoice(ctx, c, p, -p.Amount, now, "payment "+p.Number+" refunded: "+reason); err != nil {
			return err
		}
		return audit.Decision(ctx, c, "payment.refund", "Payment", p.ID, map[string]any{"status": "REFUNDED", "amount": p.Amount.String(), "reason": reason})
	})
	return out, err
}

// applyToInvoice carries a change of delta in p's completed amount to its
// invoice (or, without one, to the subscriber's credit).
func (s *Service) applyToInvoice(ctx context.Context, c *ent.Client, p *ent.Payment, delta money.Money, now time.Time, why string) error {
	if p.InvoiceID != nil {
		inv, err := lockInvoice(ctx, c, *p.InvoiceID)
		if err != nil {
			return err
		}
		if inv.Status != invoice.StatusCANCELLED {
			_, err = s.settle(ctx, c, inv, delta, now, why)
			return err
		}
	}
	nu, err := lockNetworkUser(ctx, c, p.NetworkUserID)
	if err != nil {
		return err
	}
	return addCredit(ctx, c, nu, delta, p.Number)
}

// addCredit changes a locked subscriber's credit, never below zero.
func addCredit(ctx context.Context, c *ent.Client, nu *ent.NetworkUser, delta money.Money, number string) error {
	if delta == 0 {
		return nil
	}
	if nu.Credit+delta < 0 {
		return conflict("payment %s created %s of credit that was already applied to later invoices (credit left: %s): cancel or settle those first", number, -delta, nu.Credit)
	}
	return c.NetworkUser.UpdateOne(nu).AddCredit(delta).Exec(ctx)
}

// settle recomputes a locked invoice after its completed payments changed
// by delta: amount paid = min(total, completed payments + credit applied);
// what exceeds the total is the subscriber's credit; the status follows.
// Everything is derived from the payments, so it cannot drift.
func (s *Service) settle(ctx context.Context, c *ent.Client, inv *ent.Invoice, delta money.Money, now time.Time, why string) (*ent.Invoice, error) {
	ps, err := c.Payment.Query().
		Where(payment.InvoiceID(inv.ID), payment.StatusEQ(payment.StatusCOMPLETED)).
		Select(payment.FieldAmount).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("billing: payments of %s: %w", inv.Number, err)
	}
	var paid money.Money
	for _, p := range ps {
		paid += p.Amount
	}
	raw := paid + inv.CreditApplied
	excess := func(r money.Money) money.Money { return max(0, r-inv.Total) }
	creditDelta := excess(raw) - excess(raw-delta)

	nu, err := lockNetworkUser(ctx, c, inv.NetworkUserID)
	if err != nil {
		return nil, err
	}
	if err := addCredit(ctx, c, nu, creditDelta, strings.TrimPrefix(why, "payment ")); err != nil {
		return nil, err
	}

	upd := c.Invoice.UpdateOne(inv).SetAmountPaid(min(raw, inv.Total))
	status := inv.Status
	switch {
	case raw >= inv.Total:
		status = invoice.StatusPAID
	case inv.Status == invoice.StatusPAID && IsPastDue(inv, now):
		status = invoice.StatusOVERDUE
	case inv.Status == invoice.StatusPAID:
		status = invoice.StatusPENDING
	}
	if status != inv.Status {
		if err := checkTransition(inv, status); err != nil {
			return nil, err
		}
		upd.SetStatus(status)
		if status == invoice.StatusPAID {
			upd.SetPaidAt(now)
		} else {
			upd.ClearPaidAt()
		}
	}
	if delta < 0 {
		note := inv.Notes
		if note != "" {
			note += "; "
		}
		upd.SetNotes(note + why)
	}
	out, err := upd.Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("billing: update invoice %s: %w", inv.Number, err)
	}
	if status == invoice.StatusPAID && inv.Status != invoice.StatusPAID {
		if err := s.reactivateIfSettled(ctx, c, nu, why); err != nil {
			return nil, err
		}
		if nu, err = c.NetworkUser.Get(ctx, nu.ID); err != nil {
			return nil, err
		}
		if err := s.renewPrepaid(ctx, c, nu, out, why); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// reactivateIfSettled reactivates a subscriber the overdue routine suspended
// once it has no overdue invoice left.
func (s *Service) reactivateIfSettled(ctx context.Context, c *ent.Client, nu *ent.NetworkUser, why string) error {
	if nu.Status != networkuser.StatusSUSPENDED || nu.SuspensionReason == nil || *nu.SuspensionReason != OverdueReason {
		return nil
	}
	n, err := c.Invoice.Query().Where(invoice.NetworkUserID(nu.ID), invoice.StatusEQ(invoice.StatusOVERDUE)).Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	if _, err := s.activate(ctx, c, nu); err != nil {
		return err
	}
	return audit.Decision(ctx, c, "network_user.activate", "NetworkUser", nu.ID, map[string]any{"status": "ACTIVE", "from": "SUSPENDED", "reason": "paid in full: " + why})
}

// lockPayment reads a payment of the tenant and locks it until the
// transaction ends.
func lockPayment(ctx context.Context, c *ent.Client, id int) (*ent.Payment, error) {
	q := c.Payment.Query().Where(payment.ID(id))
	q.Modify(forUpdate)
	p, err := q.Only(ctx)
	if err != nil {
		return nil, notFound(err, "payment")
	}
	return p, nil
}

// tenantLoc returns the viewer's tenant and its time zone.
func (s *Service) tenantLoc(ctx context.Context, c *ent.Client) (*ent.Tenant, *time.Location, error) {
	tid, err := tenantID(ctx)
	if err != nil {
		return nil, nil, err
	}
	t, err := c.Tenant.Get(ctx, tid)
	if err != nil {
		return nil, nil, fmt.Errorf("billing: tenant: %w", err)
	}
	loc, err := LoadLocation(t.Timezone)
	if err != nil {
		return nil, nil, err
	}
	return t, loc, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// lockPaymentInOrder locks a payment's rows in the one order every billing
// change takes them: its invoice, the payment, its subscriber (whose credit
// may change). All are locked before the first write, and the first write's
// ent hook locks the tenant's cache-generation rows, so those always come
// last. A refund and a payment on one invoice then queue on the invoice
// instead of deadlocking on each other's rows.
func lockPaymentInOrder(ctx context.Context, c *ent.Client, id int) (*ent.Payment, error) {
	p, err := c.Payment.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "payment")
	}
	if p.InvoiceID != nil {
		if _, err := lockInvoice(ctx, c, *p.InvoiceID); err != nil {
			return nil, err
		}
	}
	if p, err = lockPayment(ctx, c, id); err != nil {
		return nil, err
	}
	if _, err := lockNetworkUser(ctx, c, p.NetworkUserID); err != nil {
		return nil, err
	}
	return p, nil
}

// LockInvoice locks an invoice of the tenant until the transaction of ctx
// ends, taking the invoice first as every billing change does: a caller that
// looks at an invoice's payments before changing them (a second online
// payment of the same invoice) waits here for the first to commit. ctx must
// carry a transaction (transaction.Run).
func (s *Service) LockInvoice(ctx context.Context, id int) (*ent.Invoice, error) {
	tx := ent.TxFromContext(ctx)
	if tx == nil {
		return nil, fmt.Errorf("billing: LockInvoice(%d) outside a transaction", id)
	}
	return lockInvoice(ctx, tx.Client(), id)
}

// Online is what StartOnlinePayment hands the provider step: the payment
// about to be recorded (its number and amount), its invoice and subscriber,
// and the tenant's currency.
type Online struct {
	TenantID   int
	Number     string
	Amount     money.Money
	Invoice    *ent.Invoice
	Subscriber *ent.NetworkUser
	Currency   string
}

// OnlineSession is the provider's side of an online payment: the id the
// payment is recorded under, what the provider answered, and when the
// provider stops accepting it (the payment is verified once after that, in
// case no webhook arrives).
type OnlineSession struct {
	TransactionID string
	Payload       map[string]any
	ExpiresAt     time.Time
}

// StartOnlinePayment lets open start a provider's session for what is left
// to pay on an invoice through gatewayID, and records it as a PENDING
// payment under the session's id, in one transaction: a provider that
// refuses leaves nothing behind. The payment is completed by the provider's
// webhook or a verification (CompletePayment); a ProcessPayment job is
// scheduled for after the session expires, so a lost webhook still settles
// it. ctx acts for the tenant (a customer's request checks the invoice is
// theirs before).
func (s *Service) StartOnlinePayment(ctx context.Context, invoiceID, gatewayID int, open func(ctx context.Context, o Online) (OnlineSession, error)) (*ent.Payment, error) {
	var out *ent.Payment
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		inv, err := lockInvoice(ctx, c, invoiceID)
		if err != nil {
			return err
		}
		nu, err := lockNetworkUser(ctx, c, inv.NetworkUserID)
		if err != nil {
			return err
		}
		switch inv.Status {
		case invoice.StatusPENDING, invoice.StatusOVERDUE:
		case invoice.StatusPAID:
			return conflict("invoice %s is already paid in full", inv.Number)
		default:
			return conflict("invoice %s is %s and takes no payments", inv.Number, inv.Status)
		}
		due := inv.Total - inv.AmountPaid
		if due <= 0 {
			return conflict("invoice %s has nothing left to pay", inv.Number)
		}
		gw, err := c.PaymentGateway.Get(ctx, gatewayID)
		if err != nil {
			return notFound(err, "payment gateway")
		}
		if !gw.Active {
			return conflict("payment gateway %s is not active", gw.Name)
		}
		t, loc, err := s.tenantLoc(ctx, c)
		if err != nil {
			return err
		}
		now := s.now()
		year := now.In(loc).Year()
		n, err := nextNumber(ctx, c, fmt.Sprintf(PaymentSequence, year))
		if err != nil {
			return err
		}
		number := formatNumber(PaymentPrefix, year, n)
		sess, err := open(ctx, Online{TenantID: t.ID, Number: number, Amount: due, Invoice: inv, Subscriber: nu, Currency: t.Currency})
		if err != nil {
			return err
		}
		p, err := c.Payment.Create().
			SetNetworkUserID(inv.NetworkUserID).SetInvoiceID(inv.ID).SetPaymentGatewayID(gw.ID).
			SetNumber(number).SetAmount(due).SetMethod(payment.MethodGATEWAY).
			SetIdempotencyKey("online:" + number).SetStatus(payment.StatusPENDING).
			SetTransactionID(sess.TransactionID).SetGatewayPayload(sess.Payload).
			Save(ctx)
		if ent.IsConstraintError(err) {
			return apperr.Wrap(apperr.Conflict, err, "the provider's session %q was already recorded for this gateway", sess.TransactionID)
		}
		if err != nil {
			return fmt.Errorf("billing: create payment: %w", err)
		}
		out = p
		after := sess.ExpiresAt
		if after.IsZero() {
			after = now.Add(time.Hour)
		}
		return outbox.Enqueue(ctx, c, jobs.ProcessPaymentArgs{TenantID: t.ID, PaymentID: p.ID},
			outbox.DedupKey(fmt.Sprintf("payment:%d:process", p.ID)), outbox.After(after.Add(5*time.Minute)))
	})
	return out, err
}
