package workers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/tenancy"
)

// OutboxIDArg is the argument the relay adds to every job it enqueues: the
// outbox row's id. It makes the job unique in gocraft (EnqueueUnique hashes
// name and arguments), so a row relayed twice while still queued is queued once.
const OutboxIDArg = "outbox_id"

// Enqueuer puts a job into its queue's namespace (jobs.Spec.Queue).
type Enqueuer struct {
	queues map[jobs.Queue]*work.Enqueuer
}

// NewEnqueuer returns an Enqueuer for the deployment's job namespace.
func NewEnqueuer(namespace string, pool *redis.Pool) *Enqueuer {
	e := &Enqueuer{queues: map[jobs.Queue]*work.Enqueuer{}}
	for _, q := range jobs.Queues {
		e.queues[q] = work.NewEnqueuer(jobs.Namespace(namespace, q), pool)
	}
	return e
}

// EnqueueUnique enqueues a job unless the same name and arguments already
// wait in its queue.
func (e *Enqueuer) EnqueueUnique(name string, args map[string]any) error {
	s, ok := jobs.SpecOf(name)
	if !ok {
		return fmt.Errorf("enqueue: %s is not in the job table", name)
	}
	_, err := e.queues[s.Queue].EnqueueUnique(name, args)
	return err
}

// Relay moves PENDING outbox rows into gocraft/work and marks them ENQUEUED,
// and sweeps ENQUEUED rows whose effect is not done within their job's
// jobs.Spec.EffectBound back to PENDING, so a job Redis lost runs again.
//
// Rows are claimed in one transaction per batch: FOR UPDATE SKIP LOCKED on
// Postgres, so relays in several processes share the work without taking the
// same row; on SQLite the transaction is already exclusive. When Redis does
// not answer the rows stay PENDING (attempts and last_error recorded) and go
// on a later pass. A crash between the Redis enqueue and the commit leaves a
// row PENDING that is already queued: the next pass enqueues it again as a
// unique job (a no-op while the first copy waits) and the handlers are
// idempotent for the case where the first copy already ran.
type Relay struct {
	Client   *ent.Client
	Dialect  string
	Enqueuer *Enqueuer
	Logger   *slog.Logger
	Interval time.Duration
	Batch    int
	Now      func() time.Time
	// Metrics receives the pending row count (optional).
	Metrics *observability.Metrics
	// ReopenAfter, when positive, replaces each job's EffectBound in the
	// sweep (jobs.Spec.ReopenAfter) and the sweep runs every quarter of it
	// (at most every SweepInterval).
	ReopenAfter time.Duration
}

// SweepInterval is how often the relay looks for rows whose effect is overdue.
const SweepInterval = time.Minute

// sweepEvery is the relay's sweep period: SweepInterval, or a quarter of
// ReopenAfter when that is shorter.
func (r *Relay) sweepEvery() time.Duration {
	if r.ReopenAfter > 0 {
		return min(SweepInterval, r.ReopenAfter/4)
	}
	return SweepInterval
}

