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
		// Burst (RouterOS rate-limit): up to the burst rate while the average
		// over burst time stays under the threshold. 0: no burst.
		field.Int("burst_up_kbps").Default(0).NonNegative().Comment("burst rate, subscriber's upload (0: no burst)"),
		field.Int("burst_down_kbps").Default(0).NonNegative().Comment("burst rate, subscriber's download (0: no burst)"),
		field.Int("burst_threshold_up_kbps").Default(0).NonNegative().Comment("burst threshold, upload"),
		field.Int("burst_threshold_down_kbps").Default(0).NonNegative().Comment("burst threshold, download"),
		field.Int("burst_time_seconds").Default(0).NonNegative().Comment("burst time: the window the threshold is averaged over"),
		// Hotspot limits, set on each hotspot user of the package.
		field.Int64("uptime_limit_seconds").Optional().Nillable().Positive().
			Comment("hotspot: online time allowed per user (limit-uptime); none: unlimited"),
		field.Int64("data_limit_bytes").Optional().Nillable().Positive().
			Comment("hotspot: bytes allowed per user, both directions (limit-bytes-total); none: unlimited"),
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
