package cache

import (
	"context"
	"fmt"
	"log/slog"

	"entgo.io/ent/dialect/sql"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/cachegeneration"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Invalidates maps an ent type to the classes its changes make stale.
var Invalidates = map[string][]Class{
	"ServicePackage": {ClassPackages, ClassDashboard},
	"PaymentGateway": {ClassGateways},
	"Role":           {ClassRoles},
	"Tenant":         {ClassTenant},
	"NetworkUser":    {ClassDashboard},
	"Invoice":        {ClassDashboard},
	"Payment":        {ClassDashboard},
	"HotspotUser":    {ClassDashboard},
	"Router":         {ClassRouterStatus, ClassDashboard},
	"NetworkSession": {ClassRouterStatus, ClassDashboard},
}

// bump is one generation a transaction raised.
type bump struct {
	tenant int
	class  Class
	gen    int64
}

// Hook returns the ent hook that invalidates the classes of Invalidates:
// after a mutation of a type listed there succeeds it bumps the generations
// of the affected classes of the mutation's tenant (of all tenants when it
// has none) in the same transaction, and publishes them to Redis once the
// transaction commits (at once when there is no transaction). A failed bump
// fails the mutation: a change that could leave a stale value behind is not
// committed. Register it with client.Use(c.Hook()).
func (c *Cache) Hook() ent.Hook { return c.HookFor(c.classTargets) }

// Targets returns the generations mutation m makes stale (none: nil). It runs
// before m, so it can read the rows m is about to change.
type Targets func(ctx context.Context, m ent.Mutation) ([]Part, error)

// HookFor returns an ent hook that bumps the generations targets names for
// each mutation once the mutation succeeds, in its transaction, and publishes
// them after the commit, as Hook does for the classes of Invalidates.
func (c *Cache) HookFor(targets Targets) ent.Hook {
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			if c == nil {
				return next.Mutate(ctx, m)
			}
			parts, err := targets(ctx, m)
			if err != nil {
				return nil, err
			}
			if len(parts) == 0 {
				return next.Mutate(ctx, m)
			}
			v, err := next.Mutate(ctx, m)
			if err != nil {
				return v, err
			}
			mc, ok := m.(interface{ Client() *ent.Client })
			if !ok {
				return nil, fmt.Errorf("cache: mutation %s has no client", m.Type())
			}
			bumps := make([]bump, 0, len(parts))
			for _, p := range parts {
				g, err := Bump(ctx, mc.Client(), p.Tenant, p.Class)
				if err != nil {
					return nil, err
				}
				bumps = append(bumps, bump{p.Tenant, p.Class, g})
			}
			if tm, ok := m.(interface{ Tx() (*ent.Tx, error) }); ok {
				if tx, err := tm.Tx(); err == nil {
					tx.OnCommit(func(next ent.Committer) ent.Committer {
						return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
							if err := next.Commit(ctx, tx); err != nil {
								return err
							}
							c.publish(ctx, bumps)
							return nil
						})
					})
					return v, nil
				}
			}
			c.publish(ctx, bumps)
			return v, nil
		})
	}
}

// classTargets are the classes of Invalidates for the tenants m changes.
func (c *Cache) classTargets(ctx context.Context, m ent.Mutation) ([]Part, error) {
	classes := Invalidates[m.Type()]
	if len(classes) == 0 {
		return nil, nil
	}
	tenants, err := mutationTenants(ctx, m)
	if err != nil {
		return nil, err
	}
	if len(tenants) == 0 {
		c.log.DebugContext(ctx, "cache: change of unknown tenant invalidates the class for all tenants",
			slog.String("type", m.Type()), slog.String("op", m.Op().String()))
		tenants = []int{AllTenants}
	}
	parts := make([]Part, 0, len(tenants)*len(classes))
	for _, t := range tenants {
		for _, cl := range classes {
			parts = append(parts, ClassPart(t, cl))
		}
	}
	return parts, nil
}

// Bump raises the generation of class for tenantID by one through client (a
// transaction's client makes it part of that transaction) and returns it.
// Commands that change data outside ent mutations call it themselves.
func Bump(ctx context.Context, client *ent.Client, tenantID int, class Class) (int64, error) {
	bctx := tenancy.Bypass(ctx) // generations of every tenant live in one table
	err := client.CacheGeneration.Create().
		SetTenantID(tenantID).SetClass(string(class)).SetGeneration(1).
		OnConflict(sql.ConflictColumns(cachegeneration.FieldTenantID, cachegeneration.FieldClass)).
		AddGeneration(1).
		Exec(bctx)
	if err != nil {
		return 0, fmt.Errorf("cache: bump generation: %w", err)
	}
	row, err := client.CacheGeneration.Query().
		Where(cachegeneration.TenantID(tenantID), cachegeneration.Class(string(class))).
		Only(bctx)
	if err != nil {
		return 0, fmt.Errorf("cache: read generation: %w", err)
	}
	return row.Generation, nil
}

// mutationTenants returns the tenants a mutation changes data of: the
// viewer's tenant (the tenant policy confines its mutations to it), else the
// tenant_id the mutation sets or the row had. A tenant's own change also
// invalidates the platform-wide lookups (by slug or domain).
func mutationTenants(ctx context.Context, m ent.Mutation) ([]int, error) {
	if m.Type() == "Tenant" {
		out := []int{PlatformTenant}
		if im, ok := m.(interface {
			IDs(context.Context) ([]int, error)
		}); ok && !m.Op().Is(ent.OpCreate) {
			ids, err := im.IDs(tenancy.Bypass(ctx))
			if err != nil {
				return nil, fmt.Errorf("cache: tenants changed: %w", err)
			}
			out = append(out, ids...)
		}
		return out, nil
	}
	if v := viewer.FromContext(ctx); v.HasTenant() {
		return []int{v.TenantID}, nil
	}
	if f, ok := m.Field("tenant_id"); ok {
		if id, ok := f.(int); ok {
			return []int{id}, nil
		}
	}
	if m.Op().Is(ent.OpUpdateOne | ent.OpDeleteOne) {
		f, err := m.OldField(tenancy.Bypass(ctx), "tenant_id")
		if err == nil {
			if id, ok := f.(int); ok {
				return []int{id}, nil
			}
		}
	}
	return nil, nil
}
