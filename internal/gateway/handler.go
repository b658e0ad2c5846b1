package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/gatewayevent"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/transaction"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// maxWebhookBody bounds a webhook call's body.
const maxWebhookBody = 1 << 20

// Webhooks serves POST /webhooks/{provider}/{gateway}: a provider's call
// about a payment through one gateway (the gateway's opaque API id). The call
// is verified with that gateway's configuration; a verified event is applied
// through billing (complete or fail the payment, settle its invoice,
// reactivate a subscriber suspended for it) and its id stored in the same
// transaction, so a replay or duplicate changes nothing. An unverifiable call
// changes nothing and is logged.
type Webhooks struct {
	Client   *ent.Client
	IDs      *gid.Codec // decodes the gateway's id in the URL
	Gateways *Service
	Billing  *billing.Service
	Logger   *slog.Logger
	// Now is the clock signatures are checked against; nil means time.Now.
	Now func() time.Time
}

// Pattern is the route the webhook handler is mounted at.
const Pattern = "POST /webhooks/{provider}/{gateway}"

// ServeHTTP implements http.Handler.
func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	provider := strings.ToUpper(r.PathValue("provider"))
	log := h.Logger.With("provider", provider, "gateway", r.PathValue("gateway"))
	id, err := h.IDs.Decode(r.PathValue("gateway"))
	if err != nil {
		log.WarnContext(ctx, "webhook refused: malformed gateway id")
		http.Error(w, "unknown gateway", http.StatusNotFound)
		return
	}
	// The tenant is not known before the gateway is found.
	gw, err := h.Client.PaymentGateway.Get(tenancy.Bypass(ctx), id)
	if err != nil || string(gw.Provider) != provider || !gw.Active {
		log.WarnContext(ctx, "webhook refused: no active gateway of this provider", "error", err)
		http.Error(w, "unknown gateway", http.StatusNotFound)
		return
	}
	log = log.With("tenant_id", gw.TenantID, "gateway_id", gw.ID)
	ctx = viewer.ForTenant(ctx, gw.TenantID)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	ev, err := h.Gateways.ParseWebhook(ctx, gw, WebhookRequest{Header: r.Header, Body: body, Now: now})
	switch {
	case errors.Is(err, ErrUnverified):
		log.WarnContext(ctx, "webhook refused: not verified; nothing changed", "reason", err.Error())
		http.Error(w, "signature not verified", http.StatusBadRequest)
		return
	case err != nil:
		log.ErrorContext(ctx, "webhook: cannot verify the call now", "error", err)
		http.Error(w, "temporary error", http.StatusServiceUnavailable)
		return
	}
	log = log.With("event_id", ev.ID, "event", ev.Kind, "transaction_id", ev.TransactionID)
	outcome, err := h.apply(ctx, gw, ev)
	switch {
	case apperr.CodeOf(err) == apperr.NotFound:
		// The payment may not be recorded yet: the provider retries.
		log.WarnContext(ctx, "webhook: no payment with this transaction id; the provider will retry")
		http.Error(w, "unknown payment", http.StatusNotFound)
		return
	case err != nil:
		log.ErrorContext(ctx, "webhook: event not applied; the provider will retry", "error", err)
		http.Error(w, "temporary error", http.StatusServiceUnavailable)
		return
	}
	log.InfoContext(ctx, "webhook processed", "outcome", outcome)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"outcome": outcome})
}

// apply processes a verified event once: in one transaction it checks the
// event id, applies the event to its payment through billing and stores the
// id with the outcome.
func (h *Webhooks) apply(ctx context.Context, gw *ent.PaymentGateway, ev Event) (string, error) {
	var outcome string
	err := transaction.Run(ctx, h.Client, func(ctx context.Context, c *ent.Client) error {
		prior, err := c.GatewayEvent.Query().
			Where(gatewayevent.PaymentGatewayID(gw.ID), gatewayevent.EventID(ev.ID)).Only(ctx)
		if err == nil {
			outcome = "duplicate: " + prior.Outcome
			return nil
		}
		if !ent.IsNotFound(err) {
			return err
		}
		if outcome, err = h.settle(ctx, c, gw, ev); err != nil {
			return err
		}
		err = c.GatewayEvent.Create().SetPaymentGatewayID(gw.ID).SetEventID(ev.ID).
			SetKind(truncate(ev.Kind, 100)).SetTransactionID(truncate(ev.TransactionID, 255)).
			SetOutcome(truncate(outcome, 255)).Exec(ctx)
		if ent.IsConstraintError(err) {
			return fmt.Errorf("event %s is being processed by another call", ev.ID)
		}
		return err
	})
	return outcome, err
}

// settle applies an event's result to its payment.
func (h *Webhooks) settle(ctx context.Context, c *ent.Client, gw *ent.PaymentGateway, ev Event) (string, error) {
	if ev.Result == nil {
		return "recorded", nil
	}
	p, err := c.Payment.Query().Where(payment.PaymentGatewayID(gw.ID), payment.TransactionID(ev.TransactionID)).Only(ctx)
	if ent.IsNotFound(err) && ev.PaymentNumber != "" {
		// A payment started online is recorded under the session; events
		// about the session's PaymentIntent name it by number.
		p, err = c.Payment.Query().Where(payment.PaymentGatewayID(gw.ID), payment.Number(ev.PaymentNumber)).Only(ctx)
	}
	if ent.IsNotFound(err) {
		return "", apperr.E(apperr.NotFound, "no payment with transaction id %q", ev.TransactionID)
	}
	if err != nil {
		return "", err
	}
	res := enough(p, *ev.Result)
	if res.Succeeded {
		_, err = h.Billing.CompletePayment(ctx, p.ID, res.Reference)
	} else {
		_, err = h.Billing.FailPayment(ctx, p.ID, truncate(res.Reason, 500))
	}
	if apperr.CodeOf(err) == apperr.Conflict {
		// Out of order: the payment was already decided the other way
		// (or refunded). The earlier decision stands.
		return "ignored: " + err.Error(), nil
	}
	if err != nil {
		return "", err
	}
	if res.Succeeded {
		return "completed payment " + p.Number, nil
	}
	return "failed payment " + p.Number, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
