package main

import (
	"context"
	"time"

	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/workers"
)

// billingJobs lets the workers' schedules drive the billing service.
type billingJobs struct {
	svc *billing.Service
}

var _ workers.BillingScheduler = billingJobs{}

// MarkOverdue runs the overdue routine for the tenant in ctx.
func (b billingJobs) MarkOverdue(ctx context.Context, _ time.Time) (int, error) {
	res, err := b.svc.ProcessOverdue(ctx)
	return res.MarkedOverdue, err
}

// GenerateDueInvoices issues the current period's invoices for the tenant in ctx.
func (b billingJobs) GenerateDueInvoices(ctx context.Context, _ time.Time) (int, error) {
	res, err := b.svc.GenerateInvoices(ctx, "")
	return res.Created, err
}

// routerJobs lets the workers drive the MikroTik service.
type routerJobs struct {
	svc *mikrotik.Service
}

var (
	_ workers.SessionSyncer     = routerJobs{}
	_ workers.HotspotExpirer    = routerJobs{}
	_ workers.RouterProvisioner = routerJobs{}
	_ workers.SubscriberExpirer = routerJobs{}
)

// SyncSessions syncs one router of the tenant in ctx.
func (r routerJobs) SyncSessions(ctx context.Context, routerID int, username string) error {
	_, err := r.svc.Sync(ctx, viewer.FromContext(ctx).TenantID, routerID, username)
	return err
}

// ExpireHotspotUsers expires the tenant's hotspot users whose time is up.
func (r routerJobs) ExpireHotspotUsers(ctx context.Context, _ time.Time) (int, error) {
	return r.svc.ExpireHotspotUsers(ctx, viewer.FromContext(ctx).TenantID)
}

// Apply carries a subscriber's state to its router.
func (r routerJobs) Apply(ctx context.Context, a jobs.RouterProvisionArgs) error {
	return r.svc.Apply(ctx, a)
}

// ApplyHotspot carries a hotspot user's state to the routers.
func (r routerJobs) ApplyHotspot(ctx context.Context, a jobs.HotspotProvisionArgs) error {
	return r.svc.ApplyHotspot(ctx, a)
}

// Reconcile makes one router match the books.
func (r routerJobs) Reconcile(ctx context.Context, a jobs.ReconcileRouterArgs) error {
	_, err := r.svc.Reconcile(ctx, a.TenantID, a.RouterID)
	return err
}

// ExpireNetworkUsers expires the tenant's subscribers whose time is up.
func (r routerJobs) ExpireNetworkUsers(ctx context.Context, _ time.Time) (int, error) {
	return r.svc.ExpireNetworkUsers(ctx, viewer.FromContext(ctx).TenantID)
}

// Permanent reports router errors that retrying cannot fix.
func (r routerJobs) Permanent(err error) bool { return !mikrotik.Retryable(err) }
