package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// fakeStripe answers GET /v1/payment_intents/{id} as Stripe's API documents
// it, for the intents the test registers, and only with the secret key the
// gateway was configured with.
type fakeStripe struct {
	mu      sync.Mutex
	intents map[string]int64 // id → amount received (minor units)
	calls   int
	// refuse makes POST /v1/refunds answer as Stripe does for a refund it
	// will not make; refunds lists the refunds made (form values).
	refuse  bool
	refunds []string
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer sk_test_e2e_0123456789" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
		return
	}
	if r.URL.Path == "/v1/refunds" && r.Method == http.MethodPost {
		r.ParseForm()
		if f.refuse {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"type":"invalid_request_error","code":"charge_already_refunded","message":"Charge has already been refunded."}}`)
			return
		}
		f.refunds = append(f.refunds, r.Form.Get("payment_intent")+" "+r.Form.Get("amount")+" "+r.Header.Get("Idempotency-Key"))
		fmt.Fprintf(w, `{"id":"re_%d","object":"refund","amount":%s,"payment_intent":%q,"status":"succeeded"}`, len(f.refunds), r.Form.Get("amount"), r.Form.Get("payment_intent"))
		return
	}
	f.calls++
	id, _ := strings.CutPrefix(r.URL.Path, "/v1/payment_intents/")
	amt, ok := f.intents[id]
	if !ok || r.Method != http.MethodGet {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":"resource_missing","type":"invalid_request_error","message":"No such payment_intent: '%s'"}}`, id)
		return
	}
	fmt.Fprintf(w, `{"id":%q,"object":"payment_intent","amount":%d,"amount_received":%d,"currency":"bdt","status":"succeeded"}`, id, amt, amt)
}

