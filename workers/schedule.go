package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// BillingScheduler is what the daily billing schedules call, per tenant (the
// tenant is in ctx). Built in the billing issue; both must be idempotent.
type BillingScheduler interface {
	// MarkOverdue marks PENDING invoices past due (and grace) OVERDUE.
	MarkOverdue(ctx context.Context, now time.Time) (int, error)
	// GenerateDueInvoices issues the invoices of every billing cycle that
	// has started by now and has none yet.
	GenerateDueInvoices(ctx context.Context, now time.Time) (int, error)
}

// SessionSyncer syncs one router's live sessions (optionally one username).
// Built in the MikroTik issue.
type SessionSyncer interface {
	SyncSessions(ctx context.Context, routerID int, username string) error
}

// HotspotExpirer expires hotspot users whose time is up. Built in the
// hotspot issue.
type HotspotExpirer interface {
	ExpireHotspotUsers(ctx context.Context, now time.Time) (int, error)
}

// SubscriberExpirer expires subscribers whose expires_at has passed (the
// provisioning hook disables them on their routers).
type SubscriberExpirer interface {
	ExpireNetworkUsers(ctx context.Context, now time.Time) (int, error)
}

// MikrotikHandler runs SyncMikrotikSession through a SessionSyncer. Until the
// MikroTik issue supplies one it logs that there is nothing to do.
type MikrotikHandler struct {
	Sessions SessionSyncer
	Logger   *slog.Logger
}

