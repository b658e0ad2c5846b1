package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// CacheGeneration is the generation number of one cache class of one tenant
// (tenant 0: platform-wide lookups such as tenant by domain). Cache keys carry
// it; a change bumps it in its own transaction, so after a commit no stale
// entry is ever read again, whether or not Redis heard of the change.
//
// No TenantMixin: the cache reads and bumps these rows for every tenant and for
// tenant 0, from hooks that run under any viewer. Nothing else touches them.
type CacheGeneration struct {
	ent.Schema
}

// Fields of the CacheGeneration.
func (CacheGeneration) Fields() []ent.Field {
	return []ent.Field{
		field.Int("tenant_id").Immutable().Comment("0 for platform-wide lookups"),
		field.String("class").Immutable(),
		field.Int64("generation").Default(0),
	}
}

// Indexes of the CacheGeneration.
func (CacheGeneration) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "class").Unique()}
}

// Annotations of the CacheGeneration.
func (CacheGeneration) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("cache_generations"), entgql.Skip(entgql.SkipAll)}
}
