package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// TestServeThroughPgBouncer runs two servers with DATABASE_URL naming a
// PgBouncer in transaction pooling mode (two server connections for both):
// both migrate at start-up through it, then a login, the partner billing
// query and a mutation go through the real HTTP handler of each, and the
// mutation's change is read back from Postgres directly.
func TestServeThroughPgBouncer(t *testing.T) {
	direct := testenv.PostgresURL(t)
	bouncer := testenv.StartPgBouncer(t, direct)
	redisURL, prefix := testenv.RedisURL(t)
	env := func() map[string]string {
		return map[string]string{
			"DATABASE_URL":           bouncer,
			"REDIS_URL":              redisURL,
			"ISPGRAPH_JOB_NAMESPACE": strings.TrimSuffix(prefix, ":"),
			"ISPGRAPH_CACHE_PREFIX":  prefix + "cache:",
			"ISPGRAPH_SECRET_KEY":    strings.Repeat("cd", 32),
			"ISPGRAPH_WORKERS":       "false",
		}
	}
	bases := make([]string, 2)
	for i := range bases {
		_, bases[i] = startServer(t, env())
	}

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 1, Subscribers: 12, Months: 2, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 3,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}

	for i, base := range bases {
		token := login(t, base, seed.BenchSlug(1), seed.BenchAdminEmail(1), "bench-pass-1")
		page := partnerPage(t, base, token, 5, "")
		if len(page.NetworkUsers.Edges) != 5 || page.NetworkUsers.TotalCount == 0 {
			t.Fatalf("server %d: partner billing page through PgBouncer: %+v", i, page.NetworkUsers)
		}
		// Every page repeats the same statements with new arguments on
		// whichever server connection PgBouncer hands out.
		for range 3 {
			p := partnerPage(t, base, token, 5, page.NetworkUsers.PageInfo.EndCursor)
			if len(p.NetworkUsers.Edges) == 0 {
				t.Fatalf("server %d: empty second page", i)
			}
		}
		pkg := page.NetworkUsers.Edges[0].Node.Package
		name := "Pooled plan " + string(rune('A'+i))
		r := post(t, base, token, `mutation($id: ID!, $name: String!) { updatePackage(id: $id, input: {name: $name}) { id name } }`,
			map[string]any{"id": pkg.ID, "name": name})
		if len(r.Errors) > 0 {
			t.Fatalf("server %d: updatePackage through PgBouncer: %+v", i, r.Errors)
		}
		var d struct{ UpdatePackage struct{ Name string } }
		if err := json.Unmarshal(r.Data, &d); err != nil || d.UpdatePackage.Name != name {
			t.Fatalf("server %d: updatePackage returned %s", i, r.Data)
		}
		var stored int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM packages WHERE name = $1`, name).Scan(&stored); err != nil || stored != 1 {
			t.Fatalf("server %d: renamed package in Postgres: %d, %v", i, stored, err)
		}
	}
	var revisions int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM atlas_schema_revisions WHERE applied = total`).Scan(&revisions); err != nil || revisions == 0 {
		t.Fatalf("migrations through PgBouncer: %d revisions, %v", revisions, err)
	}
	var locks int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&locks); err != nil || locks != 0 {
		t.Fatalf("advisory locks left behind: %d, %v", locks, err)
	}
}
