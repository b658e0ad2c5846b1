package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// TestServeWithReplica runs two servers with DATABASE_REPLICA_URL naming a
// real streaming replica the test builds, and drives them over HTTP: a list
// from a caller who did not write is served by the replica; a query that is
// not all lists, and every read of a caller who wrote (through the other
// server) within ISPGRAPH_REPLICA_MAX_LAG, go to the primary; with replay
// paused (a stale replica the servers still trust), a suspension is seen at
// once in another caller's cached dashboard, because cache fills read the
// primary;
// with the replica stopped, the primary serves.
func TestServeWithReplica(t *testing.T) {
	pair := testenv.StartStreamingReplica(t)
	redisURL, prefix := testenv.RedisURL(t)
	env := func() map[string]string {
		return map[string]string{
			"DATABASE_URL":             pair.PrimaryURL,
			"DATABASE_REPLICA_URL":     pair.ReplicaURL,
			"ISPGRAPH_REPLICA_MAX_LAG": "1m",
			"REDIS_URL":                redisURL,
			"ISPGRAPH_JOB_NAMESPACE":   strings.TrimSuffix(prefix, ":"),
			"ISPGRAPH_CACHE_PREFIX":    prefix + "cache:",
			"ISPGRAPH_SECRET_KEY":      strings.Repeat("ef", 32),
			"ISPGRAPH_WORKERS":         "false",
		}
	}
	a, baseA := startServer(t, env())
	b, baseB := startServer(t, env())

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pair.PrimaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 1, Subscribers: 12, Months: 2, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 5,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	admin := login(t, baseA, seed.BenchSlug(1), seed.BenchAdminEmail(1), "bench-pass-1")
	var created struct{ CreateAPIKey struct{ Secret string } }
	json.Unmarshal(mustData(t, baseA, admin, `mutation { createAPIKey(input: {name: "replica reader", scopes: ["network_users:read", "reports:run"]}) { secret } }`, nil), &created)
	partner := created.CreateAPIKey.Secret
	if partner == "" {
		t.Fatal("no API key")
	}

	const list = `{ networkUsers(first: 5) { totalCount edges { node { id username } } } }`
	// served reports whether a query was answered by B's replica.
	served := func(token, query string) (bool, json.RawMessage) {
		t.Helper()
		before := b.DB.ReplicaReads()
		d := mustData(t, baseB, token, query, nil)
		return b.DB.ReplicaReads() > before, d
	}
	caughtUp := false
	for range 200 {
		if ok, _ := served(partner, list); ok {
			caughtUp = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !caughtUp {
		t.Fatal("a partner's subscriber list never reached the replica")
	}
	if ok, _ := served(partner, `{ networkUsers(first: 1) { totalCount } viewer { __typename } }`); ok {
		t.Fatal("a query that is not only lists was read from the replica")
	}
	// The admin wrote through A (the API key) within the lag: B reads the
	// primary for them.
	if ok, _ := served(admin, list); ok {
		t.Fatal("a caller who wrote through the other server read the replica within the lag")
	}

	t.Run("cache fills read the primary", func(t *testing.T) {
		dashboard := func() int {
			var d struct {
				Dashboard struct{ Subscribers struct{ Suspended int } }
			}
			json.Unmarshal(mustData(t, baseB, partner, `{ dashboard { subscribers { suspended } } }`, nil), &d)
			return d.Dashboard.Subscribers.Suspended
		}
		suspended := dashboard()
		rc, err := pgx.Connect(ctx, pair.ReplicaURL)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close(ctx)
		if _, err := rc.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
			t.Fatal(err)
		}
		defer rc.Exec(ctx, `SELECT pg_wal_replay_resume()`)
		var target struct {
			NetworkUsers struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		json.Unmarshal(mustData(t, baseA, admin, `{ networkUsers(first: 1, where: {status: ACTIVE}) { edges { node { id } } } }`, nil), &target)
		if len(target.NetworkUsers.Edges) != 1 {
			t.Fatal("no active subscriber to suspend")
		}
		mustData(t, baseA, admin, `mutation($id: ID!) { suspendNetworkUser(id: $id, reason: "replica test") { id } }`,
			map[string]any{"id": target.NetworkUsers.Edges[0].Node.ID})
		var onReplica int
		if err := rc.QueryRow(ctx, `SELECT count(*) FROM network_users WHERE status = 'SUSPENDED'`).Scan(&onReplica); err != nil || onReplica != suspended {
			t.Fatalf("the paused replica counts %d suspended, want the %d from before (%v): the test shows nothing", onReplica, suspended, err)
		}
		if got := dashboard(); got != suspended+1 {
			t.Fatalf("another caller's dashboard after a suspension counts %d suspended, want %d: filled from the lagging replica", got, suspended+1)
		}
		if ok, _ := served(partner, list); !ok {
			t.Fatal("the paused replica (within the lag) served no list: the test shows nothing")
		}
	})

	t.Run("replica down", func(t *testing.T) {
		pair.StopReplica()
		before := a.DB.ReplicaReads() + b.DB.ReplicaReads()
		for range 3 {
			if _, d := served(partner, list); !strings.Contains(string(d), `"totalCount":12`) {
				t.Fatalf("list with the replica down: %s", d)
			}
		}
		if got := a.DB.ReplicaReads() + b.DB.ReplicaReads(); got != before {
			t.Fatalf("a stopped replica served %d reads", got-before)
		}
	})
}
