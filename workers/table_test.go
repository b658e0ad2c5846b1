package workers_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/internal/jobs"
)

// nsKey is gocraft's key k in namespace ns.
func nsKey(ns, k string) string {
	if !strings.HasSuffix(ns, ":") {
		ns += ":"
	}
	return ns + k
}

// zcard counts a sorted set (retry, scheduled, dead) of a namespace.
func (e *env) zcard(ns, set string) int {
	conn := e.pool.Get()
	defer conn.Close()
	n, err := redis.Int(conn.Do("ZCARD", nsKey(ns, set)))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestPaymentPoolAloneLosesNothing runs only the payment queue's pool while
// jobs of the general queue wait as scheduled jobs and retries, due now. The
// pool's requeuer must not touch them (gocraft dead-letters a due job its
// pool does not know): none is dead, and the payment runs. A pool registered
// the old way — ProcessPayment alone in the shared namespace — dead-letters
// the same jobs, which shows the check can fail.
func TestPaymentPoolAloneLosesNothing(t *testing.T) {
	e := newEnv(t)
	general := jobs.Namespace(e.namespace, jobs.General)
	due := func(ns string) {
		t.Helper()
		enq := work.NewEnqueuer(ns, e.pool)
		sync, _ := jobs.ToMap(jobs.SyncMikrotikSessionArgs{TenantID: e.tenantID, RouterID: 1})
		if _, err := enq.EnqueueIn(jobs.SyncMikrotikSession, 0, sync); err != nil {
			t.Fatal(err)
		}
		// A retry of an invoice e-mail, due now, as gocraft writes it.
		mail, _ := jobs.ToMap(jobs.SendInvoiceEmailArgs{TenantID: e.tenantID, InvoiceID: 1, EmailKind: "new"})
		raw, _ := json.Marshal(map[string]any{"name": jobs.SendInvoiceEmail, "id": "retry-1", "t": time.Now().Unix(),
			"args": mail, "fails": 1, "err": "smtp down", "failed_at": time.Now().Unix()})
		conn := e.pool.Get()
		defer conn.Close()
		if _, err := conn.Do("ZADD", nsKey(ns, "retry"), time.Now().Unix()-1, raw); err != nil {
			t.Fatal(err)
		}
	}

	// The control: the old registration dead-letters both.
	old := e.namespace + "old:"
	due(old)
	oldPool := work.NewWorkerPool(struct{}{}, 1, old, e.pool)
	oldPool.Job(jobs.ProcessPayment, func(*work.Job) error { return nil })
	oldPool.Start()
	eventually(t, 20*time.Second, "the old registration to dead-letter the general jobs", func() bool {
		return e.zcard(old, "dead") == 2
	})
	oldPool.Stop()

	// The job table: only the payment queue runs in this process.
	due(general)
	o := e.options()
	o.Queues = []jobs.Queue{jobs.Payments}
	o.Schedules = true
	e.start(o)
	p := e.payment(e.invoice("10.00"), nil, "")
	e.enqueuePayment(p)
	eventually(t, 20*time.Second, "the payment", func() bool {
		return e.client.Payment.GetX(e.ctx, p.ID).Status == payment.StatusCOMPLETED
	})
	// The payment pool's requeuer has run many times (every second) by
	// now; wait three more passes to be sure.
	time.Sleep(3 * time.Second)
	if n := e.zcard(general, "dead"); n != 0 {
		t.Fatalf("%d general jobs dead-lettered while only the payment pool ran", n)
	}
	if n := e.zcard(general, "retry") + e.zcard(general, "scheduled"); n != 2 {
		t.Fatalf("%d general jobs left waiting, want 2", n)
	}
	if n := e.zcard(jobs.Namespace(e.namespace, jobs.Payments), "dead"); n != 0 {
		t.Fatalf("%d payment jobs dead", n)
	}

}
