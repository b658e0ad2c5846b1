package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/transaction"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Online runs payments a customer makes on a provider's page: it opens the
// provider's session for an invoice (StartInvoicePayment) and, when the
// customer comes back, asks the provider whether it was paid
// (ConfirmPayment). The provider's webhook, or bKash's browser callback
// (Webhooks), completes the same payment when it arrives first; either way
// billing settles the invoice once and reactivates a subscriber suspended
// for it.
type Online struct {
	Client   *ent.Client
	Gateways *Service
	Billing  *billing.Service
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewOnline returns the online payment service; every dependency is required.
func NewOnline(client *ent.Client, gws *Service, b *billing.Service) (*Online, error) {
	if client == nil || gws == nil || b == nil {
		return nil, errors.New("gateway: online payments need the ent client, the gateway service and billing")
	}
	return &Online{Client: client, Gateways: gws, Billing: b}, nil
}

func (o *Online) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// asTenant checks that the caller reaches the invoice (a portal customer
// reaches only their own) and returns the context billing acts in: the
// tenant's system viewer for a customer, whose own viewer may not write
// payments, gateways or numbering; the caller's otherwise.
func asTenant(ctx context.Context, c *ent.Client, invoiceID int) (context.Context, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return nil, apperr.E(apperr.Unauthenticated, "log in first: send Authorization: Bearer <token>")
	}
	if _, err := c.Invoice.Get(ctx, invoiceID); err != nil {
		if ent.IsNotFound(err) {
			return nil, apperr.Wrap(apperr.NotFound, err, "invoice not found (check the id)")
		}
		return nil, err
	}
	if v.Kind == viewer.Customer {
		return viewer.ForTenant(ctx, v.TenantID), nil
	}
	return ctx, nil
}

