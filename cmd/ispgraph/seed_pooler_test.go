package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/internal/testenv"
)

// TestSeedThroughPgBouncer runs `ispgraph seed` (migrations, then the
// benchmark data set written with COPY from several connections) with
// DATABASE_URL naming a PgBouncer in transaction pooling mode, then checks
// the rows in Postgres directly, and that -demo works through it too. Other
// clients use the pooler meanwhile, so the seed's transactions move between
// server connections.
func TestSeedThroughPgBouncer(t *testing.T) {
	direct := testenv.PostgresURL(t)
	bouncer := testenv.StartPgBouncer(t, direct)
	env := map[string]string{"DATABASE_URL": bouncer}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	// Other clients share the pooler, as a running deployment's would: each
	// of the seed's transactions may get a different server connection.
	churn, err := pgxpool.New(ctx, bouncer+"&default_query_exec_mode=simple_protocol")
	if err != nil {
		t.Fatal(err)
	}
	defer churn.Close()
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				churn.Exec(cctx, `SELECT pg_sleep(0.002)`)
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	var out, errs bytes.Buffer
	if err := runSeed(ctx, []string{"-tenants", "2", "-subscribers", "40", "-months", "2", "-password", "pooled-pass-1"},
		getenv, &out, &errs); err != nil {
		t.Fatalf("seed through PgBouncer: %v\n%s\n%s", err, out.String(), errs.String())
	}
	env["ISPGRAPH_DEMO_PASSWORD"] = "demo-pass-1"
	if err := runSeed(ctx, []string{"-demo"}, getenv, &out, &errs); err != nil {
		t.Fatalf("seed -demo through PgBouncer: %v\n%s", err, errs.String())
	}
	pool, err := pgxpool.New(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var tenants, subscribers, invoices int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM network_users WHERE tenant_id IN (SELECT id FROM tenants WHERE slug IN ('t1', 't2'))), (SELECT count(*) FROM invoices)`).
		Scan(&tenants, &subscribers, &invoices); err != nil {
		t.Fatal(err)
	}
	if tenants != 3 || subscribers != 80 || invoices == 0 {
		t.Fatalf("after seeding through PgBouncer: %d tenants (want t1, t2, demo), %d subscribers of t1 and t2 (want 80), %d invoices\n%s",
			tenants, subscribers, invoices, out.String())
	}
	if !strings.Contains(out.String(), "demo") {
		t.Errorf("seed -demo printed %q", out.String())
	}
}
