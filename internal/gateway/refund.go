package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/money"
)

// RefundRequest is the refund of one completed gateway payment.
type RefundRequest struct {
	// Reference is the provider's reference of the completed payment
	// (Stripe PaymentIntent, SSLCommerz bank_tran_id, bKash trxID);
	// TransactionID the id the payment was recorded under.
	Reference, TransactionID string
	Amount                   money.Money
	// Currency is the ISO 4217 code of the tenant's currency, the unit of
	// Amount.
	Currency string
	// IdempotencyKey makes a retried refund a no-op at the provider.
	IdempotencyKey string
	Reason         string
}

// Refunder returns money of a completed payment to the customer through its
// provider.
type Refunder interface {
	Refund(ctx context.Context, cfg Config, in RefundRequest) (refundID string, err error)
}

// Refund sends the refund of a completed gateway payment to its provider and
// returns the provider's refund id. MANUAL gateways take no provider call
// (""), a provider without a refund client is refused with CONFLICT, and a
// refusal by the provider is a CONFLICT carrying its message.
func (s *Service) Refund(ctx context.Context, gw *ent.PaymentGateway, p *ent.Payment) (string, error) {
	if gw.Provider == paymentgateway.ProviderMANUAL {
		return "", nil
	}
	r, ok := s.providers[gw.Provider].(Refunder)
	if !ok {
		return "", apperr.E(apperr.Conflict, "payment %s came through %s, which ispgraph cannot refund: refund it at the provider, then record it", p.Number, gw.Provider)
	}
	cfg, err := s.Config(gw)
	if err != nil {
		return "", err
	}
	cur, err := tenantCurrency(ctx, gw)
	if err != nil {
		return "", err
	}
	in := RefundRequest{Amount: p.Amount, Currency: cur, IdempotencyKey: "ispgraph-refund-" + strconv.Itoa(p.ID)}
	if v, ok := p.GatewayPayload["provider_ref"].(string); ok {
		in.Reference = v
	}
	if v, ok := p.GatewayPayload["refund_reason"].(string); ok {
		in.Reason = v
	}
	if p.TransactionID != nil {
		in.TransactionID = *p.TransactionID
	}
	if in.Reference == "" {
		in.Reference = in.TransactionID
	}
	return r.Refund(ctx, cfg, in)
}

// errRefused is a provider's definitive refusal of a refund.
var errRefused = errors.New("refused")

// Refund implements Refunder with Stripe's Refunds API:
// POST {BaseURL}/v1/refunds (form: payment_intent, amount) with the secret key
// as bearer token and an Idempotency-Key header.
func (s *Stripe) Refund(ctx context.Context, cfg Config, in RefundRequest) (string, error) {
	reference, amount, key := in.Reference, in.Amount, in.IdempotencyKey
	if cfg["secret_key"] == "" {
		return "", errors.New("gateway: the Stripe gateway has no secret_key configured")
	}
	if !strings.HasPrefix(reference, "pi_") {
		return "", apperr.E(apperr.Conflict, "the payment has no Stripe PaymentIntent to refund (reference %q)", reference)
	}
	n, err := stripeAmount(amount, in.Currency)
	if err != nil {
		return "", err
	}
	form := url.Values{"payment_intent": {reference}, "amount": {strconv.FormatInt(n, 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.BaseURL, "/")+"/v1/refunds", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+cfg["secret_key"])
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Idempotency-Key", key)
	var body struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		stripeError
	}
	status, _, err := do(s.HTTP, req, &body)
	if err != nil {
		return "", err
	}
	switch {
	case status/100 == 2 && body.Status != "failed" && body.Status != "canceled":
		return body.ID, nil
	case status/100 == 4 || status/100 == 2:
		msg := body.Status
		if body.Error != nil {
			msg = body.message(status)
		}
		return "", apperr.Wrap(apperr.Conflict, errRefused, "Stripe refused the refund: %s", msg)
	default:
		return "", fmt.Errorf("gateway: stripe refunds answered %d", status)
	}
}