// StartInvoicePayment creates a PENDING payment of what is left to pay on an
// invoice through gatewayID and returns it with the provider page the
// customer pays on. returnURL is where the customer ends up afterwards (the
// provider, or our bKash callback, adds its query parameters). Nothing is
// stored when the provider refuses.
//
// An invoice has at most one open session per gateway: a PENDING payment of
// the same invoice through the same gateway whose session the provider still
// holds open, for the amount due and the same returnURL, is returned with its
// page instead of opening another; any other is closed at the provider
// (Stripe expires the session, a bKash payment is never executed) and
// failed, or decided when the provider already did. The invoice is locked
// first, so two simultaneous calls for one invoice open one session.
func (o *Online) StartInvoicePayment(ctx context.Context, invoiceID, gatewayID int, returnURL string) (*ent.Payment, string, error) {
	c := o.client(ctx)
	actx, err := asTenant(ctx, c, invoiceID)
	if err != nil {
		return nil, "", err
	}
	if err := CheckReturnURL(returnURL); err != nil {
		return nil, "", err
	}
	var out *ent.Payment
	var redirect string
	err = transaction.Run(actx, o.Client, func(ctx context.Context, tc *ent.Client) error {
		inv, err := o.Billing.LockInvoice(ctx, invoiceID)
		if err != nil {
			return err
		}
		gw, err := tc.PaymentGateway.Get(ctx, gatewayID)
		if ent.IsNotFound(err) {
			return apperr.Wrap(apperr.NotFound, err, "payment gateway not found in your tenant (check the id)")
		}
		if err != nil {
			return err
		}
		if out, redirect, err = o.resume(ctx, tc, inv, gw, returnURL); err != nil || out != nil {
			return err
		}
		out, err = o.Billing.StartOnlinePayment(ctx, invoiceID, gatewayID, func(ctx context.Context, on billing.Online) (billing.OnlineSession, error) {
			expires := o.now().Add(CheckoutTTL).UTC()
			co, err := o.Gateways.StartCheckout(ctx, gw, CheckoutRequest{
				IdempotencyKey: fmt.Sprintf("ispgraph-checkout-%d-%s", on.TenantID, on.Number),
				Reference:      on.Number, Invoice: on.Invoice.Number,
				Amount: on.Amount, Currency: on.Currency, ReturnURL: returnURL, ExpiresAt: expires,
				CustomerName: on.Subscriber.FullName, CustomerEmail: on.Subscriber.Email, CustomerPhone: on.Subscriber.Phone,
			})
			if err != nil {
				return billing.OnlineSession{}, err
			}
			if co.TransactionID == "" || co.RedirectURL == "" {
				return billing.OnlineSession{}, fmt.Errorf("gateway: %s opened a session without an id or page", gw.Provider)
			}
			redirect = co.RedirectURL
			payload := map[string]any{}
			for k, v := range co.Payload {
				payload[k] = v
			}
			// What a second start and the bKash callback need: the page,
			// until when it can be paid, and where the customer goes next.
			payload["checkout_url"] = co.RedirectURL
			payload[payloadExpiresAt] = expires.Format(time.RFC3339)
			payload[payloadReturnURL] = returnURL
			return billing.OnlineSession{TransactionID: co.TransactionID, Payload: payload, ExpiresAt: expires}, nil
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, redirect, nil
}

// Keys of an online payment's gateway payload.
const (
	payloadReturnURL = "return_url"         // the page the customer is sent to afterwards
	payloadExpiresAt = "session_expires_at" // RFC 3339: the provider stops accepting the payment
)

// reuseMargin is how much time an open session must have left to be handed
// out again: a customer needs a few minutes to pay.
const reuseMargin = 5 * time.Minute

// resume settles the PENDING online payments of inv through gw before a new
// one is started, inside the transaction that locked inv. The newest one the
// customer can still pay (same amount due and return page, session open at
// the provider with time left) is returned with its page; the others are
// closed at the provider and failed, or completed or failed as the provider
// decided them. When a session the provider completed has paid the invoice,
// that payment is returned with returnURL as the page: there is nothing left
// to pay. Otherwise nil: a new session is needed.
func (o *Online) resume(ctx context.Context, c *ent.Client, inv *ent.Invoice, gw *ent.PaymentGateway, returnURL string) (*ent.Payment, string, error) {
	if inv.Status != invoice.StatusPENDING && inv.Status != invoice.StatusOVERDUE {
		return nil, "", nil // billing refuses it with the reason
	}
	prev, err := c.Payment.Query().Where(payment.InvoiceID(inv.ID), payment.PaymentGatewayID(gw.ID),
		payment.StatusEQ(payment.StatusPENDING), payment.MethodEQ(payment.MethodGATEWAY), payment.TransactionIDNotNil()).
		Order(ent.Desc(payment.FieldID)).All(ctx)
	if err != nil || len(prev) == 0 {
		return nil, "", err
	}
	var candidate, completed *ent.Payment
	if o.reusable(prev[0], returnURL) {
		candidate, prev = prev[0], prev[1:]
	}
	for _, p := range prev {
		if p, err = o.retire(ctx, gw, p); err != nil {
			return nil, "", err
		}
		if p.Status == payment.StatusCOMPLETED {
			completed = p
		}
	}
	if candidate != nil {
		// Older sessions the provider had completed may have changed what
		// is due.
		if inv, err = c.Invoice.Get(ctx, inv.ID); err != nil {
			return nil, "", err
		}
		res, err := o.Gateways.Verify(ctx, gw, *candidate.TransactionID)
		switch {
		case errors.Is(err, ErrPending) && candidate.Amount == inv.Total-inv.AmountPaid:
			page, _ := candidate.GatewayPayload["checkout_url"].(string)
			return candidate, page, nil
		case errors.Is(err, ErrPending):
			candidate, err = o.retire(ctx, gw, candidate)
		case err != nil:
			return nil, "", apperr.Wrap(apperr.Internal, err, "the payment provider cannot be asked now: try again in a minute")
		default:
			candidate, err = o.decide(ctx, gw, candidate, res)
		}
		if err != nil {
			return nil, "", err
		}
		if candidate.Status == payment.StatusCOMPLETED {
			completed = candidate
		}
	}
	if completed == nil {
		return nil, "", nil
	}
	if inv, err = c.Invoice.Get(ctx, inv.ID); err != nil || inv.Status != invoice.StatusPAID {
		return nil, "", err
	}
	return completed, returnURL, nil
}

// reusable reports whether payment p's session could be handed out again
// for returnURL: its page is known and has time left.
func (o *Online) reusable(p *ent.Payment, returnURL string) bool {
	page, _ := p.GatewayPayload["checkout_url"].(string)
	ret, _ := p.GatewayPayload[payloadReturnURL].(string)
	exp, _ := p.GatewayPayload[payloadExpiresAt].(string)
	until, err := time.Parse(time.RFC3339, exp)
	return page != "" && ret == returnURL && err == nil && until.Sub(o.now()) > reuseMargin
}

// retire closes payment p's session at the provider and fails p, so only
// one session of an invoice can be paid. A provider that cannot close it, or
// whose session is no longer open, is asked: a session it completed
// completes p, one it failed fails p, one still open (SSLCommerz) stays
// PENDING and is settled by its verification job. It returns p as it is now.
func (o *Online) retire(ctx context.Context, gw *ent.PaymentGateway, p *ent.Payment) (*ent.Payment, error) {
	closed, err := o.Gateways.CloseCheckout(ctx, gw, *p.TransactionID)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "the payment provider cannot be asked now: try again in a minute")
	}
	if closed {
		return o.Billing.FailPayment(ctx, p.ID, "replaced by a new payment session")
	}
	res, err := o.Gateways.Verify(ctx, gw, *p.TransactionID)
	switch {
	case errors.Is(err, ErrPending):
		return p, nil
	case err != nil:
		return nil, apperr.Wrap(apperr.Internal, err, "the payment provider cannot be asked now: try again in a minute")
	}
	return o.decide(ctx, gw, p, res)
}

// decide completes or fails PENDING payment p through gw as the provider
// answered.
func (o *Online) decide(ctx context.Context, gw *ent.PaymentGateway, p *ent.Payment, res Result) (*ent.Payment, error) {
	res, err := o.Gateways.CheckResult(ctx, gw, p, res)
	if err != nil {
		return nil, err
	}
	if res.Succeeded {
		return o.Billing.CompletePayment(ctx, p.ID, res.Reference)
	}
	return o.Billing.FailPayment(ctx, p.ID, truncate(res.Reason, 500))
}

// ConfirmPayment asks the provider about a PENDING online payment (the
// customer is back from the provider's page) and completes or fails it. A
// payment the provider still processes stays PENDING; a decided one is
// returned as it is.
func (o *Online) ConfirmPayment(ctx context.Context, paymentID int) (*ent.Payment, error) {
	c := o.client(ctx)
	p, err := c.Payment.Query().Where(payment.ID(paymentID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.Wrap(apperr.NotFound, err, "payment not found (check the id)")
	}
	if err != nil {
		return nil, err
	}
	if p.Status != payment.StatusPENDING {
		return p, nil
	}
	if p.PaymentGatewayID == nil || p.TransactionID == nil || p.InvoiceID == nil {
		return nil, apperr.E(apperr.Conflict, "payment %s was not made online: staff verify it", p.Number)
	}
	actx, err := asTenant(ctx, c, *p.InvoiceID)
	if err != nil {
		return nil, err
	}
	gw, err := c.PaymentGateway.Get(actx, *p.PaymentGatewayID)
	if err != nil {
		return nil, err
	}
	res, err := o.Gateways.Verify(actx, gw, *p.TransactionID)
	if errors.Is(err, ErrPending) {
		return p, nil
	}
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "the payment provider cannot be asked now: try again in a minute")
	}
	if p, err = o.decide(actx, gw, p, res); err != nil {
		return nil, err
	}
	// Read it back as the caller sees it.
	return c.Payment.Get(ctx, p.ID)
}

// client returns the transactional client of a mutation when there is one.
func (o *Online) client(ctx context.Context) *ent.Client {
	if c := ent.FromContext(ctx); c != nil {
		return c
	}
	return o.Client
}

// RenewPackage lets the portal customer renew service or buy packageID (nil:
// the current package) and pay online: billing picks or creates the invoice
// (billing.RenewalInvoice), then it is paid as StartInvoicePayment pays one.
func (o *Online) RenewPackage(ctx context.Context, packageID *int, gatewayID int, returnURL string) (*ent.Payment, string, error) {
	v := viewer.FromContext(ctx)
	if v == nil || v.Kind != viewer.Customer || v.NetworkUserID == 0 {
		return nil, "", apperr.E(apperr.Forbidden, "renewPackage is for subscribers logged in with customerLogin; staff use generateInvoice and startInvoicePayment")
	}
	if err := CheckReturnURL(returnURL); err != nil {
		return nil, "", err
	}
	inv, err := o.Billing.RenewalInvoice(viewer.ForTenant(ctx, v.TenantID), v.NetworkUserID, packageID)
	if err != nil {
		return nil, "", err
	}
	return o.StartInvoicePayment(ctx, inv.ID, gatewayID, returnURL)
}
