package main

import (
	"context"
	"fmt"
	"github.com/ispgraph/ispgraph/internal/billing"
	"io"
	"net/http"
	"time"

	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/workers"
)

// runWorker runs the job workers (and the outbox relay) without the API.
func runWorker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("worker", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	if cfg.Embedded() {
		return fmt.Errorf("the embedded default runs its workers inside `ispgraph serve`; a separate worker needs DATABASE_URL and REDIS_URL")
	}
	m := &Main{Config: cfg, Stdout: stdout, Logger: observability.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)}
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		return err
	}
	if err := m.StartWorkers(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ispgraph worker: processing jobs in namespace %q (Ctrl-C drains and stops)\n", cfg.JobNamespace)
	<-ctx.Done()
	m.StopWorkers()
	return nil
}

// StartWorkers starts the job pools, schedules and outbox relay in this process.
func (m *Main) StartWorkers() error {
	if m.Workers != nil {
		return nil
	}
	gateways, err := m.gateways()
	if err != nil {
		return err
	}
	mk, err := m.mikrotik()
	if err != nil {
		return err
	}
	routers := routerJobs{svc: mk}
	c := m.Config
	hc := &http.Client{Timeout: 30 * time.Second}
	m.Workers = workers.New(workers.Options{
		Client: m.DB.Client, Dialect: m.DB.Dialect, Redis: m.Jobs, Namespace: c.JobNamespace, Logger: m.Logger,
		Concurrency: uint(c.WorkerConcurrency), PaymentConcurrency: uint(c.PaymentConcurrency),
		Mailer: &notify.Mailer{Config: notify.SMTPConfig{Host: c.SMTPHost, Port: c.SMTPPort, Username: c.SMTPUsername,
			Password: c.SMTPPassword, From: c.SMTPFrom, StartTLS: c.SMTPStartTLS}},
		HTTP: hc, SMSBatchSize: c.SMSBatchSize, SMSRate: float64(c.SMSRatePerSecond),
		Gateways:    gateways,
		Billing:     billingJobs{svc: &billing.Service{Client: m.DB.Client}},
		Sessions:    routers,
		Hotspot:     routers,
		Routers:     routers,
		Schedules:   true,
	})
	if c.SMTPHost == "" {
		m.Logger.Warn("no SMTP relay configured (" + "ISPGRAPH_SMTP_HOST" + "): invoice e-mail jobs will fail and retry")
	}
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
