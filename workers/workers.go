// Package workers is ispgraph's queue runtime on gocraft/work: one worker pool
// per queue of the job table (internal/jobs), one handler struct per job
// holding its dependencies, the periodic schedules, the outbox relay that
// moves jobs written by mutations into Redis and the sweeper that enqueues
// again what Redis lost, and per-job metrics. What a job does belongs to its
// service (billing, mikrotik, notify, report); handlers decode, build the
// context and call it.
//
// gocraft/work gives handlers no context.Context and a fresh empty context
// struct per job, so every handler is a method value of a struct that holds its
// dependencies and builds its own context: a timeout per job kind and the
// job's tenant (viewer.ForTenant).
package workers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/internal/webhook"
)

// Options are the dependencies of the workers. Every field without a
// default is required: New refuses to build workers that could not run every
// job of the table.
type Options struct {
	Client    *ent.Client
	Dialect   string // "postgres" or "sqlite3": how the relay claims rows
	Redis     *redis.Pool
	Namespace string // the deployment's job namespace; each jobs.Queue lives below it
	Logger    *slog.Logger
	// Metrics receives per-job counters and durations, and, with Monitor,
	// the queue depth every DepthInterval (default 15s). Both optional.
	Metrics       *observability.Metrics
	Monitor       *jobs.Monitor
	DepthInterval time.Duration

	// Queues are the queues this process runs (default: every queue). A
	// process running one queue runs every job of it.
	Queues []jobs.Queue
	// Concurrency is the general queue's worker count (default 2);
	// PaymentConcurrency the payment queue's (default 1).
	Concurrency        uint
	PaymentConcurrency uint

	Billing  *billing.Service
	Mikrotik *mikrotik.Service

	Mailer       *notify.Mailer
	Auth         *auth.Service // staff invitation and reset e-mail
	HTTP         *http.Client  // SMS and payment providers
	SMSBatchSize int
	SMSRate      float64 // messages per second to one tenant's provider

	Gateways *gateway.Service // opens gateway configuration and asks providers
	Webhooks *webhook.Service // posts partner webhook deliveries

	// Schedules registers the periodic enqueues.
	Schedules bool
	// ScheduleOverrides replaces the cron spec of periodic jobs by name
	// (ParseSchedules reads them from ISPGRAPH_SCHEDULES); the rest keep jobs.Table's.
	ScheduleOverrides map[string]string
	// RelayInterval is how often the relay looks for pending outbox rows (default 1s).
	RelayInterval time.Duration
	// OutboxReopenAfter, when positive, replaces the jobs' EffectBound in the
	// outbox sweep (Relay.ReopenAfter; ISPGRAPH_OUTBOX_REOPEN_AFTER).
	OutboxReopenAfter time.Duration
	// Backoff overrides gocraft's retry backoff (seconds until the next attempt).
	Backoff func(*work.Job) int64
}