// Run relays until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	lastPrune, lastSweep := time.Time{}, time.Time{}
	for {
		if time.Since(lastSweep) > r.sweepEvery() {
			lastSweep = time.Now()
			if n, err := r.Sweep(ctx); err != nil {
				r.Logger.Warn("outbox relay: sweep", "error", err)
			} else if n > 0 {
				r.Logger.Warn("outbox relay: jobs whose effect is overdue go to the queue again", "rows", n)
			}
			if r.Metrics != nil {
				if n, err := r.Client.OutboxJob.Query().Where(outboxjob.StatusEQ(outboxjob.StatusPENDING)).Count(tenancy.Bypass(ctx)); err == nil {
					r.Metrics.OutboxPending.Set(float64(n))
				}
			}
		}
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			if n, err := r.Prune(ctx, PruneAge); err != nil {
				r.Logger.Warn("outbox relay: prune", "error", err)
			} else if n > 0 {
				r.Logger.Info("outbox relay: pruned relayed rows", "rows", n)
			}
		}
		for {
			n, err := r.RunOnce(ctx)
			if err != nil {
				if !failing && ctx.Err() == nil {
					r.Logger.Warn("outbox relay: jobs stay pending until Redis answers", "error", err)
				}
				failing = true
				break
			}
			if failing {
				r.Logger.Info("outbox relay: enqueuing again")
				failing = false
			}
			if n < r.batch() {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Relay) batch() int {
	if r.Batch <= 0 {
		return 100
	}
	return r.Batch
}

// RunOnce relays one batch and returns how many rows it enqueued.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	// The relay drains every tenant's rows: it is not work for one tenant.
	ctx = tenancy.Bypass(ctx)
	tx, err := r.Client.Tx(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox relay: begin: %w", err)
	}
	defer tx.Rollback()
	q := tx.OutboxJob.Query().
		Where(outboxjob.StatusEQ(outboxjob.StatusPENDING), outboxjob.AvailableAtLTE(now())).
		Order(ent.Asc(outboxjob.FieldID)).
		Limit(r.batch())
	if r.Dialect == dialect.Postgres {
		q = q.ForUpdate(sql.WithLockAction(sql.SkipLocked))
	}
	rows, err := q.All(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox relay: claim: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	done := 0
	var enqErr error
	for _, row := range rows {
		args := make(map[string]any, len(row.Args)+1)
		for k, v := range row.Args {
			args[k] = v
		}
		args[OutboxIDArg] = row.ID
		if err := r.Enqueuer.EnqueueUnique(row.JobName, args); err != nil {
			enqErr = err
			// Redis is down: record it on this row and leave the rest for later.
			if uerr := tx.OutboxJob.UpdateOneID(row.ID).AddAttempts(1).SetLastError(truncate(err.Error(), 500)).Exec(ctx); uerr != nil {
				return 0, fmt.Errorf("outbox relay: record failure: %w", uerr)
			}
			break
		}
		if err := tx.OutboxJob.UpdateOneID(row.ID).
			SetStatus(outboxjob.StatusENQUEUED).
			SetEnqueuedAt(now()).
			AddAttempts(1).
			ClearLastError().
			Exec(ctx); err != nil {
			return 0, fmt.Errorf("outbox relay: mark enqueued: %w", err)
		}
		done++
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox relay: commit: %w", err)
	}
	if enqErr != nil {
		return done, fmt.Errorf("outbox relay: enqueue: %w", enqErr)
	}
	return done, nil
}

// Sweep puts ENQUEUED rows whose effect is not done within their job's
// EffectBound (or ReopenAfter; counted from their enqueue) back to PENDING, for the next relay
// pass to enqueue again: the queue lost them (Redis restarted empty, a
// flush) or they are stuck. A job that is merely slow runs twice, which its
// handler's idempotency makes harmless. It returns how many rows it reopened.
func (r *Relay) Sweep(ctx context.Context) (int, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	ctx = tenancy.Bypass(ctx)
	total := 0
	for _, s := range jobs.Table {
		bound := s.ReopenAfter(r.ReopenAfter)
		n, err := r.Client.OutboxJob.Update().
			Where(outboxjob.StatusEQ(outboxjob.StatusENQUEUED), outboxjob.JobName(s.Name),
				outboxjob.EnqueuedAtLT(now().Add(-bound))).
			SetStatus(outboxjob.StatusPENDING).
			SetLastError("effect not done within " + bound.String() + " of the enqueue: enqueued again").
			Save(ctx)
		if err != nil {
			return total, fmt.Errorf("outbox sweep %s: %w", s.Name, err)
		}
		total += n
	}
	return total, nil
}

// PruneAge is how long settled (DONE) outbox rows are kept.
const PruneAge = 7 * 24 * time.Hour

// Prune deletes DONE rows settled more than age ago; the entities the jobs
// changed are the record from then on.
func (r *Relay) Prune(ctx context.Context, age time.Duration) (int, error) {
	return r.Client.OutboxJob.Delete().
		Where(outboxjob.StatusEQ(outboxjob.StatusDONE), outboxjob.DoneAtLT(time.Now().Add(-age))).
		Exec(tenancy.Bypass(ctx))
}
