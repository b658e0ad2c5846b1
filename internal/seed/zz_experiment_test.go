package seed_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/internal/seed"
)

func TestExperimentDropIndexes(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	ctx := context.Background()
	dbURL, _, db := newDB(t)
	var defs []string
	rows, _ := db.Query(`select indexname, indexdef from pg_indexes where tablename in ('invoices','payments','network_users') and indexname not like '%pkey'`)
	var names []string
	for rows.Next() {
		var n, d string
		rows.Scan(&n, &d)
		defs = append(defs, d)
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.Exec("DROP INDEX " + n); err != nil {
			t.Fatal(err)
		}
	}
	pool := newPool(t, dbURL)
	cpu := startCPUWatch(t, db)
	opts := seed.BenchOptions{Tenants: 10, Subscribers: 10_000, Months: 12, Password: "p",
		HashPassword: testHash, Roles: testRoles, Seed: 1}
	res, err := seed.Bench(ctx, pool, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := time.Now()
	conn, _ := pool.Acquire(ctx)
	conn.Exec(ctx, "SET maintenance_work_mem = '256MB'")
	for _, d := range defs {
		if _, err := conn.Exec(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	conn.Release()
	self, server := cpu()
	t.Logf("load %s, rebuild %d indexes %s; CPU seeder %s, postgres %s", res.Elapsed, len(defs), time.Since(st), self, server)
}
