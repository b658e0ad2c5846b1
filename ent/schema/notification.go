package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Notification tracks the delivery of one e-mail or SMS to one recipient.
type Notification struct {
	ent.Schema
}

// Mixin of the Notification.
func (Notification) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the Notification.
func (Notification) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("channel").Values("EMAIL", "SMS"),
		field.String("kind").Comment("e.g. invoice_new, invoice_reminder, invoice_overdue, bulk_sms, otp"),
		field.String("recipient"),
		field.String("subject").Default(""),
		field.Text("body").Default(""),
		field.Enum("status").Values("QUEUED", "SENT", "FAILED").Default("QUEUED"),
		field.String("provider_ref").Optional().Nillable(),
		field.String("error").Optional().Nillable(),
		field.Int("attempts").Default(0),
		field.String("batch_id").Optional().Nillable(),
		field.Int("invoice_id").Optional().Nillable(),
		field.Time("sent_at").Optional().Nillable(),
	}
}

// Edges of the Notification.
func (Notification) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("invoice", Invoice.Type).Field("invoice_id").Unique(),
	}
}

// Indexes of the Notification.
func (Notification) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "batch_id", "status"),
		// One row per invoice, e-mail kind and recipient: the invoice e-mail job
		// claims it, so an invoice e-mail is never sent twice. (Bulk SMS rows
		// have no invoice; NULLs never collide.)
		index.Fields("tenant_id", "invoice_id", "kind", "recipient").Unique(),
		index.Fields("tenant_id", "status", "created_at"),
	}
}

// Annotations of the Notification.
func (Notification) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), queryField("notifications")}
}
