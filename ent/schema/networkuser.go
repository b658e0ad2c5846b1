package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// NetworkUser is a subscriber: a PPPoE, hotspot or static-IP customer of the ISP.
type NetworkUser struct {
	ent.Schema
}

// Mixin of the NetworkUser.
func (NetworkUser) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the NetworkUser.
func (NetworkUser) Fields() []ent.Field {
	return []ent.Field{
		field.String("username").NotEmpty().MaxLen(64).Annotations(entgql.OrderField("USERNAME")),
		field.String("service_password").Sensitive().Default("").Annotations(writeOnly()).
			Comment("AES-256-GCM ciphertext: routers need the plain password"),
		field.String("portal_password_hash").Sensitive().Optional().Nillable().Annotations(hidden()),
		field.String("full_name").Default("").Annotations(entgql.OrderField("FULL_NAME")),
		field.String("email").Default(""),
		field.String("phone").Default(""),
		field.String("address").Default(""),
		field.Enum("service_type").Values("PPPOE", "HOTSPOT", "STATIC").Default("PPPOE"),
		field.Enum("status").Values("ACTIVE", "INACTIVE", "SUSPENDED", "EXPIRED", "DELETED").Default("ACTIVE").
			Comment("DELETED: removed from the routers by deleteNetworkUser; kept for billing history").
			Annotations(entgql.OrderField("STATUS")),
		field.Enum("billing_type").Values("PREPAID", "POSTPAID").Default("POSTPAID"),
		field.Int("package_id").Optional().Nillable(),
		field.Int("router_id").Optional().Nillable(),
		field.String("static_ip").Optional().Nillable(),
		field.String("mac_address").Optional().Nillable(),
		field.Time("expires_at").Optional().Nillable().Annotations(entgql.OrderField("EXPIRES_AT")),
		field.String("suspension_reason").Optional().Nillable().Annotations(noInput()),
		field.Time("suspended_at").Optional().Nillable().Annotations(noInput()),
		moneyFieldZero("credit"),
		field.Time("router_synced_at").Optional().Nillable().Annotations(noInput()).
			Comment("when the router last matched this subscriber; null while a change waits to reach it"),
		field.String("router_sync_error").Optional().Nillable().Annotations(noInput()).
			Comment("why the last attempt to carry this subscriber to its router failed"),
	}
}

// Edges of the NetworkUser.
func (NetworkUser) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("package", ServicePackage.Type).Field("package_id").Unique(),
		edge.To("router", Router.Type).Field("router_id").Unique(),
		edge.From("invoices", Invoice.Type).Ref("network_user").
			Annotations(entgql.RelayConnection(), noInput()),
		edge.From("payments", Payment.Type).Ref("network_user").
			Annotations(entgql.RelayConnection(), noInput()),
		edge.From("sessions", NetworkSession.Type).Ref("network_user").
			Annotations(entgql.RelayConnection(), noInput()),
	}
}

// Indexes of the NetworkUser.
func (NetworkUser) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "username").Unique(),
		index.Fields("tenant_id", "status", "service_type"),
		index.Fields("tenant_id", "service_type"),
		index.Fields("tenant_id", "email"),
		index.Fields("tenant_id", "phone"),
		index.Fields("tenant_id", "package_id"),
		index.Fields("tenant_id", "router_id"),
		index.Fields("tenant_id", "expires_at"),
	}
}

// Annotations of the NetworkUser.
func (NetworkUser) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		queryField("networkUsers"),
		entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate()),
	}
}
