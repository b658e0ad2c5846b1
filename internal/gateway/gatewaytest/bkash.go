package gatewaytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// BKash answers bKash's tokenized checkout API (grant token, create,
// execute, payment status, refund) for one merchant, below the base path
// the client is configured with (the version, e.g. /v1.2.0-beta). A created
// payment is Initiated until Approve plays the customer authorising it in
// bKash (then execute completes it) or Cancel.
type BKash struct {
	AppKey, AppSecret, Username, Password string

	mu       sync.Mutex
	n        int
	tokens   map[string]bool
	payments map[string]*BKashPayment
	refunds  []map[string]string
	requests []string
}

// BKashPayment is one payment as the double keeps it.
type BKashPayment struct {
	PaymentID, Amount, Currency, Invoice, Status, TrxID string
	// CallbackURL is where bKash sends the customer's browser back.
	CallbackURL string
	approved    bool
}

// NewBKash returns a bKash double for one merchant's credentials.
func NewBKash(appKey, appSecret, username, password string) *BKash {
	return &BKash{AppKey: appKey, AppSecret: appSecret, Username: username, Password: password,
		tokens: map[string]bool{}, payments: map[string]*BKashPayment{}}
}

// Approve plays the customer authorising payment id with their PIN and OTP.
func (b *BKash) Approve(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.payments[id]
	if ok {
		p.approved = true
	}
	return ok
}

// Cancel plays the customer cancelling payment id in bKash.
func (b *BKash) Cancel(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.payments[id]
	if ok && p.Status == "Initiated" {
		p.Status = "Cancelled"
	}
	return ok
}

// Fail plays bKash declining payment id (e.g. a wrong PIN too often).
func (b *BKash) Fail(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.payments[id]
	if ok && p.Status == "Initiated" {
		p.Status = "Failed"
	}
	return ok
}

// Payments returns every payment created, in order.
func (b *BKash) Payments() []BKashPayment {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []BKashPayment
	for i := 1; i <= b.n; i++ {
		if p, ok := b.payments[fmt.Sprintf("TR0011bk%06d", i)]; ok {
			out = append(out, *p)
		}
	}
	return out
}

// Refunds returns the refund requests accepted.
func (b *BKash) Refunds() []map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]map[string]string(nil), b.refunds...)
}

// Requests returns the paths called, in order.
func (b *BKash) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

func (p *BKashPayment) json() map[string]any {
	return map[string]any{"statusCode": "0000", "statusMessage": "Successful", "paymentID": p.PaymentID, "trxID": p.TrxID,
		"transactionStatus": p.Status, "amount": p.Amount, "currency": p.Currency, "intent": "sale",
		"merchantInvoiceNumber": p.Invoice}
}

// ServeHTTP implements http.Handler. Paths are matched on their tail, so the
// double serves whatever version prefix the client is given.
func (b *BKash) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	path := r.URL.Path
	if i := strings.Index(path, "/tokenized/checkout/"); i >= 0 {
		path = path[i:]
	}
	b.requests = append(b.requests, path)
	w.Header().Set("Content-Type", "application/json")
	write := func(v any) { json.NewEncoder(w).Encode(v) }
	fail := func(code, msg string) { write(map[string]any{"statusCode": code, "statusMessage": msg}) }
	var in map[string]string
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&in) != nil {
		w.WriteHeader(http.StatusBadRequest)
		write(map[string]any{"errorCode": "9999", "errorMessage": "Bad request"})
		return
	}
	if path == "/tokenized/checkout/token/grant" {
		if r.Header.Get("username") != b.Username || r.Header.Get("password") != b.Password ||
			in["app_key"] != b.AppKey || in["app_secret"] != b.AppSecret {
			fail("2079", "Invalid username or password")
			return
		}
		b.n++
		tok := fmt.Sprintf("idtoken-%d", b.n)
		b.tokens[tok] = true
		write(map[string]any{"statusCode": "0000", "statusMessage": "Successful", "id_token": tok, "token_type": "Bearer",
			"expires_in": 3600, "refresh_token": "refresh-" + tok})
		return
	}
	if !b.tokens[r.Header.Get("Authorization")] || r.Header.Get("X-App-Key") != b.AppKey {
		w.WriteHeader(http.StatusUnauthorized)
		write(map[string]any{"message": "Unauthorized"})
		return
	}
	p := b.payments[in["paymentID"]]
	switch path {
	case "/tokenized/checkout/create":
		if in["mode"] != "0011" || in["intent"] != "sale" || in["amount"] == "" || in["callbackURL"] == "" || in["payerReference"] == "" {
			fail("2065", "Mandatory field missing")
			return
		}
		b.n++
		p := &BKashPayment{PaymentID: fmt.Sprintf("TR0011bk%06d", b.n), Amount: in["amount"], Currency: in["currency"],
			Invoice: in["merchantInvoiceNumber"], Status: "Initiated", CallbackURL: in["callbackURL"]}
		b.payments[p.PaymentID] = p
		out := p.json()
		out["bkashURL"] = "https://sandbox.payment.bkash.com/?paymentId=" + p.PaymentID + "&hash=x"
		out["callbackURL"] = in["callbackURL"]
		write(out)
	case "/tokenized/checkout/execute":
		switch {
		case p == nil:
			fail("2023", "Invalid Payment ID")
		case p.Status == "Completed":
			fail("2062", "The payment has already been completed")
		case p.Status != "Initiated" || !p.approved:
			fail("2056", "Invalid Payment State")
		default:
			b.n++
			p.Status, p.TrxID = "Completed", fmt.Sprintf("BKTRX%05d", b.n)
			write(p.json())
		}
	case "/tokenized/checkout/payment/status":
		if p == nil {
			fail("2023", "Invalid Payment ID")
			return
		}
		write(p.json())
	case "/tokenized/checkout/payment/refund":
		switch {
		case p == nil || p.TrxID != in["trxID"]:
			fail("2071", "Invalid Transaction ID")
		case p.Status == "Refunded":
			fail("2073", "Refund already completed")
		case in["amount"] == "" || in["sku"] == "" || in["reason"] == "":
			fail("2065", "Mandatory field missing")
		default:
			p.Status = "Refunded"
			b.refunds = append(b.refunds, in)
			write(map[string]any{"statusCode": "0000", "statusMessage": "Successful", "originalTrxID": p.TrxID,
				"refundTrxID": fmt.Sprintf("RF%s", p.TrxID), "transactionStatus": "Completed", "amount": in["amount"],
				"currency": p.Currency, "charge": "0.00"})
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		write(map[string]any{"message": "Not Found"})
	}
}
