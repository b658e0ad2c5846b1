package database_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/migrations"
)

// withParam adds a query parameter to a postgres:// URL.
func withParam(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}

// TestThroughPgBouncer runs the database layer through a real PgBouncer in
// transaction pooling mode with two server connections: the versioned
// migrations from several processes at once (the advisory lock), statements
// with parameters from many client connections (statement caching), and
// transactions.
func TestThroughPgBouncer(t *testing.T) {
	ctx := context.Background()
	direct := testenv.PostgresURL(t)
	bouncer := testenv.StartPgBouncer(t, direct)

	// The check itself: pgx's default named prepared statements break here,
	// so this pooler really moves statements between server connections.
	t.Run("named prepared statements fail through the pooler", func(t *testing.T) {
		cfg, err := database.ConnConfig(withParam(bouncer, "default_query_exec_mode=cache_statement"))
		if err != nil {
			t.Fatal(err)
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		failures := 0
		conns := make([]*sql.Conn, 3*testenv.PgBouncerPoolSize)
		for i := range conns {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		for _, c := range conns {
			var n int
			if err := c.QueryRowContext(ctx, `SELECT $1::int + 1`, 41).Scan(&n); err != nil {
				if !strings.Contains(err.Error(), "prepared statement") {
					t.Fatalf("unexpected error: %v", err)
				}
				failures++
			}
		}
		// The first client on each of the server connections prepares the
		// statement; every later one finds it already there.
		if want := len(conns) - testenv.PgBouncerPoolSize; failures < want {
			t.Fatalf("%d of %d clients failed with named prepared statements, want at least %d: is PgBouncer in transaction mode?", failures, len(conns), want)
		}
	})

	var (
		wg      sync.WaitGroup
		applied = make([][]string, 3)
		errs    = make([]error, 3)
	)
	for i := range applied {
		db, err := database.OpenPostgres(ctx, bouncer, database.Options{MaxOpenConns: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		wg.Go(func() { applied[i], errs[i] = db.Migrate(ctx, t.Logf) })
	}
	wg.Wait()
	src, _ := migrations.Dir()
	files, _ := src.Files()
	total := 0
	for i := range applied {
		if errs[i] != nil {
			t.Fatalf("Migrate #%d through PgBouncer: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	if total != len(files) {
		t.Fatalf("three concurrent Migrate calls applied %d files in all; want each of the %d once", total, len(files))
	}

	db, err := database.OpenPostgres(ctx, bouncer, database.Options{MaxOpenConns: 12})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := db.MigrationStatus(ctx)
	if err != nil || len(rep.Pending) != 0 || len(rep.Applied) != len(files) {
		t.Fatalf("status through PgBouncer: %s, %v", rep, err)
	}
	// No advisory lock stays behind on a pooled server connection.
	var locks int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&locks); err != nil || locks != 0 {
		t.Fatalf("advisory locks held after migrating: %d, %v", locks, err)
	}

	t.Run("parameterised statements from many clients", func(t *testing.T) {
		conns := make([]*sql.Conn, 3*testenv.PgBouncerPoolSize)
		for i := range conns {
			c, err := db.SQL.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		for round := range 3 {
			for i, c := range conns {
				var n int
				var s string
				if err := c.QueryRowContext(ctx, `SELECT $1::int + 1, $2::text`, i, fmt.Sprint(round)).Scan(&n, &s); err != nil {
					t.Fatalf("round %d client %d: %v", round, i, err)
				}
				if n != i+1 || s != fmt.Sprint(round) {
					t.Fatalf("round %d client %d: got %d %q", round, i, n, s)
				}
			}
		}
	})

	t.Run("transactions", func(t *testing.T) {
		if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE pooled (id int PRIMARY KEY, n int NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO pooled VALUES (1, 0)`); err != nil {
			t.Fatal(err)
		}
		// A rolled-back transaction leaves nothing, and sees its own writes.
		tx, err := db.SQL.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pooled VALUES ($1, $2)`, 2, 5); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT n FROM pooled WHERE id = $1`, 2).Scan(&n); err != nil || n != 5 {
			t.Fatalf("read own write in a transaction: %d, %v", n, err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM pooled`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows after rollback: %d, %v", n, err)
		}
		// Concurrent read-modify-write transactions, more of them than
		// server connections, lose no update.
		const workers, each = 8, 15
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for range each {
					tx, err := db.SQL.BeginTx(ctx, nil)
					if err != nil {
						errs <- err
						return
					}
					var cur int
					if err := tx.QueryRowContext(ctx, `SELECT n FROM pooled WHERE id = $1 FOR UPDATE`, 1).Scan(&cur); err != nil {
						tx.Rollback()
						errs <- err
						return
					}
					if _, err := tx.ExecContext(ctx, `UPDATE pooled SET n = $1 WHERE id = $2`, cur+1, 1); err != nil {
						tx.Rollback()
						errs <- err
						return
					}
					if err := tx.Commit(); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if err := db.SQL.QueryRowContext(ctx, `SELECT n FROM pooled WHERE id = 1`).Scan(&n); err != nil || n != workers*each {
			t.Fatalf("counter = %d, want %d (%v)", n, workers*each, err)
		}
	})
}
