package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
)

// ErrUnverified reports a webhook call whose signature (or validation) does
// not hold: it must change nothing.
var ErrUnverified = errors.New("gateway: webhook call could not be verified")

// WebhookRequest is one provider call to the webhook route.
type WebhookRequest struct {
	Header http.Header
	Body   []byte
	// Now is the clock the signature's timestamp is checked against.
	Now time.Time
}

// Event is a verified provider notification. Result is set when the event
// decides a payment (it succeeded, or definitively failed); nil means the
// event is informational and only recorded.
type Event struct {
	ID            string // the provider's event id: each is processed once
	Kind          string
	TransactionID string // the payment's id at the provider (payment intent, val_id, paymentID)
	// PaymentNumber is our payment number when the provider echoes it (a
	// Checkout Session's PaymentIntent carries it in its metadata): a
	// payment recorded under another id (the session's) is found by it.
	PaymentNumber string
	Result        *Result
}

// WebhookParser verifies and reads a provider's webhook calls.
type WebhookParser interface {
	ParseWebhook(ctx context.Context, cfg Config, r WebhookRequest) (Event, error)
}

// ParseWebhook verifies a webhook call for gw with the gateway's own
// configuration and returns its event. ErrUnverified (wrapped) means the call
// must be refused.
func (s *Service) ParseWebhook(ctx context.Context, gw *ent.PaymentGateway, r WebhookRequest) (Event, error) {
	p, ok := s.providers[gw.Provider].(WebhookParser)
	if !ok {
		return Event{}, fmt.Errorf("%w: provider %s takes no webhooks", ErrUnverified, gw.Provider)
	}
	cfg, err := s.Config(gw)
	if err != nil {
		return Event{}, err
	}
	if r.Now.IsZero() {
		r.Now = time.Now()
	}
	return p.ParseWebhook(ctx, cfg, r)
}

// StripeSignatureTolerance is how far a Stripe-Signature timestamp may be
// from now (Stripe's libraries default to five minutes): an older call is a
// replay.
const StripeSignatureTolerance = 5 * time.Minute

// SignStripe returns a Stripe-Signature header value for payload at t under
// secret, as Stripe computes it: v1 = hex(HMAC-SHA256(secret, "t.payload")).
func SignStripe(secret string, t time.Time, payload []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(payload)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// verifyStripeSignature checks a Stripe-Signature header: one of its v1
// signatures matches and its timestamp is within the tolerance.
func verifyStripeSignature(secret, header string, payload []byte, now time.Time) error {
	if secret == "" {
		return fmt.Errorf("%w: the Stripe gateway has no webhook_secret configured", ErrUnverified)
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed Stripe-Signature header", ErrUnverified)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(payload)
	want := m.Sum(nil)
	ok := false
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("%w: no Stripe-Signature v1 signature matches", ErrUnverified)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > StripeSignatureTolerance || d < -StripeSignatureTolerance {
		return fmt.Errorf("%w: Stripe-Signature timestamp is %s away from now", ErrUnverified, d.Round(time.Second))
	}
	return nil
}

// ParseWebhook implements WebhookParser for Stripe events signed with the
// endpoint's signing secret ("webhook_secret"). payment_intent.succeeded
// settles a payment; payment_intent.canceled fails it; a
// payment_intent.payment_failed is informational (the customer may retry the
// same intent), so an out-of-order failure never undoes a success.
func (s *Stripe) ParseWebhook(_ context.Context, cfg Config, r WebhookRequest) (Event, error) {
	if err := verifyStripeSignature(cfg["webhook_secret"], r.Header.Get("Stripe-Signature"), r.Body, r.Now); err != nil {
		return Event{}, err
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Object struct {
				ID             string            `json:"id"`
				Object         string            `json:"object"`
				Status         string            `json:"status"`
				AmountReceived int64             `json:"amount_received"`
				Currency       string            `json:"currency"`
				PaymentIntent  string            `json:"payment_intent"`
				PaymentStatus  string            `json:"payment_status"`
				AmountTotal    int64             `json:"amount_total"`
				Metadata       map[string]string `json:"metadata"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &ev); err != nil || ev.ID == "" {
		return Event{}, fmt.Errorf("%w: the signed body is not a Stripe event", ErrUnverified)
	}
	o := ev.Data.Object
	out := Event{ID: ev.ID, Kind: ev.Type, TransactionID: o.ID}
	if o.Object == "payment_intent" {
		out.PaymentNumber = o.Metadata["payment"]
	}
	payload := map[string]any{"event": ev.ID, "type": ev.Type, "status": o.Status}
	switch ev.Type {
	case "payment_intent.succeeded":
		out.Result = &Result{Succeeded: true, Amount: fromStripeAmount(o.AmountReceived, o.Currency), Currency: strings.ToUpper(o.Currency), Reference: o.ID, Payload: payload}
	case "payment_intent.canceled":
		out.Result = &Result{Reason: "stripe: payment intent canceled", Reference: o.ID, Payload: payload}
	case "checkout.session.completed":
		// A paid Checkout Session names its PaymentIntent; the payment is
		// recorded under the session id.
		if o.PaymentStatus == "paid" {
			out.Result = &Result{Succeeded: true, Amount: fromStripeAmount(o.AmountTotal, o.Currency), Currency: strings.ToUpper(o.Currency), Reference: o.PaymentIntent, Payload: payload}
		}
	case "checkout.session.expired":
		out.Result = &Result{Reason: "stripe: checkout session expired", Reference: o.ID, Payload: payload}
	}
	return out, nil
}
