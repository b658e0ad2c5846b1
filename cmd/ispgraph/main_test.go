package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// partnerBilling is the partner query exactly as partners script it.
const partnerBilling = `query PartnerBilling($first: Int!, $after: Cursor) {
  networkUsers(first: $first, after: $after, where: {status: ACTIVE}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id username fullName status serviceType balance
      package { id name price bandwidthDownKbps }
      invoices(first: 3, orderBy: {field: ISSUED_AT, direction: DESC}) {
        edges { node { id number status total amountPaid dueDate
          payments { id amount method status paidAt } } }
      }
    } }
  }
}`

// startServer runs the real wiring (Open, Listen, Serve) on :0 and stops it
// when the test ends.
func startServer(t *testing.T, env map[string]string) (*Main, string) {
	t.Helper()
	env["ISPGRAPH_ADDR"] = "127.0.0.1:0"
	// Tests share one Redis: each server gets its own job namespace (rate
	// limits and queues live under it), and limits high enough not to trip
	// tests that are not about them.
	defaults := map[string]string{
		"ISPGRAPH_JOB_NAMESPACE":    "ispgraph-test-" + randomHex(t),
		"ISPGRAPH_API_RATE_LIMIT":   "100000",
		"ISPGRAPH_LOGIN_RATE_LIMIT": "1000",
	}
	for k, v := range defaults {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m := &Main{Config: cfg, Stdout: &out, Logger: testLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		cancel()
		m.Close()
		t.Fatal(err)
	}
	if err := m.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		m.Close()
	})
	return m, m.URL()
}

// testLogger discards the server's log unless ISPGRAPH_TEST_LOG names a
// level (e.g. DEBUG-4 shows every SQL statement).
func testLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("ISPGRAPH_TEST_LOG"))); err != nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// sendGraphQL POSTs body to /graphql with the bearer token (when given) and
// any extra headers, and returns the status and the raw answer.
func sendGraphQL(t testing.TB, base, token string, body []byte, headers map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func post(t *testing.T, base, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	status, raw := sendGraphQL(t, base, token, body, nil)
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("status %d, body %s: %v", status, raw, err)
	}
	return out
}

func login(t *testing.T, base, tenant, email, password string) string {
	t.Helper()
	r := post(t, base, "", `mutation($t: String, $e: String!, $p: String!) { login(input: {tenant: $t, email: $e, password: $p}) { token expiresAt } }`,
		map[string]any{"t": tenant, "e": email, "p": password})
	if len(r.Errors) > 0 {
		t.Fatalf("login %s/%s: %+v", tenant, email, r.Errors)
	}
	var d struct{ Login struct{ Token string } }
	json.Unmarshal(r.Data, &d)
	if d.Login.Token == "" {
		t.Fatal("login returned no token")
	}
	return d.Login.Token
}

type billingPage struct {
	NetworkUsers struct {
		TotalCount int
		PageInfo   struct {
			HasNextPage bool
			EndCursor   string
		}
		Edges []struct {
			Node struct {
				ID, Username, Status, ServiceType, Balance string
				Package                                    *struct{ ID, Name, Price string }
				Invoices                                   struct {
					Edges []struct {
						Node struct {
							ID, Number, Status, Total, AmountPaid string
							Payments                              []struct{ ID, Amount, Method, Status string }
						}
					}
				}
			}
		}
	}
}

