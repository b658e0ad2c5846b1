package database_test

import (
	"context"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5"

	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

type writerKey struct{}

func withWriter(ctx context.Context, w string) context.Context {
	return context.WithValue(ctx, writerKey{}, w)
}

func writerOf(ctx context.Context) string {
	w, _ := ctx.Value(writerKey{}).(string)
	return w
}

// servedByReplica runs a read through the ent driver and reports whether the
// server that answered is in recovery (the replica).
func servedByReplica(t *testing.T, db *database.DB, ctx context.Context) bool {
	t.Helper()
	var rows entsql.Rows
	if err := db.Driver.Query(ctx, `SELECT pg_is_in_recovery()`, []any{}, &rows); err != nil {
		t.Fatalf("read: %v", err)
	}
	defer rows.Close()
	var rec bool
	if !rows.Next() {
		t.Fatal("no row")
	}
	if err := rows.Scan(&rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// eventually polls cond every 50ms for at most 30s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 30s", what)
}

// TestReplicaRouting runs against a real streaming replica the test creates:
// lag-tolerant reads go to the replica and everything else to the primary; a
// request that wrote, and a writer within the window, read from the primary;
// a replica that falls behind by more than the window, or goes down, leaves
// the primary serving, and a caught-up replica serves again.
func TestReplicaRouting(t *testing.T) {
	ctx := context.Background()
	pair := testenv.StartStreamingReplica(t)
	open := func(window time.Duration) *database.DB {
		db, err := database.OpenPostgres(ctx, pair.PrimaryURL, database.Options{MaxOpenConns: 4, Replica: &database.ReplicaOptions{
			URL: pair.ReplicaURL, Window: window, Probe: 20 * time.Millisecond, Writer: writerOf,
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open(time.Minute)

	if _, err := database.OpenPostgres(ctx, pair.PrimaryURL, database.Options{Replica: &database.ReplicaOptions{URL: pair.PrimaryURL}}); err == nil {
		t.Fatal("a primary given as the replica was accepted")
	}

	tolerant := func(writer string) context.Context {
		return database.LagTolerant(withWriter(ctx, writer))
	}
	eventually(t, "replica caught up", func() bool { return servedByReplica(t, db, tolerant("reader")) })
	if servedByReplica(t, db, withWriter(ctx, "reader")) {
		t.Fatal("a read without LagTolerant went to the replica")
	}
	if servedByReplica(t, db, database.Primary(tolerant("reader"))) {
		t.Fatal("Primary did not override LagTolerant")
	}
	before := db.ReplicaReads()
	for range 5 {
		if !servedByReplica(t, db, tolerant("reader")) {
			t.Fatal("a lag-tolerant read went to the primary while the replica is current")
		}
	}
	if got := db.ReplicaReads() - before; got != 5 {
		t.Fatalf("replica served %d of 5 reads", got)
	}

	// Writes go to the primary (the replica would refuse them).
	if err := db.Driver.Exec(tolerant("alice"), `CREATE TABLE notes (id int PRIMARY KEY, body text)`, []any{}, nil); err != nil {
		t.Fatal(err)
	}
	var rows entsql.Rows
	if err := db.Driver.Query(tolerant("bob"), `INSERT INTO notes VALUES ($1, $2) RETURNING id`, []any{1, "x"}, &rows); err != nil {
		t.Fatalf("INSERT … RETURNING in a lag-tolerant context: %v", err)
	}
	rows.Close()

	t.Run("read your writes", func(t *testing.T) {
		// In the same request, after a write.
		req := tolerant("carol")
		if !servedByReplica(t, db, req) {
			t.Fatal("carol's first read did not use the replica")
		}
		if err := db.Driver.Exec(req, `INSERT INTO notes VALUES ($1, $2)`, []any{2, "carol"}, nil); err != nil {
			t.Fatal(err)
		}
		if servedByReplica(t, db, req) {
			t.Fatal("a read after a write in the same request went to the replica")
		}
		// In the writer's next requests, within the window; others still use the replica.
		if servedByReplica(t, db, tolerant("carol")) || servedByReplica(t, db, tolerant("alice")) || servedByReplica(t, db, tolerant("bob")) {
			t.Fatal("a writer's next request read from the replica within the window")
		}
		if !servedByReplica(t, db, tolerant("dave")) {
			t.Fatal("a reader who did not write was sent to the primary")
		}
		// A transaction's commit marks its writer too.
		tx, err := db.Client.Tx(tolerant("erin"))
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if servedByReplica(t, db, tolerant("erin")) {
			t.Fatal("a writer whose transaction committed read from the replica")
		}
	})

	t.Run("lagging replica", func(t *testing.T) {
		short := open(300 * time.Millisecond)
		eventually(t, "replica caught up", func() bool { return servedByReplica(t, short, tolerant("frank")) })
		rc, err := pgx.Connect(ctx, pair.ReplicaURL)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close(ctx)
		if _, err := rc.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
			t.Fatal(err)
		}
		if err := short.Driver.Exec(ctx, `INSERT INTO notes VALUES ($1, $2)`, []any{3, "behind"}, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, "reads move to the primary", func() bool { return !servedByReplica(t, short, tolerant("frank")) })
		var n int
		if err := short.Driver.Query(tolerant("frank"), `SELECT count(*) FROM notes WHERE id = 3`, []any{}, &rows); err != nil {
			t.Fatal(err)
		}
		rows.Next()
		rows.Scan(&n)
		rows.Close()
		if n != 1 {
			t.Fatalf("a lag-tolerant read while the replica is %s behind saw %d new rows, want 1", "more than the window", n)
		}
		if _, err := rc.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
			t.Fatal(err)
		}
		eventually(t, "reads return to the caught-up replica", func() bool { return servedByReplica(t, short, tolerant("frank")) })
	})

	t.Run("replica down", func(t *testing.T) {
		pair.StopReplica()
		for i := range 5 {
			if servedByReplica(t, db, tolerant("gina")) {
				t.Fatalf("read %d answered by a stopped replica", i)
			}
		}
	})
}
