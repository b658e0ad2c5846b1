// Package schema holds ispgraph's handwritten ent schemas: every entity of the
// domain model, its fields, edges, indexes, GraphQL annotations and policies.
// The rest of ent/ is generated from it.
package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"

	gen "github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/privacy"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// TenantMixin gives an entity an immutable tenant_id and the rules that keep
// tenants apart: queries see only the viewer's tenant, mutations without a
// tenant are denied, and creates take the tenant from the viewer.
type TenantMixin struct {
	mixin.Schema
}

// Fields of the TenantMixin.
func (TenantMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Int("tenant_id").
			Immutable().
			Annotations(entgql.Skip()),
	}
}

// Edges of the TenantMixin.
func (TenantMixin) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("tenant", Tenant.Type).
			Field("tenant_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
	}
}

// Policy of the TenantMixin.
func (TenantMixin) Policy() ent.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{tenancy.FilterByTenant()},
		Mutation: privacy.MutationPolicy{tenancy.FilterByTenant()},
	}
}

// tenantMutation is implemented by the mutations of every tenant-owned entity.
type tenantMutation interface {
	TenantID() (int, bool)
	SetTenantID(int)
}

// Hooks of the TenantMixin.
func (TenantMixin) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				if !m.Op().Is(ent.OpCreate) {
					return next.Mutate(ctx, m)
				}
				tm, ok := m.(tenantMutation)
				if !ok {
					return nil, fmt.Errorf("tenancy: %T has no tenant", m)
				}
				id, set := tm.TenantID()
				v := viewer.FromContext(ctx)
				switch {
				case v.HasTenant() && !set:
					tm.SetTenantID(v.TenantID)
				case v.HasTenant() && id != v.TenantID:
					return nil, privacy.Denyf("tenancy: cannot create a %s in another tenant", m.Type())
				case !v.HasTenant() && !set:
					return nil, privacy.Denyf("tenancy: no tenant for new %s", m.Type())
				}
				return next.Mutate(ctx, m)
			})
		},
		sameTenantEdges,
	}
}

// clientMutation is implemented by every generated mutation.
type clientMutation interface {
	Client() *gen.Client
}

// sameTenantEdges refuses a mutation by a tenant's caller that points an edge
// (a package, a router, an invoice ...) at an id the caller cannot see: another
// tenant's row would otherwise be referenced by a foreign key the tenant
// policy never looks at. Each id is looked up through node resolution, under
// the caller's viewer, so the tenant policy decides.
func sameTenantEdges(next ent.Mutator) ent.Mutator {
	return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
		v := viewer.FromContext(ctx)
		cm, ok := m.(clientMutation)
		if !ok || !v.HasTenant() || v.Kind == viewer.System {
			return next.Mutate(ctx, m)
		}
		// A context with only the viewer: node lookups must not collect
		// GraphQL fields of the mutation's selection.
		qctx := viewer.NewContext(context.Background(), v)
		if d, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			qctx, cancel = context.WithDeadline(qctx, d)
			defer cancel()
		}
		c := cm.Client()
		for _, name := range m.AddedEdges() {
			if name == "tenant" {
				continue
			}
			for _, id := range m.AddedIDs(name) {
				n, ok := id.(int)
				if !ok {
					continue
				}
				if _, err := c.Noder(qctx, n); err != nil {
					if gen.IsNotFound(err) || errors.Is(err, privacy.Deny) {
						return nil, apperr.E(apperr.NotFound, "the %s you referenced was not found", name)
					}
					return nil, err
				}
			}
		}
		return next.Mutate(ctx, m)
	})
}

// TimeMixin adds created_at and updated_at.
type TimeMixin struct {
	mixin.Schema
}

// Fields of the TimeMixin.
func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").
			Default(time.Now).
			Immutable().
			Annotations(entgql.OrderField("CREATED_AT"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("updated_at").
			Default(time.Now).
			UpdateDefault(time.Now).
			Annotations(entgql.OrderField("UPDATED_AT"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

// moneyField declares a required amount: int64 minor units in the database,
// Money in the API.
func moneyField(name string) ent.Field {
	return field.Int64(name).
		GoType(money.Money(0)).
		Annotations(entgql.Type("Money"), entgql.OrderField(orderName(name)))
}

// moneyFieldZero declares an amount that starts at zero and is maintained by the
// server, never set directly by a client.
func moneyFieldZero(name string) ent.Field {
	return field.Int64(name).
		GoType(money.Money(0)).
		Default(0).
		Annotations(entgql.Type("Money"), noInput())
}

// noInput keeps a field out of the generated create and update inputs: the
// server, not the client, maintains it.
func noInput() entgql.Annotation {
	return entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)
}

// hidden keeps a field out of GraphQL entirely: not readable, filterable,
// orderable or settable through generated inputs.
func hidden() entgql.Annotation {
	return entgql.Skip()
}

// writeOnly keeps a secret out of the GraphQL type, filters and ordering but
// leaves it in the create and update inputs: clients may set it, never read
// it. The resolver seals it (internal/secret) before it reaches ent.
func writeOnly() entgql.Annotation {
	return entgql.Skip(entgql.SkipType, entgql.SkipWhereInput, entgql.SkipOrderField)
}

// orderName turns a column name into its GraphQL order field (issued_at → ISSUED_AT).
func orderName(col string) string {
	return strings.ToUpper(col)
}
