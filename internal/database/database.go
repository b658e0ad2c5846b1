// Package database owns connections to the system of record: Postgres in
// production and tests (through pgx), SQLite for the embedded default, and the
// versioned migrations generated from ent/schema.
package database

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ispgraph/ispgraph/internal/mikrotik"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the embedded default's driver, pure Go

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/migrate"
)

var registerOnce sync.Once

// registerPostgres makes pgx's database/sql driver available under the name
// "postgres", which Atlas uses to open postgres:// URLs.
func registerPostgres() {
	registerOnce.Do(func() {
		for _, d := range sql.Drivers() {
			if d == "postgres" {
				return
			}
		}
		sql.Register("postgres", stdlib.GetDefaultDriver())
	})
}

// Options tune the connection pool.
type Options struct {
	MaxOpenConns int
	// Wrap, when set, wraps the ent driver (statement counting, logging).
	Wrap func(dialect.Driver) dialect.Driver
	// Replica, when its URL is set, sends reads that tolerate lag to a
	// streaming replica (Postgres only; see ReplicaOptions).
	Replica *ReplicaOptions
}

// DB is an open database with its ent client.
type DB struct {
	SQL    *sql.DB
	Client *ent.Client
	// Driver is the ent driver Client uses (wrapped, and routing reads to
	// the replica when one is configured).
	Driver  dialect.Driver
	Dialect string

	replica *replicaRouter
}

// Close closes the client and the pools (the replica's too).
func (d *DB) Close() error { return d.Client.Close() }

// Ping reports whether the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.SQL.PingContext(ctx) }

// OpenPostgres connects to Postgres at url through pgx. Unless url sets
// default_query_exec_mode, statements run in pgx's "cache_describe" mode (see
// ConnConfig), so url may name a transaction-pooling PgBouncer.
func OpenPostgres(ctx context.Context, url string, opts Options) (*DB, error) {
	registerPostgres()
	cfg, err := ConnConfig(url)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	if opts.MaxOpenConns <= 0 {
		opts.MaxOpenConns = 20
	}
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database: postgres does not answer: %w", err)
	}
	if opts.Replica == nil || opts.Replica.URL == "" {
		return wrap(db, entsql.OpenDB(dialect.Postgres, db), dialect.Postgres, opts), nil
	}
	r, err := openReplica(ctx, db, *opts.Replica)
	if err != nil {
		db.Close()
		return nil, err
	}
	d := wrap(db, r, dialect.Postgres, opts)
	d.replica = r
	return d, nil
}

// OpenSQLite opens (creating if needed) the embedded default's database file.
func OpenSQLite(ctx context.Context, path string, opts Options) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("database: create data directory: %w", err)
	}
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("database: open sqlite: %w", err)
	}
	if opts.MaxOpenConns <= 0 {
		opts.MaxOpenConns = 4
	}
	db.SetMaxOpenConns(opts.MaxOpenConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database: sqlite: %w", err)
	}
	return wrap(db, entsql.OpenDB(dialect.SQLite, db), dialect.SQLite, opts), nil
}

// ConnConfig parses a Postgres URL for pgx. A pooler in transaction mode
// (PgBouncer before 1.21, or with max_prepared_statements=0) hands each
// transaction a different server connection, where pgx's default named
// prepared statements ("cache_statement") do not exist. "cache_describe" runs
// every statement as unnamed Parse/Bind/Execute in one round trip and caches
// only result descriptions on the client, which works through such a pooler
// and directly alike. A default_query_exec_mode in url wins.
func ConnConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: parse postgres URL: %w", err)
	}
	if !hasQueryExecMode(url) {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	return cfg, nil
}

// OpenPool opens a pgx pool (for COPY and other pgx-only work, like the
// seeder's) on url with ConnConfig's statement mode, so it works through a
// transaction-pooling PgBouncer as the ent driver does. pgxpool's own
// default, named prepared statements, fails there as soon as a transaction
// lands on a server connection other than the one that prepared them.
func OpenPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: parse postgres URL: %w", err)
	}
	if !hasQueryExecMode(url) {
		pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	return pgxpool.NewWithConfig(ctx, pcfg)
}

// hasQueryExecMode reports whether a URL or keyword/value DSN sets
// default_query_exec_mode.
func hasQueryExecMode(dsn string) bool {
	return strings.Contains(dsn, "default_query_exec_mode=")
}

func wrap(db *sql.DB, drv dialect.Driver, name string, opts Options) *DB {
	if opts.Wrap != nil {
		drv = opts.Wrap(drv)
	}
	client := ent.NewClient(ent.Driver(drv))
	// Subscriber changes reach routers through the outbox, whoever makes them.
	mikrotik.Install(client)
	return &DB{SQL: db, Client: client, Driver: drv, Dialect: name}
}

// CreateSchema creates or updates the schema in place from ent/schema. The
// embedded default uses it; Postgres uses versioned migrations (Migrate).
func (d *DB) CreateSchema(ctx context.Context) error {
	if err := d.Client.Schema.Create(ctx, migrate.WithForeignKeys(true)); err != nil {
		return fmt.Errorf("database: create schema: %w", err)
	}
	return nil
}
