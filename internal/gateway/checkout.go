package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/money"
)

// CheckoutRequest is a payment a customer is sent to the provider to make.
type CheckoutRequest struct {
	// IdempotencyKey makes a repeated request open the same session.
	IdempotencyKey string
	Reference      string // our payment number, shown by the provider and sent back to us
	Invoice        string // the invoice number, for the provider's description
	Amount         money.Money
	Currency       string // ISO 4217
	// ReturnURL is the page the provider sends the customer back to; the
	// provider adds its own query parameters (the payment's transaction id).
	ReturnURL string
	// ExpiresAt is when the provider stops accepting the payment.
	ExpiresAt time.Time
	// The customer, as far as the provider asks.
	CustomerName, CustomerEmail, CustomerPhone string
}

// Checkout is a provider session a customer pays in.
type Checkout struct {
	// TransactionID is the provider's id of the session: the payment is
	// recorded under it, and webhooks and verification name it.
	TransactionID string
	// RedirectURL is the provider's page the customer is sent to.
	RedirectURL string
	// Payload is what the provider answered (never secrets).
	Payload map[string]any
}

// CheckoutStarter opens a provider's hosted payment page for one payment.
// An error is either an apperr (the provider refused: CONFLICT with its
// message) or temporary.
type CheckoutStarter interface {
	StartCheckout(ctx context.Context, cfg Config, req CheckoutRequest) (Checkout, error)
}

// CheckoutCloser closes a provider's session so that it can no longer be
// paid. closed is false when the session is no longer open (paid or
// expired: verification says which).
type CheckoutCloser interface {
	CloseCheckout(ctx context.Context, cfg Config, transactionID string) (closed bool, err error)
}

// CloseCheckout closes the session transactionID at gw's provider. closed is
// false when the provider cannot close sessions (SSLCommerz) or the session
// is no longer open.
func (s *Service) CloseCheckout(ctx context.Context, gw *ent.PaymentGateway, transactionID string) (bool, error) {
	c, ok := s.providers[gw.Provider].(CheckoutCloser)
	if !ok {
		return false, nil
	}
	cfg, err := s.Config(gw)
	if err != nil {
		return false, err
	}
	return c.CloseCheckout(ctx, cfg, transactionID)
}

// CheckoutTTL is how long a customer has to pay on the provider's page
// (Stripe's minimum for expires_at is 30 minutes).
const CheckoutTTL = 30 * time.Minute

// StartCheckout opens the provider's payment page for req through gw. A
// provider without a checkout client is refused with CONFLICT.
func (s *Service) StartCheckout(ctx context.Context, gw *ent.PaymentGateway, req CheckoutRequest) (Checkout, error) {
	c, ok := s.providers[gw.Provider].(CheckoutStarter)
	if !ok {
		return Checkout{}, apperr.E(apperr.Conflict, "payments through %s cannot be started online: choose another gateway", gw.Provider)
	}
	cfg, err := s.Config(gw)
	if err != nil {
		return Checkout{}, err
	}
	return c.StartCheckout(ctx, cfg, req)
}

// CheckReturnURL validates a return page given through the API: an absolute
// http(s) URL without credentials.
func CheckReturnURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(raw) > 2000 {
		return apperr.E(apperr.BadUserInput, "returnURL must be an absolute http(s) URL of at most 2000 characters, without credentials")
	}
	return nil
}

// withQuery appends query parameters to a URL given as a string; Stripe's
// {CHECKOUT_SESSION_ID} placeholder must stay unescaped.
func withQuery(base string, params ...string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	var b strings.Builder
	b.WriteString(base)
	for i := 0; i+1 < len(params); i += 2 {
		b.WriteString(sep)
		b.WriteString(url.QueryEscape(params[i]))
		b.WriteString("=")
		if strings.HasPrefix(params[i+1], "{") {
			b.WriteString(params[i+1])
		} else {
			b.WriteString(url.QueryEscape(params[i+1]))
		}
		sep = "&"
	}
	return b.String()
}

