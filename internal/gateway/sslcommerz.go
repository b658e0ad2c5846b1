package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ispgraph/ispgraph/internal/apperr"
)

// SSLCommerz's documented paths below its base URL.
const (
	sslcInitPath     = "/gwprocess/v4/api.php"
	sslcValidatePath = "/validator/api/validationserverAPI.php"
	sslcQueryPath    = "/validator/api/merchantTransIDvalidationAPI.php" // transaction query and refunds
)

// ourTranID reports whether a transaction id is one of our payment numbers,
// which payments started online send SSLCommerz as tran_id (a payment staff
// record carries SSLCommerz's val_id instead).
func ourTranID(id string) bool { return strings.HasPrefix(id, "PAY-") }

func (s *SSLCommerz) credentials(cfg Config) (url.Values, error) {
	if cfg["store_id"] == "" || cfg["store_password"] == "" {
		return nil, errors.New("gateway: the SSLCommerz gateway has no store_id/store_password configured")
	}
	return url.Values{"store_id": {cfg["store_id"]}, "store_passwd": {cfg["store_password"]}, "format": {"json"}}, nil
}

func (s *SSLCommerz) url(path string, q url.Values) string {
	return strings.TrimRight(s.BaseURL, "/") + path + "?" + q.Encode()
}

// StartCheckout implements CheckoutStarter with SSLCommerz's session
// initiation: POST {BaseURL}/gwprocess/v4/api.php (form) with tran_id our
// payment number, the amount, the customer and the return URLs (and the
// gateway's "ipn_url" when configured; otherwise the IPN URL set in the
// merchant panel applies). The customer pays on GatewayPageURL.
func (s *SSLCommerz) StartCheckout(ctx context.Context, cfg Config, req CheckoutRequest) (Checkout, error) {
	form, err := s.credentials(cfg)
	if err != nil {
		return Checkout{}, err
	}
	form.Del("format")
	amount, err := decimalAmount("SSLCommerz", req.Amount, req.Currency, 2)
	if err != nil {
		return Checkout{}, err
	}
	orDefault := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	for k, v := range map[string]string{
		"total_amount": amount, "currency": strings.ToUpper(req.Currency), "tran_id": req.Reference,
		"success_url": withQuery(req.ReturnURL, "status", "success", "tran_id", req.Reference),
		"fail_url":    withQuery(req.ReturnURL, "status", "fail", "tran_id", req.Reference),
		"cancel_url":  withQuery(req.ReturnURL, "status", "cancel", "tran_id", req.Reference),
		"cus_name":    orDefault(req.CustomerName, "Customer"), "cus_email": orDefault(req.CustomerEmail, "customer@example.invalid"),
		"cus_phone": orDefault(req.CustomerPhone, "00000000000"), "cus_add1": "N/A", "cus_city": "N/A", "cus_country": "Bangladesh",
		"shipping_method": "NO", "num_of_item": "1", "product_name": "Invoice " + req.Invoice,
		"product_category": "Internet service", "product_profile": "non-physical-goods",
		"value_a": req.Reference,
	} {
		form.Set(k, v)
	}
	if cfg["ipn_url"] != "" {
		form.Set("ipn_url", cfg["ipn_url"])
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.BaseURL, "/")+sslcInitPath, strings.NewReader(form.Encode()))
	if err != nil {
		return Checkout{}, err
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var body struct {
		Status         string `json:"status"`
		FailedReason   string `json:"failedreason"`
		SessionKey     string `json:"sessionkey"`
		GatewayPageURL string `json:"GatewayPageURL"`
	}
	status, _, err := do(s.HTTP, hreq, &body)
	if err != nil {
		return Checkout{}, err
	}
	switch {
	case status/100 != 2:
		return Checkout{}, fmt.Errorf("gateway: sslcommerz session initiation answered %d", status)
	case body.Status == "SUCCESS" && body.GatewayPageURL != "":
		return Checkout{TransactionID: req.Reference, RedirectURL: body.GatewayPageURL,
			Payload: map[string]any{"sessionkey": body.SessionKey, "checkout_url": body.GatewayPageURL}}, nil
	default:
		return Checkout{}, apperr.E(apperr.Conflict, "SSLCommerz refused to open the payment page: %s", orDefault(body.FailedReason, body.Status))
	}
}

