package gatewaytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// SSLCommerz answers SSLCommerz's session initiation
// (POST /gwprocess/v4/api.php), validation API
// (GET /validator/api/validationserverAPI.php?val_id=), transaction query
// (GET /validator/api/merchantTransIDvalidationAPI.php?tran_id=) and refund
// initiation (the same path with bank_tran_id and refund_amount), for one
// store. Sessions stay unpaid until Pay or Fail plays the customer; those
// return the IPN SSLCommerz would POST.
type SSLCommerz struct {
	StoreID, StorePassword string
	// PageBase is the root of the payment pages handed out.
	PageBase string

	mu       sync.Mutex
	n        int
	tx       map[string]*SSLTransaction // by tran_id
	refuse   string
	refunds  []url.Values
	requests []string
}

// SSLTransaction is one session as the double keeps it.
type SSLTransaction struct {
	TranID, Amount, Currency, Status, ValID, BankTranID, SessionKey, IPNURL string
}

// NewSSLCommerz returns an SSLCommerz double for one store.
func NewSSLCommerz(storeID, password string) *SSLCommerz {
	return &SSLCommerz{StoreID: storeID, StorePassword: password, PageBase: "https://sandbox.sslcommerz.com", tx: map[string]*SSLTransaction{}}
}

// Refuse makes refunds answer failed with reason (empty: accept again).
func (s *SSLCommerz) Refuse(reason string) {
	s.mu.Lock()
	s.refuse = reason
	s.mu.Unlock()
}

// Refunds returns the refund requests received.
func (s *SSLCommerz) Refunds() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.refunds...)
}

// Requests returns "METHOD path" of every request received.
func (s *SSLCommerz) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Transaction returns a session by tran_id.
func (s *SSLCommerz) Transaction(tranID string) (SSLTransaction, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tx[tranID]; ok {
		return *t, true
	}
	return SSLTransaction{}, false
}

// Pay plays the customer paying tran_id and returns the IPN body
// (form-encoded) SSLCommerz then POSTs.
func (s *SSLCommerz) Pay(tranID string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tx[tranID]
	if !ok {
		return nil
	}
	s.n++
	t.Status, t.ValID, t.BankTranID = "VALID", fmt.Sprintf("val%08d", s.n), fmt.Sprintf("bank%08d", s.n)
	return ipn(t, "VALID")
}

// Fail plays the customer's card being declined; it returns the IPN body.
func (s *SSLCommerz) Fail(tranID string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tx[tranID]
	if !ok {
		return nil
	}
	t.Status = "FAILED"
	return ipn(t, "FAILED")
}

func ipn(t *SSLTransaction, status string) []byte {
	f := url.Values{"status": {status}, "tran_id": {t.TranID}, "amount": {t.Amount}, "currency": {t.Currency},
		"store_amount": {t.Amount}, "card_type": {"VISA-Dutch Bangla"}, "value_a": {t.TranID}}
	if status == "VALID" {
		f.Set("val_id", t.ValID)
		f.Set("bank_tran_id", t.BankTranID)
	} else {
		f.Set("error", "Declined by the issuer")
	}
	return []byte(f.Encode())
}

// takaRate is the rate the double converts other currencies to taka at.
const takaRate = 117.5

// json is the transaction as the validation and query APIs answer it: the
// amount settled in taka (amount, currency) and the session's own
// (currency_type, currency_amount, currency_rate).
func (t *SSLTransaction) json() map[string]any {
	status := t.Status
	if status == "" {
		status = "UNATTEMPTED"
	}
	amount, rate := t.Amount, "1.0000"
	if t.Currency != "BDT" {
		f, _ := strconv.ParseFloat(t.Amount, 64)
		amount, rate = strconv.FormatFloat(f*takaRate, 'f', 2, 64), strconv.FormatFloat(takaRate, 'f', 4, 64)
	}
	return map[string]any{"status": status, "tran_id": t.TranID, "val_id": t.ValID, "amount": amount,
		"currency": "BDT", "currency_type": t.Currency, "currency_amount": t.Amount, "currency_rate": rate,
		"bank_tran_id": t.BankTranID, "tran_date": "2026-12-02 10:00:00"}
}

