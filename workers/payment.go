package workers

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
)

// PaymentHandler runs ProcessPayment: it verifies a gateway payment with its
// provider (through internal/gateway, which opens the gateway's sealed
// configuration), then completes or fails it. A payment that is no longer PENDING
// is left alone, so a second run changes nothing.
type PaymentHandler struct {
	Client   *ent.Client
	Billing  *billing.Service
	Gateways *gateway.Service
	Logger   *slog.Logger
}

// Process is the ProcessPayment handler.
func (h *PaymentHandler) Process(job *work.Job) error {
	var a jobs.ProcessPaymentArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	log := h.Logger.With("job", job.Name, "job_id", job.ID, "tenant_id", a.TenantID, "payment_id", a.PaymentID)

	p, err := h.Client.Payment.Query().Where(payment.ID(a.PaymentID)).WithGateway().Only(ctx)
	if ent.IsNotFound(err) {
		log.Warn("payment not found: nothing to process")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load payment: %w", err)
	}
	if p.Status != payment.StatusPENDING {
		log.Info("payment already processed", "status", p.Status)
		return nil
	}
	ref, txid := "", ""
	if p.TransactionID != nil {
		txid = *p.TransactionID
	}
	gw := p.Edges.Gateway
	// Every provider but MANUAL is asked; one without a client is an error
	// (the payment stays pending), never completed unchecked.
	verify := gw != nil && gw.Provider != paymentgateway.ProviderMANUAL
	switch {
	case gw == nil && p.Method == payment.MethodGATEWAY:
		return fmt.Errorf("gateway payment %s has no gateway to verify it with: it stays pending", p.Number)
	case verify && txid == "":
		log.Info("gateway payment without a transaction id")
		return h.fail(ctx, p.ID, "no gateway transaction id to verify the payment with")
	}
	if verify {
		res, err := h.Gateways.Verify(ctx, gw, txid)
		if err != nil {
			return err
		}
		if res.Payload != nil {
			// The provider's answer joins what was recorded when the
			// payment started (an online payment's page and return URL).
			payload := make(map[string]any, len(p.GatewayPayload)+len(res.Payload))
			for k, v := range p.GatewayPayload {
				payload[k] = v
			}
			for k, v := range res.Payload {
				payload[k] = v
			}
			if err := h.Client.Payment.Update().
				Where(payment.ID(p.ID), payment.StatusEQ(payment.StatusPENDING)).
				SetGatewayPayload(payload).Exec(ctx); err != nil {
				return fmt.Errorf("store provider answer: %w", err)
			}
		}
		if !res.Succeeded {
			log.Info("provider reports the payment failed", "reason", res.Reason)
			return h.fail(ctx, p.ID, res.Reason)
		}
		checked, err := h.Gateways.CheckResult(ctx, gw, p, res)
		if err != nil {
			return err
		}
		if !checked.Succeeded {
			log.Warn("amount mismatch", "reason", checked.Reason)
			return h.fail(ctx, p.ID, checked.Reason)
		}
		ref = res.Reference
	}
	if err := h.complete(ctx, p.ID, ref); err != nil {
		return err
	}
	log.Info("payment completed", "provider_ref", ref)
	return nil
}

// complete settles a PENDING payment through billing, the one place payments
// are applied to invoices and credit. A payment that is no longer pending
// (failed or refunded meanwhile) is left as it is: retrying could not change
// that, so the job ends.
func (h *PaymentHandler) complete(ctx context.Context, paymentID int, providerRef string) error {
	_, err := h.Billing.CompletePayment(ctx, paymentID, providerRef)
	return h.settled(ctx, err, "complete", paymentID)
}

// fail marks a PENDING payment FAILED with reason.
func (h *PaymentHandler) fail(ctx context.Context, paymentID int, reason string) error {
	_, err := h.Billing.FailPayment(ctx, paymentID, truncate(reason, 500))
	return h.settled(ctx, err, "fail", paymentID)
}

func (h *PaymentHandler) settled(ctx context.Context, err error, action string, paymentID int) error {
	if err != nil && apperr.CodeOf(err) == apperr.Conflict {
		h.Logger.WarnContext(ctx, "payment job: payment is no longer pending; left as it is",
			"action", action, "payment_id", paymentID, "reason", err.Error())
		return nil
	}
	return err
}
