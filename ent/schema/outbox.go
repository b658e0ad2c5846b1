package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// OutboxJob is a job written in the same transaction as the change that causes
// it. The relay moves it into the queue (PENDING → ENQUEUED); the worker marks
// it DONE once the handler's effect is committed, or DEAD when the job used up
// its attempts. An ENQUEUED row whose effect is not done within its job's bound
// is enqueued again, so no job is lost when Redis is down or loses its data.
type OutboxJob struct {
	ent.Schema
}

// Mixin of the OutboxJob.
func (OutboxJob) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}}
}

// Fields of the OutboxJob.
func (OutboxJob) Fields() []ent.Field {
	return []ent.Field{
		field.String("job_name").Immutable(),
		field.JSON("args", map[string]any{}).Immutable(),
		field.String("dedup_key").Optional().Nillable().Immutable(),
		field.Enum("status").Values("PENDING", "ENQUEUED", "DONE", "DEAD").Default("PENDING"),
		field.Int("attempts").Default(0),
		field.Time("available_at").Default(time.Now),
		field.Time("enqueued_at").Optional().Nillable(),
		field.Time("done_at").Optional().Nillable(),
		field.String("last_error").Optional().Nillable(),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}

// Indexes of the OutboxJob.
func (OutboxJob) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "dedup_key").Unique(),
		index.Fields("status", "available_at"),
		index.Fields("status", "enqueued_at"),
	}
}

// Annotations of the OutboxJob.
func (OutboxJob) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("outbox"), entgql.Skip()}
}
