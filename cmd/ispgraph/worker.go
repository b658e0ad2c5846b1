package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/workers"
)

// runWorker runs the job workers (and the outbox relay) without the API, and
// serves /healthz, /readyz and /metrics on the worker address.
func runWorker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("worker", config.Database|config.Redis|config.Logging|config.Process|config.Jobs|config.Cache|config.Effects, args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	if cfg.Embedded() {
		return fmt.Errorf("the embedded default runs its workers inside `ispgraph serve`; a separate worker needs DATABASE_URL and REDIS_URL")
	}
	m := &Main{Config: cfg, Stdout: stdout, Logger: observability.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)}
	defer m.Close()
	// gocraft/work prints to the process's standard output: capture it
	// when this command's output is that.
	if err := observability.RouteLibraryLogs(m.Logger, stdout == io.Writer(os.Stdout)); err != nil {
		return err
	}
	if err := m.Open(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.WorkerAddr)
	if err != nil {
		return fmt.Errorf("worker address %s (%s): %w", cfg.WorkerAddr, "ISPGRAPH_WORKER_ADDR", err)
	}
	srv := &http.Server{Handler: m.workerHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("worker health server", "error", err)
		}
	}()
	defer srv.Close()
	if err := m.StartWorkers(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ispgraph worker: processing jobs in namespace %q; health and metrics on http://%s (Ctrl-C drains and stops)\n",
		cfg.JobNamespace, ln.Addr())
	<-ctx.Done()
	m.StopWorkers()
	return nil
}

// workerHandler serves a worker process's /healthz, /readyz (database and
// Redis answer) and /metrics.
func (m *Main) workerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", observability.Health())
	mux.Handle("GET /readyz", observability.Ready(m.Logger, m.readyChecks()))
	mux.Handle("GET /metrics", m.Metrics.Handler())
	return mux
}

// readyChecks are what /readyz asks: the database and Redis answer.
func (m *Main) readyChecks() map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"database": m.DB.Ping,
		"redis":    func(ctx context.Context) error { return m.Redis.Ping(ctx).Err() },
	}
}

// StartWorkers starts the job pools, schedules, outbox relay and queue
// depth sampling in this process.
func (m *Main) StartWorkers() error {
	if m.Workers != nil {
		return nil
	}
	c := m.Config
	schedules, err := workers.ParseSchedules(c.Schedules)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvSchedules, err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	w, err := workers.New(workers.Options{
		Client: m.DB.Client, Dialect: m.DB.Dialect, Redis: m.Jobs, Namespace: c.JobNamespace, Logger: m.Logger,
		Metrics:     m.Metrics,
		Concurrency: uint(c.WorkerConcurrency), PaymentConcurrency: uint(c.PaymentConcurrency),
		Billing: m.Billing, Mikrotik: m.Mikrotik, Mailer: m.Mailer, Auth: m.Auth,
		HTTP: hc, SMSBatchSize: c.SMSBatchSize, SMSRate: float64(c.SMSRatePerSecond),
		Gateways:  m.Gateways,
		Webhooks:  m.Webhooks,
		Monitor:   m.Monitor,
		Schedules: true,

		ScheduleOverrides: schedules,
		OutboxReopenAfter: c.OutboxReopenAfter,
	})
	if err != nil {
		return err
	}
	if c.SMTPHost == "" {
		m.Logger.Warn("no SMTP relay configured (ISPGRAPH_SMTP_HOST): invoice e-mail jobs will fail and retry")
	}
	m.Workers = w
	m.Workers.Start()
	return nil
}

// StopWorkers drains the job workers: no new jobs are taken and running ones finish.
func (m *Main) StopWorkers() {
	if m.Workers != nil {
		m.Workers.Stop()
		m.Workers = nil
	}
}
