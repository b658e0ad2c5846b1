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
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
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
// changes nothing and is logged. It also serves bKash's browser callback
// (ServeBKashCallback), which bKash's tokenized checkout has instead of a
// webhook.
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
	gw, ok := h.gateway(w, r, log, provider)
	if !ok {
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

// gateway finds the active gateway of provider named by the URL's opaque
// id, across tenants (the tenant is not known before the gateway is found).
// It answers 404 itself when there is none.
func (h *Webhooks) gateway(w http.ResponseWriter, r *http.Request, log *slog.Logger, provider string) (*ent.PaymentGateway, bool) {
	ctx := r.Context()
	id, err := h.IDs.Decode(r.PathValue("gateway"))
	if err != nil {
		log.WarnContext(ctx, "webhook refused: malformed gateway id")
		http.Error(w, "unknown gateway", http.StatusNotFound)
		return nil, false
	}
	gw, err := h.Client.PaymentGateway.Get(tenancy.Bypass(ctx), id)
	if err != nil || string(gw.Provider) != provider || !gw.Active {
		log.WarnContext(ctx, "webhook refused: no active gateway of this provider", "error", err)
		http.Error(w, "unknown gateway", http.StatusNotFound)
		return nil, false
	}
	return gw, true
}

// BKashCallbackPattern is the route bKash sends the customer's browser to
// after its payment page (the bKash gateway's "callback_url"): bKash's
// tokenized checkout has no server-to-server webhook.
const BKashCallbackPattern = "GET /webhooks/bkash/{gateway}"

// ServeBKashCallback serves BKashCallbackPattern:
// ?paymentID=…&status=success|failure|cancel. The query parameters are not
// trusted: a PENDING payment of this gateway with that paymentID is executed
// (status=success) and queried through the bKash API, and bKash's answer is
// applied once as an event (callback:<paymentID>:<outcome>), so a replay or
// a late callback changes nothing. A payment already decided is not asked
// about again. The browser is then sent (303) to the return URL recorded
// when the payment started, with paymentID and status (success, failure,
// cancel or pending: what the payment is now).
func (h *Webhooks) ServeBKashCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := h.Logger.With("provider", "BKASH", "gateway", r.PathValue("gateway"), "callback", true)
	gw, ok := h.gateway(w, r, log, string(paymentgateway.ProviderBKASH))
	if !ok {
		return
	}
	log = log.With("tenant_id", gw.TenantID, "gateway_id", gw.ID)
	ctx = viewer.ForTenant(ctx, gw.TenantID)
	q := r.URL.Query()
	paymentID, status := q.Get("paymentID"), q.Get("status")
	if paymentID == "" || len(paymentID) > 255 {
		log.WarnContext(ctx, "bkash callback refused: no paymentID")
		http.Error(w, "paymentID is required", http.StatusBadRequest)
		return
	}
	log = log.With("transaction_id", paymentID, "status", truncate(status, 20))
	p, err := h.Client.Payment.Query().Where(payment.PaymentGatewayID(gw.ID), payment.TransactionID(paymentID)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		log.WarnContext(ctx, "bkash callback refused: no payment with this paymentID on the gateway; nothing changed")
		http.Error(w, "unknown payment", http.StatusNotFound)
		return
	case err != nil:
		log.ErrorContext(ctx, "bkash callback: payment not read", "error", err)
		http.Error(w, "temporary error: reload this page", http.StatusServiceUnavailable)
		return
	}
	if p.Status == payment.StatusPENDING {
		res, err := h.Gateways.BKashCallback(ctx, gw, paymentID, status == "success")
		switch {
		case errors.Is(err, ErrPending):
			log.InfoContext(ctx, "bkash callback: the payment is still pending at bKash")
		case err != nil:
			// The payment stays PENDING: the return page's confirmation or
			// the verification job decides it later.
			log.ErrorContext(ctx, "bkash callback: bKash cannot be asked now", "error", err)
		default:
			outcome := "failed"
			if res.Succeeded {
				outcome = "completed"
			}
			kind := "callback.unknown"
			switch status {
			case "success", "failure", "cancel":
				kind = "callback." + status
			}
			got, err := h.apply(ctx, gw, Event{ID: "callback:" + paymentID + ":" + outcome, Kind: kind, TransactionID: paymentID, Result: &res})
			if err != nil {
				log.ErrorContext(ctx, "bkash callback: result not applied", "error", err)
			} else {
				log.InfoContext(ctx, "bkash callback processed", "outcome", got)
			}
		}
		if p, err = h.Client.Payment.Get(ctx, p.ID); err != nil {
			log.ErrorContext(ctx, "bkash callback: payment not read", "error", err)
			http.Error(w, "temporary error: reload this page", http.StatusServiceUnavailable)
			return
		}
	}
	ret, _ := p.GatewayPayload[payloadReturnURL].(string)
	if CheckReturnURL(ret) != nil {
		// A payment started without a return page on record.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Payment %s is %s. You can close this page.\n", p.Number, strings.ToLower(string(p.Status)))
		return
	}
	http.Redirect(w, r, withQuery(ret, "paymentID", paymentID, "status", callbackStatus(p)), http.StatusSeeOther)
}

// callbackStatus is what a payment is now, in bKash's words for the return
// page: success, failure, cancel, or pending (and refunded).
func callbackStatus(p *ent.Payment) string {
	switch p.Status {
	case payment.StatusCOMPLETED:
		return "success"
	case payment.StatusFAILED:
		if p.FailureReason != nil && strings.Contains(*p.FailureReason, "cancel") {
			return "cancel"
		}
		return "failure"
	case payment.StatusREFUNDED:
		return "refunded"
	default:
		return "pending"
	}
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
	res, err := h.Gateways.CheckResult(ctx, gw, p, *ev.Result)
	if err != nil {
		return "", err
	}
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
