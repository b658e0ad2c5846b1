package database

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
)

// ReplicaOptions send reads that tolerate lag to a streaming replica.
//
// A read goes to the replica only when all of these hold: its context was
// marked with LagTolerant; the request has not written yet; the writer named
// by Writer has not written within Window (Marks, shared across processes);
// the replica answers and has replayed everything the primary had committed
// Window ago (measured every Probe). Everything else, including every
// transaction and every statement that is not a SELECT, goes to the primary.
// A replica query that fails for want of a connection is retried on the
// primary and the replica is left alone until the next successful probe.
type ReplicaOptions struct {
	// URL is the replica's Postgres URL (DATABASE_REPLICA_URL).
	URL string
	// Window bounds staleness and read-your-writes (default 5s).
	Window time.Duration
	// Probe is how often the replica's replay position is compared with the
	// primary's (default 250ms).
	Probe time.Duration
	// Writer names the caller of ctx (e.g. tenant and user); "" for callers
	// that are not tracked.
	Writer func(ctx context.Context) string
	// Marks remembers recent writers; nil keeps them in this process only.
	Marks WriteMarks
	// Logger reports the replica going stale, down and back.
	Logger *slog.Logger
}

// WriteMarks remembers which writers wrote recently, for read-your-writes
// across requests and processes.
type WriteMarks interface {
	// Mark records that writer wrote now, for ttl.
	Mark(ctx context.Context, writer string, ttl time.Duration) error
	// Recent reports whether writer wrote within the ttl of its last Mark.
	Recent(ctx context.Context, writer string) (bool, error)
}

// RedisMarks keeps write marks in Redis under Prefix, so every process sees
// every process's writers.
type RedisMarks struct {
	Client *redis.Client
	Prefix string
}

// Mark implements WriteMarks.
func (m RedisMarks) Mark(ctx context.Context, writer string, ttl time.Duration) error {
	return m.Client.Set(ctx, m.Prefix+writer, "1", ttl).Err()
}

// Recent implements WriteMarks.
func (m RedisMarks) Recent(ctx context.Context, writer string) (bool, error) {
	n, err := m.Client.Exists(ctx, m.Prefix+writer).Result()
	return n > 0, err
}

// memoryMarks keeps write marks in this process.
type memoryMarks struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (m *memoryMarks) Mark(_ context.Context, writer string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for k, u := range m.until {
		if now.After(u) {
			delete(m.until, k)
		}
	}
	m.until[writer] = now.Add(ttl)
	return nil
}

func (m *memoryMarks) Recent(_ context.Context, writer string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Before(m.until[writer]), nil
}

// readState travels in a request's context: whether its reads tolerate lag,
// and whether it has written.
type readState struct {
	tolerant bool
	wrote    atomic.Bool
	once     sync.Once
	recent   bool // the writer wrote within the window (checked once)
}

type readStateKey struct{}

// LagTolerant marks ctx's reads as tolerating replica lag (lists, dashboards,
// reports): with a replica configured they may be served by it.
func LagTolerant(ctx context.Context) context.Context {
	return context.WithValue(ctx, readStateKey{}, &readState{tolerant: true})
}

// Primary makes ctx's reads go to the primary even inside a LagTolerant
// request, e.g. for a value about to be cached under the current generation.
func Primary(ctx context.Context) context.Context {
	return context.WithValue(ctx, readStateKey{}, &readState{})
}

func stateOf(ctx context.Context) *readState {
	s, _ := ctx.Value(readStateKey{}).(*readState)
	return s
}

// replicaRouter is an ent driver over the primary and the replica.
type replicaRouter struct {
	primary *entsql.Driver
	replica *entsql.Driver
	opts    ReplicaOptions

	primaryDB, replicaDB *stdsql.DB

	mu         sync.Mutex
	caughtUpAt time.Time // the replica had replayed all the primary had committed at this time
	healthy    bool
	pending    []lsnAt
	stop       chan struct{}
	done       chan struct{}
	usedCount  atomic.Int64
	closeOnce  sync.Once
}

