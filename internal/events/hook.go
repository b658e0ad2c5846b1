package events

import (
	"context"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// watched says which event a mutation may cause: a router whose api_status
// is written, a session created or whose status is written, a payment
// created or whose status is written.
func watched(m ent.Mutation) (Kind, bool) {
	_, status := m.Field("status")
	switch m.Type() {
	case ent.TypeRouter:
		_, api := m.Field("api_status")
		return RouterStatus, api && m.Op().Is(ent.OpUpdate|ent.OpUpdateOne)
	case ent.TypeNetworkSession:
		return Session, m.Op().Is(ent.OpCreate) || (status && m.Op().Is(ent.OpUpdate|ent.OpUpdateOne))
	case ent.TypePayment:
		return Payment, m.Op().Is(ent.OpCreate) || (status && m.Op().Is(ent.OpUpdate|ent.OpUpdateOne))
	}
	return "", false
}

// Hook publishes the events of routers, sessions and payments once the change
// is committed (at once when it is not in a transaction). A router's status
// counts as changed only when the value differs from the stored one.
func (b *Bus) Hook() ent.Hook {
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			kind, ok := watched(m)
			if !ok || b == nil {
				return next.Mutate(ctx, m)
			}
			tenantID := viewer.FromContext(ctx).TenantID
			if f, ok := m.Field("tenant_id"); ok && tenantID <= 0 {
				tenantID, _ = f.(int)
			}
			var ids []int
			switch {
			case m.Op().Is(ent.OpUpdateOne):
				im, _ := m.(interface{ ID() (int, bool) })
				if im == nil {
					return next.Mutate(ctx, m)
				}
				id, ok := im.ID()
				if !ok {
					return next.Mutate(ctx, m)
				}
				ids = []int{id}
				if tenantID <= 0 {
					if f, err := m.OldField(tenancy.Bypass(ctx), "tenant_id"); err == nil {
						tenantID, _ = f.(int)
					}
				}
				if kind == RouterStatus {
					now, _ := m.Field("api_status")
					if old, err := m.OldField(ctx, "api_status"); err == nil && old == now {
						return next.Mutate(ctx, m) // checked again, same status
					}
				}
			case m.Op().Is(ent.OpUpdate):
				im, _ := m.(interface {
					IDs(context.Context) ([]int, error)
				})
				if im == nil {
					return next.Mutate(ctx, m)
				}
				var err error
				if ids, err = im.IDs(ctx); err != nil {
					return nil, err
				}
			}
			v, err := next.Mutate(ctx, m)
			if err != nil {
				return v, err
			}
			if m.Op().Is(ent.OpCreate) {
				switch e := v.(type) {
				case *ent.NetworkSession:
					ids, tenantID = []int{e.ID}, e.TenantID
				case *ent.Payment:
					ids, tenantID = []int{e.ID}, e.TenantID
				}
			}
			if tenantID <= 0 || len(ids) == 0 {
				if len(ids) > 0 {
					b.log().DebugContext(ctx, "events: change without a known tenant not published", "kind", string(kind))
				}
				return v, nil
			}
			send := func(ctx context.Context) {
				for _, id := range ids {
					if err := b.Publish(ctx, Event{Kind: kind, TenantID: tenantID, ID: id}); err != nil {
						b.log().WarnContext(ctx, "events: not published", "kind", string(kind), "error", err)
					}
				}
			}
			if tm, ok := m.(interface{ Tx() (*ent.Tx, error) }); ok {
				if tx, err := tm.Tx(); err == nil {
					tx.OnCommit(func(next ent.Committer) ent.Committer {
						return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
							if err := next.Commit(ctx, tx); err != nil {
								return err
							}
							send(context.WithoutCancel(ctx))
							return nil
						})
					})
					return v, nil
				}
			}
			send(context.WithoutCancel(ctx))
			return v, nil
		})
	}
}
