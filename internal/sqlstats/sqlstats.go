// Package sqlstats owns the per-request accounting of SQL statements: a
// driver wrapper that counts and times every statement run through ent, the
// per-request Stats carried in the context, and the slow-statement log. The
// statement budget tests and the request monitor read the same counters.
package sqlstats

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
)

// SlowStatement is the duration past which a statement is logged.
const SlowStatement = 100 * time.Millisecond

// Stats counts the statements of one request (or of any unit of work that
// put it in its context). It is safe for concurrent use: gqlgen resolves
// fields, and dataloaders batch, on several goroutines.
type Stats struct {
	count   atomic.Int64
	nanos   atomic.Int64
	mu      sync.Mutex
	opName  string
	started time.Time
}

// Count is the number of statements run so far.
func (s *Stats) Count() int { return int(s.count.Load()) }

// Duration is the time spent in statements so far (summed; batches that run
// concurrently count each of their statements).
func (s *Stats) Duration() time.Duration { return time.Duration(s.nanos.Load()) }

// Started is when the Stats were created.
func (s *Stats) Started() time.Time { return s.started }

// SetOperation records the GraphQL operation name, for the slow-statement log.
func (s *Stats) SetOperation(name string) {
	s.mu.Lock()
	s.opName = name
	s.mu.Unlock()
}

// Operation returns the name set by SetOperation ("" when none).
func (s *Stats) Operation() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opName
}

func (s *Stats) add(d time.Duration) {
	s.count.Add(1)
	s.nanos.Add(int64(d))
}

type ctxKey struct{}

// NewContext returns ctx carrying fresh Stats, and the Stats.
func NewContext(ctx context.Context) (context.Context, *Stats) {
	s := &Stats{started: time.Now()}
	return context.WithValue(ctx, ctxKey{}, s), s
}

// FromContext returns the Stats in ctx, or nil.
func FromContext(ctx context.Context) *Stats {
	s, _ := ctx.Value(ctxKey{}).(*Stats)
	return s
}

// Observer receives every statement: its duration. It feeds the Prometheus
// total; nil is allowed.
type Observer func(time.Duration)

// Wrap returns drv counting every statement into the Stats of its context,
// logging statements slower than SlowStatement on logger (nil: no log) and
// reporting each to observe (nil: none).
func Wrap(drv dialect.Driver, logger *slog.Logger, observe Observer) dialect.Driver {
	return &Driver{Driver: drv, rec: recorder{logger: logger, observe: observe}}
}

type recorder struct {
	logger  *slog.Logger
	observe Observer
}

func (r recorder) done(ctx context.Context, query string, start time.Time) {
	d := time.Since(start)
	if s := FromContext(ctx); s != nil {
		s.add(d)
	}
	if r.observe != nil {
		r.observe(d)
	}
	if r.logger != nil && d < SlowStatement && r.logger.Enabled(ctx, slog.LevelDebug-4) {
		r.logger.Log(ctx, slog.LevelDebug-4, "SQL statement", "duration", d, "statement", query)
	}
	if d >= SlowStatement && r.logger != nil {
		op := ""
		if s := FromContext(ctx); s != nil {
			op = s.Operation()
		}
		// The statement text carries no values (arguments are bound), so it
		// is safe to log; it is cut to keep the log line readable.
		if len(query) > 300 {
			query = query[:300] + "…"
		}
		r.logger.WarnContext(ctx, "slow SQL statement", "operation", op, "duration", d, "statement", query)
	}
}

// Driver is a dialect.Driver that counts and times statements.
type Driver struct {
	dialect.Driver
	rec recorder
}

// Exec runs and counts a statement.
func (d *Driver) Exec(ctx context.Context, query string, args, v any) error {
	defer d.rec.done(ctx, query, time.Now())
	return d.Driver.Exec(ctx, query, args, v)
}

// Query runs and counts a statement.
func (d *Driver) Query(ctx context.Context, query string, args, v any) error {
	defer d.rec.done(ctx, query, time.Now())
	return d.Driver.Query(ctx, query, args, v)
}

// ExecContext runs and counts a statement (ent's ExecContext feature).
func (d *Driver) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	drv, ok := d.Driver.(interface {
		ExecContext(context.Context, string, ...any) (stdsql.Result, error)
	})
	if !ok {
		return nil, fmt.Errorf("sqlstats: %T does not support ExecContext", d.Driver)
	}
	defer d.rec.done(ctx, query, time.Now())
	return drv.ExecContext(ctx, query, args...)
}

// QueryContext runs and counts a statement (ent's QueryContext feature).
func (d *Driver) QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error) {
	drv, ok := d.Driver.(interface {
		QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
	})
	if !ok {
		return nil, fmt.Errorf("sqlstats: %T does not support QueryContext", d.Driver)
	}
	defer d.rec.done(ctx, query, time.Now())
	return drv.QueryContext(ctx, query, args...)
}

// Tx starts a transaction whose statements are counted too.
func (d *Driver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, rec: d.rec}, nil
}

// BeginTx starts a transaction with options whose statements are counted too.
func (d *Driver) BeginTx(ctx context.Context, opts *stdsql.TxOptions) (dialect.Tx, error) {
	drv, ok := d.Driver.(interface {
		BeginTx(context.Context, *stdsql.TxOptions) (dialect.Tx, error)
	})
	if !ok {
		return nil, fmt.Errorf("sqlstats: %T does not support BeginTx", d.Driver)
	}
	tx, err := drv.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, rec: d.rec}, nil
}

// Tx is a transaction that counts its statements.
type Tx struct {
	dialect.Tx
	rec recorder
}

// Exec runs and counts a statement.
func (t *Tx) Exec(ctx context.Context, query string, args, v any) error {
	defer t.rec.done(ctx, query, time.Now())
	return t.Tx.Exec(ctx, query, args, v)
}

// Query runs and counts a statement.
func (t *Tx) Query(ctx context.Context, query string, args, v any) error {
	defer t.rec.done(ctx, query, time.Now())
	return t.Tx.Query(ctx, query, args, v)
}

// ExecContext runs and counts a statement.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	tx, ok := t.Tx.(interface {
		ExecContext(context.Context, string, ...any) (stdsql.Result, error)
	})
	if !ok {
		return nil, fmt.Errorf("sqlstats: %T does not support ExecContext", t.Tx)
	}
	defer t.rec.done(ctx, query, time.Now())
	return tx.ExecContext(ctx, query, args...)
}

// QueryContext runs and counts a statement.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error) {
	tx, ok := t.Tx.(interface {
		QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
	})
	if !ok {
		return nil, fmt.Errorf("sqlstats: %T does not support QueryContext", t.Tx)
	}
	defer t.rec.done(ctx, query, time.Now())
	return tx.QueryContext(ctx, query, args...)
}
