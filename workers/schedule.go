package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gocraft/work"
	"github.com/robfig/cron"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/internal/webhook"
)

// ParseSchedules reads schedule overrides written as
// "JobName=cron spec;JobName=cron spec" (cron with seconds, UTC, as in jobs.Table),
// e.g. "MarkOverdueInvoices=*/15 * * * * *". Every name must be a periodic job
// and every spec must parse; an empty string overrides nothing.
func ParseSchedules(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(v, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, spec, ok := strings.Cut(part, "=")
		name, spec = strings.TrimSpace(name), strings.TrimSpace(spec)
		if !ok || name == "" || spec == "" {
			return nil, fmt.Errorf("schedule %q: want JobName=cron spec", part)
		}
		s, known := jobs.SpecOf(name)
		if !known || s.Schedule == "" {
			var periodic []string
			for _, s := range jobs.Table {
				if s.Schedule != "" {
					periodic = append(periodic, s.Name)
				}
			}
			return nil, fmt.Errorf("schedule %q: %s is not a periodic job (one of %s)", part, name, strings.Join(periodic, ", "))
		}
		if _, err := cron.Parse(spec); err != nil {
			return nil, fmt.Errorf("schedule %q: %v", part, err)
		}
		out[name] = spec
	}
	return out, nil
}

// MikrotikHandler runs SyncMikrotikSession through the router service.
type MikrotikHandler struct {
	Mikrotik *mikrotik.Service
	Logger   *slog.Logger
}

// Sync is the SyncMikrotikSession handler.
func (h *MikrotikHandler) Sync(job *work.Job) error {
	var a jobs.SyncMikrotikSessionArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	_, err := h.Mikrotik.Sync(ctx, a.TenantID, a.RouterID, a.Username)
	return err
}

// Health is the CheckRouterHealth handler. What the router answered (or
// that it did not) is stored on the router by the check; only a failure to
// store it is retried.
func (h *MikrotikHandler) Health(job *work.Job) error {
	var a jobs.CheckRouterHealthArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	_, err := h.Mikrotik.Check(ctx, a.TenantID, a.RouterID)
	var unreachable *mikrotik.UnreachableError
	if err != nil && (!mikrotik.Retryable(err) || errors.As(err, &unreachable)) {
		h.Logger.Info("router health check failed; recorded on the router", "router_id", a.RouterID, "error", err)
		return nil
	}
	return err
}

// ScheduleHandler runs the periodic jobs. Each fans out over the active
// tenants and acts inside each one with viewer.ForTenant.
type ScheduleHandler struct {
	Client   *ent.Client
	Enqueuer *Enqueuer
	Billing  *billing.Service
	Mikrotik *mikrotik.Service
	Webhooks *webhook.Service
	Logger   *slog.Logger
	// ReminderDays is how many days before the due date the reminder goes (default 3).
	ReminderDays int
}

// forEachTenant runs fn in each active tenant's context and joins the errors.
func (h *ScheduleHandler) forEachTenant(job *work.Job, fn func(ctx context.Context, tenantID int) error) error {
	s, _ := jobs.SpecOf(job.Name)
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
	return h.forEachTenant(job, func(ctx context.Context, _ int) error {
		_, err := h.Billing.ProcessOverdue(ctx)
		return err
	})
}

// GenerateInvoices is the daily GenerateInvoices handler.
func (h *ScheduleHandler) GenerateInvoices(job *work.Job) error {
	return h.forEachTenant(job, func(ctx context.Context, _ int) error {
		_, err := h.Billing.GenerateInvoices(ctx, "")
		return err
	})
}

// ExpireHotspot is the ExpireHotspotUsers handler.
func (h *ScheduleHandler) ExpireHotspot(job *work.Job) error {
	return h.forEachTenant(job, func(ctx context.Context, tenantID int) error {
		_, err := h.Mikrotik.ExpireHotspotUsers(ctx, tenantID)
		return err
	})
}

// SyncRouters is the every-minute SyncRouterSessions handler: it queues one
// SyncMikrotikSession per active router, unique per router so a slow router
// never piles up syncs.
func (h *ScheduleHandler) SyncRouters(job *work.Job) error {
	return h.perActiveRouter(job, func(tenantID, routerID int) (string, jobs.Args) {
		return jobs.SyncMikrotikSession, jobs.SyncMikrotikSessionArgs{TenantID: tenantID, RouterID: routerID}
	})
}

// ReconcileRouters is the ReconcileRouters handler: one ReconcileRouter job
// per active router, unique per router so a slow router never piles them up.
func (h *ScheduleHandler) ReconcileRouters(job *work.Job) error {
	return h.perActiveRouter(job, func(tenantID, routerID int) (string, jobs.Args) {
		return jobs.ReconcileRouter, jobs.ReconcileRouterArgs{TenantID: tenantID, RouterID: routerID}
	})
}

// CheckRouters is the CheckRouters handler: one CheckRouterHealth job per
// active router, unique per router.
func (h *ScheduleHandler) CheckRouters(job *work.Job) error {
	return h.perActiveRouter(job, func(tenantID, routerID int) (string, jobs.Args) {
		return jobs.CheckRouterHealth, jobs.CheckRouterHealthArgs{TenantID: tenantID, RouterID: routerID}
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
			if err := h.Enqueuer.EnqueueUnique(name, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// ExpireSubscribers is the ExpireNetworkUsers handler: subscribers past
// expires_at become EXPIRED (the provisioning hook disables them on their
// routers).
func (h *ScheduleHandler) ExpireSubscribers(job *work.Job) error {
	return h.forEachTenant(job, func(ctx context.Context, tenantID int) error {
		_, err := h.Mikrotik.ExpireNetworkUsers(ctx, tenantID)
		return err
	})
}

// PruneWebhooks is the daily handler that removes each tenant's settled
// partner webhook deliveries older than webhook.Retention, with their
// attempts.
func (h *ScheduleHandler) PruneWebhooks(job *work.Job) error {
	before := time.Now().Add(-webhook.Retention)
	return h.forEachTenant(job, func(ctx context.Context, _ int) error {
		_, err := h.Webhooks.Prune(ctx, before)
		return err
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
		overdue, err := h.Client.Invoice.Query().Where(billing.Overdue(now)).IDs(ctx)
		if err != nil {
			return err
		}
		for kind, ids := range map[string][]int{"reminder": due, "overdue": overdue} {
			for _, id := range ids {
				if err := notify.EnqueueInvoiceEmail(ctx, h.Client, tenantID, id, kind); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
