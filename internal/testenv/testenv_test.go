package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/testenv"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func currentDatabase(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var name string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestPostgresURLIsolatedAndDropped(t *testing.T) {
	var nameA, nameB string
	t.Run("isolated", func(t *testing.T) {
		ctx := context.Background()
		a := connect(t, testenv.PostgresURL(t))
		b := connect(t, testenv.PostgresURL(t))
		nameA, nameB = currentDatabase(t, a), currentDatabase(t, b)
		if nameA == nameB {
			t.Fatalf("two calls gave the same database %q", nameA)
		}
		for _, n := range []string{nameA, nameB} {
			if !databaseExists(t, n) {
				t.Fatalf("database %q not in pg_database while the test runs", n)
			}
		}
		if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (id int)"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Exec(ctx, "INSERT INTO only_in_a VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		var reg *string
		if err := b.QueryRow(ctx, "SELECT to_regclass('only_in_a')::text").Scan(&reg); err != nil {
			t.Fatal(err)
		}
		if reg != nil {
			t.Fatalf("table created in %s is visible in %s", nameA, nameB)
		}
		// Leave a session open that is never closed: the drop must cope with
		// connections a test forgot (WITH (FORCE)).
		stray, err := pgx.Connect(ctx, testenv.DatabaseURL(testenv.AdminURL(), nameA))
		if err != nil {
			t.Fatal(err)
		}
		_ = stray
	})
	if nameA == "" || nameB == "" {
		t.Fatal("subtest did not record database names")
	}
	for _, n := range []string{nameA, nameB} {
		if databaseExists(t, n) {
			t.Errorf("database %q still exists after cleanup", n)
		}
	}
}

func TestRedisURLPrefixDeleted(t *testing.T) {
	ctx := context.Background()
	var url, prefix, other string
	var client *redis.Client
	t.Run("keys", func(t *testing.T) {
		var prefix2 string
		url, prefix = testenv.RedisURL(t)
		_, prefix2 = testenv.RedisURL(t)
		if prefix == prefix2 {
			t.Fatalf("two calls gave the same prefix %q", prefix)
		}
		client = redis.NewClient(testenv.Must(redis.ParseURL(url)))
		// A key outside the prefix that shares its beginning must survive.
		other = prefix[:len(prefix)-1] + "x:survivor"
		if err := client.Set(ctx, other, "keep", 0).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range 1200 { // more than one SCAN page
			if err := client.Set(ctx, fmt.Sprintf("%sk:%d", prefix, i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := client.HSet(ctx, prefix+"h", "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
	})
	if client == nil {
		t.Fatal("subtest did not run")
	}
	defer client.Close()
	defer client.Del(ctx, other)

	keys, _, err := client.Scan(ctx, 0, prefix+"*", 100000).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("%d keys under %q survived cleanup, e.g. %q", len(keys), prefix, keys[0])
	}
	if err := client.Get(ctx, other).Err(); errors.Is(err, redis.Nil) {
		t.Errorf("key %q outside the prefix was deleted", other)
	} else if err != nil {
		t.Fatal(err)
	}
}

func TestDatabaseURL(t *testing.T) {
	cases := []struct{ base, want string }{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
			"postgres://postgres@127.0.0.1:5432/ispgraph_t_x?sslmode=disable"},
		{"postgresql://u:p@h/db", "postgresql://u:p@h/ispgraph_t_x"},
		{"postgres://h:5432", "postgres://h:5432/ispgraph_t_x"},
		{"host=127.0.0.1 user=postgres dbname=test", "host=127.0.0.1 user=postgres dbname=test dbname='ispgraph_t_x'"},
	}
	for _, c := range cases {
		if got := testenv.DatabaseURL(c.base, "ispgraph_t_x"); got != c.want {
			t.Errorf("DatabaseURL(%q) = %q, want %q", c.base, got, c.want)
		}
	}
}

func TestUnreachableFailsOrSkips(t *testing.T) {
	// A fake TB records what happens instead of failing or skipping this test.
	t.Setenv("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	t.Setenv("TEST_REDIS_URL", "redis://127.0.0.1:1/0")
	for _, skip := range []string{"", "1"} {
		t.Setenv(testenv.SkipEnv, skip)
		for name, call := range map[string]func(testing.TB){
			"postgres": func(tb testing.TB) { testenv.PostgresURL(tb) },
			"redis":    func(tb testing.TB) { testenv.RedisURL(tb) },
		} {
			ft := &fakeTB{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); call(ft) }() // Fatal/Skip end the goroutine
			<-done
			switch {
			case skip == "1" && !ft.skipped:
				t.Errorf("%s: %s=1 did not skip (failed=%v)", name, testenv.SkipEnv, ft.failed)
			case skip == "" && !ft.failed:
				t.Errorf("%s: unreachable server did not fail the test (skipped=%v)", name, ft.skipped)
			}
		}
	}
}

// fakeTB records Fatal/Skip instead of acting on the real test.
type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper()        {}
func (f *fakeTB) Cleanup(func()) {}
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.failed = true
	f.TB.Logf("fatal: "+format, a...)
	runtime.Goexit()
}
func (f *fakeTB) Skipf(format string, a ...any) {
	f.skipped = true
	f.TB.Logf("skip: "+format, a...)
	runtime.Goexit()
}
