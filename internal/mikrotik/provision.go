package mikrotik

import (
	"context"
	"fmt"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/hook"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Provisioning actions (jobs.RouterProvisionArgs.Action).
const (
	ActionUpsert  = "upsert"
	ActionDisable = "disable"
	ActionEnable  = "enable"
	ActionRemove  = "remove"
	ActionKick    = "kick"
)

// provisionFields are the subscriber fields a router's PPP secret depends on;
// a change to any other field (e-mail, address, ...) does not touch the router.
var provisionFields = []string{
	networkuser.FieldUsername, networkuser.FieldServicePassword, networkuser.FieldPackageID,
	networkuser.FieldRouterID, networkuser.FieldStatus, networkuser.FieldServiceType,
	networkuser.FieldStaticIP,
}

// Install registers the provisioning hook on a client: every creation,
// change (of the fields above), suspension, activation and deletion of a
// subscriber writes a RouterProvision job into the outbox in the same
// transaction, and marks the subscriber as not yet in step with its router
// (router_synced_at = null) until the job has run.
//
// It also registers DeletedIsFinal (a DELETED subscriber is not changed any
// more) and RouterHook (a router whose settings change is reconciled).
func Install(c *ent.Client) {
	c.NetworkUser.Use(DeletedIsFinal(), ProvisionHook())
	c.Router.Use(RouterHook())
}

// ProvisionHook is the hook Install registers. A mutation that sets
// router_synced_at itself (an import from the router, seeding) says the
// router already matches and enqueues nothing.
func ProvisionHook() ent.Hook {
	return hook.On(func(next ent.Mutator) ent.Mutator {
		return hook.NetworkUserFunc(func(ctx context.Context, m *ent.NetworkUserMutation) (ent.Value, error) {
			if _, set := m.RouterSyncedAt(); set || !touchesRouter(m) {
				return next.Mutate(ctx, m)
			}
			var olds []*ent.NetworkUser
			if !m.Op().Is(ent.OpCreate) {
				ids, err := m.IDs(ctx)
				if err != nil {
					return nil, err
				}
				if len(ids) == 0 {
					return next.Mutate(ctx, m)
				}
				if olds, err = m.Client().NetworkUser.Query().Where(networkuser.IDIn(ids...)).All(ctx); err != nil {
					return nil, err
				}
			}
			if !m.Op().Is(ent.OpDelete | ent.OpDeleteOne) {
				m.ClearRouterSyncedAt()
			}
			v, err := next.Mutate(ctx, m)
			if err != nil {
				return nil, err
			}
			var news []*ent.NetworkUser
			switch {
			case m.Op().Is(ent.OpCreate):
				news = []*ent.NetworkUser{v.(*ent.NetworkUser)}
			case m.Op().Is(ent.OpUpdate | ent.OpUpdateOne):
				ids := make([]int, len(olds))
				for i, o := range olds {
					ids[i] = o.ID
				}
				if news, err = m.Client().NetworkUser.Query().Where(networkuser.IDIn(ids...)).All(ctx); err != nil {
					return nil, err
				}
			}
			if err := enqueueProvision(ctx, m.Client(), olds, news); err != nil {
				return nil, err
			}
			return v, nil
		})
	}, ent.OpCreate|ent.OpUpdate|ent.OpUpdateOne|ent.OpDelete|ent.OpDeleteOne)
}

func touchesRouter(m *ent.NetworkUserMutation) bool {
	if m.Op().Is(ent.OpDelete | ent.OpDeleteOne | ent.OpCreate) {
		return true
	}
	for _, f := range append(m.Fields(), m.ClearedFields()...) {
		for _, p := range provisionFields {
			if f == p {
				return true
			}
		}
	}
	return false
}

// enqueueProvision compares subscribers before and after a change: where one
// left a router (deleted, moved, renamed, no longer PPPoE) its old secret is
// removed there; where one is on a router its secret is brought in step.
func enqueueProvision(ctx context.Context, c *ent.Client, olds, news []*ent.NetworkUser) error {
	byID := map[int]*ent.NetworkUser{}
	for _, n := range news {
		byID[n.ID] = n
	}
	var args []jobs.RouterProvisionArgs
	oldByID := map[int]*ent.NetworkUser{}
	for _, o := range olds {
		oldByID[o.ID] = o
		if o.RouterID == nil || o.ServiceType == networkuser.ServiceTypeHOTSPOT {
			continue
		}
		n := byID[o.ID]
		if n == nil || n.RouterID == nil || *n.RouterID != *o.RouterID || n.Username != o.Username ||
			n.ServiceType != o.ServiceType {
			args = append(args, jobs.RouterProvisionArgs{TenantID: o.TenantID, NetworkUserID: o.ID,
				RouterID: *o.RouterID, Action: ActionRemove, Username: o.Username})
		}
	}
	for _, n := range news {
		if n.RouterID == nil || n.ServiceType == networkuser.ServiceTypeHOTSPOT {
			continue
		}
		action := ActionUpsert
		if n.Status != networkuser.StatusACTIVE {
			action = ActionDisable
		} else if o := oldByID[n.ID]; o != nil && !samePackage(o.PackageID, n.PackageID) {
			// A new package's rate applies at the next login: end the session now.
			action = ActionKick
		}
		args = append(args, jobs.RouterProvisionArgs{TenantID: n.TenantID, NetworkUserID: n.ID,
			RouterID: *n.RouterID, Action: action, Username: n.Username})
	}
	for _, a := range args {
		// The outbox row belongs to the subscriber's tenant whoever changed it
		// (a staff request, a billing job).
		if err := outbox.Enqueue(viewer.ForTenant(ctx, a.TenantID), c, a); err != nil {
			return err
		}
	}
	return nil
}

// Apply carries a subscriber's state to its router (the RouterProvision job):
// the fast path of reconciliation, limited to one subscriber. It reads the
// subscriber as it is now and makes the router's items for it match — PPP
// secret with its package's profile (the profile created first if missing),
// or queue and address-list entry for a STATIC subscriber; disabled and its
// live session removed while not ACTIVE; removed when the subscriber is gone
// or has left this router (a.Username names the old item) — so jobs that
// retry or run out of order still converge. Only items ispgraph owns are
// changed: a name taken by an operator's secret is a clash, recorded on the
// subscriber. ActionKick also ends a live session so a new package's rate
// applies now. Success is recorded as router_synced_at, failure as
// router_sync_error.
func (s *Service) Apply(ctx context.Context, a jobs.RouterProvisionArgs) error {
	ctx = viewer.ForTenant(ctx, a.TenantID)
	exists, err := s.Client.NetworkUser.Query().Where(networkuser.ID(a.NetworkUserID)).Exist(ctx)
	if err != nil {
		return fmt.Errorf("mikrotik: load subscriber %d: %w", a.NetworkUserID, err)
	}
	if !exists && a.Username == "" {
		return nil
	}
	r, c, err := s.activeRouter(ctx, a.RouterID)
	if err != nil {
		if exists {
			s.recordUserError(ctx, a.NetworkUserID, err)
		}
		return err
	}
	pl, err := s.desired(ctx, r, []int{a.NetworkUserID}, false)
	if err != nil {
		return err
	}
	if a.Username != "" {
		pl.scope[a.Username] = true
	}
	var u *ent.NetworkUser
	if len(pl.users) == 1 {
		u = pl.users[0]
	}
	steps, err := s.compare(ctx, r, c, pl)
	if err == nil {
		_, err = execute(ctx, c, steps)
	}
	if err == nil && u != nil && a.Action == ActionKick && u.ServiceType == networkuser.ServiceTypePPPOE {
		err = kickSessions(ctx, c, u.Username)
	}
	s.noteRouterError(ctx, r, err)
	if u == nil {
		if err != nil && exists {
			s.recordUserError(ctx, a.NetworkUserID, err)
		}
		return err
	}
	if err == nil {
		for _, st := range steps {
			if st.drift.Kind == DriftClash {
				err = permanent("name clash on the router: %s", st.drift.Detail)
			}
		}
	}
	return s.recordProvision(ctx, u, err)
}

func (s *Service) noteRouterError(ctx context.Context, r *ent.Router, err error) {
	if err != nil {
		s.recordReachability(ctx, r, 0, err, false)
	}
}

// recordUserError stores why a subscriber's change could not reach its router.
func (s *Service) recordUserError(ctx context.Context, id int, opErr error) {
	_ = s.Client.NetworkUser.UpdateOneID(id).SetRouterSyncError(truncate(opErr.Error(), 500)).Exec(context.WithoutCancel(ctx))
}

// kickSessions removes a username's active PPP sessions: a suspended
// subscriber is cut off now, not at its next reconnect.
func kickSessions(ctx context.Context, c *Conn, username string) error {
	rows, err := c.Run(ctx, "/ppp/active/print", "?name="+username, "=.proplist=.id")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := c.Run(ctx, "/ppp/active/remove", "=.id="+r[".id"]); err != nil {
			return err
		}
	}
	return nil
}

