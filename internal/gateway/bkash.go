package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/apperr"
)

// BKash is a client of bKash's tokenized checkout API (v1.2.0-beta), whose
// base URL includes the version (https://tokenized.pay.bka.sh/v1.2.0-beta).
// Every call first grants a token (POST /tokenized/checkout/token/grant with
// the username and password headers and the app key and secret) and sends it
// as Authorization with X-App-Key. Configuration: "app_key", "app_secret",
// "username", "password".
//
// A payment is created for the customer (create → bkashURL), the customer
// approves it in bKash and comes back to the callback URL, and execute
// completes it; verifying a payment executes it when bKash still has it
// Initiated, then reads its status (payment/status).
type BKash struct {
	BaseURL string
	HTTP    *http.Client
}

// bkashSuccess is bKash's statusCode of a successful call.
const bkashSuccess = "0000"

// bkashAnswer holds the fields bKash's answers share.
type bkashAnswer struct {
	StatusCode        string `json:"statusCode"`
	StatusMessage     string `json:"statusMessage"`
	ErrorCode         string `json:"errorCode"`
	ErrorMessage      string `json:"errorMessage"`
	IDToken           string `json:"id_token"`
	PaymentID         string `json:"paymentID"`
	BkashURL          string `json:"bkashURL"`
	TrxID             string `json:"trxID"`
	TransactionStatus string `json:"transactionStatus"`
	Amount            string `json:"amount"`
	Currency          string `json:"currency"`
	RefundTrxID       string `json:"refundTrxID"`
}

func (a bkashAnswer) ok() bool { return a.StatusCode == bkashSuccess }

func (a bkashAnswer) message() string {
	switch {
	case a.StatusMessage != "":
		return a.StatusCode + " " + a.StatusMessage
	case a.ErrorMessage != "":
		return a.ErrorCode + " " + a.ErrorMessage
	}
	return "no status"
}

