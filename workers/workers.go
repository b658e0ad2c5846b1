// Package workers owns ispgraph's background work on gocraft/work: the worker
// pools, one handler struct per job holding its dependencies, the periodic
// schedules, the outbox relay that moves jobs written by mutations into Redis,
// and the queue statistics staff see.
//
// gocraft/work gives handlers no context.Context and a fresh empty context
// struct per job, so every handler is a method value of a struct that holds its
// dependencies and builds its own context: a timeout per job kind and the
// job's tenant (viewer.ForTenant).
package workers

import (
	"context"
	"fmt"
	"github.com/ispgraph/ispgraph/internal/billing"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Spec is how one job kind runs: attempts, timeout, priority.
type Spec struct {
	Name     string
	Attempts uint          // runs before the job goes to the dead set
	Timeout  time.Duration // the handler's context deadline
	Priority uint          // gocraft priority within a pool (1..10000; higher first)
	Schedule string        // cron spec with seconds, for periodic jobs
}

// Specs lists every job kind. The five queued jobs keep the original system's
// attempts and timeouts; the scheduled ones fan out over tenants.
var Specs = []Spec{
	{Name: jobs.ProcessPayment, Attempts: 3, Timeout: 120 * time.Second, Priority: 10000},
	{Name: jobs.SendInvoiceEmail, Attempts: 3, Timeout: 60 * time.Second, Priority: 100},
	{Name: jobs.GenerateBillingReport, Attempts: 2, Timeout: 300 * time.Second, Priority: 10},
	{Name: jobs.SyncMikrotikSession, Attempts: 3, Timeout: 90 * time.Second, Priority: 50},
	{Name: jobs.SendBulkSms, Attempts: 3, Timeout: 120 * time.Second, Priority: 50},
	// Router provisioning retries for a while: a router that is down must
	// catch up when it returns (the subscriber shows it is not in step).
	{Name: jobs.RouterProvision, Attempts: 10, Timeout: 90 * time.Second, Priority: 60},
	{Name: jobs.HotspotProvision, Attempts: 10, Timeout: 90 * time.Second, Priority: 60},

	{Name: jobs.MarkOverdueInvoices, Attempts: 3, Timeout: 10 * time.Minute, Priority: 20, Schedule: "0 15 0 * * *"},
	{Name: jobs.GenerateInvoices, Attempts: 3, Timeout: 30 * time.Minute, Priority: 20, Schedule: "0 30 0 * * *"},
	{Name: jobs.SyncRouterSessions, Attempts: 1, Timeout: 50 * time.Second, Priority: 20, Schedule: "0 * * * * *"},
	{Name: jobs.ExpireHotspotUsers, Attempts: 3, Timeout: 5 * time.Minute, Priority: 20, Schedule: "0 */5 * * * *"},
	{Name: jobs.SendReminders, Attempts: 3, Timeout: 10 * time.Minute, Priority: 20, Schedule: "0 0 9 * * *"},
}

// SpecOf returns the spec of a job name.
func SpecOf(name string) (Spec, bool) {
	for _, s := range Specs {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Options are the dependencies of the workers. Interfaces owned by other
// areas (billing, MikroTik, hotspot) may be nil: their jobs then log that
// they have nothing to do.
type Options struct {
	Client    *ent.Client
	Dialect   string // "postgres" or "sqlite3": how the relay claims rows
	Redis     *redis.Pool
	Namespace string
	Logger    *slog.Logger

	// Concurrency is the general pool's worker count (default 2);
	// PaymentConcurrency the high-priority payment pool's (default 1).
	Concurrency        uint
	PaymentConcurrency uint

	Mailer       *notify.Mailer
	HTTP         *http.Client // SMS and payment providers
	SMSBatchSize int
	SMSRate      float64 // messages per second to one tenant's provider

	Payments PaymentCompleter
	Gateways *gateway.Service // opens gateway configuration and asks providers

	Billing  BillingScheduler  // mark overdue, generate invoices (billing issue)
	Sessions SessionSyncer     // router sessions (MikroTik issue)
	Hotspot  HotspotExpirer    // hotspot expiry (hotspot issue)
	Routers  RouterProvisioner // carries subscriber and hotspot changes to routers

	// Schedules registers the periodic enqueues (on by default through New's caller).
	Schedules bool
	// RelayInterval is how often the relay looks for pending outbox rows (default 1s).
	RelayInterval time.Duration
	// Backoff overrides gocraft's retry backoff (seconds until the next attempt).
	Backoff func(*work.Job) int64
}

// Workers is the running set of pools and the relay.
type Workers struct {
	opts     Options
	general  *work.WorkerPool
	payments *work.WorkerPool
	Relay    *Relay

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// jobContext is gocraft's per-job context type; it stays empty on purpose:
// dependencies live on the handler structs.
type jobContext struct{}

// New builds the pools and registers every handler.
func New(o Options) *Workers {
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
	if o.Payments == nil {
		o.Payments = &BillingPayments{Service: &billing.Service{Client: o.Client}, Logger: o.Logger}
	}
	w := &Workers{opts: o}
	w.general = work.NewWorkerPool(jobContext{}, o.Concurrency, o.Namespace, o.Redis)
	w.payments = work.NewWorkerPool(jobContext{}, o.PaymentConcurrency, o.Namespace, o.Redis)
	w.Relay = &Relay{Client: o.Client, Dialect: o.Dialect, Enqueuer: work.NewEnqueuer(o.Namespace, o.Redis), Logger: o.Logger, Interval: o.RelayInterval}

	pay := &PaymentHandler{Client: o.Client, Completer: o.Payments, Gateways: o.Gateways, Logger: o.Logger}
	mail := &InvoiceEmailHandler{Client: o.Client, Mailer: o.Mailer, Logger: o.Logger}
	report := &ReportHandler{Client: o.Client, Logger: o.Logger}
	sync := &MikrotikHandler{Sessions: o.Sessions, Logger: o.Logger}
	prov := &ProvisionHandler{Routers: o.Routers, Logger: o.Logger}
	sms := &BulkSmsHandler{Client: o.Client, HTTP: o.HTTP, BatchSize: o.SMSBatchSize, Rate: o.SMSRate, Logger: o.Logger}
	sched := &ScheduleHandler{Client: o.Client, Enqueuer: w.Relay.Enqueuer, Billing: o.Billing, Sessions: o.Sessions, Hotspot: o.Hotspot, Logger: o.Logger}

	handlers := map[string]func(*work.Job) error{
		jobs.ProcessPayment:        pay.Process,
		jobs.SendInvoiceEmail:      mail.Send,
		jobs.GenerateBillingReport: report.Generate,
		jobs.SyncMikrotikSession:   sync.Sync,
		jobs.SendBulkSms:           sms.Send,
		jobs.RouterProvision:       prov.Subscriber,
		jobs.HotspotProvision:      prov.Hotspot,
		jobs.MarkOverdueInvoices:   sched.MarkOverdue,
		jobs.GenerateInvoices:      sched.GenerateInvoices,
		jobs.SyncRouterSessions:    sched.SyncRouters,
		jobs.ExpireHotspotUsers:    sched.ExpireHotspot,
		jobs.SendReminders:         sched.SendReminders,
	}
	for _, s := range Specs {
		opts := work.JobOptions{Priority: s.Priority, MaxFails: s.Attempts, Backoff: o.Backoff}
		h := handlers[s.Name]
		// The payment pool takes only payments; the general pool takes
		// everything, payments first, so a burst of payments is never
		// stuck behind reports.
		if s.Name == jobs.ProcessPayment {
			w.payments.JobWithOptions(s.Name, opts, h)
		}
		w.general.JobWithOptions(s.Name, opts, h)
		if s.Schedule != "" && o.Schedules {
			w.general.PeriodicallyEnqueue(s.Schedule, s.Name)
		}
	}
	return w
}

// Start starts the pools and the relay.
func (w *Workers) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return
	}
	w.started = true
	w.general.Start()
	w.payments.Start()
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		w.Relay.Run(ctx)
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
	for _, p := range []*work.WorkerPool{w.general, w.payments} {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
	w.opts.Logger.Info("job workers stopped")
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
	if s, ok := SpecOf(name); ok {
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
