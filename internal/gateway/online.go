package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Online runs payments a customer makes on a provider's page: it opens the
// provider's session for an invoice (StartInvoicePayment) and, when the
// customer comes back, asks the provider whether it was paid
// (ConfirmPayment). The provider's webhook (Webhooks) completes the same
// payment when it arrives first; either way billing settles the invoice once
// and reactivates a subscriber suspended for it.
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
// customer pays on. returnURL is where the provider sends the customer back
// (with its own query parameters). Nothing is stored when the provider
// refuses.
func (o *Online) StartInvoicePayment(ctx context.Context, invoiceID, gatewayID int, returnURL string) (*ent.Payment, string, error) {
	c := o.client(ctx)
	actx, err := asTenant(ctx, c, invoiceID)
	if err != nil {
		return nil, "", err
	}
	if err := CheckReturnURL(returnURL); err != nil {
		return nil, "", err
	}
	var redirect string
	p, err := o.Billing.StartOnlinePayment(actx, invoiceID, gatewayID, func(ctx context.Context, on billing.Online) (billing.OnlineSession, error) {
		gw, err := c.PaymentGateway.Get(ctx, gatewayID)
		if err != nil {
			return billing.OnlineSession{}, err
		}
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
		return billing.OnlineSession{TransactionID: co.TransactionID, Payload: co.Payload, ExpiresAt: expires}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return p, redirect, nil
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
	if res.Succeeded && res.Amount < p.Amount {
		res = Result{Reason: fmt.Sprintf("the provider received %s, the payment is for %s", res.Amount.In(res.Currency), p.Amount.In(res.Currency))}
	}
	if res.Succeeded {
		p, err = o.Billing.CompletePayment(actx, p.ID, res.Reference)
	} else {
		p, err = o.Billing.FailPayment(actx, p.ID, truncate(res.Reason, 500))
	}
	if err != nil {
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
