package workers

import (
	"log/slog"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
)

// ProvisionHandler runs RouterProvision, HotspotProvision and ReconcileRouter
// jobs through the router service.
type ProvisionHandler struct {
	Mikrotik *mikrotik.Service
	Logger   *slog.Logger
}

// Subscriber is the RouterProvision handler.
func (h *ProvisionHandler) Subscriber(job *work.Job) error {
	var a jobs.RouterProvisionArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	return h.result(job, h.Mikrotik.Apply(ctx, a), "network_user_id", a.NetworkUserID)
}

// Hotspot is the HotspotProvision handler.
func (h *ProvisionHandler) Hotspot(job *work.Job) error {
	var a jobs.HotspotProvisionArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	return h.result(job, h.Mikrotik.ApplyHotspot(ctx, a), "hotspot_user_id", a.HotspotUserID)
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
	_, err := h.Mikrotik.Reconcile(ctx, a.TenantID, a.RouterID)
	return h.result(job, err, "router_id", a.RouterID)
}

// result retries temporary failures and ends the job on permanent ones (the
// service has recorded the error on the subscriber).
func (h *ProvisionHandler) result(job *work.Job, err error, key string, id int) error {
	if err == nil {
		return nil
	}
	if !mikrotik.Retryable(err) {
		h.Logger.Warn("router rejected a change; not retrying", "job", job.Name, key, id, "error", err)
		return nil
	}
	return err
}
