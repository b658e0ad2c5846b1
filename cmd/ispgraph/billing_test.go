package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// recordPayment is the mutation in the exact shape DESIGN.md promises partners.
const recordPayment = `mutation($inv: ID!, $amount: Money!, $key: String!) {
  recordPayment(input: {invoiceID: $inv, amount: $amount, method: CASH, idempotencyKey: $key}) {
    id number amount method status paidAt
  }
}`

type paymentResult struct {
	RecordPayment struct{ ID, Number, Amount, Method, Status string }
}

// openInvoice returns an unpaid invoice of the tenant: id and number.
func openInvoice(t *testing.T, base, token string) (id, number string) {
	t.Helper()
	r := post(t, base, token, `{ invoices(first: 1, where: {statusIn: [PENDING, OVERDUE]}, orderBy: {field: NUMBER, direction: ASC}) {
	  edges { node { id number total amountPaid } } } }`, nil)
	var d struct {
		Invoices struct {
			Edges []struct{ Node struct{ ID, Number string } }
		}
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || len(r.Errors) > 0 || len(d.Invoices.Edges) == 0 {
		t.Fatalf("no open invoice: %s %+v", r.Data, r.Errors)
	}
	return d.Invoices.Edges[0].Node.ID, d.Invoices.Edges[0].Node.Number
}

// billingLifecycle drives the billing mutations over HTTP.
func billingLifecycle(t *testing.T, base, token string) {
	inv, _ := openInvoice(t, base, token)
	var first paymentResult
	r := post(t, base, token, recordPayment, map[string]any{"inv": inv, "amount": "1.00", "key": "http-1"})
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &first) != nil || first.RecordPayment.Status != "COMPLETED" || first.RecordPayment.Amount != "1.00" {
		t.Fatalf("recordPayment: %s %+v", r.Data, r.Errors)
	}
	var again paymentResult
	r = post(t, base, token, recordPayment, map[string]any{"inv": inv, "amount": "1.00", "key": "http-1"})
	if json.Unmarshal(r.Data, &again); again.RecordPayment.ID != first.RecordPayment.ID {
		t.Fatalf("retry returned another payment: %s %+v", r.Data, r.Errors)
	}
	r = post(t, base, token, recordPayment, map[string]any{"inv": inv, "amount": "2.00", "key": "http-1"})
	if r.code() != "CONFLICT" {
		t.Fatalf("same key, other amount: %+v", r.Errors)
	}
	r = post(t, base, token, recordPayment, map[string]any{"inv": inv, "amount": "0.00", "key": "http-2"})
	if r.code() != "BAD_USER_INPUT" {
		t.Fatalf("zero amount: %+v", r.Errors)
	}

	gen := `mutation($p: String) { generateInvoices(period: $p) { period periodStart periodEnd created existing skipped } }`
	var g struct {
		GenerateInvoices struct {
			Period                     string
			Created, Existing, Skipped int
		}
	}
	r = post(t, base, token, gen, map[string]any{"p": "2030-01"})
	if json.Unmarshal(r.Data, &g); len(r.Errors) > 0 || g.GenerateInvoices.Created == 0 || g.GenerateInvoices.Period != "2030-01" {
		t.Fatalf("generateInvoices: %s %+v", r.Data, r.Errors)
	}
	created := g.GenerateInvoices.Created
	r = post(t, base, token, gen, map[string]any{"p": "2030-01"})
	if json.Unmarshal(r.Data, &g); g.GenerateInvoices.Created != 0 || g.GenerateInvoices.Existing != created {
		t.Fatalf("second generateInvoices: %s %+v", r.Data, r.Errors)
	}
	r = post(t, base, token, gen, map[string]any{"p": "2030-13"})
	if r.code() != "BAD_USER_INPUT" {
		t.Fatalf("bad period: %+v", r.Errors)
	}

	r = post(t, base, token, `mutation($id: ID!) { refundPayment(id: $id, reason: "test") { status } }`, map[string]any{"id": first.RecordPayment.ID})
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data), "REFUNDED") {
		t.Fatalf("refundPayment: %s %+v", r.Data, r.Errors)
	}
	r = post(t, base, token, `mutation($id: ID!) { refundPayment(id: $id, reason: "test") { status } }`, map[string]any{"id": first.RecordPayment.ID})
	if r.code() != "CONFLICT" {
		t.Fatalf("second refund: %+v", r.Errors)
	}

	r = post(t, base, token, `{ networkUsers(first: 1, where: {status: ACTIVE}) { edges { node { id } } } }`, nil)
	var nu struct {
		NetworkUsers struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	json.Unmarshal(r.Data, &nu)
	id := nu.NetworkUsers.Edges[0].Node.ID
	r = post(t, base, token, `mutation($id: ID!) { suspendNetworkUser(id: $id, reason: "abuse") { status suspensionReason suspendedAt } }`, map[string]any{"id": id})
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"SUSPENDED"`) || !strings.Contains(string(r.Data), "abuse") {
		t.Fatalf("suspend: %s %+v", r.Data, r.Errors)
	}
	r = post(t, base, token, `mutation($id: ID!) { activateNetworkUser(id: $id, reason: "resolved") { status suspensionReason } }`, map[string]any{"id": id})
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"ACTIVE"`) {
		t.Fatalf("activate: %s %+v", r.Data, r.Errors)
	}
}

