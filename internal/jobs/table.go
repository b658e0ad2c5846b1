package jobs

import (
	"strings"
	"time"
)

// Queue names a gocraft/work namespace below the deployment's job namespace.
// Every worker pool runs in exactly one queue and registers every job of that
// queue, so a pool never meets a job it does not know (gocraft moves those to
// the dead set when it requeues scheduled and retried jobs).
type Queue string

const (
	// General holds every job except payments.
	General Queue = ""
	// Payments holds ProcessPayment only, run by its own pool so a burst of
	// reports or syncs never delays a payment.
	Payments Queue = "payments"
)

// Queues lists every queue, General first.
var Queues = []Queue{General, Payments}

// Namespace is the gocraft/work namespace of queue q under the deployment's
// job namespace base (ISPGRAPH_JOB_NAMESPACE).
func Namespace(base string, q Queue) string {
	if q == General {
		return base
	}
	if base != "" && !strings.HasSuffix(base, ":") {
		base += ":"
	}
	return base + string(q)
}

// Spec is how one job runs. Table holds the one Spec of every job; its typed
// arguments are the *Args type of the same name in this package, and its
// handler is registered under Name by the workers, which refuse to start
// when a Spec has no handler.
type Spec struct {
	Name     string
	Queue    Queue
	Attempts uint          // runs before the job goes to the dead set
	Timeout  time.Duration // the handler's context deadline
	Priority uint          // gocraft priority within its queue (1..10000; higher first)
	Schedule string        // cron spec with seconds, for periodic jobs (no arguments)
}

// Table lists every job. The five queued jobs keep the original system's
// attempts and timeouts; the scheduled ones fan out over tenants.
var Table = []Spec{
	{Name: ProcessPayment, Queue: Payments, Attempts: 3, Timeout: 120 * time.Second, Priority: 10000},
	{Name: SendInvoiceEmail, Attempts: 3, Timeout: 60 * time.Second, Priority: 100},
	{Name: SendStaffEmail, Attempts: 5, Timeout: 60 * time.Second, Priority: 200},
	{Name: GenerateBillingReport, Attempts: 2, Timeout: 300 * time.Second, Priority: 10},
	{Name: SyncMikrotikSession, Attempts: 3, Timeout: 90 * time.Second, Priority: 50},
	{Name: SendBulkSms, Attempts: 3, Timeout: 120 * time.Second, Priority: 50},
	// A sign-up code is waited for by someone at a captive portal.
	{Name: SendHotspotOtp, Attempts: 3, Timeout: 60 * time.Second, Priority: 200},
	// Router provisioning retries for a while: a router that is down must
	// catch up when it returns (the subscriber shows it is not in step).
	{Name: RouterProvision, Attempts: 10, Timeout: 90 * time.Second, Priority: 60},
	{Name: HotspotProvision, Attempts: 10, Timeout: 90 * time.Second, Priority: 60},
	// Reconciliation repairs whatever the fast path above missed; a router
	// that refuses ends the job and the next trigger reconciles it again.
	{Name: ReconcileRouter, Attempts: 3, Timeout: 5 * time.Minute, Priority: 40},
	// A router that does not answer is recorded OFFLINE and checked again at
	// the next schedule; only a failure to store the figures is retried.
	{Name: CheckRouterHealth, Attempts: 2, Timeout: 60 * time.Second, Priority: 30},
	// One job is one attempt to post a webhook: the endpoint's failures are
	// recorded and retried by the delivery's own backoff (a new outbox row,
	// ISPGRAPH_WEBHOOK_RETRY_BASE), so the queue retries only what failed
	// here (the database).
	{Name: DeliverWebhook, Attempts: 3, Timeout: 60 * time.Second, Priority: 45},

	{Name: MarkOverdueInvoices, Attempts: 3, Timeout: 10 * time.Minute, Priority: 20, Schedule: "0 15 0 * * *"},
	{Name: GenerateInvoices, Attempts: 3, Timeout: 30 * time.Minute, Priority: 20, Schedule: "0 30 0 * * *"},
	{Name: SyncRouterSessions, Attempts: 1, Timeout: 50 * time.Second, Priority: 20, Schedule: "0 * * * * *"},
	{Name: ExpireHotspotUsers, Attempts: 3, Timeout: 5 * time.Minute, Priority: 20, Schedule: "0 */5 * * * *"},
	{Name: SendReminders, Attempts: 3, Timeout: 10 * time.Minute, Priority: 20, Schedule: "0 0 9 * * *"},
	{Name: ReconcileRouters, Attempts: 1, Timeout: 2 * time.Minute, Priority: 20, Schedule: "0 */10 * * * *"},
	{Name: ExpireNetworkUsers, Attempts: 3, Timeout: 5 * time.Minute, Priority: 20, Schedule: "0 */5 * * * *"},
	{Name: CheckRouters, Attempts: 1, Timeout: 2 * time.Minute, Priority: 20, Schedule: "30 */5 * * * *"},
	{Name: PruneWebhookDeliveries, Attempts: 2, Timeout: 10 * time.Minute, Priority: 5, Schedule: "0 45 3 * * *"},
}

// SpecOf returns the Spec of a job name.
func SpecOf(name string) (Spec, bool) {
	for _, s := range Table {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// InQueue returns the Specs of queue q, in Table order.
func InQueue(q Queue) []Spec {
	var out []Spec
	for _, s := range Table {
		if s.Queue == q {
			out = append(out, s)
		}
	}
	return out
}

// SweepSlack is added to EffectBound for the relay's and gocraft's polling
// and a worker's start.
const SweepSlack = 2 * time.Minute

// EffectBound is how long after its enqueue a job's effect must be done if
// the queue kept the job: every attempt running to its timeout, plus gocraft's
// longest default backoff between attempts (fails⁴ + 15 + 29·(fails+1)
// seconds after the fails-th failure), plus SweepSlack. An outbox row still
// not done after it is enqueued again.
func (s Spec) EffectBound() time.Duration {
	d := time.Duration(s.Attempts) * s.Timeout
	for f := int64(1); f < int64(s.Attempts); f++ {
		d += time.Duration(f*f*f*f+15+29*(f+1)) * time.Second
	}
	return d + SweepSlack
}

// ReopenAfter is how long after its enqueue the sweeper puts a job's outbox
// row back to PENDING when its effect is not done: EffectBound, or override
// when it is positive (ISPGRAPH_OUTBOX_REOPEN_AFTER, for accelerated runs),
// but never less than the job's timeout, so a running attempt is not doubled
// by the sweep alone.
func (s Spec) ReopenAfter(override time.Duration) time.Duration {
	if override <= 0 {
		return s.EffectBound()
	}
	return max(override, s.Timeout)
}
