package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditLog records who did what: every mutation, login and operator access.
// Changes never carry secrets.
type AuditLog struct {
	ent.Schema
}

// Mixin of the AuditLog.
func (AuditLog) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}}
}

// Fields of the AuditLog.
func (AuditLog) Fields() []ent.Field {
	return []ent.Field{
		field.String("actor_kind").Immutable(),
		field.Int("actor_id").Optional().Nillable().Immutable(),
		field.String("actor_label").Default("").Immutable(),
		field.String("action").Immutable(),
		field.String("entity_type").Default("").Immutable(),
		field.Int("entity_id").Optional().Nillable().Immutable(),
		field.JSON("changes", map[string]any{}).Optional().Immutable().Annotations(hidden()),
		field.String("request_id").Default("").Immutable(),
		field.String("address").Default("").Immutable(),
		field.Time("created_at").Default(time.Now).Immutable().Annotations(entgql.OrderField("CREATED_AT")),
	}
}

// Indexes of the AuditLog.
func (AuditLog) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "created_at"),
		index.Fields("tenant_id", "entity_type", "entity_id"),
	}
}

// Annotations of the AuditLog.
func (AuditLog) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), queryField("auditLogs")}
}
