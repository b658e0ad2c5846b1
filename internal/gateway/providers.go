package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/internal/money"
)

// Result is a provider's answer about one payment.
type Result struct {
	// Succeeded is true when the provider confirms the money was received;
	// false with Reason set when the payment definitively failed.
	Succeeded bool
	Reason    string
	// Amount (minor units) and Currency as the provider reports them.
	Amount   money.Money
	Currency string
	// Reference is the provider's own id for the payment.
	Reference string
	// Payload is the provider's answer, kept on the payment (never secrets).
	Payload map[string]any
}

// Verifier asks one provider about a payment. A returned error is temporary
// (network, 5xx, rate limit, bad credentials): the job retries. A definitive
// "this payment failed" is a Result with Succeeded false.
type Verifier interface {
	Verify(ctx context.Context, cfg Config, transactionID string) (Result, error)
}

// defaultTimeout bounds a provider call when the caller gives no client.
const defaultTimeout = 30 * time.Second

// ErrPending is returned while the provider still processes the payment.
var ErrPending = errors.New("gateway: the provider is still processing the payment")

// Stripe verifies a PaymentIntent: GET {BaseURL}/v1/payment_intents/{id} with
// the secret key ("secret_key" in the gateway's credentials) as bearer token,
// or a Checkout Session (ids cs_…, payments started with StartCheckout):
// GET {BaseURL}/v1/checkout/sessions/{id}.
type Stripe struct {
	BaseURL string
	HTTP    *http.Client
}

// Verify implements Verifier.
func (s *Stripe) Verify(ctx context.Context, cfg Config, id string) (Result, error) {
	key := cfg["secret_key"]
	if key == "" {
		return Result{}, errors.New("gateway: the Stripe gateway has no secret_key configured")
	}
	if strings.HasPrefix(id, "cs_") {
		// A payment started online is recorded under its Checkout Session.
		return s.verifySession(ctx, key, id)
	}
	var body struct {
		ID                 string `json:"id"`
		Status             string `json:"status"`
		Amount             int64  `json:"amount"`
		AmountReceived     int64  `json:"amount_received"`
		Currency           string `json:"currency"`
		CancellationReason string `json:"cancellation_reason"`
		LastPaymentError   *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"last_payment_error"`
		stripeError
	}
	raw, gone, err := s.get(ctx, key, "/v1/payment_intents/", "payment intent", id, &body)
	if gone != nil || err != nil {
		return derefResult(gone), err
	}
	res := Result{Amount: fromStripeAmount(body.AmountReceived, body.Currency), Currency: strings.ToUpper(body.Currency), Reference: body.ID, Payload: raw}
	switch body.Status {
	case "succeeded":
		res.Succeeded = true
		return res, nil
	case "processing", "requires_capture", "requires_action", "requires_confirmation":
		return Result{}, ErrPending
	case "canceled":
		res.Reason = "stripe: payment intent canceled"
		if body.CancellationReason != "" {
			res.Reason += " (" + body.CancellationReason + ")"
		}
		return res, nil
	default: // requires_payment_method: the attempt failed
		res.Reason = "stripe: payment " + body.Status
		if body.LastPaymentError != nil && body.LastPaymentError.Message != "" {
			res.Reason = "stripe: " + body.LastPaymentError.Message
		}
		return res, nil
	}
}

// stripeError is the error object of Stripe's answers.
type stripeError struct {
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// message is Stripe's error message, or the status text of an answer
// without one.
func (e stripeError) message(status int) string {
	if e.Error != nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return http.StatusText(status)
}

// stripeAnswer is a pointer to an answer struct embedding stripeError.
type stripeAnswer interface{ message(status int) string }

// get reads the Stripe object path+id (e.g. /v1/payment_intents/pi_…) into
// dst. An unknown object (404) is a definitive failure, returned as gone; any
// other non-2xx answer is a temporary error with Stripe's message.
func (s *Stripe) get(ctx context.Context, key, path, object, id string, dst stripeAnswer) (raw map[string]any, gone *Result, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.BaseURL, "/")+path+url.PathEscape(id), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	status, raw, err := do(s.HTTP, req, dst)
	switch {
	case err != nil:
		return nil, nil, err
	case status == http.StatusNotFound:
		return raw, &Result{Reason: "stripe: no such " + object + " " + id, Payload: raw}, nil
	case status/100 != 2:
		return nil, nil, fmt.Errorf("gateway: stripe answered %d: %s", status, dst.message(status))
	}
	return raw, nil, nil
}

// derefResult is *r, or the zero Result for nil.
func derefResult(r *Result) Result {
	if r == nil {
		return Result{}
	}
	return *r
}

// SSLCommerz verifies a payment through the validation API:
// GET {BaseURL}/validator/api/validationserverAPI.php?val_id=&store_id=&store_passwd=&format=json,
// with "store_id" and "store_password" from the gateway's credentials and the
// payment's transaction id as val_id.
type SSLCommerz struct {
	BaseURL string
	HTTP    *http.Client
}

// Verify implements Verifier: a val_id is checked with the validation API;
// our own tran_id (a payment started online) with the transaction query.
func (s *SSLCommerz) Verify(ctx context.Context, cfg Config, valID string) (Result, error) {
	if ourTranID(valID) {
		return s.queryTranID(ctx, cfg, valID)
	}
	q, err := s.credentials(cfg)
	if err != nil {
		return Result{}, err
	}
	q.Set("val_id", valID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(sslcValidatePath, q), nil)
	if err != nil {
		return Result{}, err
	}
	var body sslcTransaction
	status, raw, err := do(s.HTTP, req, &body)
	if err != nil {
		return Result{}, err
	}
	if status/100 != 2 {
		return Result{}, fmt.Errorf("gateway: sslcommerz answered %d", status)
	}
	return body.result(raw)
}

// do sends req and decodes a JSON answer into dst and into a generic map.
func do(hc *http.Client, req *http.Request, dst any) (int, map[string]any, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("gateway: %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("gateway: read answer: %w", err)
	}
	raw := map[string]any{}
	if len(b) > 0 && resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotFound {
		if err := json.Unmarshal(b, dst); err != nil && resp.StatusCode/100 == 2 {
			return 0, nil, fmt.Errorf("gateway: answer is not JSON: %w", err)
		}
		_ = json.Unmarshal(b, &raw)
	} else {
		_ = json.Unmarshal(b, dst)
	}
	return resp.StatusCode, raw, nil
}
