package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuthToken is a bearer token issued by login or customerLogin. Only the SHA-256
// of the token is stored; the token itself is shown once.
type AuthToken struct {
	ent.Schema
}

// Mixin of the AuthToken.
func (AuthToken) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}}
}

// Fields of the AuthToken.
func (AuthToken) Fields() []ent.Field {
	return []ent.Field{
		field.Bytes("token_hash").Sensitive().Unique().Immutable(),
		field.Enum("kind").Values("STAFF", "CUSTOMER").Immutable(),
		field.Int("user_id").Optional().Nillable().Immutable(),
		field.Int("network_user_id").Optional().Nillable().Immutable(),
		field.Time("created_at").Immutable(),
		field.Time("expires_at"),
		field.Time("revoked_at").Optional().Nillable(),
		field.String("address").Default(""),
	}
}

// Edges of the AuthToken.
func (AuthToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("user", User.Type).Field("user_id").Unique().Immutable(),
		edge.To("network_user", NetworkUser.Type).Field("network_user_id").Unique().Immutable(),
	}
}

// Indexes of the AuthToken.
func (AuthToken) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "user_id"),
		index.Fields("tenant_id", "expires_at"),
	}
}

// Annotations of the AuthToken.
func (AuthToken) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip()}
}
