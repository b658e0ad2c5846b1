package resolvers

import (
	"context"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// syncRouterSessions queues a SyncMikrotikSession job for a router of the
// caller's tenant. Requests within the same minute share one job.
func (r *Resolver) syncRouterSessions(ctx context.Context, routerID int) (bool, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return false, err
	}
	c := r.client(ctx)
	if _, err := c.Router.Get(ctx, routerID); err != nil {
		return false, err
	}
	key := fmt.Sprintf("sync:%d:%d", routerID, time.Now().Unix()/60)
	err = outbox.Enqueue(ctx, c, jobs.SyncMikrotikSessionArgs{TenantID: v.TenantID, RouterID: routerID}, outbox.DedupKey(key))
	return err == nil, err
}

// publicTenant resolves the tenant of a public (signed-out) request from the
// tenant argument or the Host header and returns a context acting in it.
func (r *Resolver) publicTenant(ctx context.Context, slug *string) (context.Context, error) {
	t, err := r.Auth.ResolveTenant(ctx, deref(slug), reqinfo.From(ctx).Host)
	if err != nil {
		return nil, err
	}
	return viewer.ForTenant(ctx, t.ID), nil
}
