package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Invoice bills a subscriber for one period of a package.
type Invoice struct {
	ent.Schema
}

// Mixin of the Invoice.
func (Invoice) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the Invoice.
func (Invoice) Fields() []ent.Field {
	return []ent.Field{
		field.Int("network_user_id").Immutable(),
		field.Int("package_id").Optional().Nillable().Immutable(),
		field.String("number").NotEmpty().Immutable().Annotations(entgql.OrderField("NUMBER")),
		moneyField("amount"),
		moneyField("tax"),
		moneyField("total"),
		moneyFieldZero("amount_paid"),
		moneyFieldZero("credit_applied"), // the part of amount_paid taken from the subscriber's credit
		field.Enum("status").Values("DRAFT", "PENDING", "PAID", "CANCELLED", "OVERDUE").Default("PENDING").
			Annotations(entgql.OrderField("STATUS")),
		field.Time("period_start"),
		field.Time("period_end"),
		field.Time("issued_at").Annotations(entgql.OrderField("ISSUED_AT")),
		field.Time("due_date").Annotations(entgql.OrderField("DUE_DATE")),
		field.Time("paid_at").Optional().Nillable().Annotations(noInput()),
		field.String("notes").Default(""),
	}
}

// Edges of the Invoice.
func (Invoice) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("network_user", NetworkUser.Type).Field("network_user_id").Unique().Required().Immutable(),
		edge.To("package", ServicePackage.Type).Field("package_id").Unique().Immutable(),
		edge.From("payments", Payment.Type).Ref("invoice").Annotations(noInput()),
		edge.From("notifications", Notification.Type).Ref("invoice").Annotations(entgql.Skip()),
	}
}

// Indexes of the Invoice.
func (Invoice) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "number").Unique(),
		index.Fields("tenant_id", "status", "due_date"),
		index.Fields("tenant_id", "network_user_id", "issued_at"),
		index.Fields("tenant_id", "network_user_id", "period_start").Unique(),
		index.Fields("tenant_id", "due_date"),
		index.Fields("tenant_id", "issued_at"),
		index.Fields("tenant_id", "updated_at"),
	}
}

// Annotations of the Invoice.
func (Invoice) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		queryField("invoices"),
	}
}
