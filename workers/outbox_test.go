package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/workers"
)

// TestRedisLosesItsJobs: payments are recorded and relayed, then Redis loses
// every job key of the deployment (as a Redis restarted without persistence
// does). Their outbox rows stay ENQUEUED; once their effect is overdue
// (ProcessPayment's EffectBound after the enqueue) the sweeper reopens them,
// the relay enqueues them again, and every payment completes exactly once.
// The workers' metrics count each run.
func TestRedisLosesItsJobs(t *testing.T) {
	e := newEnv(t)
	const n = 5
	var pays []int
	var invs []int
	for range n {
		inv := e.invoice("10.00")
		p := e.payment(inv, nil, "")
		e.enqueuePayment(p)
		pays, invs = append(pays, p.ID), append(invs, inv.ID)
	}
	relay := &workers.Relay{Client: e.client, Dialect: e.db.Dialect, Enqueuer: workers.NewEnqueuer(e.namespace, e.pool), Logger: e.logger()}
	if got, err := relay.RunOnce(e.ctx); err != nil || got != n {
		t.Fatalf("relay: %d, %v", got, err)
	}
	if q := e.queuedIn(jobs.Payments, jobs.ProcessPayment); q != n {
		t.Fatalf("%d payment jobs queued, want %d", q, n)
	}

	// Redis loses the jobs (only this test's keys: the Redis is shared).
	if err := testenv.DeletePrefix(context.Background(), e.redisURL, e.namespace); err != nil {
		t.Fatal(err)
	}
	if q := e.queuedIn(jobs.Payments, jobs.ProcessPayment); q != 0 {
		t.Fatalf("%d payment jobs still queued after the flush", q)
	}

	// Within the bound nothing is reopened: a job may still be running.
	if got, err := relay.Sweep(e.ctx); err != nil || got != 0 {
		t.Fatalf("sweep within the bound: %d, %v", got, err)
	}
	spec, _ := jobs.SpecOf(jobs.ProcessPayment)
	later := time.Now().Add(spec.EffectBound() + time.Second)
	relay.Now = func() time.Time { return later }
	if got, err := relay.Sweep(e.ctx); err != nil || got != n {
		t.Fatalf("sweep after the bound: %d, %v", got, err)
	}
	if c := e.client.OutboxJob.Query().Where(outboxjob.StatusEQ(outboxjob.StatusPENDING)).CountX(e.ctx); c != n {
		t.Fatalf("%d rows PENDING after the sweep, want %d", c, n)
	}

	o := e.options()
	o.Metrics = observability.NewMetrics()
	e.start(o)
	eventually(t, 30*time.Second, "every payment", func() bool {
		return e.client.Payment.Query().Where(payment.IDIn(pays...), payment.StatusEQ(payment.StatusCOMPLETED)).CountX(e.ctx) == n
	})
	eventually(t, 10*time.Second, "every outbox row DONE", func() bool {
		return e.client.OutboxJob.Query().Where(outboxjob.StatusEQ(outboxjob.StatusDONE)).CountX(e.ctx) == n
	})
	for _, id := range invs {
		inv := e.client.Invoice.GetX(e.ctx, id)
		if inv.AmountPaid != money.MustParse("10.00") || inv.Status != invoice.StatusPAID {
			t.Errorf("invoice %d: paid %s, %s: want 10.00 once", id, inv.AmountPaid, inv.Status)
		}
	}
	if got := testutil.ToFloat64(o.Metrics.JobsProcessed.WithLabelValues(jobs.ProcessPayment, "ok")); got != n {
		t.Errorf("jobs_processed_total{ProcessPayment,ok} = %v, want %d", got, n)
	}
	if got := testutil.CollectAndCount(o.Metrics.JobDuration); got < 1 {
		t.Errorf("job_duration_seconds has %d series", got)
	}
	if got := testutil.ToFloat64(o.Metrics.JobsFailed.WithLabelValues(jobs.ProcessPayment)); got != 0 {
		t.Errorf("jobs_failed_total{ProcessPayment} = %v, want 0", got)
	}
}

// TestSweepReopenAfter: with Relay.ReopenAfter set (ISPGRAPH_OUTBOX_REOPEN_AFTER)
// the sweep reopens rows after it instead of the derived EffectBound, but never
// before the job's timeout: a ReopenAfter shorter than ProcessPayment's timeout
// reopens nothing within the timeout.
func TestSweepReopenAfter(t *testing.T) {
	e := newEnv(t)
	const n = 3
	for range n {
		e.enqueuePayment(e.payment(e.invoice("10.00"), nil, ""))
	}
	relay := &workers.Relay{Client: e.client, Dialect: e.db.Dialect, Enqueuer: workers.NewEnqueuer(e.namespace, e.pool), Logger: e.logger()}
	if got, err := relay.RunOnce(e.ctx); err != nil || got != n {
		t.Fatalf("relay: %d, %v", got, err)
	}
	spec, _ := jobs.SpecOf(jobs.ProcessPayment)
	start := time.Now()
	sweepAt := func(after time.Duration) int {
		t.Helper()
		relay.Now = func() time.Time { return start.Add(after) }
		got, err := relay.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	relay.ReopenAfter = spec.Timeout + 30*time.Second
	if got := sweepAt(spec.Timeout + 29*time.Second); got != 0 {
		t.Fatalf("ReopenAfter %s: %d rows reopened before it", relay.ReopenAfter, got)
	}
	if got := sweepAt(spec.Timeout + 31*time.Second); got != n {
		t.Fatalf("ReopenAfter %s: %d rows reopened after it, want %d", relay.ReopenAfter, got, n)
	}
	if spec.Timeout+31*time.Second >= spec.EffectBound() {
		t.Fatalf("the test needs ReopenAfter below EffectBound %s", spec.EffectBound())
	}

	// Enqueued again at start; a ReopenAfter below the timeout is raised to it.
	relay.Now = func() time.Time { return start }
	if got, err := relay.RunOnce(e.ctx); err != nil || got != n {
		t.Fatalf("relay again: %d, %v", got, err)
	}
	relay.ReopenAfter = time.Second
	if got := sweepAt(spec.Timeout - time.Second); got != 0 {
		t.Fatalf("ReopenAfter %s: %d rows reopened within the job's timeout %s", relay.ReopenAfter, got, spec.Timeout)
	}
	if got := sweepAt(spec.Timeout + time.Second); got != n {
		t.Fatalf("ReopenAfter %s: %d rows reopened after the job's timeout, want %d", relay.ReopenAfter, got, n)
	}
}
