package mikrotik

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/hook"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/router"
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
func Install(c *ent.Client) {
	c.NetworkUser.Use(ProvisionHook())
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
	for _, o := range olds {
		if o.RouterID == nil || o.ServiceType != networkuser.ServiceTypePPPOE {
			continue
		}
		n := byID[o.ID]
		if n == nil || n.RouterID == nil || *n.RouterID != *o.RouterID || n.Username != o.Username ||
			n.ServiceType != networkuser.ServiceTypePPPOE {
			args = append(args, jobs.RouterProvisionArgs{TenantID: o.TenantID, NetworkUserID: o.ID,
				RouterID: *o.RouterID, Action: ActionRemove, Username: o.Username})
		}
	}
	for _, n := range news {
		if n.RouterID == nil || n.ServiceType != networkuser.ServiceTypePPPOE {
			continue
		}
		action := ActionUpsert
		if n.Status != networkuser.StatusACTIVE {
			action = ActionDisable
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

// Apply carries a subscriber's state to its router (the RouterProvision job).
// It reconciles rather than replays: it reads the subscriber as it is now and
// makes the PPP secret match — present with the package's profile and enabled
// while the subscriber is active, disabled (and its live session removed)
// otherwise, removed when the subscriber is gone or has left this router — so
// jobs that retry or run out of order still converge. Success is recorded as
// router_synced_at, failure as router_sync_error on the subscriber.
func (s *Service) Apply(ctx context.Context, a jobs.RouterProvisionArgs) error {
	ctx = viewer.ForTenant(ctx, a.TenantID)
	u, err := s.Client.NetworkUser.Query().Where(networkuser.ID(a.NetworkUserID)).WithPackage().Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return fmt.Errorf("mikrotik: load subscriber %d: %w", a.NetworkUserID, err)
	}
	if u != nil && (u.RouterID == nil || *u.RouterID != a.RouterID || u.ServiceType != networkuser.ServiceTypePPPOE) {
		u = nil // the subscriber no longer lives on this router
	}
	username := a.Username
	if u == nil && username == "" {
		return nil
	}
	r, err := s.loadRouter(ctx, a.RouterID)
	if err != nil {
		return s.recordProvision(ctx, u, err)
	}
	if r.Status == router.StatusINACTIVE {
		return s.recordProvision(ctx, u, permanent("router %q is inactive: activate it to push changes", r.Name))
	}
	c, err := s.conn(r)
	if err != nil {
		return s.recordProvision(ctx, u, err)
	}
	if u == nil || (a.Action == ActionRemove && u.Username != username) {
		err = removeSecret(ctx, c, username)
		if u == nil {
			s.noteRouterError(ctx, r, err)
			return err
		}
	}
	if u != nil {
		err = s.upsertSecret(ctx, c, u, a.Action == ActionKick)
	}
	s.noteRouterError(ctx, r, err)
	return s.recordProvision(ctx, u, err)
}

func (s *Service) noteRouterError(ctx context.Context, r *ent.Router, err error) {
	if err != nil {
		s.recordReachability(ctx, r, 0, err, false)
	}
}

// upsertSecret makes the router's PPP secret match subscriber u.
func (s *Service) upsertSecret(ctx context.Context, c *Conn, u *ent.NetworkUser, kick bool) error {
	pw, err := s.open(u.ServicePassword)
	if err != nil {
		return permanent("subscriber %q: cannot read its service password: %v", u.Username, err)
	}
	profile := "default"
	if p := u.Edges.Package; p != nil && p.RouterProfile != "" {
		profile = p.RouterProfile
	}
	active := u.Status == networkuser.StatusACTIVE
	disabled := "yes"
	if active {
		disabled = "no"
	}
	attrs := []string{"=password=" + pw, "=profile=" + profile, "=service=pppoe", "=disabled=" + disabled,
		"=comment=ispgraph:" + strconv.Itoa(u.ID)}
	if u.StaticIP != nil && *u.StaticIP != "" {
		attrs = append(attrs, "=remote-address="+*u.StaticIP)
	}
	rows, err := c.Run(ctx, "/ppp/secret/print", "?name="+u.Username, "=.proplist=.id")
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		_, err = c.Run(ctx, append([]string{"/ppp/secret/add", "=name=" + u.Username}, attrs...)...)
	} else {
		_, err = c.Run(ctx, append([]string{"/ppp/secret/set", "=.id=" + rows[0][".id"]}, attrs...)...)
	}
	if err != nil {
		return err
	}
	if !active || kick {
		return kickSessions(ctx, c, u.Username)
	}
	return nil
}

// removeSecret removes a username's PPP secret and live session, if any.
func removeSecret(ctx context.Context, c *Conn, username string) error {
	rows, err := c.Run(ctx, "/ppp/secret/print", "?name="+username, "=.proplist=.id")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := c.Run(ctx, "/ppp/secret/remove", "=.id="+r[".id"]); err != nil {
			return err
		}
	}
	return kickSessions(ctx, c, username)
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
