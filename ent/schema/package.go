package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ServicePackage is a service plan a subscriber buys ("Package" in the API; the
// Go name avoids the keyword).
type ServicePackage struct {
	ent.Schema
}

// Mixin of the ServicePackage.
func (ServicePackage) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the ServicePackage.
func (ServicePackage) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Annotations(entgql.OrderField("NAME")),
		field.String("description").Default(""),
		field.Int("bandwidth_up_kbps").NonNegative(),
		field.Int("bandwidth_down_kbps").NonNegative().Annotations(entgql.OrderField("BANDWIDTH_DOWN_KBPS")),
		moneyField("price"),
		field.Enum("billing_cycle").Values("DAILY", "MONTHLY", "ONETIME").Default("MONTHLY"),
		field.Int("validity_days").Default(30).Positive(),
		field.String("router_profile").Default("").Comment("PPP profile or rate-limit name on the router"),
		field.Enum("status").Values("ACTIVE", "INACTIVE").Default("ACTIVE"),
	}
}

// Edges of the ServicePackage.
func (ServicePackage) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("network_users", NetworkUser.Type).Ref("package").Annotations(entgql.RelayConnection(), noInput()),
		edge.From("hotspot_users", HotspotUser.Type).Ref("package").Annotations(entgql.Skip()),
		edge.From("invoices", Invoice.Type).Ref("package").Annotations(entgql.Skip()),
	}
}

// Indexes of the ServicePackage.
func (ServicePackage) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "name").Unique(),
		index.Fields("tenant_id", "status"),
	}
}

// Annotations of the ServicePackage.
func (ServicePackage) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entsql.Table("packages"),
		entgql.Type("Package"),
		entgql.RelayConnection(),
		queryField("packages"),
		entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate()),
	}
}