// sslcTransaction is one transaction as SSLCommerz's validation and query
// APIs describe it. amount and currency are what SSLCommerz settled in
// (taka); currency_type and currency_amount are the currency and amount the
// session was opened with, which a payment in another currency is checked
// against.
type sslcTransaction struct {
	Status         string `json:"status"`
	TranID         string `json:"tran_id"`
	ValID          string `json:"val_id"`
	Amount         string `json:"amount"`
	Currency       string `json:"currency"`
	CurrencyType   string `json:"currency_type"`
	CurrencyAmount string `json:"currency_amount"`
	BankTranID     string `json:"bank_tran_id"`
	Error          string `json:"error"`
}

// result turns a transaction's status into a Result, its amount in the
// currency the session was opened with when SSLCommerz names it.
func (t sslcTransaction) result(raw map[string]any) (Result, error) {
	delete(raw, "store_passwd")
	if t.CurrencyType != "" && t.CurrencyAmount != "" {
		t.Currency, t.Amount = t.CurrencyType, t.CurrencyAmount
	}
	res := Result{Currency: strings.ToUpper(t.Currency), Reference: t.BankTranID, Payload: raw}
	if res.Reference == "" {
		res.Reference = t.ValID
	}
	switch t.Status {
	case "VALID", "VALIDATED":
		amt, err := parseDecimal(t.Amount, res.Currency)
		if err != nil {
			return Result{}, fmt.Errorf("gateway: sslcommerz amount %q: %w", t.Amount, err)
		}
		res.Amount, res.Succeeded = amt, true
		return res, nil
	case "INVALID_TRANSACTION", "FAILED", "CANCELLED", "EXPIRED":
		res.Reason = "sslcommerz: " + strings.ToLower(strings.ReplaceAll(t.Status, "_", " "))
		if t.Error != "" {
			res.Reason += ": " + t.Error
		}
		return res, nil
	case "PENDING", "UNATTEMPTED":
		return Result{}, ErrPending
	default:
		return Result{}, fmt.Errorf("gateway: sslcommerz status %q", t.Status)
	}
}

// queryTranID asks SSLCommerz's transaction query API about our tran_id:
// GET {BaseURL}/validator/api/merchantTransIDvalidationAPI.php?tran_id=….
// A successful attempt among its transactions wins; none found is pending
// (the customer has not paid yet).
func (s *SSLCommerz) queryTranID(ctx context.Context, cfg Config, tranID string) (Result, error) {
	q, err := s.credentials(cfg)
	if err != nil {
		return Result{}, err
	}
	q.Set("tran_id", tranID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(sslcQueryPath, q), nil)
	if err != nil {
		return Result{}, err
	}
	var body struct {
		APIConnect     string            `json:"APIConnect"`
		NoOfTransFound int               `json:"no_of_trans_found"`
		Element        []sslcTransaction `json:"element"`
	}
	status, _, err := do(s.HTTP, req, &body)
	if err != nil {
		return Result{}, err
	}
	if status/100 != 2 || body.APIConnect != "DONE" {
		return Result{}, fmt.Errorf("gateway: sslcommerz transaction query answered %d (%s)", status, body.APIConnect)
	}
	if len(body.Element) == 0 {
		return Result{}, ErrPending
	}
	var last Result
	var lastErr error
	for _, t := range body.Element {
		if t.TranID != "" && t.TranID != tranID {
			continue
		}
		res, err := t.result(map[string]any{"tran_id": tranID, "val_id": t.ValID, "status": t.Status, "bank_tran_id": t.BankTranID})
		if err == nil && res.Succeeded {
			return res, nil
		}
		last, lastErr = res, err
	}
	if lastErr == nil && last.Reason == "" {
		return Result{}, ErrPending
	}
	return last, lastErr
}

