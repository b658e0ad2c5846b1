package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/bench"
	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// The request benchmarks drive the hot requests of issue 15 through the
// real wiring (Main.Open, Listen: the same handler `serve` runs) in process,
// without the network, so -benchmem reports what one request allocates in
// the server (ent, pgx, gqlgen, the response writer). On a shared machine
// allocs/op and B/op are the stable figures; ns/op varies with the load.
//
//	go test -run XXX -bench Request -benchmem -benchtime 200x ./cmd/ispgraph/
//
// The data set is seeded fresh: 1 tenant × 120 subscribers × 12 months.
// gcs/op is the number of garbage collections per request: the benchmark
// applies serve's GOGC and GOMEMLIMIT defaults (memory.go) unless the
// environment sets them, so GOGC=100 GOMEMLIMIT=off measures Go's defaults.

type requestBench struct {
	h      http.Handler
	token  string
	cursor string // after the first active subscribers: a middle page
	sub    string // an active subscriber's id
}

func startRequestBench(b *testing.B) *requestBench {
	b.Helper()
	dbURL := testenv.PostgresURL(b)
	redisURL, prefix := testenv.RedisURL(b)
	env := map[string]string{
		"ISPGRAPH_ADDR":             "127.0.0.1:0",
		"DATABASE_URL":              dbURL,
		"REDIS_URL":                 redisURL,
		"ISPGRAPH_JOB_NAMESPACE":    strings.TrimSuffix(prefix, ":"),
		"ISPGRAPH_SECRET_KEY":       strings.Repeat("ab", 32),
		"ISPGRAPH_API_RATE_LIMIT":   "100000000",
		"ISPGRAPH_LOGIN_RATE_LIMIT": "1000",
		"ISPGRAPH_LOG_LEVEL":        "warn",
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	applyMemoryDefaults(os.Getenv)
	m := &Main{Config: cfg, Stdout: io.Discard, Logger: testLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		cancel()
		m.Close()
		b.Fatal(err)
	}
	if err := m.Listen(); err != nil {
		cancel()
		m.Close()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
		m.Close()
	})

	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	const password = "bench-request-1"
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 1, Subscribers: 120, Months: 12, Password: password,
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 5,
	}, io.Discard); err != nil {
		b.Fatal(err)
	}
	gql := &bench.GraphQL{HTTP: http.DefaultClient, URL: m.URL() + "/graphql"}
	if err := gql.Login(ctx, seed.BenchSlug(1), seed.BenchAdminEmail(1), password); err != nil {
		b.Fatal(err)
	}
	page, err := gql.ActivePage(ctx, 20, "")
	if err != nil || len(page.IDs) == 0 {
		b.Fatalf("active page: %v", err)
	}
	return &requestBench{h: m.http.Handler, token: gql.Token, cursor: page.End, sub: page.IDs[len(page.IDs)/2]}
}

// run sends query with vars b.N times to the handler and checks every answer;
// fast chooses the fast path (graph.WithFastReads) or gqlgen's executor, and
// the first answer must come from the one chosen.
func (r *requestBench) run(b *testing.B, query string, vars map[string]any, fast bool) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		b.Fatal(err)
	}
	send := func() (*httptest.ResponseRecorder, bool) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		probe := &graph.FastReadsProbe{Off: !fast}
		req = req.WithContext(graph.WithFastReadsProbe(req.Context(), probe))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+r.token)
		w := httptest.NewRecorder()
		r.h.ServeHTTP(w, req)
		return w, probe.Answered
	}
	// One request first: the token verification and the query plans are
	// cached afterwards, as on a warm server.
	if w, answered := send(); w.Code != http.StatusOK || bytes.Contains(w.Body.Bytes(), []byte(`"errors"`)) || answered != fast {
		b.Fatalf("%d (fast path: %v) %s", w.Code, answered, w.Body.String())
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if w, _ := send(); w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body.String())
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.NumGC-before.NumGC)/float64(b.N), "gcs/op")
}

func BenchmarkRequest(b *testing.B) {
	r := startRequestBench(b)
	for _, path := range []struct {
		name string
		fast bool
	}{{"gqlgen", false}, {"fast", true}} {
		b.Run("PartnerBilling50/"+path.name, func(b *testing.B) {
			r.run(b, bench.PartnerBilling, map[string]any{"first": bench.BillingPageSize, "after": r.cursor}, path.fast)
		})
		b.Run("SubscriberDetail/"+path.name, func(b *testing.B) {
			r.run(b, bench.SubscriberDetail, map[string]any{"id": r.sub}, path.fast)
		})
		b.Run("InvoiceExport500/"+path.name, func(b *testing.B) {
			r.run(b, bench.InvoiceExport, map[string]any{"first": bench.ExportPageSize, "since": "2000-01-01T00:00:00Z"}, path.fast)
		})
	}
}
