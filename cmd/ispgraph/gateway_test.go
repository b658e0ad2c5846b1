package main

import (
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
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer sk_test_e2e_0123456789" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
		return
	}
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
	r = post(t, base, token, configure, map[string]any{"id": gwID, "c": map[string]any{"secret_key": "sk_test_e2e_0123456789"}})
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
			Edges []struct{ Node struct{ ID, Total, AmountPaid string } }
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
	stripe.mu.Lock()
	defer stripe.mu.Unlock()
	if stripe.calls != 1 {
		t.Fatalf("Stripe was asked %d times, want 1", stripe.calls)
	}
}
