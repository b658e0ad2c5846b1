// Package outbox owns writing jobs in the same transaction as the change that
// causes them, and the row's states: PENDING (written), ENQUEUED (in the
// queue), DONE (the handler's effect is committed), DEAD (out of attempts).
// The relay in workers/ moves pending rows into the queue and reopens enqueued
// rows whose effect is overdue, so a job is never lost when Redis is down or
// loses its data, and never enqueued by a rolled-back change.
package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/tenancy"
)

// Option adjusts one outbox row.
type Option func(*ent.OutboxJobCreate)

// DedupKey makes the job unique per tenant: a second Enqueue with the same key
// is a no-op, so retried mutations do not enqueue twice.
func DedupKey(key string) Option {
	return func(c *ent.OutboxJobCreate) { c.SetDedupKey(key) }
}

// After delays the job until t.
func After(t time.Time) Option {
	return func(c *ent.OutboxJobCreate) { c.SetAvailableAt(t) }
}

// Enqueue writes a job into the outbox through client, which must be the
// transaction of the change that causes the job (ent.FromContext in a mutation).
// The tenant comes from the viewer in ctx, like every tenant-owned row.
func Enqueue(ctx context.Context, client *ent.Client, args jobs.Args, opts ...Option) error {
	m, err := jobs.ToMap(args)
	if err != nil {
		return err
	}
	c := client.OutboxJob.Create().SetJobName(args.Kind()).SetArgs(m)
	for _, o := range opts {
		o(c)
	}
	if err := c.OnConflictColumns("tenant_id", "dedup_key").DoNothing().Exec(ctx); err != nil && !isNoRows(err) {
		return fmt.Errorf("outbox: enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// isNoRows reports the "no rows" result of an ON CONFLICT DO NOTHING insert
// that did nothing.
func isNoRows(err error) bool {
	return err != nil && err.Error() == "sql: no rows in result set"
}

// MarkDone records that row id's effect is committed. Rows belong to every
// tenant and the worker acts for the deployment, hence the bypass.
func MarkDone(ctx context.Context, client *ent.Client, id int) error {
	err := client.OutboxJob.UpdateOneID(id).
		SetStatus(outboxjob.StatusDONE).SetDoneAt(time.Now()).ClearLastError().
		Exec(tenancy.Bypass(ctx))
	if ent.IsNotFound(err) {
		return nil // pruned
	}
	return err
}

// MarkDead records that row id's job used up its attempts with lastErr; the
// sweeper leaves DEAD rows alone until Reopen.
func MarkDead(ctx context.Context, client *ent.Client, id int, lastErr string) error {
	err := client.OutboxJob.Update().
		Where(outboxjob.ID(id), outboxjob.StatusNEQ(outboxjob.StatusDONE)).
		SetStatus(outboxjob.StatusDEAD).SetLastError(lastErr).
		Exec(tenancy.Bypass(ctx))
	return err
}

// Reopen marks a DEAD row ENQUEUED again (now), after its dead job was moved
// back to the queue: the sweeper watches it again.
func Reopen(ctx context.Context, client *ent.Client, id int) error {
	_, err := client.OutboxJob.Update().
		Where(outboxjob.ID(id), outboxjob.StatusEQ(outboxjob.StatusDEAD)).
		SetStatus(outboxjob.StatusENQUEUED).SetEnqueuedAt(time.Now()).
		Save(tenancy.Bypass(ctx))
	return err
}