type lsnAt struct {
	lsn uint64
	at  time.Time
}

func openReplica(ctx context.Context, primary *stdsql.DB, opts ReplicaOptions) (*replicaRouter, error) {
	cfg, err := ConnConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("database: replica URL: %w", err)
	}
	rdb := stdlib.OpenDB(*cfg)
	rdb.SetMaxOpenConns(20)
	rdb.SetMaxIdleConns(20)
	rdb.SetConnMaxIdleTime(5 * time.Minute)
	if opts.Window <= 0 {
		opts.Window = 5 * time.Second
	}
	if opts.Probe <= 0 {
		opts.Probe = 250 * time.Millisecond
	}
	if opts.Marks == nil {
		opts.Marks = &memoryMarks{until: map[string]time.Time{}}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &replicaRouter{
		primary: entsql.OpenDB(dialect.Postgres, primary), replica: entsql.OpenDB(dialect.Postgres, rdb),
		opts: opts, primaryDB: primary, replicaDB: rdb,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	// A replica that is down at start-up is not fatal: the primary serves
	// until it answers. A server that is not a replica is a mistake.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var inRecovery bool
	if err := rdb.QueryRowContext(pctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err == nil && !inRecovery {
		rdb.Close()
		return nil, errors.New("database: DATABASE_REPLICA_URL names a server that is not a replica (pg_is_in_recovery() is false)")
	}
	r.probe(pctx)
	go r.run()
	return r, nil
}

func (r *replicaRouter) run() {
	defer close(r.done)
	t := time.NewTicker(r.opts.Probe)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), r.opts.Window)
			r.probe(ctx)
			cancel()
		}
	}
}

// probe reads the primary's WAL insert position, then the replica's replayed
// position: every position already replayed moves caughtUpAt to the time it
// was read on the primary (everything committed before then, even with
// synchronous_commit off, is on the replica).
func (r *replicaRouter) probe(ctx context.Context) {
	at := time.Now()
	var p, rep string
	perr := r.primaryDB.QueryRowContext(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&p)
	var replayed stdsql.NullString
	rerr := r.replicaDB.QueryRowContext(ctx, `SELECT pg_last_wal_replay_lsn()::text`).Scan(&replayed)
	rep = replayed.String
	r.mu.Lock()
	defer r.mu.Unlock()
	if perr == nil {
		if lsn, err := parseLSN(p); err == nil {
			r.pending = append(r.pending, lsnAt{lsn, at})
			if len(r.pending) > 256 {
				r.pending = r.pending[len(r.pending)-256:]
			}
		}
	}
	if rerr != nil || !replayed.Valid {
		if r.healthy {
			r.opts.Logger.Warn("database replica does not answer; reads go to the primary", "err", rerr)
		}
		r.healthy = false
		return
	}
	if !r.healthy {
		r.opts.Logger.Info("database replica answers")
	}
	r.healthy = true
	lsn, err := parseLSN(rep)
	if err != nil {
		return
	}
	i := 0
	for ; i < len(r.pending) && r.pending[i].lsn <= lsn; i++ {
		r.caughtUpAt = r.pending[i].at
	}
	r.pending = r.pending[i:]
}

// usable reports whether the replica is up and at most Window behind.
func (r *replicaRouter) usable() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.healthy && time.Since(r.caughtUpAt) <= r.opts.Window
}

func (r *replicaRouter) markDown(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.healthy {
		r.opts.Logger.Warn("database replica failed a query; reads go to the primary", "err", err)
	}
	r.healthy = false
}

// wrote records a write by ctx's request and writer.
func (r *replicaRouter) wrote(ctx context.Context) {
	if s := stateOf(ctx); s != nil {
		s.wrote.Store(true)
	}
	if r.opts.Writer == nil {
		return
	}
	if w := r.opts.Writer(ctx); w != "" {
		if err := r.opts.Marks.Mark(ctx, w, r.opts.Window); err != nil {
			r.opts.Logger.Warn("could not record a write for read-your-writes; the writer's reads within the window may lag", "err", err)
		}
	}
}