func TestBillingEmbeddedDefault(t *testing.T) {
	_, base := startServer(t, map[string]string{"ISPGRAPH_DATA_DIR": t.TempDir(), "ISPGRAPH_DEMO_PASSWORD": "demo-secret-1"})
	billingLifecycle(t, base, login(t, base, "demo", "admin@demo.example", "demo-secret-1"))
}

func TestBillingPostgres(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, _ := testenv.RedisURL(t)
	_, base := startServer(t, map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ISPGRAPH_SECRET_KEY": strings.Repeat("ab", 32),
	})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 1, Subscribers: 20, Months: 2, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 7,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	token := login(t, base, seed.BenchSlug(1), seed.BenchAdminEmail(1), "bench-pass-1")

	// 30 concurrent requests with one key: one payment, numbered right after
	// the seeded ones.
	inv, _ := openInvoice(t, base, token)
	var wg sync.WaitGroup
	ids := make(chan string, 30)
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := post(t, base, token, recordPayment, map[string]any{"inv": inv, "amount": "3.00", "key": "burst"})
			var p paymentResult
			if len(r.Errors) > 0 || json.Unmarshal(r.Data, &p) != nil {
				t.Errorf("recordPayment: %+v", r.Errors)
				return
			}
			ids <- p.RecordPayment.ID + " " + p.RecordPayment.Number
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("one key made %d payments: %v", len(seen), seen)
	}
	var n int
	var lastSeeded, mine string
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payments WHERE idempotency_key = 'burst'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows, %v", n, err)
	}
	if err := pool.QueryRow(ctx, `SELECT number FROM payments WHERE idempotency_key = 'burst'`).Scan(&mine); err != nil {
		t.Fatal(err)
	}
	year := mine[4:8]
	if err := pool.QueryRow(ctx, `SELECT max(number) FROM payments WHERE idempotency_key <> 'burst' AND number LIKE $1`, "PAY-"+year+"-%").Scan(&lastSeeded); err != nil {
		lastSeeded = ""
	}
	var last int
	fmt.Sscanf(strings.TrimPrefix(lastSeeded, "PAY-"+year+"-"), "%d", &last)
	if want := fmt.Sprintf("PAY-%s-%06d", year, last+1); mine != want {
		t.Fatalf("payment number %s, want %s after the seeded %q", mine, want, lastSeeded)
	}
	billingLifecycle(t, base, token)
}
