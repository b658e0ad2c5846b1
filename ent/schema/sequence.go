package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Sequence is a gapless per-tenant counter (invoice and payment numbers). It is
// incremented under a row lock inside the transaction that uses the number, so a
// rolled-back transaction leaves no gap.
type Sequence struct {
	ent.Schema
}

// Mixin of the Sequence.
func (Sequence) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}}
}

// Fields of the Sequence.
func (Sequence) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Immutable(),
		field.Int64("value").Default(0),
	}
}

// Indexes of the Sequence.
func (Sequence) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "name").Unique()}
}

// Annotations of the Sequence.
func (Sequence) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip()}
}
