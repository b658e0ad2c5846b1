package mikrotik

import (
	"context"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/hook"
	"github.com/ispgraph/ispgraph/ent/hotspotuser"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// routerSettingFields are the router fields that decide whether and how
// ispgraph reaches it: a change to one (a fixed password, a new address, the
// router activated) reconciles the router.
var routerSettingFields = []string{router.FieldHost, router.FieldAPIPort, router.FieldUseTLS,
	router.FieldUsername, router.FieldPassword, router.FieldStatus}

// RouterHook enqueues a ReconcileRouter job, in the same transaction, for
// every active router whose connection settings or status change: whatever
// was refused or missed while they were wrong converges once they are right.
func RouterHook() ent.Hook {
	return hook.On(func(next ent.Mutator) ent.Mutator {
		return hook.RouterFunc(func(ctx context.Context, m *ent.RouterMutation) (ent.Value, error) {
			touched := false
			for _, f := range m.Fields() {
				for _, s := range routerSettingFields {
					touched = touched || f == s
				}
			}
			v, err := next.Mutate(ctx, m)
			if err != nil || !touched {
				return v, err
			}
			ids, err := m.IDs(ctx)
			if err != nil {
				return nil, err
			}
			rs, err := m.Client().Router.Query().Where(router.IDIn(ids...), router.StatusEQ(router.StatusACTIVE)).All(ctx)
			if err != nil {
				return nil, err
			}
			for _, r := range rs {
				if err := outbox.Enqueue(viewer.ForTenant(ctx, r.TenantID), m.Client(),
					jobs.ReconcileRouterArgs{TenantID: r.TenantID, RouterID: r.ID}); err != nil {
					return nil, err
				}
			}
			return v, nil
		})
	}, ent.OpUpdate|ent.OpUpdateOne)
}

// enqueueReconcile asks for a reconciliation of r outside any transaction
// (a router found ONLINE again), at most once a minute per router.
func (s *Service) enqueueReconcile(ctx context.Context, r *ent.Router) {
	key := fmt.Sprintf("reconcile-online:%d:%d", r.ID, s.now().Unix()/60)
	_ = outbox.Enqueue(viewer.ForTenant(context.WithoutCancel(ctx), r.TenantID), s.Client,
		jobs.ReconcileRouterArgs{TenantID: r.TenantID, RouterID: r.ID}, outbox.DedupKey(key))
}

// ExpireNetworkUsers marks the tenant's ACTIVE subscribers whose expires_at
// has passed EXPIRED, in one transaction; the provisioning hook disables
// their secrets (and ends their sessions) on the routers. It returns how many
// expired. The expiry schedule runs it for every tenant.
func (s *Service) ExpireNetworkUsers(ctx context.Context, tenantID int) (int, error) {
	ctx = viewer.ForTenant(ctx, tenantID)
	n := 0
	err := s.withTx(ctx, func(ctx context.Context, c *ent.Client) error {
		var err error
		n, err = c.NetworkUser.Update().
			Where(networkuser.StatusEQ(networkuser.StatusACTIVE), networkuser.ExpiresAtLTE(s.now())).
			SetStatus(networkuser.StatusEXPIRED).SetSuspensionReason("expired").SetSuspendedAt(s.now()).Save(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mikrotik: expire subscribers: %w", err)
	}
	return n, nil
}

// ExpiringTenants lists the tenants with an ACTIVE subscriber past its
// expiry. It reads across tenants, so it bypasses tenant privacy on purpose.
func (s *Service) ExpiringTenants(ctx context.Context, now time.Time) ([]int, error) {
	ids, err := s.Client.NetworkUser.Query().
		Where(networkuser.StatusEQ(networkuser.StatusACTIVE), networkuser.ExpiresAtLTE(now)).
		Unique(true).Select(networkuser.FieldTenantID).Ints(tenancy.Bypass(ctx))
	if err != nil {
		return nil, fmt.Errorf("mikrotik: expiring tenants: %w", err)
	}
	return ids, nil
}

// deletedChangeable are the fields that may still change on a DELETED
// subscriber: the router bookkeeping its removal writes, and the credit that
// billing moves when a refund or a cancelled invoice settles its history.
var deletedChangeable = map[string]bool{networkuser.FieldRouterSyncedAt: true, networkuser.FieldRouterSyncError: true,
	networkuser.FieldUpdatedAt: true, networkuser.FieldCredit: true}

// DeletedIsFinal is the hook that keeps a DELETED subscriber as it was
// deleted: changing anything else of it (an edit, a suspension, an
// activation, a second delete) is refused with CONFLICT, and a bulk change
// leaves deleted subscribers out. Install registers it.
func DeletedIsFinal() ent.Hook {
	return hook.On(func(next ent.Mutator) ent.Mutator {
		return hook.NetworkUserFunc(func(ctx context.Context, m *ent.NetworkUserMutation) (ent.Value, error) {
			touched := false
			for _, fs := range [][]string{m.Fields(), m.AddedFields(), m.ClearedFields()} {
				for _, f := range fs {
					touched = touched || !deletedChangeable[f]
				}
			}
			if !touched {
				return next.Mutate(ctx, m)
			}
			if m.Op().Is(ent.OpUpdate) {
				m.Where(networkuser.StatusNEQ(networkuser.StatusDELETED))
				return next.Mutate(ctx, m)
			}
			if id, ok := m.ID(); ok {
				u, err := m.Client().NetworkUser.Query().Where(networkuser.ID(id)).
					Select(networkuser.FieldStatus, networkuser.FieldUsername).Only(ctx)
				if err == nil && u.Status == networkuser.StatusDELETED {
					return nil, apperr.E(apperr.Conflict, "subscriber %s is deleted: it cannot be changed (its invoices and payments stay for the books)", u.Username)
				}
			}
			return next.Mutate(ctx, m)
		})
	}, ent.OpUpdate|ent.OpUpdateOne)
}

// DeleteNetworkUser takes a subscriber of the tenant in ctx off the network:
// status DELETED (its invoices and payments stay for billing), and the
// provisioning hook removes its items from its router and ends its session.
// It runs in the caller's transaction.
func (s *Service) DeleteNetworkUser(ctx context.Context, id int) (*ent.NetworkUser, error) {
	u, err := s.client(ctx).NetworkUser.UpdateOneID(id).SetStatus(networkuser.StatusDELETED).
		SetSuspensionReason("deleted").SetSuspendedAt(s.now()).Save(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.E(apperr.NotFound, "subscriber not found")
	}
	if err != nil {
		return nil, fmt.Errorf("mikrotik: delete subscriber %d: %w", id, err)
	}
	return u, nil
}

// CheckServicePassword refuses a PPPoE subscriber without a service password:
// the router would accept the secret with an empty one.
func (s *Service) CheckServicePassword(u *ent.NetworkUser) error {
	if u.ServiceType != networkuser.ServiceTypePPPOE || u.Status == networkuser.StatusDELETED {
		return nil
	}
	pw, err := s.open(u.ServicePassword)
	if err != nil {
		return fmt.Errorf("mikrotik: subscriber %d: read service password: %w", u.ID, err)
	}
	if pw == "" {
		return apperr.E(apperr.BadUserInput, "a PPPoE subscriber needs a service password: set servicePassword")
	}
	return nil
}

// ReconcileAll queues a reconciliation of every active router of the tenant
// in ctx, in the caller's transaction (c): a setting every router depends on
// (the suspension mode) changed.
func ReconcileAll(ctx context.Context, c *ent.Client) error {
	rs, err := c.Router.Query().Where(router.StatusEQ(router.StatusACTIVE)).Select(router.FieldID, router.FieldTenantID).All(ctx)
	if err != nil {
		return fmt.Errorf("mikrotik: reconcile routers: %w", err)
	}
	for _, r := range rs {
		if err := outbox.Enqueue(ctx, c, jobs.ReconcileRouterArgs{TenantID: r.TenantID, RouterID: r.ID}); err != nil {
			return err
		}
	}
	return nil
}

// RequestReconcile queues a reconciliation of a router of the tenant in ctx
// in the caller's transaction (reconcileRouter).
func (s *Service) RequestReconcile(ctx context.Context, routerID int) error {
	c := s.client(ctx)
	r, err := c.Router.Get(ctx, routerID)
	if ent.IsNotFound(err) {
		return apperr.E(apperr.NotFound, "router not found")
	}
	if err != nil {
		return fmt.Errorf("mikrotik: reconcile router %d: %w", routerID, err)
	}
	if r.Status == router.StatusINACTIVE {
		return apperr.E(apperr.BadUserInput, "router %q is inactive: activate it first", r.Name)
	}
	return outbox.Enqueue(ctx, c, jobs.ReconcileRouterArgs{TenantID: r.TenantID, RouterID: r.ID})
}

// EnqueueHotspotUser carries a staff change of a hotspot user to the
// tenant's active routers (HotspotProvision jobs in the caller's
// transaction). A PENDING user (sign-up not verified) is not on any router.
func (s *Service) EnqueueHotspotUser(ctx context.Context, u *ent.HotspotUser) error {
	if u.Status == hotspotuser.StatusPENDING {
		return nil
	}
	return s.enqueueHotspot(ctx, s.client(ctx), u)
}