// useReplica decides where a read of ctx goes.
func (r *replicaRouter) useReplica(ctx context.Context, query string) bool {
	s := stateOf(ctx)
	if s == nil || !s.tolerant || s.wrote.Load() || !isRead(query) || !r.usable() {
		return false
	}
	s.once.Do(func() {
		if r.opts.Writer == nil {
			return
		}
		if w := r.opts.Writer(ctx); w != "" {
			recent, err := r.opts.Marks.Recent(ctx, w)
			// Unknown counts as recent: the primary is always correct.
			s.recent = recent || err != nil
		}
	})
	return !s.recent
}

// isRead reports whether a statement only reads: a plain SELECT. Anything
// else (INSERT … RETURNING, WITH that may modify, SELECT … FOR UPDATE) goes to
// the primary.
func isRead(query string) bool {
	q := strings.TrimSpace(query)
	if len(q) < 7 || !strings.EqualFold(q[:7], "SELECT ") {
		return false
	}
	u := strings.ToUpper(q)
	return !strings.Contains(u, " FOR UPDATE") && !strings.Contains(u, " FOR SHARE") && !strings.Contains(u, " FOR NO KEY UPDATE")
}

// Exec implements dialect.Driver: always the primary.
func (r *replicaRouter) Exec(ctx context.Context, query string, args, v any) error {
	err := r.primary.Exec(ctx, query, args, v)
	if err == nil {
		r.wrote(ctx)
	}
	return err
}

// Query implements dialect.Driver.
func (r *replicaRouter) Query(ctx context.Context, query string, args, v any) error {
	if r.useReplica(ctx, query) {
		err := r.replica.Query(ctx, query, args, v)
		if err == nil || !connectionError(err) || ctx.Err() != nil {
			if err == nil {
				r.usedCount.Add(1)
			}
			return err
		}
		r.markDown(err)
	}
	err := r.primary.Query(ctx, query, args, v)
	if err == nil && !isRead(query) {
		r.wrote(ctx)
	}
	return err
}

// Tx implements dialect.Driver: transactions run on the primary.
func (r *replicaRouter) Tx(ctx context.Context) (dialect.Tx, error) {
	return r.BeginTx(ctx, nil)
}

// BeginTx starts a transaction on the primary; its commit counts as a write.
func (r *replicaRouter) BeginTx(ctx context.Context, opts *stdsql.TxOptions) (dialect.Tx, error) {
	tx, err := r.primary.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &routedTx{Tx: tx, ctx: ctx, r: r}, nil
}

// ReplicaReads is the number of reads the replica has served.
func (d *DB) ReplicaReads() int64 {
	if d.replica == nil {
		return 0
	}
	return d.replica.usedCount.Load()
}

// Close stops probing and closes both pools.
func (r *replicaRouter) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		err = errors.Join(r.replicaDB.Close(), r.primary.Close())
	})
	return err
}

// Dialect implements dialect.Driver.
func (r *replicaRouter) Dialect() string { return dialect.Postgres }

type routedTx struct {
	dialect.Tx
	ctx context.Context
	r   *replicaRouter
}

func (t *routedTx) Commit() error {
	err := t.Tx.Commit()
	if err == nil {
		t.r.wrote(t.ctx)
	}
	return err
}

// connectionError reports whether err means the server could not be reached
// or the connection broke, rather than a problem with the statement.
func connectionError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// admin_shutdown, crash_shutdown, cannot_connect_now, and
		// conflicts with recovery on a hot standby.
		return strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "40001" && strings.Contains(pgErr.Message, "recovery")
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, stdsql.ErrConnDone) || pgconn.SafeToRetry(err) ||
		strings.Contains(err.Error(), "connect") || strings.Contains(err.Error(), "EOF")
}

// parseLSN parses a Postgres LSN "16/B374D848".
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("database: bad LSN %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, err
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, err
	}
	return h<<32 | l, nil
}
