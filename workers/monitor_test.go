package workers_test

import (
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/workers"
)

// TestDeadJobRetry: a payment through a provider without a verification
// client fails all three attempts and lands in the dead set, where the
// tenant's staff see it and can retry it; other tenants cannot.
func TestDeadJobRetry(t *testing.T) {
	e := newEnv(t)
	gw := e.gateway(paymentgateway.ProviderBKASH, nil)
	p := e.payment(e.invoice("10.00"), gw, "bk-1")
	e.enqueuePayment(p)
	e.start(e.options())
	mon := &workers.Monitor{Namespace: e.namespace, Redis: e.pool}
	var dead []workers.DeadJob
	eventually(t, 30*time.Second, "a dead job", func() bool {
		var err error
		dead, err = mon.DeadJobs(e.tenantID, 10)
		return err == nil && len(dead) == 1
	})
	if dead[0].Name != jobs.ProcessPayment || dead[0].Fails != 3 || dead[0].Error == "" {
		t.Fatalf("dead job %+v", dead[0])
	}
	qs, err := mon.Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Name == jobs.ProcessPayment && (q.Dead != 1 || q.Spec.Attempts != 3) {
			t.Errorf("ProcessPayment stats %+v", q)
		}
	}
	if got := e.client.Payment.GetX(e.ctx, p.ID); got.Status != payment.StatusPENDING {
		t.Errorf("payment %s: a missing client must not fail the payment", got.Status)
	}
	if other, _ := mon.DeadJobs(e.tenantID+1, 10); len(other) != 0 {
		t.Error("another tenant sees the dead job")
	}
	if ok, err := mon.RetryDeadJob(e.tenantID+1, dead[0].ID); ok || err != nil {
		t.Errorf("another tenant retried it: %v %v", ok, err)
	}
	ok, err := mon.RetryDeadJob(e.tenantID, dead[0].ID)
	if !ok || err != nil {
		t.Fatalf("retry: %v %v", ok, err)
	}
	if d, _ := mon.DeadJobs(e.tenantID, 10); len(d) != 0 {
		t.Fatalf("still dead after the retry: %+v", d)
	}
	// It runs again: gocraft resets its fails, so, still without a client,
	// it dies again after three fresh attempts (a new dead entry).
	eventually(t, 30*time.Second, "the retried job to run", func() bool {
		d, _ := mon.DeadJobs(e.tenantID, 10)
		return len(d) == 1 && d[0].Fails == 3 && d[0].ID == dead[0].ID && !d[0].DiedAt.Before(dead[0].DiedAt)
	})
}