func partnerPage(t *testing.T, base, token string, first int, after string) billingPage {
	t.Helper()
	vars := map[string]any{"first": first}
	if after != "" {
		vars["after"] = after
	}
	r := post(t, base, token, partnerBilling, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("partner billing: %+v", r.Errors)
	}
	var p billingPage
	if err := json.Unmarshal(r.Data, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	m, base := startServer(t, map[string]string{"ISPGRAPH_DATA_DIR": dir, "ISPGRAPH_DEMO_PASSWORD": "demo-secret-1"})
	if !m.Config.Embedded() {
		t.Fatal("expected the embedded default")
	}
	if out := m.Stdout.(*bytes.Buffer).String(); !strings.Contains(out, "playground") || !strings.Contains(out, "admin@demo.example") {
		t.Fatalf("startup banner lacks the playground or the demo login:\n%s", out)
	}
	token := login(t, base, "demo", "admin@demo.example", "demo-secret-1")
	p := partnerPage(t, base, token, 5, "")
	if p.NetworkUsers.TotalCount == 0 || len(p.NetworkUsers.Edges) != 5 || !p.NetworkUsers.PageInfo.HasNextPage {
		t.Fatalf("unexpected first page: %+v", p.NetworkUsers)
	}
	for _, e := range p.NetworkUsers.Edges {
		if e.Node.Status != "ACTIVE" || e.Node.Package == nil || len(e.Node.Invoices.Edges) == 0 || len(e.Node.Invoices.Edges) > 3 {
			t.Fatalf("unexpected subscriber: %+v", e.Node)
		}
	}
	// The query surface works on SQLite too: dashboard, loader fields, scopes.
	r := post(t, base, token, `{ dashboard { subscribers { total active } invoices { total overdue paidAmount } revenue { thisYear } monthlyRecurringRevenue onlineSessions }
		networkUsers(first: 5, where: {search: "a", notExpired: true}) { edges { node { amountDue invoiceCounts { total } latestInvoice { paymentsTotal } currentSession { id } package { subscriberCount } router { online } } } }
		invoices(first: 5, where: {overdue: true}) { totalCount } }`, nil)
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"subscribers":{"total":`) {
		t.Fatalf("query surface on SQLite: %s %+v", r.Data, r.Errors)
	}
	next := partnerPage(t, base, token, 5, p.NetworkUsers.PageInfo.EndCursor)
	if next.NetworkUsers.Edges[0].Node.ID == p.NetworkUsers.Edges[0].Node.ID {
		t.Fatal("the cursor did not advance")
	}
	if code, body := httpGet(t, base+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "ispgraph_build_info{") {
		t.Errorf("/metrics has no ispgraph_build_info: %d", code)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

// TestServePostgres runs the production wiring on Postgres and Redis with two
// tenants and checks login, the partner query and tenant isolation over HTTP.
func TestServePostgres(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	_, base := startServer(t, map[string]string{
		"DATABASE_URL":           dbURL,
		"REDIS_URL":              redisURL,
		"ISPGRAPH_JOB_NAMESPACE": strings.TrimSuffix(prefix, ":"),
		"ISPGRAPH_SECRET_KEY":    strings.Repeat("ab", 32),
	})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 2, Subscribers: 30, Months: 3, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 7,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}

	t.Run("no viewer", func(t *testing.T) {
		r := post(t, base, "", partnerBilling, map[string]any{"first": 10})
		if r.code() != "UNAUTHENTICATED" || string(r.Data) != "null" {
			t.Fatalf("got %s %+v", r.Data, r.Errors)
		}
		r = post(t, base, "isg_not-a-real-token", `{ viewer { kind } }`, nil)
		if r.code() != "UNAUTHENTICATED" {
			t.Fatalf("bad token: %+v", r.Errors)
		}
	})

	tokenA := login(t, base, seed.BenchSlug(1), seed.BenchAdminEmail(1), "bench-pass-1")
	tokenB := login(t, base, seed.BenchSlug(2), seed.BenchAdminEmail(2), "bench-pass-1")

	t.Run("wrong password", func(t *testing.T) {
		r := post(t, base, "", `mutation { login(input: {tenant: "t1", email: "admin@t1.example", password: "nope"}) { token } }`, nil)
		if r.code() != "UNAUTHENTICATED" {
			t.Fatalf("got %+v", r.Errors)
		}
	})

	var pageA billingPage
	t.Run("partner billing", func(t *testing.T) {
		pageA = partnerPage(t, base, tokenA, 10, "")
		if len(pageA.NetworkUsers.Edges) != 10 || pageA.NetworkUsers.TotalCount > 30 || pageA.NetworkUsers.TotalCount == 0 {
			t.Fatalf("page: %+v", pageA.NetworkUsers)
		}
		seen := 0
		after := ""
		for {
			p := partnerPage(t, base, tokenA, 10, after)
			seen += len(p.NetworkUsers.Edges)
			if !p.NetworkUsers.PageInfo.HasNextPage {
				break
			}
			after = p.NetworkUsers.PageInfo.EndCursor
		}
		if seen != pageA.NetworkUsers.TotalCount {
			t.Fatalf("paged through %d subscribers, totalCount says %d", seen, pageA.NetworkUsers.TotalCount)
		}
	})

	t.Run("node of another tenant", func(t *testing.T) {
		sub := pageA.NetworkUsers.Edges[0].Node
		own := post(t, base, tokenA, `query($id: ID!) { node(id: $id) { id ... on NetworkUser { username } } }`, map[string]any{"id": sub.ID})
		if len(own.Errors) > 0 || !strings.Contains(string(own.Data), sub.Username) {
			t.Fatalf("own node: %s %+v", own.Data, own.Errors)
		}
		for _, id := range []string{sub.ID, sub.Invoices.Edges[0].Node.ID, sub.Package.ID} {
			r := post(t, base, tokenB, `query($id: ID!) { node(id: $id) { id ... on NetworkUser { username } ... on Invoice { number total } } }`, map[string]any{"id": id})
			if r.code() != "NOT_FOUND" || strings.Contains(string(r.Data), sub.Username) || string(r.Data) != `{"node":null}` {
				t.Fatalf("tenant B reading tenant A's %s: %s %+v", id, r.Data, r.Errors)
			}
		}
		r := post(t, base, tokenB, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{sub.ID}})
		if len(r.Errors) == 0 || strings.Contains(string(r.Data), sub.ID) {
			t.Fatalf("nodes() leaked: %s %+v", r.Data, r.Errors)
		}
	})

	t.Run("update of another tenant changes nothing", func(t *testing.T) {
		pkg := pageA.NetworkUsers.Edges[0].Node.Package
		r := post(t, base, tokenB, `mutation($id: ID!) { updatePackage(id: $id, input: {name: "hijacked"}) { id name } }`, map[string]any{"id": pkg.ID})
		if r.code() != "NOT_FOUND" {
			t.Fatalf("got %s %+v", r.Data, r.Errors)
		}
		var name string
		if err := pool.QueryRow(ctx, `SELECT name FROM packages WHERE name = 'hijacked'`).Scan(&name); err == nil {
			t.Fatal("tenant B renamed tenant A's package")
		}
	})

	t.Run("lists are tenant scoped", func(t *testing.T) {
		var want int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM network_users n JOIN tenants t ON t.id = n.tenant_id WHERE t.slug = 't2' AND n.status = 'ACTIVE'`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		p := partnerPage(t, base, tokenB, 10, "")
		if p.NetworkUsers.TotalCount != want {
			t.Fatalf("tenant B sees %d active subscribers, the database has %d", p.NetworkUsers.TotalCount, want)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		cases := map[string]string{
			`{ networkUsers(first: 10, where: {status: NOPE}) { totalCount } }`:                                               "GRAPHQL_VALIDATION_FAILED",
			`{ networkUsers(first: 100000) { totalCount } }`:                                                                  "BAD_USER_INPUT",
			`{ networkUsers(first: -1) { totalCount } }`:                                                                      "BAD_USER_INPUT",
			`{ networkUsers(first: 10, after: "garbage") { totalCount } }`:                                                    "BAD_USER_INPUT",
			`{ node(id: "not-an-id") { id } }`:                                                                                "NOT_FOUND", // like another tenant's id (TestOpaqueIDsAcrossTenants)
			`{ networkUsers(first: 10 { totalCount } }`:                                                                       "GRAPHQL_PARSE_FAILED",
			`mutation { createPackage(input: {name: "X", bandwidthUpKbps: 1, bandwidthDownKbps: 1, price: "1.005"}) { id } }`: "BAD_USER_INPUT",
		}
		for q, want := range cases {
			r := post(t, base, tokenA, q, nil)
			if r.code() != want {
				t.Errorf("%s: got %q %+v, want %s", q, r.code(), r.Errors, want)
			}
			for _, e := range r.Errors {
				if strings.Contains(strings.ToLower(e.Message), "select ") || strings.Contains(e.Message, "pq:") || strings.Contains(e.Message, "SQLSTATE") {
					t.Errorf("%s: error leaks SQL: %s", q, e.Message)
				}
			}
		}
		var n int
		pool.QueryRow(ctx, `SELECT count(*) FROM packages WHERE name = 'X'`).Scan(&n)
		if n != 0 {
			t.Fatal("a rejected mutation wrote a row")
		}
	})

	t.Run("create and conflict", func(t *testing.T) {
		q := `mutation { createPackage(input: {name: "Fiber 100", bandwidthUpKbps: 50000, bandwidthDownKbps: 100000, price: "2500.00", billingCycle: MONTHLY}) { id name price billingCycle } }`
		if r := post(t, base, tokenA, q, nil); len(r.Errors) > 0 {
			t.Fatalf("create: %+v", r.Errors)
		}
		if r := post(t, base, tokenA, q, nil); r.code() != "CONFLICT" || !strings.Contains(r.Errors[0].Message, "name") {
			t.Fatalf("duplicate: %+v", r.Errors)
		}
		// The same name in another tenant is fine: uniqueness is per tenant.
		if r := post(t, base, tokenB, q, nil); len(r.Errors) > 0 {
			t.Fatalf("create in tenant B: %+v", r.Errors)
		}
	})

	t.Run("logout revokes the token", func(t *testing.T) {
		tok := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
		if r := post(t, base, tok, `mutation { logout }`, nil); len(r.Errors) > 0 {
			t.Fatalf("logout: %+v", r.Errors)
		}
		if r := post(t, base, tok, `{ viewer { kind } }`, nil); r.code() != "UNAUTHENTICATED" {
			t.Fatalf("after logout: %s %+v", r.Data, r.Errors)
		}
	})
	_ = time.Second
}

func TestCommandLine(t *testing.T) {
	var out, errb bytes.Buffer
	env := func(string) string { return "" }
	if code := run(context.Background(), []string{"help"}, env, &out, &errb); code != 0 || !strings.Contains(out.String(), "serve") {
		t.Fatalf("help: %d %s", code, out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, env, &out, &errb); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"serve", "-h"}, env, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-addr") {
		t.Fatalf("serve -h: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"help", "serve"}, env, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-addr") {
		t.Fatalf("help serve: %d %s", code, errb.String())
	}
	// Each command lists only the settings it uses.
	for _, c := range []struct {
		args      []string
		has, lack []string
	}{
		{[]string{"serve", "-h"}, []string{"-addr", "-database-url", "-smtp-host", "-schedules", "-cache-ttl"}, nil},
		{[]string{"worker", "-h"}, []string{"-database-url", "-worker-addr", "-schedules", "-smtp-host"}, []string{"-addr ", "-cors-origins", "-data-dir"}},
		{[]string{"migrate", "-h"}, []string{"-database-url", "-dev-url"}, []string{"-redis-url", "-smtp-host", "-addr ", "-schedules"}},
		{[]string{"seed", "-h"}, []string{"-database-url", "-tenants"}, []string{"-redis-url", "-smtp-host", "-addr ", "-cache-ttl"}},
		{[]string{"cache", "warm", "-h"}, []string{"-redis-url", "-cache-ttl"}, []string{"-smtp-host", "-addr ", "-cors-origins"}},
	} {
		errb.Reset()
		if code := run(context.Background(), c.args, env, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d %s", c.args, code, errb.String())
		}
		for _, f := range c.has {
			if !strings.Contains(errb.String(), "  "+f) {
				t.Errorf("%v does not list %s", c.args, f)
			}
		}
		for _, f := range c.lack {
			if strings.Contains(errb.String(), "  "+f) {
				t.Errorf("%v lists %s, which it does not use", c.args, f)
			}
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, env, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "ispgraph ") || !strings.Contains(out.String(), "commit ") {
		t.Fatalf("version: %d %s", code, out.String())
	}
	if code := run(context.Background(), []string{"serve", "-no-such-flag"}, env, &out, &errb); code != 2 {
		t.Fatalf("bad flag exit %d, want 2", code)
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
