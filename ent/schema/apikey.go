package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// APIKey is a partner's credential: a public prefix and a secret stored only as a hash.
type APIKey struct {
	ent.Schema
}

// Mixin of the APIKey.
func (APIKey) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the APIKey.
func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty(),
		field.String("prefix").NotEmpty().Unique().Immutable().Annotations(noInput()),
		field.Bytes("secret_hash").Sensitive().Annotations(hidden()),
		field.Strings("scopes").Default([]string{}),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("last_used_at").Optional().Nillable().Annotations(noInput()),
		field.Time("revoked_at").Optional().Nillable().Annotations(noInput()),
		field.Int("rate_limit_per_minute").Optional().Nillable(),
		field.Int("created_by_id").Optional().Nillable().Annotations(noInput()),
	}
}

// Edges of the APIKey.
func (APIKey) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("created_by", User.Type).Field("created_by_id").Unique().Annotations(noInput()),
	}
}

// Indexes of the APIKey.
func (APIKey) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "revoked_at")}
}

// Annotations of the APIKey.
func (APIKey) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Type("APIKey"), entgql.RelayConnection(), queryField("apiKeys")}
}