// Workers is the running set of pools (one per jobs.Queue) and the relay.
type Workers struct {
	opts  Options
	pools map[jobs.Queue]*work.WorkerPool
	Relay *Relay

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// jobContext is gocraft's per-job context type; it stays empty on purpose:
// dependencies live on the handler structs.
type jobContext struct{}

// New builds one pool per queue and registers, in each, the handler of every
// job of that queue. A missing dependency is an error.
func New(o Options) (*Workers, error) {
	var missing []string
	for name, ok := range map[string]bool{
		"Client": o.Client != nil, "Redis": o.Redis != nil, "Billing": o.Billing != nil,
		"Mikrotik": o.Mikrotik != nil, "Mailer": o.Mailer != nil, "Gateways": o.Gateways != nil,
		"Auth": o.Auth != nil, "Webhooks": o.Webhooks != nil,
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("workers: missing dependencies: %s", strings.Join(missing, ", "))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	if o.PaymentConcurrency == 0 {
		o.PaymentConcurrency = 1
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if o.SMSBatchSize <= 0 {
		o.SMSBatchSize = 50
	}
	if o.SMSRate <= 0 {
		o.SMSRate = 10
	}
	w := &Workers{opts: o, pools: map[jobs.Queue]*work.WorkerPool{}}
	enq := NewEnqueuer(o.Namespace, o.Redis)
	w.Relay = &Relay{Client: o.Client, Dialect: o.Dialect, Enqueuer: enq, Logger: o.Logger, Interval: o.RelayInterval, Metrics: o.Metrics,
		ReopenAfter: o.OutboxReopenAfter}

	pay := &PaymentHandler{Client: o.Client, Billing: o.Billing, Gateways: o.Gateways, Logger: o.Logger}
	mail := &InvoiceEmailHandler{Client: o.Client, Mailer: o.Mailer, Logger: o.Logger}
	staff := &StaffEmailHandler{Auth: o.Auth}
	report := &ReportHandler{Client: o.Client, Logger: o.Logger}
	sync := &MikrotikHandler{Mikrotik: o.Mikrotik, Logger: o.Logger}
	prov := &ProvisionHandler{Mikrotik: o.Mikrotik, Logger: o.Logger}
	otp := &HotspotOtpHandler{Client: o.Client, Mikrotik: o.Mikrotik, HTTP: o.HTTP, Logger: o.Logger}
	sms := &BulkSmsHandler{Client: o.Client, HTTP: o.HTTP, BatchSize: o.SMSBatchSize, Rate: o.SMSRate, Logger: o.Logger}
	hooks := &WebhookHandler{Webhooks: o.Webhooks}
	sched := &ScheduleHandler{Client: o.Client, Enqueuer: enq, Billing: o.Billing, Mikrotik: o.Mikrotik, Webhooks: o.Webhooks, Logger: o.Logger}

	handlers := map[string]func(*work.Job) error{
		jobs.ProcessPayment:         pay.Process,
		jobs.SendInvoiceEmail:       mail.Send,
		jobs.SendStaffEmail:         staff.Send,
		jobs.GenerateBillingReport:  report.Generate,
		jobs.SyncMikrotikSession:    sync.Sync,
		jobs.SendBulkSms:            sms.Send,
		jobs.RouterProvision:        prov.Subscriber,
		jobs.HotspotProvision:       prov.Hotspot,
		jobs.MarkOverdueInvoices:    sched.MarkOverdue,
		jobs.GenerateInvoices:       sched.GenerateInvoices,
		jobs.SyncRouterSessions:     sched.SyncRouters,
		jobs.ExpireHotspotUsers:     sched.ExpireHotspot,
		jobs.SendReminders:          sched.SendReminders,
		jobs.ReconcileRouter:        prov.Reconcile,
		jobs.ReconcileRouters:       sched.ReconcileRouters,
		jobs.ExpireNetworkUsers:     sched.ExpireSubscribers,
		jobs.CheckRouterHealth:      sync.Health,
		jobs.CheckRouters:           sched.CheckRouters,
		jobs.SendHotspotOtp:         otp.Send,
		jobs.DeliverWebhook:         hooks.Deliver,
		jobs.PruneWebhookDeliveries: sched.PruneWebhooks,
	}
	if len(o.Queues) == 0 {
		o.Queues = jobs.Queues
	}
	for _, q := range jobs.Queues {
		conc := o.Concurrency
		if q == jobs.Payments {
			conc = o.PaymentConcurrency
		}
		pool := work.NewWorkerPool(jobContext{}, conc, jobs.Namespace(o.Namespace, q), o.Redis)
		// Every job of the queue, so the pool's requeuer never meets a
		// scheduled or retried job it does not know.
		for _, s := range jobs.InQueue(q) {
			h := handlers[s.Name]
			if h == nil {
				return nil, fmt.Errorf("workers: job %s has no handler", s.Name)
			}
			opts := work.JobOptions{Priority: s.Priority, MaxFails: s.Attempts, Backoff: o.Backoff}
			pool.JobWithOptions(s.Name, opts, w.run(s, h))
			if s.Schedule != "" && o.Schedules {
				spec := s.Schedule
				if v, ok := o.ScheduleOverrides[s.Name]; ok {
					spec = v
				}
				pool.PeriodicallyEnqueue(spec, s.Name)
			}
		}
		if slices.Contains(o.Queues, q) {
			w.pools[q] = pool
		}
	}
	if len(handlers) != len(jobs.Table) {
		return nil, fmt.Errorf("workers: %d handlers for %d jobs in the table", len(handlers), len(jobs.Table))
	}
	return w, nil
}

// run wraps a handler: it times the attempt, counts it, and settles the job's
// outbox row — DONE once the handler returned without error (its effect is
// committed), DEAD when the last attempt failed.
func (w *Workers) run(s jobs.Spec, h func(*work.Job) error) func(*work.Job) error {
	return func(job *work.Job) error {
		started := time.Now()
		err := h(job)
		last := err != nil && uint(job.Fails)+1 >= s.Attempts
		if m := w.opts.Metrics; m != nil {
			m.JobDuration.WithLabelValues(s.Name).Observe(time.Since(started).Seconds())
			switch {
			case err == nil:
				m.JobsProcessed.WithLabelValues(s.Name, "ok").Inc()
			case last:
				m.JobsProcessed.WithLabelValues(s.Name, "failed").Inc()
				m.JobsFailed.WithLabelValues(s.Name).Inc()
				m.JobsDead.WithLabelValues(s.Name).Inc()
			default:
				m.JobsProcessed.WithLabelValues(s.Name, "failed").Inc()
				m.JobsFailed.WithLabelValues(s.Name).Inc()
				m.JobsRetried.WithLabelValues(s.Name).Inc()
			}
		}
		id := outboxID(job)
		if id <= 0 {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		switch {
		case err == nil:
			if merr := outbox.MarkDone(ctx, w.opts.Client, id); merr != nil {
				// The effect is committed but not recorded: the retry finds
				// it done (handlers are idempotent) and records it then.
				return fmt.Errorf("record outbox row %d done: %w", id, merr)
			}
		case last:
			if merr := outbox.MarkDead(ctx, w.opts.Client, id, truncate(err.Error(), 500)); merr != nil {
				w.opts.Logger.Error("record outbox row dead", "job", s.Name, "outbox_id", id, "error", merr)
			}
		}
		return err
	}
}

// outboxID is the outbox row a job was relayed from (0: none).
func outboxID(job *work.Job) int {
	switch v := job.Args[OutboxIDArg].(type) {
	case float64:
		return int(v)
	case int:
		return v
	case int64:
		return int(v)
	}
	return 0
}

// Start starts the pools and the relay.
func (w *Workers) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return
	}
	w.started = true
	for _, p := range w.pools {
		p.Start()
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.Relay.Run(ctx) })
	if w.opts.Metrics != nil && w.opts.Monitor != nil {
		wg.Go(func() { w.sampleDepth(ctx) })
	}
	go func() {
		defer close(w.done)
		wg.Wait()
	}()
	w.opts.Logger.Info("job workers started", "namespace", w.opts.Namespace,
		"concurrency", w.opts.Concurrency, "payment_concurrency", w.opts.PaymentConcurrency)
}

// Stop drains gracefully: the relay stops claiming rows, then each pool stops
// fetching and waits for the jobs in flight to finish.
func (w *Workers) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		return
	}
	w.started = false
	w.cancel()
	<-w.done
	var wg sync.WaitGroup
	for _, p := range w.pools {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
	w.opts.Logger.Info("job workers stopped")
}

