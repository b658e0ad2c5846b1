package workers_test

import (
	"net"
	"testing"
	"time"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent/billingreport"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/report"
	"github.com/ispgraph/ispgraph/workers"
)

// closedRedisURL returns a redis:// URL on a port nothing listens on.
func closedRedisURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "redis://" + addr
}

// queued returns how many jobs of name wait in the general queue.
func (e *env) queued(name string) int64 { return e.queuedIn(jobs.General, name) }

// queuedIn returns how many jobs of name wait in queue q.
func (e *env) queuedIn(q jobs.Queue, name string) int64 {
	qs, err := work.NewClient(jobs.Namespace(e.namespace, q), e.pool).Queues()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, q := range qs {
		if q.JobName == name {
			return q.Count
		}
	}
	return 0
}

// TestOutboxRedisDown: a mutation commits its job while Redis is down; the
// job stays PENDING, is enqueued exactly once when Redis answers, and runs.
func TestOutboxRedisDown(t *testing.T) {
	e := newEnv(t)

	// The mutation: a report request in one transaction.
	tx, err := e.client.Tx(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := report.Request(e.ctx, tx.Client(), billingreport.TypeAR_AGING, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	// Redis is down: the relay fails, the row stays PENDING with the error.
	down := workers.NewRedisPool(closedRedisURL(t))
	defer down.Close()
	relayDown := &workers.Relay{Client: e.client, Dialect: e.db.Dialect, Enqueuer: workers.NewEnqueuer(e.namespace, down), Logger: e.logger()}
	if _, err := relayDown.RunOnce(e.ctx); err == nil {
		t.Fatal("relay against a closed port reported success")
	}
	row := e.client.OutboxJob.Query().OnlyX(e.ctx)
	if row.Status != outboxjob.StatusPENDING || row.Attempts != 1 || row.LastError == nil {
		t.Fatalf("after a failed relay: %+v", row)
	}

	// A crash after Redis accepted the job but before the row was marked:
	// the job is in the queue and the row still PENDING.
	args := map[string]any{}
	for k, v := range row.Args {
		args[k] = v
	}
	args[workers.OutboxIDArg] = row.ID
	if _, err := work.NewEnqueuer(e.namespace, e.pool).EnqueueUnique(row.JobName, args); err != nil {
		t.Fatal(err)
	}

	// Redis is back: the relay enqueues it, once.
	relay := &workers.Relay{Client: e.client, Dialect: e.db.Dialect, Enqueuer: workers.NewEnqueuer(e.namespace, e.pool), Logger: e.logger()}
	if n, err := relay.RunOnce(e.ctx); err != nil || n != 1 {
		t.Fatalf("relay: %d, %v", n, err)
	}
	if n, err := relay.RunOnce(e.ctx); err != nil || n != 0 {
		t.Fatalf("second relay pass: %d, %v", n, err)
	}
	if got := e.client.OutboxJob.GetX(e.ctx, row.ID); got.Status != outboxjob.StatusENQUEUED || got.EnqueuedAt == nil || got.DoneAt != nil {
		t.Fatalf("row after relay: %+v", got)
	}
	if n := e.queued(jobs.GenerateBillingReport); n != 1 {
		t.Fatalf("%d report jobs queued, want 1", n)
	}

	// The workers run it.
	e.start(e.options())
	eventually(t, 20*time.Second, "the report", func() bool {
		return e.client.BillingReport.GetX(e.ctx, r.ID).Status == billingreport.StatusDONE
	})
	eventually(t, 10*time.Second, "the outbox row DONE", func() bool {
		return e.client.OutboxJob.GetX(e.ctx, row.ID).Status == outboxjob.StatusDONE
	})
	got := e.client.BillingReport.GetX(e.ctx, r.ID)
	if len(got.Rows) != 5 || got.Rows[0]["bucket"] != "current" || got.FinishedAt == nil {
		t.Fatalf("report rows: %+v", got.Rows)
	}

	// Run twice = once: a DONE report is left as it is.
	h := &workers.ReportHandler{Client: e.client, Logger: e.logger()}
	jobArgs, _ := jobs.ToMap(jobs.GenerateBillingReportArgs{TenantID: e.tenantID, ReportID: r.ID})
	if err := h.Generate(&work.Job{Name: jobs.GenerateBillingReport, ID: "again", Args: jobArgs}); err != nil {
		t.Fatal(err)
	}
	if again := e.client.BillingReport.GetX(e.ctx, r.ID); !again.FinishedAt.Equal(*got.FinishedAt) || len(again.Rows) != 5 {
		t.Fatalf("a second run changed the report: %+v", again)
	}

	// Settled rows are pruned after PruneAge.
	if n, err := relay.Prune(e.ctx, 0); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
}