// StartCheckout implements CheckoutStarter with a Stripe Checkout Session:
// POST {BaseURL}/v1/checkout/sessions (mode=payment, one line item of the
// amount due), with the request's Idempotency-Key. The
// customer comes back to ReturnURL with status=success&session_id=cs_… or
// status=cancel.
func (s *Stripe) StartCheckout(ctx context.Context, cfg Config, req CheckoutRequest) (Checkout, error) {
	if cfg["secret_key"] == "" {
		return Checkout{}, errors.New("gateway: the Stripe gateway has no secret_key configured")
	}
	amount, err := stripeAmount(req.Amount, req.Currency)
	if err != nil {
		return Checkout{}, err
	}
	form := url.Values{
		"mode":                                          {"payment"},
		"line_items[0][quantity]":                       {"1"},
		"line_items[0][price_data][currency]":           {strings.ToLower(req.Currency)},
		"line_items[0][price_data][unit_amount]":        {strconv.FormatInt(amount, 10)},
		"line_items[0][price_data][product_data][name]": {"Invoice " + req.Invoice},
		"client_reference_id":                           {req.Reference},
		"metadata[payment]":                             {req.Reference},
		"metadata[invoice]":                             {req.Invoice},
		"payment_intent_data[metadata][payment]":        {req.Reference},
		"success_url":                                   {withQuery(req.ReturnURL, "status", "success", "session_id", "{CHECKOUT_SESSION_ID}")},
		"cancel_url":                                    {withQuery(req.ReturnURL, "status", "cancel")},
	}
	if !req.ExpiresAt.IsZero() {
		form.Set("expires_at", strconv.FormatInt(req.ExpiresAt.Unix(), 10))
	}
	if req.CustomerEmail != "" {
		form.Set("customer_email", req.CustomerEmail)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.BaseURL, "/")+"/v1/checkout/sessions", strings.NewReader(form.Encode()))
	if err != nil {
		return Checkout{}, err
	}
	hreq.Header.Set("Authorization", "Bearer "+cfg["secret_key"])
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if req.IdempotencyKey != "" {
		hreq.Header.Set("Idempotency-Key", req.IdempotencyKey)
	}
	var body struct {
		ID     string `json:"id"`
		URL    string `json:"url"`
		Status string `json:"status"`
		stripeError
	}
	status, raw, err := do(s.HTTP, hreq, &body)
	if err != nil {
		return Checkout{}, err
	}
	switch {
	case status/100 == 2 && body.ID != "" && body.URL != "":
		return Checkout{TransactionID: body.ID, RedirectURL: body.URL, Payload: map[string]any{
			"checkout_session": body.ID, "checkout_url": body.URL, "status": raw["status"], "expires_at": raw["expires_at"]}}, nil
	case status/100 == 4:
		return Checkout{}, apperr.E(apperr.Conflict, "Stripe refused to open the payment page: %s", body.message(status))
	default:
		return Checkout{}, fmt.Errorf("gateway: stripe checkout sessions answered %d", status)
	}
}

// verifySession asks Stripe about a Checkout Session:
// GET {BaseURL}/v1/checkout/sessions/{id}. complete and paid succeeds (the
// reference is its PaymentIntent, which a refund needs), expired fails, open
// is still pending.
func (s *Stripe) verifySession(ctx context.Context, key, id string) (Result, error) {
	var body struct {
		ID            string `json:"id"`
		Status        string `json:"status"`
		PaymentStatus string `json:"payment_status"`
		PaymentIntent string `json:"payment_intent"`
		AmountTotal   int64  `json:"amount_total"`
		Currency      string `json:"currency"`
		stripeError
	}
	raw, gone, err := s.get(ctx, key, "/v1/checkout/sessions/", "checkout session", id, &body)
	if gone != nil || err != nil {
		return derefResult(gone), err
	}
	res := Result{Amount: fromStripeAmount(body.AmountTotal, body.Currency), Currency: strings.ToUpper(body.Currency), Reference: body.PaymentIntent, Payload: raw}
	switch {
	case body.Status == "complete" && body.PaymentStatus == "paid":
		res.Succeeded = true
		return res, nil
	case body.Status == "expired":
		res.Reason = "stripe: checkout session expired"
		return res, nil
	default:
		return Result{}, ErrPending
	}
}

// CloseCheckout implements CheckoutCloser: POST
// {BaseURL}/v1/checkout/sessions/{id}/expire. Stripe refuses (400) a
// session that is no longer open: closed is then false and verification
// says whether it was paid.
func (s *Stripe) CloseCheckout(ctx context.Context, cfg Config, id string) (bool, error) {
	if cfg["secret_key"] == "" {
		return false, errors.New("gateway: the Stripe gateway has no secret_key configured")
	}
	u := strings.TrimRight(s.BaseURL, "/") + "/v1/checkout/sessions/" + url.PathEscape(id) + "/expire"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg["secret_key"])
	var body struct {
		Status string `json:"status"`
		stripeError
	}
	status, _, err := do(s.HTTP, req, &body)
	switch {
	case err != nil:
		return false, err
	case status/100 == 2:
		return body.Status == "expired", nil
	case status == http.StatusBadRequest || status == http.StatusNotFound:
		return false, nil
	default:
		return false, fmt.Errorf("gateway: stripe session expiry answered %d: %s", status, body.message(status))
	}
}
