package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// User is a member of a tenant's staff.
type User struct {
	ent.Schema
}

// Mixin of the User.
func (User) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Annotations(entgql.OrderField("NAME")),
		field.String("email").NotEmpty().Annotations(entgql.OrderField("EMAIL")),
		field.String("password_hash").Sensitive().NotEmpty().Annotations(hidden()),
		field.Int("role_id").Optional().Nillable(),
		field.Bool("active").Default(true),
		field.Time("last_login_at").Optional().Nillable().Annotations(noInput()),
		// A pending invitation or password reset: the hash of the one-time
		// token e-mailed to the user, and when it stops working.
		field.Bytes("setup_token_hash").Optional().Nillable().Sensitive().Annotations(hidden()),
		field.Time("setup_expires_at").Optional().Nillable().Annotations(hidden()),
	}
}

// Edges of the User.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("role", Role.Type).Field("role_id").Unique(),
	}
}

// Indexes of the User.
func (User) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "email").Unique(),
		index.Fields("tenant_id", "active"),
		index.Fields("setup_token_hash").Unique(),
	}
}

// Annotations of the User.
func (User) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), queryField("users")}
}