func (b *BKash) post(ctx context.Context, path string, headers map[string]string, in any) (bkashAnswer, map[string]any, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(b.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return bkashAnswer{}, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	var out bkashAnswer
	status, raw, err := do(b.HTTP, req, &out)
	if err != nil {
		return bkashAnswer{}, nil, err
	}
	if status/100 == 5 || status == http.StatusTooManyRequests {
		return bkashAnswer{}, nil, fmt.Errorf("gateway: bkash %s answered %d", path, status)
	}
	if status/100 != 2 && out.StatusCode == "" && out.ErrorCode == "" {
		return bkashAnswer{}, nil, fmt.Errorf("gateway: bkash %s answered %d", path, status)
	}
	return out, raw, nil
}

// auth grants a token and returns the headers of the calls that use it.
func (b *BKash) auth(ctx context.Context, cfg Config) (map[string]string, error) {
	for _, k := range []string{"app_key", "app_secret", "username", "password"} {
		if cfg[k] == "" {
			return nil, fmt.Errorf("gateway: the bKash gateway has no %s configured", k)
		}
	}
	a, _, err := b.post(ctx, "/tokenized/checkout/token/grant",
		map[string]string{"username": cfg["username"], "password": cfg["password"]},
		map[string]string{"app_key": cfg["app_key"], "app_secret": cfg["app_secret"]})
	if err != nil {
		return nil, err
	}
	if !a.ok() || a.IDToken == "" {
		// Bad credentials: a configuration problem, retried until fixed.
		return nil, fmt.Errorf("gateway: bkash refused the token grant: %s", a.message())
	}
	return map[string]string{"Authorization": a.IDToken, "X-App-Key": cfg["app_key"]}, nil
}

// StartCheckout implements CheckoutStarter: POST /tokenized/checkout/create
// (mode 0011, intent sale) with our payment number as merchantInvoiceNumber.
// bKash sends the customer's browser to callbackURL with paymentID and
// status=success|failure|cancel: the gateway's "callback_url" (our
// /webhooks/bkash/{gateway} route, which settles the payment and sends the
// customer on to the return URL), or, without one, the return URL itself
// (whose page then calls confirmInvoicePayment).
func (b *BKash) StartCheckout(ctx context.Context, cfg Config, req CheckoutRequest) (Checkout, error) {
	if err := bkashCurrency(req.Currency); err != nil {
		return Checkout{}, err
	}
	amount, err := decimalAmount("bKash", req.Amount, req.Currency, 2)
	if err != nil {
		return Checkout{}, err
	}
	h, err := b.auth(ctx, cfg)
	if err != nil {
		return Checkout{}, err
	}
	payer := req.CustomerPhone
	if payer == "" {
		payer = req.Reference
	}
	callback := cfg["callback_url"]
	if callback == "" {
		callback = req.ReturnURL
	}
	a, _, err := b.post(ctx, "/tokenized/checkout/create", h, map[string]string{
		"mode": "0011", "payerReference": payer, "callbackURL": callback,
		"amount": amount, "currency": strings.ToUpper(req.Currency), "intent": "sale",
		"merchantInvoiceNumber": req.Reference,
	})
	if err != nil {
		return Checkout{}, err
	}
	if !a.ok() || a.PaymentID == "" || a.BkashURL == "" {
		return Checkout{}, apperr.E(apperr.Conflict, "bKash refused to create the payment: %s", a.message())
	}
	return Checkout{TransactionID: a.PaymentID, RedirectURL: a.BkashURL,
		Payload: map[string]any{"paymentID": a.PaymentID, "checkout_url": a.BkashURL, "transactionStatus": a.TransactionStatus}}, nil
}

// BKashCallback asks bKash about paymentID after its callback named it:
// executed first when the browser said status=success (approved), only
// queried otherwise. The browser's word decides nothing: the Result (or
// ErrPending) is bKash's answer.
func (s *Service) BKashCallback(ctx context.Context, gw *ent.PaymentGateway, paymentID string, execute bool) (Result, error) {
	b, ok := s.providers[gw.Provider].(*BKash)
	if !ok {
		return Result{}, fmt.Errorf("gateway %d is not a bKash gateway", gw.ID)
	}
	cfg, err := s.Config(gw)
	if err != nil {
		return Result{}, err
	}
	return b.check(ctx, cfg, paymentID, execute)
}

// CloseCheckout implements CheckoutCloser without a call: a bKash payment
// moves money only when we execute it, and a payment no longer PENDING is
// never executed, so failing ours closes it.
func (b *BKash) CloseCheckout(context.Context, Config, string) (bool, error) { return true, nil }

// Verify implements Verifier for a bKash paymentID: execute it (the
// customer has approved it, or execute says why not), then read its status.
// Completed succeeds with its trxID as reference; Initiated is pending;
// anything else (Failed, Cancelled, Expired, Declined) failed.
func (b *BKash) Verify(ctx context.Context, cfg Config, paymentID string) (Result, error) {
	return b.check(ctx, cfg, paymentID, true)
}

// check reads a payment's status from bKash, executing it first when
// execute is set (the customer came back saying they approved it).
func (b *BKash) check(ctx context.Context, cfg Config, paymentID string, execute bool) (Result, error) {
	h, err := b.auth(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	body := map[string]string{"paymentID": paymentID}
	var exec, st bkashAnswer
	var raw map[string]any
	if execute {
		if exec, raw, err = b.post(ctx, "/tokenized/checkout/execute", h, body); err != nil {
			return Result{}, err
		}
		st = exec
	}
	if !execute || !exec.ok() || exec.TransactionStatus != "Completed" {
		// Not executed, already executed, not approved yet, or failed: the
		// status says.
		if st, raw, err = b.post(ctx, "/tokenized/checkout/payment/status", h, body); err != nil {
			return Result{}, err
		}
		if !st.ok() {
			return Result{}, fmt.Errorf("gateway: bkash payment status: %s", st.message())
		}
	}
	res := Result{Currency: strings.ToUpper(st.Currency), Reference: st.TrxID, Payload: raw}
	switch st.TransactionStatus {
	case "Completed":
		amt, err := parseDecimal(st.Amount, res.Currency)
		if err != nil {
			return Result{}, fmt.Errorf("gateway: bkash amount %q: %w", st.Amount, err)
		}
		res.Amount, res.Succeeded = amt, true
		return res, nil
	case "Initiated", "Pending Authorized", "Authorized":
		return Result{}, ErrPending
	default:
		res.Reason = "bkash: payment " + strings.ToLower(st.TransactionStatus)
		if execute && !exec.ok() {
			res.Reason += " (" + exec.message() + ")"
		}
		return res, nil
	}
}

// Refund implements Refunder: POST /tokenized/checkout/payment/refund with the
// payment's paymentID and trxID, the amount, an sku (our idempotency key)
// and the reason. bKash answers transactionStatus Completed and a
// refundTrxID.
func (b *BKash) Refund(ctx context.Context, cfg Config, in RefundRequest) (string, error) {
	if in.TransactionID == "" || in.Reference == "" || in.Reference == in.TransactionID {
		return "", apperr.E(apperr.Conflict, "the payment has no bKash paymentID and trxID to refund")
	}
	if err := bkashCurrency(in.Currency); err != nil {
		return "", err
	}
	amount, err := decimalAmount("bKash", in.Amount, in.Currency, 2)
	if err != nil {
		return "", err
	}
	h, err := b.auth(ctx, cfg)
	if err != nil {
		return "", err
	}
	a, _, err := b.post(ctx, "/tokenized/checkout/payment/refund", h, map[string]string{
		"paymentID": in.TransactionID, "trxID": in.Reference, "amount": amount,
		"sku": in.IdempotencyKey, "reason": orDash(in.Reason),
	})
	if err != nil {
		return "", err
	}
	if !a.ok() || a.TransactionStatus != "Completed" || a.RefundTrxID == "" {
		return "", apperr.Wrap(apperr.Conflict, errRefused, "bKash refused the refund: %s", a.message())
	}
	return a.RefundTrxID, nil
}
