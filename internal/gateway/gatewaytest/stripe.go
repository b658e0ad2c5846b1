// Package gatewaytest holds protocol-level doubles of payment providers for
// tests and the soak: HTTP handlers that answer the requests ispgraph sends
// with the shapes the providers document, so the clients in internal/gateway
// are exercised end to end without the network.
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

// Stripe answers Stripe's Checkout Sessions API (POST /v1/checkout/sessions,
// GET /v1/checkout/sessions/{id}, POST /v1/checkout/sessions/{id}/expire)
// and Refunds API (POST /v1/refunds) with the secret key Key as bearer
// token. A session stays open until the test plays the customer with Pay or
// lets it Expire (or the client expires it).
type Stripe struct {
	Key string
	// PageBase is the root of the checkout pages handed out
	// (https://checkout.stripe.com by default).
	PageBase string

	mu       sync.Mutex
	n        int
	sessions map[string]*Session
	byKey    map[string]string // Idempotency-Key → session id
	refuse   string
	requests []string
	refunds  []url.Values
}

// Refunds returns the forms of the refunds accepted, in order.
func (s *Stripe) Refunds() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.refunds...)
}

// Session is one Checkout Session as the double keeps it.
type Session struct {
	ID, URL, Status, PaymentStatus, PaymentIntent, Currency string
	Amount                                                  int64
	ClientReference, SuccessURL, CancelURL                  string
	IdempotencyKey                                          string
	// PaymentMetadata is payment_intent_data[metadata][payment]: the
	// PaymentIntent's metadata carries it into payment_intent events.
	PaymentMetadata string
}

// NewStripe returns a Stripe double accepting secret key key.
func NewStripe(key string) *Stripe {
	return &Stripe{Key: key, PageBase: "https://checkout.stripe.com", sessions: map[string]*Session{}, byKey: map[string]string{}}
}

// Refuse makes session creation answer 400 with message (empty: accept again).
func (s *Stripe) Refuse(message string) {
	s.mu.Lock()
	s.refuse = message
	s.mu.Unlock()
}

// Requests returns "METHOD path" of every request received.
func (s *Stripe) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Session returns a session by id.
func (s *Stripe) Session(id string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.sessions[id]; ok {
		return *ss, true
	}
	return Session{}, false
}

// Sessions returns every session created, in order.
func (s *Stripe) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.sessions))
	for i := 1; i <= s.n; i++ {
		if ss, ok := s.sessions[sessionID(i)]; ok {
			out = append(out, *ss)
		}
	}
	return out
}

func sessionID(n int) string { return fmt.Sprintf("cs_test_%06d", n) }

// Pay plays the customer paying session id: it becomes complete and paid
// with a PaymentIntent. It returns the session.
func (s *Stripe) Pay(id string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok || ss.Status != "open" {
		return Session{}, false
	}
	ss.Status, ss.PaymentStatus = "complete", "paid"
	ss.PaymentIntent = "pi_" + strings.TrimPrefix(id, "cs_")
	return *ss, true
}

// Expire lets session id expire unpaid.
func (s *Stripe) Expire(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok || ss.Status != "open" {
		return false
	}
	ss.Status = "expired"
	return true
}

// Event returns the body of a Stripe event about session id as Stripe sends
// it to a webhook endpoint: checkout.session.completed or
// checkout.session.expired, the session in data.object.
func (s *Stripe) Event(eventID, kind, id string) []byte {
	ss, _ := s.Session(id)
	b, _ := json.Marshal(map[string]any{
		"id": eventID, "object": "event", "type": kind, "api_version": "2024-06-20",
		"data": map[string]any{"object": sessionJSON(&ss)},
	})
	return b
}

// IntentEvent returns the body of a payment_intent event (e.g.
// payment_intent.succeeded, payment_intent.payment_failed) about the
// PaymentIntent of paid session id, as Stripe sends it: the intent in
// data.object, with the metadata the session was created with.
func (s *Stripe) IntentEvent(eventID, kind, id string) []byte {
	ss, _ := s.Session(id)
	status, received := "succeeded", ss.Amount
	if kind == "payment_intent.payment_failed" {
		status, received = "requires_payment_method", 0
	}
	b, _ := json.Marshal(map[string]any{
		"id": eventID, "object": "event", "type": kind, "api_version": "2024-06-20",
		"data": map[string]any{"object": map[string]any{
			"id": ss.PaymentIntent, "object": "payment_intent", "status": status,
			"amount": ss.Amount, "amount_received": received, "currency": ss.Currency,
			"metadata": map[string]any{"payment": ss.PaymentMetadata},
		}},
	})
	return b
}

