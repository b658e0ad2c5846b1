package workers

import (
	"context"
	"log/slog"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/internal/jobs"
)

// RouterProvisioner carries subscriber and hotspot-user changes to the
// routers (internal/mikrotik). Permanent reports whether an error cannot be
// fixed by retrying (a !trap reply, bad credentials), so the job stops.
type RouterProvisioner interface {
	Apply(ctx context.Context, a jobs.RouterProvisionArgs) error
	ApplyHotspot(ctx context.Context, a jobs.HotspotProvisionArgs) error
	// Reconcile makes one router match the books.
	Reconcile(ctx context.Context, a jobs.ReconcileRouterArgs) error
	Permanent(err error) bool
}

// ProvisionHandler runs RouterProvision and HotspotProvision jobs.
type ProvisionHandler struct {
	Routers RouterProvisioner
	Logger  *slog.Logger
}

// Subscriber is the RouterProvision handler.
func (h *ProvisionHandler) Subscriber(job *work.Job) error {
	var a jobs.RouterProvisionArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	if h.Routers == nil {
		h.Logger.Info("RouterProvision: no router provisioner wired in; nothing done", "tenant_id", a.TenantID)
		return nil
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	return h.result(job, h.Routers.Apply(ctx, a), "network_user_id", a.NetworkUserID)
}

// Hotspot is the HotspotProvision handler.
func (h *ProvisionHandler) Hotspot(job *work.Job) error {
	var a jobs.HotspotProvisionArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	if h.Routers == nil {
		h.Logger.Info("HotspotProvision: no router provisioner wired in; nothing done", "tenant_id", a.TenantID)
		return nil
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	return h.result(job, h.Routers.ApplyHotspot(ctx, a), "hotspot_user_id", a.HotspotUserID)
}

// Reconcile is the ReconcileRouter handler. A router that refuses (bad
// login, !trap) ends the job: the next schedule, a fixed setting or the
// router coming back ONLINE reconciles it again.
func (h *ProvisionHandler) Reconcile(job *work.Job) error {
	var a jobs.ReconcileRouterArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	return h.result(job, h.Routers.Reconcile(ctx, a), "router_id", a.RouterID)
}

// result retries temporary failures and ends the job on permanent ones (the
// provisioner has recorded the error on the subscriber).
func (h *ProvisionHandler) result(job *work.Job, err error, key string, id int) error {
	if err == nil {
		return nil
	}
	if h.Routers.Permanent(err) {
		h.Logger.Warn("router rejected a change; not retrying", "job", job.Name, key, id, "error", err)
		return nil
	}
	return err
}