// ParseWebhook implements WebhookParser for SSLCommerz's IPN: a form POST
// naming tran_id (and val_id once paid). The IPN itself is not trusted: the
// transaction is asked about through the validation API (val_id) or the
// transaction query (tran_id), and only SSLCommerz's answer decides. An IPN
// naming a transaction SSLCommerz does not know is refused.
func (s *SSLCommerz) ParseWebhook(ctx context.Context, cfg Config, r WebhookRequest) (Event, error) {
	form, err := url.ParseQuery(string(r.Body))
	if err != nil || form.Get("tran_id") == "" {
		return Event{}, fmt.Errorf("%w: not an SSLCommerz IPN (no tran_id)", ErrUnverified)
	}
	tranID, valID := form.Get("tran_id"), form.Get("val_id")
	var res Result
	if valID != "" {
		res, err = s.Verify(ctx, cfg, valID)
	} else {
		res, err = s.queryTranID(ctx, cfg, tranID)
	}
	switch {
	case errors.Is(err, ErrPending):
		return Event{ID: "ipn:" + tranID + ":" + valID + ":pending", Kind: "ipn." + strings.ToLower(form.Get("status")), TransactionID: tranID, PaymentNumber: tranID}, nil
	case err != nil:
		return Event{}, err
	case res.Succeeded && valID != "" && res.Payload["tran_id"] != nil && res.Payload["tran_id"] != tranID:
		return Event{}, fmt.Errorf("%w: val_id %s belongs to another transaction", ErrUnverified, valID)
	case !res.Succeeded && strings.Contains(res.Reason, "invalid transaction"):
		return Event{}, fmt.Errorf("%w: SSLCommerz does not know this transaction", ErrUnverified)
	}
	ev := Event{Kind: "ipn." + strings.ToLower(form.Get("status")), TransactionID: tranID, PaymentNumber: tranID, Result: &res}
	if valID != "" {
		ev.TransactionID = valID // a payment staff recorded carries the val_id
	}
	outcome := "failed"
	if res.Succeeded {
		outcome = "valid"
	}
	ev.ID = "ipn:" + tranID + ":" + valID + ":" + outcome
	return ev, nil
}

// Refund implements Refunder with SSLCommerz's refund API:
// GET {BaseURL}/validator/api/merchantTransIDvalidationAPI.php?bank_tran_id=&refund_amount=&refund_remarks=&refe_id=
// reference is the payment's bank_tran_id (kept when it completed).
func (s *SSLCommerz) Refund(ctx context.Context, cfg Config, in RefundRequest) (string, error) {
	q, err := s.credentials(cfg)
	if err != nil {
		return "", err
	}
	if in.Reference == "" {
		return "", apperr.E(apperr.Conflict, "the payment has no SSLCommerz bank transaction id to refund")
	}
	amount, err := decimalAmount("SSLCommerz", in.Amount, in.Currency, 2)
	if err != nil {
		return "", err
	}
	q.Set("bank_tran_id", in.Reference)
	q.Set("refund_amount", amount)
	q.Set("refund_remarks", orDash(in.Reason))
	q.Set("refe_id", in.IdempotencyKey)
	q.Set("v", "1")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(sslcQueryPath, q), nil)
	if err != nil {
		return "", err
	}
	var body struct {
		APIConnect  string `json:"APIConnect"`
		Status      string `json:"status"`
		RefundRefID string `json:"refund_ref_id"`
		ErrorReason string `json:"errorReason"`
	}
	status, _, err := do(s.HTTP, req, &body)
	if err != nil {
		return "", err
	}
	switch {
	case status/100 != 2:
		return "", fmt.Errorf("gateway: sslcommerz refund answered %d", status)
	case body.APIConnect == "DONE" && (body.Status == "success" || body.Status == "processing"):
		return body.RefundRefID, nil
	case body.APIConnect == "DONE" || body.APIConnect == "INVALID_REQUEST" || body.APIConnect == "INACTIVE":
		return "", apperr.Wrap(apperr.Conflict, errRefused, "SSLCommerz refused the refund: %s", orDash(body.ErrorReason+" "+body.Status))
	default:
		return "", fmt.Errorf("gateway: sslcommerz refund: APIConnect %s", body.APIConnect)
	}
}

func orDash(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return "-"
	}
	return s
}