func sessionJSON(ss *Session) map[string]any {
	var pi any
	if ss.PaymentIntent != "" {
		pi = ss.PaymentIntent
	}
	return map[string]any{
		"id": ss.ID, "object": "checkout.session", "mode": "payment", "url": ss.URL,
		"status": ss.Status, "payment_status": ss.PaymentStatus, "payment_intent": pi,
		"amount_total": ss.Amount, "currency": ss.Currency, "client_reference_id": ss.ClientReference,
		"success_url": ss.SuccessURL, "cancel_url": ss.CancelURL,
	}
}

// ServeHTTP implements http.Handler.
func (s *Stripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	fail := func(code int, typ, msg string) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": typ, "message": msg}})
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Key {
		fail(http.StatusUnauthorized, "invalid_request_error", "Invalid API Key provided")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/checkout/sessions":
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, "invalid_request_error", "malformed form")
			return
		}
		if s.refuse != "" {
			fail(http.StatusBadRequest, "invalid_request_error", s.refuse)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if id, ok := s.byKey[key]; ok && key != "" {
			json.NewEncoder(w).Encode(sessionJSON(s.sessions[id]))
			return
		}
		f := r.PostForm
		amount, err := strconv.ParseInt(f.Get("line_items[0][price_data][unit_amount]"), 10, 64)
		switch {
		case f.Get("mode") != "payment":
			fail(http.StatusBadRequest, "invalid_request_error", "Missing required param: mode.")
			return
		case err != nil || amount <= 0 || f.Get("line_items[0][quantity]") != "1":
			fail(http.StatusBadRequest, "invalid_request_error", "Invalid line_items[0]: unit_amount and quantity are required.")
			return
		case f.Get("line_items[0][price_data][currency]") == "":
			fail(http.StatusBadRequest, "invalid_request_error", "Missing required param: line_items[0][price_data][currency].")
			return
		case !validURL(f.Get("success_url")) || !validURL(f.Get("cancel_url")):
			fail(http.StatusBadRequest, "invalid_request_error", "Not a valid URL")
			return
		}
		s.n++
		id := sessionID(s.n)
		ss := &Session{ID: id, URL: strings.TrimRight(s.PageBase, "/") + "/c/pay/" + id, Status: "open", PaymentStatus: "unpaid",
			Currency: f.Get("line_items[0][price_data][currency]"), Amount: amount, ClientReference: f.Get("client_reference_id"),
			SuccessURL: f.Get("success_url"), CancelURL: f.Get("cancel_url"), IdempotencyKey: key,
			PaymentMetadata: f.Get("payment_intent_data[metadata][payment]")}
		s.sessions[id] = ss
		if key != "" {
			s.byKey[key] = id
		}
		json.NewEncoder(w).Encode(sessionJSON(ss))
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/checkout/sessions/") && strings.HasSuffix(r.URL.Path, "/expire"):
		ss, ok := s.sessions[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/checkout/sessions/"), "/expire")]
		switch {
		case !ok:
			fail(http.StatusNotFound, "invalid_request_error", "No such checkout.session")
		case ss.Status != "open":
			fail(http.StatusBadRequest, "invalid_request_error", "Only Checkout Sessions with a status in [\"open\"] can be expired.")
		default:
			ss.Status = "expired"
			json.NewEncoder(w).Encode(sessionJSON(ss))
		}
	case r.Method == http.MethodPost && r.URL.Path == "/v1/refunds":
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, "invalid_request_error", "malformed form")
			return
		}
		var paid *Session
		for _, ss := range s.sessions {
			if ss.PaymentIntent != "" && ss.PaymentIntent == r.PostForm.Get("payment_intent") {
				paid = ss
			}
		}
		amount, err := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
		switch {
		case paid == nil:
			fail(http.StatusBadRequest, "invalid_request_error", "No such payment_intent")
		case err != nil || amount <= 0 || amount > paid.Amount:
			fail(http.StatusBadRequest, "invalid_request_error", "Refund amount is greater than the unrefunded amount")
		default:
			s.refunds = append(s.refunds, r.PostForm)
			json.NewEncoder(w).Encode(map[string]any{"id": fmt.Sprintf("re_%06d", len(s.refunds)), "object": "refund",
				"status": "succeeded", "amount": amount, "currency": paid.Currency, "payment_intent": paid.PaymentIntent})
		}
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/checkout/sessions/"):
		ss, ok := s.sessions[strings.TrimPrefix(r.URL.Path, "/v1/checkout/sessions/")]
		if !ok {
			fail(http.StatusNotFound, "invalid_request_error", "No such checkout.session")
			return
		}
		json.NewEncoder(w).Encode(sessionJSON(ss))
	default:
		fail(http.StatusNotFound, "invalid_request_error", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+")")
	}
}

func validURL(raw string) bool {
	u, err := url.Parse(strings.ReplaceAll(raw, "{CHECKOUT_SESSION_ID}", "x"))
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
