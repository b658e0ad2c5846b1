// Package testenv owns test access to the real PostgreSQL and Redis servers.
//
// Every test that needs a database calls PostgresURL, which creates a fresh,
// uniquely named database and drops it when the test ends; every test that
// needs Redis calls RedisURL, which hands out a unique key prefix and deletes
// the keys under it (SCAN+DEL, never FLUSHDB/FLUSHALL) when the test ends.
//
// Environment:
//
//	TEST_DATABASE_URL       admin URL of the server (default DefaultDatabaseURL);
//	                        its role must be allowed to CREATE/DROP DATABASE
//	TEST_REDIS_URL          Redis URL (default DefaultRedisURL)
//	ISPGRAPH_SKIP_DB_TESTS  "1": skip instead of fail when a server is unreachable
//
// An unreachable server fails the test (tb.Fatalf) unless
// ISPGRAPH_SKIP_DB_TESTS=1, in which case the test is skipped.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/config"
)

const (
	// DefaultDatabaseURL is used when TEST_DATABASE_URL is unset.
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	// DefaultRedisURL is used when TEST_REDIS_URL is unset.
	DefaultRedisURL = "redis://127.0.0.1:6379/0"

	// DatabasePrefix starts the name of every database PostgresURL creates.
	DatabasePrefix = "ispgraph_t_"
	// RedisPrefix starts every key prefix RedisURL hands out.
	RedisPrefix = "ispgraph:t:"

	// SkipEnv, set to "1", turns "server unreachable" failures into skips.
	SkipEnv = "ISPGRAPH_SKIP_DB_TESTS"

	connectTimeout = 10 * time.Second
	cleanupTimeout = 30 * time.Second
)

// AdminURL returns the URL of the Postgres server used to create and drop
// test databases: TEST_DATABASE_URL, or DefaultDatabaseURL if unset.
func AdminURL() string {
	if u := strings.TrimSpace(os.Getenv("TEST_DATABASE_URL")); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// RedisAdminURL returns TEST_REDIS_URL, or DefaultRedisURL if unset.
func RedisAdminURL() string {
	if u := strings.TrimSpace(os.Getenv("TEST_REDIS_URL")); u != "" {
		return u
	}
	return DefaultRedisURL
}

// DatabaseURL returns base with its database name replaced by dbname,
// keeping user, host, port and query parameters. base may be a URL
// (postgres:// or postgresql://) or a libpq keyword/value string.
func DatabaseURL(base, dbname string) string {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// keyword/value DSN: a later dbname= wins.
		return strings.TrimSpace(base) + " dbname=" + quoteDSNValue(dbname)
	}
	u.Path = "/" + dbname
	u.RawPath = ""
	return u.String()
}

func quoteDSNValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s + "'"
}

// PostgresURL creates a fresh, uniquely named database on the server at
// AdminURL, registers a cleanup that drops it (WITH (FORCE), so connections
// left open by the test do not block it), and returns a URL to it.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	admin := AdminURL()

	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unreachable(tb, "PostgreSQL", redactPG(admin), "TEST_DATABASE_URL", err)
		return ""
	}
	defer conn.Close(context.Background())

	name := DatabasePrefix + randomHex(tb, 8)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("testenv: create database %s on %s: %v", name, redactPG(admin), err)
	}
	tb.Cleanup(func() { dropDatabase(tb, admin, name) })
	return DatabaseURL(admin, name)
}

func dropDatabase(tb testing.TB, admin, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Errorf("testenv: drop database %s: connect: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		tb.Errorf("testenv: drop database %s: %v", name, err)
	}
}

// RedisURL pings the Redis server at TEST_REDIS_URL and returns its URL and a
// unique key prefix ("ispgraph:t:<hex>:"). Code under test must put every key
// it writes under prefix: a cleanup deletes all keys matching prefix* with
// SCAN+DEL when the test ends.
func RedisURL(tb testing.TB) (redisURL, prefix string) {
	tb.Helper()
	redisURL = RedisAdminURL()
	opts, err := config.RedisOptions(redisURL)
	if err != nil {
		tb.Fatalf("testenv: invalid TEST_REDIS_URL %q: %v", redactRedis(redisURL), err)
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		unreachable(tb, "Redis", redactRedis(redisURL), "TEST_REDIS_URL", err)
		return "", ""
	}
	_ = client.Close()

	prefix = RedisPrefix + randomHex(tb, 8) + ":"
	tb.Cleanup(func() {
		if err := DeletePrefix(context.Background(), redisURL, prefix); err != nil {
			tb.Errorf("testenv: delete redis keys %s*: %v", prefix, err)
		}
	})
	return redisURL, prefix
}

// DeletePrefix deletes every key starting with prefix on the Redis server at
// redisURL, using SCAN and DEL (never FLUSHDB/FLUSHALL). Glob metacharacters
// in prefix are matched literally.
func DeletePrefix(ctx context.Context, redisURL, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("testenv: refusing to delete keys with an empty prefix")
	}
	opts, err := config.RedisOptions(redisURL)
	if err != nil {
		return err
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()

	match := escapeGlob(prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := client.Scan(ctx, cursor, match, 500).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := client.Del(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Must returns v, or panics if err is non-nil. For test setup one-liners.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func unreachable(tb testing.TB, what, where, envVar string, err error) {
	tb.Helper()
	if os.Getenv(SkipEnv) == "1" {
		tb.Skipf("testenv: %s unreachable at %s (%v); skipping because %s=1", what, where, err, SkipEnv)
	}
	tb.Fatalf("testenv: %s unreachable at %s: %v\n"+
		"\tstart it (see .ci/run) or point %s at a reachable server;\n"+
		"\tset %s=1 to skip tests that need it", what, where, err, envVar, SkipEnv)
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("testenv: random name: %v", err)
	}
	return hex.EncodeToString(b)
}

// redactPG hides a password in a Postgres URL before it reaches test output.
func redactPG(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return dsnPassword.ReplaceAllString(s, "password=xxxxx")
}

var dsnPassword = regexp.MustCompile(`password=('(\\.|[^'])*'|\S+)`)

func redactRedis(s string) string { return redactPG(s) }
