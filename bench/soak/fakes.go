package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ispgraph/ispgraph/internal/gateway/gatewaytest"
)

// smtpSink is a mail relay on 127.0.0.1 that accepts every message (no
// STARTTLS, no AUTH: the soak sets ISPGRAPH_SMTP_STARTTLS=false) and keeps
// what it received, so the soak can count deliveries per Message-ID.
type smtpSink struct {
	ln net.Listener

	mu       sync.Mutex
	messages []sinkMail
}

// sinkMail is one message as the relay received it.
type sinkMail struct {
	To, Subject, MessageID string
}

func startSMTP() (*smtpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &smtpSink{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.session(c)
		}
	}()
	return s, nil
}

func (s *smtpSink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpSink) close() { s.ln.Close() }

func (s *smtpSink) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	tp := textproto.NewConn(c)
	reply := func(code int, msg string) bool { return tp.PrintfLine("%d %s", code, msg) == nil }
	if !reply(220, "soak-smtp ESMTP") {
		return
	}
	var to string
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " ")[0])
		switch verb {
		case "EHLO", "HELO":
			_ = tp.PrintfLine("250-soak-smtp")
			reply(250, "8BITMIME")
		case "MAIL":
			to = ""
			reply(250, "ok")
		case "RCPT":
			if i := strings.Index(line, "<"); i >= 0 {
				to = strings.TrimSuffix(line[i+1:], ">")
			}
			reply(250, "ok")
		case "DATA":
			reply(354, "go ahead")
			body, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m := sinkMail{To: to}
			if msg, err := mail.ReadMessage(strings.NewReader(string(body))); err == nil {
				m.Subject = msg.Header.Get("Subject")
				m.MessageID = strings.Trim(msg.Header.Get("Message-Id"), "<>")
			}
			s.mu.Lock()
			s.messages = append(s.messages, m)
			s.mu.Unlock()
			reply(250, "queued")
		case "RSET", "NOOP":
			reply(250, "ok")
		case "QUIT":
			reply(221, "bye")
			return
		default:
			reply(502, "not implemented")
		}
	}
}

func (s *smtpSink) received() []sinkMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMail(nil), s.messages...)
}

// smsSink is a tenant's HTTP SMS provider: POST {"to","message","sender"}
// with a bearer token, answering {"id"}.
type smsSink struct {
	srv   *httptest.Server
	token string

	mu   sync.Mutex
	next int
	sent []sinkSMS
}

// sinkSMS is one accepted message.
type sinkSMS struct {
	Tenant, To, Message string
}

func startSMS(token string) *smsSink {
	s := &smsSink{token: token}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+s.token {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		var in struct{ To, Message, Sender string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.To == "" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.next++
		id := s.next
		s.sent = append(s.sent, sinkSMS{Tenant: strings.TrimPrefix(r.URL.Path, "/send/"), To: in.To, Message: in.Message})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"sms-%d"}`, id)
	}))
	return s
}

// url is the provider URL configured for a tenant.
func (s *smsSink) url(tenant string) string { return s.srv.URL + "/send/" + tenant }

func (s *smsSink) received() []sinkSMS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkSMS(nil), s.sent...)
}

// stripeFake answers Stripe's PaymentIntents API
// (GET /v1/payment_intents/{id}, bearer secret key). The intent id says how
// it ends: pi_ok_<minor units>_<n> succeeded for that amount,
// pi_declined_<n> failed with a card decline, pi_flaky_<minor>_<n> answers
// 503 while the provider has an outage and succeeds afterwards.
//
// Checkout Sessions (customers paying online) are answered by
// gatewaytest.Stripe, the protocol double the tests use; webhookSecret signs
// the events the soak sends as Stripe.
type stripeFake struct {
	srv           *httptest.Server
	key           string
	webhookSecret string
	checkout      *gatewaytest.Stripe

	mu       sync.Mutex
	outage   bool
	requests map[string]int
}

func startStripe(key string) *stripeFake {
	f := &stripeFake{key: key, webhookSecret: "whsec_" + key, requests: map[string]int{}, checkout: gatewaytest.NewStripe(key)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *stripeFake) setOutage(on bool) {
	f.mu.Lock()
	f.outage = on
	f.mu.Unlock()
}

// total returns how many verification requests arrived.
func (f *stripeFake) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.requests {
		n += v
	}
	return n
}

// seen returns how many times an intent was asked about.
func (f *stripeFake) seen(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[id]
}

func (f *stripeFake) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/checkout/sessions") {
		f.checkout.ServeHTTP(w, r)
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/payment_intents/")
	if !ok || r.Method != http.MethodGet {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Unrecognized request URL"}}`)
		return
	}
	f.mu.Lock()
	f.requests[id]++
	outage := f.outage
	f.mu.Unlock()
	parts := strings.Split(id, "_")
	amount := func() int64 {
		if len(parts) < 3 {
			return 0
		}
		n, _ := strconv.ParseInt(parts[2], 10, 64)
		return n
	}
	switch {
	case strings.HasPrefix(id, "pi_flaky_") && outage:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":{"type":"api_error","message":"temporarily unavailable"}}`)
	case strings.HasPrefix(id, "pi_ok_"), strings.HasPrefix(id, "pi_flaky_"):
		json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "payment_intent", "status": "succeeded",
			"amount": amount(), "amount_received": amount(), "currency": "bdt"})
	case strings.HasPrefix(id, "pi_declined_"):
		json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "payment_intent", "status": "requires_payment_method",
			"amount": 0, "amount_received": 0, "currency": "bdt",
			"last_payment_error": map[string]any{"code": "card_declined", "message": "Your card was declined."}})
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such payment_intent: '%s'"}}`, id)
	}
}