// sampleDepth sets the queue depth gauges from the monitor until ctx ends.
func (w *Workers) sampleDepth(ctx context.Context) {
	every := w.opts.DepthInterval
	if every <= 0 {
		every = 15 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if qs, err := w.opts.Monitor.Queues(ctx, 0); err == nil {
			g := w.opts.Metrics.JobQueueDepth
			for _, q := range qs {
				g.WithLabelValues(q.Name, "queued").Set(float64(q.Queued))
				g.WithLabelValues(q.Name, "in_progress").Set(float64(q.InProgress))
				g.WithLabelValues(q.Name, "retry").Set(float64(q.Retries))
				g.WithLabelValues(q.Name, "dead").Set(float64(q.Dead))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NewRedisPool returns a redigo pool for a redis:// URL.
func NewRedisPool(url string) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     8,
		MaxActive:   32,
		Wait:        true,
		IdleTimeout: 4 * time.Minute,
		Dial: func() (redis.Conn, error) {
			return redis.DialURL(url,
				redis.DialConnectTimeout(3*time.Second),
				redis.DialReadTimeout(15*time.Second),
				redis.DialWriteTimeout(5*time.Second))
		},
		TestOnBorrow: func(c redis.Conn, t time.Time) error {
			if time.Since(t) < time.Minute {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

// tenantContext is the context every tenant job runs in: the job's tenant as
// a system viewer and the job kind's timeout.
func tenantContext(name string, tenantID int) (context.Context, context.CancelFunc) {
	timeout := time.Minute
	if s, ok := jobs.SpecOf(name); ok {
		timeout = s.Timeout
	}
	return context.WithTimeout(viewer.ForTenant(context.Background(), tenantID), timeout)
}

// decode decodes a job's arguments and checks its tenant.
func decode(job *work.Job, dst jobs.Args, tenantID func() int) error {
	if err := jobs.FromMap(job.Args, dst); err != nil {
		return err
	}
	if tenantID() <= 0 {
		return fmt.Errorf("workers: %s job %s has no tenant_id", job.Name, job.ID)
	}
	return nil
}

// truncate keeps an error message short enough for a row.
func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n]
}