// TestGatewayPaymentEndToEnd configures a Stripe gateway through the API,
// records a gateway payment, and lets the real workers (outbox relay, Redis,
// payment job) verify it with the provider: the configuration the API sealed
// is the one the job opens, and the invoice is settled.
func TestGatewayPaymentEndToEnd(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	stripe := &fakeStripe{intents: map[string]int64{}}
	srv := httptest.NewServer(stripe)
	defer srv.Close()
	_, base := startServer(t, map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ISPGRAPH_JOB_NAMESPACE": strings.TrimSuffix(prefix, ":"),
		"ISPGRAPH_SECRET_KEY": strings.Repeat("cd", 32), "ISPGRAPH_STRIPE_BASE_URL": srv.URL,
	})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 2, Subscribers: 10, Months: 2, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 11,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	token := login(t, base, seed.BenchSlug(1), seed.BenchAdminEmail(1), "bench-pass-1")
	tokenB := login(t, base, seed.BenchSlug(2), seed.BenchAdminEmail(2), "bench-pass-1")

	r := post(t, base, token, `mutation { createPaymentGateway(input: {provider: STRIPE, name: "Stripe", testMode: true}) { id } }`, nil)
	var gw struct{ CreatePaymentGateway struct{ ID string } }
	if json.Unmarshal(r.Data, &gw); len(r.Errors) > 0 || gw.CreatePaymentGateway.ID == "" {
		t.Fatalf("createPaymentGateway: %s %+v", r.Data, r.Errors)
	}
	gwID := gw.CreatePaymentGateway.ID
	configure := `mutation($id: ID!, $c: Map!) { setPaymentGatewayConfiguration(id: $id, configuration: $c) { configurationSummary } }`
	r = post(t, base, token, configure, map[string]any{"id": gwID, "c": map[string]any{"secret_key": "sk_test_e2e_0123456789", "webhook_secret": "whsec_e2e"}})
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"••••89"`) || strings.Contains(string(r.Data), "sk_test") {
		t.Fatalf("setPaymentGatewayConfiguration: %s %+v", r.Data, r.Errors)
	}
	// Another tenant can neither configure nor use the gateway.
	if r := post(t, base, tokenB, configure, map[string]any{"id": gwID, "c": map[string]any{"secret_key": "x"}}); r.code() != "NOT_FOUND" {
		t.Fatalf("other tenant configured the gateway: %s %+v", r.Data, r.Errors)
	}

	r = post(t, base, token, `{ invoices(first: 1, where: {statusIn: [PENDING, OVERDUE]}, orderBy: {field: NUMBER, direction: ASC}) {
	  edges { node { id total amountPaid } } } }`, nil)
	var invs struct {
		Invoices struct {
			Edges []struct {
				Node struct{ ID, Total, AmountPaid string }
			}
		}
	}
	if json.Unmarshal(r.Data, &invs); len(invs.Invoices.Edges) == 0 {
		t.Fatalf("no open invoice: %s %+v", r.Data, r.Errors)
	}
	inv := invs.Invoices.Edges[0].Node
	due := money.MustParse(inv.Total) - money.MustParse(inv.AmountPaid)
	stripe.mu.Lock()
	stripe.intents["pi_e2e_1"] = int64(due)
	stripe.mu.Unlock()

	pay := `mutation($inv: ID!, $amount: Money!, $gw: ID!) {
	  recordPayment(input: {invoiceID: $inv, amount: $amount, method: GATEWAY, idempotencyKey: "e2e-1", transactionID: "pi_e2e_1", paymentGatewayID: $gw}) { id status } }`
	if r := post(t, base, tokenB, pay, map[string]any{"inv": inv.ID, "amount": due.String(), "gw": gwID}); r.code() != "NOT_FOUND" {
		t.Fatalf("other tenant paid through the gateway: %s %+v", r.Data, r.Errors)
	}
	r = post(t, base, token, pay, map[string]any{"inv": inv.ID, "amount": due.String(), "gw": gwID})
	var p struct{ RecordPayment struct{ ID, Status string } }
	if json.Unmarshal(r.Data, &p); len(r.Errors) > 0 || p.RecordPayment.Status != "PENDING" {
		t.Fatalf("recordPayment: %s %+v", r.Data, r.Errors)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		r = post(t, base, token, `query($id: ID!, $inv: ID!) {
		  p: node(id: $id) { ... on Payment { status failureReason } }
		  i: node(id: $inv) { ... on Invoice { status amountPaid } } }`, map[string]any{"id": p.RecordPayment.ID, "inv": inv.ID})
		if strings.Contains(string(r.Data), `"COMPLETED"`) || strings.Contains(string(r.Data), `"FAILED"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the payment job never finished: %s %+v", r.Data, r.Errors)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The two root fields resolve concurrently: read the invoice again now
	// that the payment's transaction is known to have committed.
	r = post(t, base, token, `query($id: ID!, $inv: ID!) {
	  p: node(id: $id) { ... on Payment { status failureReason } }
	  i: node(id: $inv) { ... on Invoice { status amountPaid } } }`, map[string]any{"id": p.RecordPayment.ID, "inv": inv.ID})
	var got struct {
		P struct{ Status, FailureReason string }
		I struct{ Status, AmountPaid string }
	}
	json.Unmarshal(r.Data, &got)
	if got.P.Status != "COMPLETED" || got.I.Status != "PAID" || got.I.AmountPaid != inv.Total {
		t.Fatalf("after the payment job: %+v (invoice total %s)", got, inv.Total)
	}

	// The webhook route is mounted without a bearer token and verifies with
	// the gateway's own secret: unsigned is refused, signed is applied once.
	event := []byte(`{"id":"evt_e2e_1","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_e2e_1","object":"payment_intent","amount_received":` + fmt.Sprint(int64(due)) + `,"currency":"bdt","status":"succeeded"}}}`)
	hook := func(sig string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/stripe/"+gwID, bytes.NewReader(event))
		req.Header.Set("Stripe-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := hook("t=1,v1=00"); code != http.StatusBadRequest {
		t.Fatalf("unsigned webhook: %d %s", code, body)
	}
	if code, body := hook(gateway.SignStripe("whsec_e2e", time.Now(), event)); code != http.StatusOK || !strings.Contains(body, "completed payment") {
		t.Fatalf("signed webhook: %d %s", code, body)
	}
	if code, body := hook(gateway.SignStripe("whsec_e2e", time.Now(), event)); code != http.StatusOK || !strings.Contains(body, "duplicate") {
		t.Fatalf("replayed webhook: %d %s", code, body)
	}
	r = post(t, base, token, `query($inv: ID!) { node(id: $inv) { ... on Invoice { amountPaid } } }`, map[string]any{"inv": inv.ID})
	if !strings.Contains(string(r.Data), `"`+inv.Total+`"`) {
		t.Fatalf("invoice after the webhooks: %s", r.Data)
	}

	// A refund goes to Stripe in the mutation's transaction: refused by
	// Stripe, nothing changes; accepted, the payment is REFUNDED.
	refund := `mutation($id: ID!) { refundPayment(id: $id, reason: "customer asked") { status } }`
	stripe.mu.Lock()
	stripe.refuse = true
	stripe.mu.Unlock()
	if r := post(t, base, token, refund, map[string]any{"id": p.RecordPayment.ID}); r.code() != "CONFLICT" || !strings.Contains(r.Errors[0].Message, "already been refunded") {
		t.Fatalf("refused refund: %s %+v", r.Data, r.Errors)
	}
	if r := post(t, base, token, `query($id: ID!) { node(id: $id) { ... on Payment { status } } }`, map[string]any{"id": p.RecordPayment.ID}); !strings.Contains(string(r.Data), "COMPLETED") {
		t.Fatalf("a refund Stripe refused changed the payment: %s", r.Data)
	}
	stripe.mu.Lock()
	stripe.refuse = false
	stripe.mu.Unlock()
	if r := post(t, base, token, refund, map[string]any{"id": p.RecordPayment.ID}); len(r.Errors) > 0 || !strings.Contains(string(r.Data), "REFUNDED") {
		t.Fatalf("refund: %s %+v", r.Data, r.Errors)
	}

	stripe.mu.Lock()
	defer stripe.mu.Unlock()
	if len(stripe.refunds) != 1 || !strings.HasPrefix(stripe.refunds[0], fmt.Sprintf("pi_e2e_1 %d ispgraph-refund-", int64(due))) {
		t.Fatalf("refunds at Stripe: %q", stripe.refunds)
	}
	if stripe.calls != 1 {
		t.Fatalf("Stripe was asked %d times, want 1", stripe.calls)
	}
}
