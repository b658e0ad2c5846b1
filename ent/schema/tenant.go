package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/ispgraph/ispgraph/ent/privacy"
	"github.com/ispgraph/ispgraph/internal/tax"
	"github.com/ispgraph/ispgraph/internal/tenancy"
)

// Tenant is one ISP using the instance.
type Tenant struct {
	ent.Schema
}

// Mixin of the Tenant.
func (Tenant) Mixin() []ent.Mixin {
	return []ent.Mixin{TimeMixin{}}
}

// Fields of the Tenant.
func (Tenant) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty(),
		field.String("slug").NotEmpty().Unique().Immutable(),
		field.String("domain").NotEmpty().Unique(),
		field.String("subdomain").Optional().Nillable().Unique(),
		field.Enum("status").Values("ACTIVE", "INACTIVE", "SUSPENDED").Default("ACTIVE"),
		field.String("timezone").Default("UTC").Comment("IANA time zone for billing periods and due dates"),
		field.String("currency").Default("USD").MaxLen(3),
		field.Int("tax_rate_bp").Default(0).NonNegative().Comment("tax rate in basis points: 1500 = 15%; used when taxes is empty"),
		field.JSON("taxes", []tax.Tax{}).Optional().Annotations(hidden()),
		field.String("invoice_prefix").Default("INV"),
		field.Int("grace_days").Default(7).NonNegative(),
		field.JSON("settings", map[string]any{}).Optional().Annotations(hidden()),
	}
}

// Indexes of the Tenant.
func (Tenant) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("status"),
	}
}

// Annotations of the Tenant.
func (Tenant) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Policy of the Tenant: a viewer sees only its own tenant; tenants are created
// and changed by operators' tooling, never through a tenant's credential.
func (Tenant) Policy() ent.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{tenancy.FilterOwnTenant()},
		Mutation: privacy.MutationPolicy{tenancy.DenyMutation("tenants are managed by platform operators")},
	}
}
