package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// HotspotUser is a hotspot customer who signs up with a phone number and an OTP.
type HotspotUser struct {
	ent.Schema
}

// Mixin of the HotspotUser.
func (HotspotUser) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the HotspotUser.
func (HotspotUser) Fields() []ent.Field {
	return []ent.Field{
		field.String("phone").NotEmpty().Annotations(entgql.OrderField("PHONE")),
		field.String("username").NotEmpty().Annotations(entgql.OrderField("USERNAME")),
		field.String("password").Sensitive().Default("").Annotations(writeOnly()).
			Comment("AES-256-GCM ciphertext: the router needs the plain password"),
		field.String("otp_hash").Sensitive().Optional().Nillable().Annotations(hidden()),
		field.Time("otp_expires_at").Optional().Nillable().Annotations(hidden()),
		field.Int("otp_attempts").Default(0).Annotations(hidden()),
		field.Time("otp_sent_at").Optional().Nillable().Annotations(hidden()),
		field.String("otp_request_id").Optional().Nillable().Annotations(hidden()).
			Comment("the pending sign-up code request; the SMS job makes the code only while it is pending"),
		field.Bool("verified").Default(false).Annotations(noInput()),
		field.Int("package_id").Optional().Nillable(),
		field.Enum("status").Values("PENDING", "ACTIVE", "SUSPENDED", "EXPIRED").Default("PENDING"),
		field.Time("expires_at").Optional().Nillable().Annotations(entgql.OrderField("EXPIRES_AT")),
		field.String("mac_address").Optional().Nillable().
			Comment("when set, the hotspot user may sign in only from this MAC address (mac-address on the router)"),
	}
}

// Edges of the HotspotUser.
func (HotspotUser) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("package", ServicePackage.Type).Field("package_id").Unique(),
		edge.From("sessions", NetworkSession.Type).Ref("hotspot_user").Annotations(entgql.RelayConnection(), noInput()),
	}
}

// Indexes of the HotspotUser.
func (HotspotUser) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "phone").Unique(),
		index.Fields("tenant_id", "username").Unique(),
		index.Fields("tenant_id", "status", "verified"),
		index.Fields("tenant_id", "verified"),
		index.Fields("tenant_id", "expires_at"),
	}
}

// Annotations of the HotspotUser.
func (HotspotUser) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		queryField("hotspotUsers"),
		entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate()),
	}
}