// recordProvision stores the outcome on the subscriber and passes opErr on.
// Success is recorded only if the subscriber has not changed since it was
// read: a newer change has its own job, and until that runs the subscriber
// stays "not in step".
func (s *Service) recordProvision(ctx context.Context, u *ent.NetworkUser, opErr error) error {
	if u == nil {
		return opErr
	}
	wctx := context.WithoutCancel(ctx)
	if opErr != nil {
		_ = s.Client.NetworkUser.UpdateOneID(u.ID).SetRouterSyncError(truncate(opErr.Error(), 500)).Exec(wctx)
		return opErr
	}
	// Compared in Go: both times were read from the database, so they are
	// equal to the last digit the database keeps, on Postgres and SQLite alike.
	cur, err := s.Client.NetworkUser.Query().Where(networkuser.ID(u.ID)).Select(networkuser.FieldUpdatedAt).Only(wctx)
	if ent.IsNotFound(err) || (err == nil && !cur.UpdatedAt.Equal(u.UpdatedAt)) {
		return nil
	}
	if err == nil {
		err = s.Client.NetworkUser.UpdateOneID(u.ID).SetRouterSyncedAt(s.now()).ClearRouterSyncError().Exec(wctx)
	}
	if err != nil {
		return fmt.Errorf("mikrotik: record provisioning of %d: %w", u.ID, err)
	}
	return opErr
}

func samePackage(a, b *int) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
