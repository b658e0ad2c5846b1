package resolvers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/graph/model"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/mikrotik"

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
	queued, err := c.OutboxJob.Query().Where(outboxjob.DedupKey(key)).Exist(ctx)
	if err != nil {
		return false, err
	}
	if queued {
		return false, apperr.E(apperr.RateLimited, "a sync of this router was already asked for this minute: networkSessions shows it once it has run; ask again in a minute")
	}
	err = outbox.Enqueue(ctx, c, jobs.SyncMikrotikSessionArgs{TenantID: v.TenantID, RouterID: routerID}, outbox.DedupKey(key))
	return err == nil, err
}

// routerDrift lists where a router of the caller's tenant differs from the
// books. A router that cannot be read is a BAD_USER_INPUT naming why.
func (r *Resolver) routerDrift(ctx context.Context, routerID int) ([]*model.RouterDriftItem, error) {
	rt, err := r.client(ctx).Router.Get(ctx, routerID)
	if err != nil {
		return nil, err
	}
	ds, err := r.Mikrotik.RouterDrift(ctx, routerID)
	if err != nil {
		var pe *mikrotik.PermanentError
		var de *mikrotik.DeviceError
		var ue *mikrotik.UnreachableError
		switch {
		case errors.As(err, &pe):
			return nil, apperr.Wrap(apperr.BadUserInput, err, "%s", pe.Msg)
		case errors.As(err, &de):
			return nil, apperr.Wrap(apperr.BadUserInput, err, "router %q refused %s: %s", rt.Name, de.Op, de.Message)
		case errors.As(err, &ue):
			return nil, apperr.Wrap(apperr.BadUserInput, err,
				"router %q did not answer: check that it is up and its API service is reachable, then try again", rt.Name)
		}
		return nil, err
	}
	out := make([]*model.RouterDriftItem, len(ds))
	for i, d := range ds {
		item := &model.RouterDriftItem{Kind: d.Kind, Menu: d.Menu, Name: d.Name, Detail: d.Detail}
		if d.NetworkUserID != 0 {
			item.NetworkUserID = &ds[i].NetworkUserID
		}
		if d.HotspotUserID != 0 {
			item.HotspotUserID = &ds[i].HotspotUserID
		}
		out[i] = item
	}
	return out, nil
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

// normalizeHotspotPhone stores a staff-entered hotspot phone number in E.164
// with the tenant's calling code (mikrotik.NormalizePhone).
func (r *Resolver) normalizeHotspotPhone(ctx context.Context, u *ent.HotspotUser) (*ent.HotspotUser, error) {
	phone, err := r.Mikrotik.TenantPhone(ctx, u.Phone)
	if err != nil || phone == u.Phone {
		return u, err
	}
	return r.client(ctx).HotspotUser.UpdateOne(u).SetPhone(phone).Save(ctx)
}
