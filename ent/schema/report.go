package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// BillingReport is a report computed in the background and kept with its rows.
type BillingReport struct {
	ent.Schema
}

// Mixin of the BillingReport.
func (BillingReport) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the BillingReport.
func (BillingReport) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("type").Values("MONTHLY_REVENUE", "AR_AGING", "COLLECTIONS", "OVERDUE_SUBSCRIBERS"),
		field.JSON("parameters", map[string]string{}).Optional().Annotations(hidden()),
		field.Enum("status").Values("QUEUED", "RUNNING", "DONE", "FAILED").Default("QUEUED"),
		field.JSON("rows", []map[string]string{}).Optional().Annotations(hidden()),
		field.String("error").Optional().Nillable(),
		field.Int("requested_by_id").Optional().Nillable().Immutable(),
		field.Time("started_at").Optional().Nillable(),
		field.Time("finished_at").Optional().Nillable(),
	}
}

// Edges of the BillingReport.
func (BillingReport) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("requested_by", User.Type).Field("requested_by_id").Unique().Immutable(),
	}
}

// Indexes of the BillingReport.
func (BillingReport) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "created_at")}
}

// Annotations of the BillingReport.
func (BillingReport) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), queryField("billingReports")}
}