// Sync is the SyncMikrotikSession handler.
func (h *MikrotikHandler) Sync(job *work.Job) error {
	var a jobs.SyncMikrotikSessionArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	if h.Sessions == nil {
		h.Logger.Info("SyncMikrotikSession: no router session syncer is wired in yet; nothing done",
			"tenant_id", a.TenantID, "router_id", a.RouterID)
		return nil
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	return h.Sessions.SyncSessions(ctx, a.RouterID, a.Username)
}

// ScheduleHandler runs the periodic jobs. Each fans out over the active
// tenants and acts inside each one with viewer.ForTenant.
type ScheduleHandler struct {
	Client   *ent.Client
	Enqueuer *work.Enqueuer
	Billing  BillingScheduler
	Sessions SessionSyncer
	Hotspot  HotspotExpirer
	Expirer  SubscriberExpirer
	Logger   *slog.Logger
	// ReminderDays is how many days before the due date the reminder goes (default 3).
	ReminderDays int
}

// forEachTenant runs fn in each active tenant's context and joins the errors.
func (h *ScheduleHandler) forEachTenant(job *work.Job, fn func(ctx context.Context, tenantID int) error) error {
	s, _ := SpecOf(job.Name)
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	// Listing tenants is not work for one tenant.
	ids, err := h.Client.Tenant.Query().Where(tenant.StatusEQ(tenant.StatusACTIVE)).IDs(tenancy.Bypass(ctx))
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := fn(viewer.ForTenant(ctx, id), id); err != nil {
			h.Logger.Error("scheduled job failed for a tenant", "job", job.Name, "tenant_id", id, "error", err)
			errs = append(errs, fmt.Errorf("tenant %d: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// MarkOverdue is the daily MarkOverdueInvoices handler.
func (h *ScheduleHandler) MarkOverdue(job *work.Job) error {
	if h.Billing == nil {
		h.Logger.Info("MarkOverdueInvoices: no billing service wired in yet; nothing done")
		return nil
	}
	return h.forEachTenant(job, func(ctx context.Context, _ int) error {
		_, err := h.Billing.MarkOverdue(ctx, time.Now())
		return err
	})
}

// GenerateInvoices is the daily GenerateInvoices handler.
func (h *ScheduleHandler) GenerateInvoices(job *work.Job) error {
	if h.Billing == nil {
		h.Logger.Info("GenerateInvoices: no billing service wired in yet; nothing done")
		return nil
	}
	return h.forEachTenant(job, func(ctx context.Context, _ int) error {
		_, err := h.Billing.GenerateDueInvoices(ctx, time.Now())
		return err
	})
}

// ExpireHotspot is the ExpireHotspotUsers handler.
func (h *ScheduleHandler) ExpireHotspot(job *work.Job) error {
	if h.Hotspot == nil {
		h.Logger.Info("ExpireHotspotUsers: no hotspot service wired in yet; nothing done")
		return nil
	}
	return h.forEachTenant(job, func(ctx context.Context, _ int) error {
		_, err := h.Hotspot.ExpireHotspotUsers(ctx, time.Now())
		return err
	})
}

// SyncRouters is the every-minute SyncRouterSessions handler: it queues one
// SyncMikrotikSession per active router, unique per router so a slow router
// never piles up syncs.
func (h *ScheduleHandler) SyncRouters(job *work.Job) error {
	if h.Sessions == nil {
		h.Logger.Debug("SyncRouterSessions: no router session syncer wired in yet; nothing done")
		return nil
	}
	return h.forEachTenant(job, func(ctx context.Context, tenantID int) error {
		ids, err := h.Client.Router.Query().Where(router.StatusEQ(router.StatusACTIVE)).IDs(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			m, err := jobs.ToMap(jobs.SyncMikrotikSessionArgs{TenantID: tenantID, RouterID: id})
			if err != nil {
				return err
			}
			if _, err := h.Enqueuer.EnqueueUnique(jobs.SyncMikrotikSession, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// ExpireSubscribers is the ExpireNetworkUsers handler.
func (h *ScheduleHandler) ExpireSubscribers(job *work.Job) error {
	return h.forEachTenant(job, func(ctx context.Context, _ int) error {
		_, err := h.Expirer.ExpireNetworkUsers(ctx, time.Now())
		return err
	})
}

// ReconcileRouters is the ReconcileRouters handler: one ReconcileRouter job
// per active router, unique per router so a slow router never piles them up.
func (h *ScheduleHandler) ReconcileRouters(job *work.Job) error {
	return h.perActiveRouter(job, func(tenantID, routerID int) (string, jobs.Args) {
		return jobs.ReconcileRouter, jobs.ReconcileRouterArgs{TenantID: tenantID, RouterID: routerID}
	})
}

// perActiveRouter queues one job per active router of every active tenant,
// unique per arguments.
func (h *ScheduleHandler) perActiveRouter(job *work.Job, mk func(tenantID, routerID int) (string, jobs.Args)) error {
	return h.forEachTenant(job, func(ctx context.Context, tenantID int) error {
		ids, err := h.Client.Router.Query().Where(router.StatusEQ(router.StatusACTIVE)).IDs(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			name, a := mk(tenantID, id)
			m, err := jobs.ToMap(a)
			if err != nil {
				return err
			}
			if _, err := h.Enqueuer.EnqueueUnique(name, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// SendReminders is the daily reminder handler: invoices due within
// ReminderDays get a reminder e-mail and OVERDUE invoices an overdue e-mail,
// each through the outbox with a dedup key per invoice and kind, so each is
// queued once however often the schedule runs.
func (h *ScheduleHandler) SendReminders(job *work.Job) error {
	days := h.ReminderDays
	if days <= 0 {
		days = 3
	}
	now := time.Now()
	return h.forEachTenant(job, func(ctx context.Context, tenantID int) error {
		due, err := h.Client.Invoice.Query().
			Where(invoice.StatusEQ(invoice.StatusPENDING), invoice.DueDateGTE(now), invoice.DueDateLT(now.AddDate(0, 0, days))).
			IDs(ctx)
		if err != nil {
			return err
		}
		overdue, err := h.Client.Invoice.Query().Where(invoice.StatusEQ(invoice.StatusOVERDUE)).IDs(ctx)
		if err != nil {
			return err
		}
		for kind, ids := range map[string][]int{"reminder": due, "overdue": overdue} {
			for _, id := range ids {
				if err := EnqueueInvoiceEmail(ctx, h.Client, tenantID, id, kind); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// EnqueueInvoiceEmail writes a SendInvoiceEmail job into the outbox through
// client (a mutation's transaction, or the root client), once per invoice and
// kind.
func EnqueueInvoiceEmail(ctx context.Context, client *ent.Client, tenantID, invoiceID int, kind string) error {
	return outbox.Enqueue(ctx, client,
		jobs.SendInvoiceEmailArgs{TenantID: tenantID, InvoiceID: invoiceID, EmailKind: kind},
		outbox.DedupKey(fmt.Sprintf("invoice-email:%d:%s", invoiceID, kind)))
}
