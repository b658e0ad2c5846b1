package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/observability"
)

// TestDeadJobRetry: a payment through a provider without a verification
// client fails all three attempts and lands in the dead set, where the
// tenant's staff see it and can retry it; other tenants cannot.
func TestDeadJobRetry(t *testing.T) {
	e := newEnv(t)
	gw := e.gateway(paymentgateway.ProviderBKASH, nil)
	p := e.payment(e.invoice("10.00"), gw, "bk-1")
	e.enqueuePayment(p)
	o := e.options()
	o.Metrics = observability.NewMetrics()
	e.start(o)
	monPool := jobs.NewMonitorPool(e.redisURL)
	defer monPool.Close()
	mon := jobs.NewMonitor(e.namespace, monPool)
	ctx := context.Background()
	var dead []jobs.DeadJob
	eventually(t, 30*time.Second, "a dead job", func() bool {
		var err error
		dead, err = mon.DeadJobs(ctx, e.tenantID, 10)
		return err == nil && len(dead) == 1
	})
	if dead[0].Name != jobs.ProcessPayment || dead[0].Fails != 3 || dead[0].Error == "" || dead[0].OutboxID == 0 {
		t.Fatalf("dead job %+v", dead[0])
	}
	for name, want := range map[string]float64{"failed": 3, "retried": 2, "dead": 1} {
		c := map[string]*prometheus.CounterVec{"failed": o.Metrics.JobsFailed, "retried": o.Metrics.JobsRetried, "dead": o.Metrics.JobsDead}[name]
		if got := testutil.ToFloat64(c.WithLabelValues(jobs.ProcessPayment)); got != want {
			t.Errorf("jobs_%s_total{ProcessPayment} = %v, want %v", name, got, want)
		}
	}
	// The outbox row is DEAD: the sweeper leaves it alone.
	eventually(t, 10*time.Second, "the outbox row DEAD", func() bool {
		return e.client.OutboxJob.GetX(e.ctx, dead[0].OutboxID).Status == outboxjob.StatusDEAD
	})
	// The tenant's counts and the deployment's show it; another tenant's do not.
	for _, tc := range []struct{ tenant, want int }{{e.tenantID, 1}, {0, 1}, {e.tenantID + 1, 0}} {
		time.Sleep(1100 * time.Millisecond) // past the shared reading's freshness
		qs, err := mon.Queues(ctx, tc.tenant)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Name == jobs.ProcessPayment && (q.Dead != tc.want || q.Spec.Attempts != 3) {
				t.Errorf("tenant %d: ProcessPayment stats %+v, want %d dead", tc.tenant, q, tc.want)
			}
		}
	}
	if got := e.client.Payment.GetX(e.ctx, p.ID); got.Status != payment.StatusPENDING {
		t.Errorf("payment %s: a missing client must not fail the payment", got.Status)
	}
	if other, _ := mon.DeadJobs(ctx, e.tenantID+1, 10); len(other) != 0 {
		t.Error("another tenant sees the dead job")
	}
	if _, ok, err := mon.RetryDeadJob(ctx, e.tenantID+1, dead[0].ID); ok || err != nil {
		t.Errorf("another tenant retried it: %v %v", ok, err)
	}
	_, ok, err := mon.RetryDeadJob(ctx, e.tenantID, dead[0].ID)
	if !ok || err != nil {
		t.Fatalf("retry: %v %v", ok, err)
	}
	if d, _ := mon.DeadJobs(ctx, e.tenantID, 10); len(d) != 0 {
		t.Fatalf("still dead after the retry: %+v", d)
	}
	// It runs again: gocraft resets its fails, so, still without a client,
	// it dies again after three fresh attempts (a new dead entry).
	eventually(t, 30*time.Second, "the retried job to run", func() bool {
		d, _ := mon.DeadJobs(ctx, e.tenantID, 10)
		return len(d) == 1 && d[0].Fails == 3 && d[0].ID == dead[0].ID && !d[0].DiedAt.Before(dead[0].DiedAt)
	})
}