// ServeHTTP implements http.Handler.
func (s *SSLCommerz) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	write := func(v any) { json.NewEncoder(w).Encode(v) }
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f := r.Form
	if f.Get("store_id") != s.StoreID || f.Get("store_passwd") != s.StorePassword {
		switch r.URL.Path {
		case "/gwprocess/v4/api.php":
			write(map[string]any{"status": "FAILED", "failedreason": "Store Credential Error Or Store is De-active"})
		default:
			write(map[string]any{"APIConnect": "INVALID_REQUEST", "status": "INVALID_TRANSACTION"})
		}
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/gwprocess/v4/api.php":
		for _, k := range []string{"total_amount", "currency", "tran_id", "success_url", "fail_url", "cancel_url", "cus_name", "cus_email", "cus_phone", "product_name", "product_category", "product_profile", "shipping_method"} {
			if f.Get(k) == "" {
				write(map[string]any{"status": "FAILED", "failedreason": "Invalid Information! '" + k + "' is missing"})
				return
			}
		}
		if _, dup := s.tx[f.Get("tran_id")]; dup {
			write(map[string]any{"status": "FAILED", "failedreason": "Duplicate tran_id"})
			return
		}
		s.n++
		t := &SSLTransaction{TranID: f.Get("tran_id"), Amount: f.Get("total_amount"), Currency: f.Get("currency"),
			SessionKey: fmt.Sprintf("SESS%010d", s.n), IPNURL: f.Get("ipn_url")}
		s.tx[t.TranID] = t
		write(map[string]any{"status": "SUCCESS", "failedreason": "", "sessionkey": t.SessionKey,
			"GatewayPageURL": strings.TrimRight(s.PageBase, "/") + "/EasyCheckOut/" + t.SessionKey})
	case r.Method == http.MethodGet && r.URL.Path == "/validator/api/validationserverAPI.php":
		for _, t := range s.tx {
			if t.ValID != "" && t.ValID == f.Get("val_id") {
				out := t.json()
				out["status"] = "VALID"
				write(out)
				return
			}
		}
		write(map[string]any{"status": "INVALID_TRANSACTION"})
	case r.Method == http.MethodGet && r.URL.Path == "/validator/api/merchantTransIDvalidationAPI.php" && f.Get("bank_tran_id") != "":
		var found *SSLTransaction
		for _, t := range s.tx {
			if t.BankTranID == f.Get("bank_tran_id") {
				found = t
			}
		}
		switch {
		case found == nil:
			write(map[string]any{"APIConnect": "DONE", "status": "failed", "errorReason": "Invalid bank_tran_id"})
		case s.refuse != "":
			write(map[string]any{"APIConnect": "DONE", "bank_tran_id": found.BankTranID, "status": "failed", "errorReason": s.refuse})
		default:
			s.refunds = append(s.refunds, f)
			write(map[string]any{"APIConnect": "DONE", "bank_tran_id": found.BankTranID, "trans_id": found.TranID,
				"refund_ref_id": fmt.Sprintf("ref%04d", len(s.refunds)), "status": "success", "errorReason": ""})
		}
	case r.Method == http.MethodGet && r.URL.Path == "/validator/api/merchantTransIDvalidationAPI.php" && f.Get("tran_id") != "":
		t, ok := s.tx[f.Get("tran_id")]
		if !ok || t.Status == "" {
			write(map[string]any{"APIConnect": "DONE", "no_of_trans_found": 0, "element": []any{}})
			return
		}
		write(map[string]any{"APIConnect": "DONE", "no_of_trans_found": 1, "element": []any{t.json()}})
	default:
		w.WriteHeader(http.StatusNotFound)
		write(map[string]any{"APIConnect": "INVALID_REQUEST"})
	}
}
