package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ispgraph/ispgraph/ent/role"
	"github.com/ispgraph/ispgraph/ent/user"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

const packagesQuery = `{ packages { totalCount edges { node { id name price } } } }`

type packagesPage struct {
	Packages struct {
		TotalCount int
		Edges      []struct {
			Node struct{ ID, Name, Price string }
		}
	}
}

func packages(t *testing.T, base, token string) packagesPage {
	t.Helper()
	r := post(t, base, token, packagesQuery, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("packages: %+v", r.Errors)
	}
	var p packagesPage
	if err := json.Unmarshal(r.Data, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Packages.Edges) == 0 {
		t.Fatal("no packages")
	}
	return p
}

func rename(t *testing.T, base, token, id, name string) {
	t.Helper()
	r := post(t, base, token, `mutation($id: ID!, $n: String!) { updatePackage(id: $id, input: {name: $n}) { name } }`,
		map[string]any{"id": id, "n": name})
	if len(r.Errors) > 0 {
		t.Fatalf("updatePackage: %+v", r.Errors)
	}
}

func waitRedis(t *testing.T, ms ...*Main) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, m := range ms {
		for m.Cache.Degraded() {
			if time.Now().After(deadline) {
				t.Fatal("the cache did not take Redis back")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestCacheTwoServers runs two servers sharing Postgres and Redis (through a
// proxy the test can stop): a change through one is read through the other,
// Redis going away is not an outage, and a change made while it was away is
// not hidden when it returns.
func TestCacheTwoServers(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	ropt, err := config.RedisOptions(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, ropt.Addr)
	env := func() map[string]string {
		return map[string]string{
			"DATABASE_URL":          dbURL,
			"REDIS_URL":             "redis://" + proxy.Addr() + "/" + strconv.Itoa(ropt.DB),
			"ISPGRAPH_SECRET_KEY":   strings.Repeat("ab", 32),
			"ISPGRAPH_CACHE_PREFIX": prefix + "cache:",
		}
	}
	a, baseA := startServer(t, env())
	b, baseB := startServer(t, env())

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 1, Subscribers: 5, Months: 1, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 3,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	tokA := login(t, baseA, "t1", "admin@t1.example", "bench-pass-1")
	tokB := login(t, baseB, "t1", "admin@t1.example", "bench-pass-1")

	first := packages(t, baseB, tokB)
	pkg := first.Packages.Edges[0].Node
	hits := func(m *Main, layer string) float64 {
		return testutil.ToFloat64(m.Metrics.CacheRequests.WithLabelValues(layer, "packages", "hit"))
	}
	before := hits(b, "memory")
	packages(t, baseB, tokB)
	if hits(b, "memory") != before+1 {
		t.Fatalf("second read through B was not a memory hit")
	}
	packages(t, baseA, tokA)
	if hits(a, "redis") != 1 {
		t.Fatalf("first read through A was not a Redis hit (%v)", hits(a, "redis"))
	}

	t.Run("a change through A is read through B", func(t *testing.T) {
		rename(t, baseA, tokA, pkg.ID, "Renamed through A")
		if got := packages(t, baseB, tokB).Packages.Edges[0].Node.Name; got != "Renamed through A" {
			t.Fatalf("B reads %q", got)
		}
		if got := packages(t, baseA, tokA).Packages.Edges[0].Node.Name; got != "Renamed through A" {
			t.Fatalf("A reads %q", got)
		}
	})

	t.Run("Redis away", func(t *testing.T) {
		proxy.Stop()
		for range 3 {
			for _, s := range []struct{ base, tok string }{{baseA, tokA}, {baseB, tokB}} {
				if got := packages(t, s.base, s.tok).Packages.Edges[0].Node.Name; got != "Renamed through A" {
					t.Fatalf("during the outage: %q", got)
				}
			}
		}
		if !a.Cache.Degraded() || !b.Cache.Degraded() || testutil.ToFloat64(a.Metrics.CacheRedisErrors) == 0 {
			t.Fatal("the outage was not noticed")
		}
		// Logins fail closed while their attempt counter (in Redis) is away;
		// requests with a token keep working.
		if r := post(t, baseB, "", `mutation { login(input: {tenant: "t1", email: "admin@t1.example", password: "bench-pass-1"}) { token } }`, nil); r.code() != "RATE_LIMITED" {
			t.Fatalf("login during the outage: %s %+v", r.Data, r.Errors)
		}

		rename(t, baseA, tokA, pkg.ID, "Renamed during the outage")
		if got := packages(t, baseB, tokB).Packages.Edges[0].Node.Name; got != "Renamed during the outage" {
			t.Fatalf("B during the outage reads %q", got)
		}

		proxy.Start()
		waitRedis(t, a, b)
		for _, s := range []struct{ base, tok string }{{baseB, tokB}, {baseA, tokA}} {
			if got := packages(t, s.base, s.tok).Packages.Edges[0].Node.Name; got != "Renamed during the outage" {
				t.Fatalf("after the outage: %q (a stale value came back)", got)
			}
		}
		rename(t, baseB, tokB, pkg.ID, "After")
		if got := packages(t, baseA, tokA).Packages.Edges[0].Node.Name; got != "After" {
			t.Fatalf("A after the outage reads %q", got)
		}
	})

	t.Run("role permissions follow a role change", func(t *testing.T) {
		// The admin role always grants everything, so the logged-in user
		// moves to the manager role for this step and back afterwards.
		tctx := tenancy.Bypass(ctx)
		c := a.DB.Client
		mgr := c.Role.Query().Where(role.NameEQ("manager")).OnlyX(tctx)
		adminRole := c.Role.Query().Where(role.NameEQ("admin")).OnlyX(tctx)
		c.User.Update().Where(user.EmailEQ("admin@t1.example")).SetRoleID(mgr.ID).ExecX(tctx)
		defer func() {
			c.User.Update().Where(user.EmailEQ("admin@t1.example")).SetRoleID(adminRole.ID).ExecX(tctx)
			c.Role.UpdateOneID(mgr.ID).SetPermissions(mgr.Permissions).ExecX(tctx)
		}()
		n, err := c.Role.Update().Where(role.NameEQ("manager")).SetPermissions([]string{"billing:read"}).Save(tctx)
		if err != nil || n != 1 {
			t.Fatalf("update role: %d %v", n, err)
		}
		r := post(t, baseB, tokB, `mutation { warmCache { entries } }`, nil)
		if r.code() != "FORBIDDEN" {
			t.Fatalf("warmCache without cache:warm: %s %+v", r.Data, r.Errors)
		}
		c.Role.Update().Where(role.NameEQ("manager")).SetPermissions([]string{"cache:warm"}).ExecX(tctx)
		r = post(t, baseB, tokB, `mutation { warmCache { entries } }`, nil)
		if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"entries":`) {
			t.Fatalf("warmCache: %s %+v", r.Data, r.Errors)
		}
	})

	t.Run("persisted queries are shared", func(t *testing.T) {
		sum := sha256.Sum256([]byte(packagesQuery))
		ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
		if r := postAPQ(t, baseB, tokB, "", ext); r.code() != "PERSISTED_QUERY_NOT_FOUND" && !strings.Contains(fmtErrors(r), "PersistedQueryNotFound") {
			t.Fatalf("unknown hash: %s %+v", r.Data, r.Errors)
		}
		if r := postAPQ(t, baseA, tokA, packagesQuery, ext); len(r.Errors) > 0 {
			t.Fatalf("register through A: %+v", r.Errors)
		}
		if r := postAPQ(t, baseB, tokB, "", ext); len(r.Errors) > 0 || !strings.Contains(string(r.Data), "totalCount") {
			t.Fatalf("hash only through B: %s %+v", r.Data, r.Errors)
		}
	})

	t.Run("cache warm command", func(t *testing.T) {
		var out, errb bytes.Buffer
		e := env()
		code := run(ctx, []string{"cache", "warm", "-all"}, func(k string) string { return e[k] }, &out, &errb)
		if code != 0 || !strings.Contains(out.String(), "for 1 tenants") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
		}
		if code := run(ctx, []string{"cache", "warm"}, func(k string) string { return e[k] }, &out, &errb); code != 2 {
			t.Fatalf("warm without -tenant or -all: exit %d", code)
		}
	})
}

func postAPQ(t *testing.T, base, token, query string, ext map[string]any) gqlResponse {
	t.Helper()
	body := map[string]any{"extensions": ext}
	if query != "" {
		body["query"] = query
	}
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func fmtErrors(r gqlResponse) string {
	b, _ := json.Marshal(r.Errors)
	return string(b)
}
