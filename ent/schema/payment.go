package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Payment is money received from (or refunded to) a subscriber.
type Payment struct {
	ent.Schema
}

// Mixin of the Payment.
func (Payment) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the Payment.
func (Payment) Fields() []ent.Field {
	return []ent.Field{
		field.Int("network_user_id").Immutable(),
		field.Int("invoice_id").Optional().Nillable().Immutable(),
		field.Int("payment_gateway_id").Optional().Nillable().Immutable(),
		field.String("number").NotEmpty().Immutable().Annotations(entgql.OrderField("NUMBER")),
		moneyField("amount"),
		field.Enum("method").Values("CASH", "BANK_TRANSFER", "CARD", "MOBILE_WALLET", "GATEWAY"),
		field.Enum("status").Values("PENDING", "COMPLETED", "FAILED", "REFUNDED").Default("PENDING"),
		field.String("transaction_id").Optional().Nillable().Immutable(),
		field.String("idempotency_key").NotEmpty().Immutable().Annotations(hidden()),
		field.JSON("gateway_payload", map[string]any{}).Optional().Annotations(hidden()),
		field.String("failure_reason").Optional().Nillable(),
		field.Time("paid_at").Optional().Nillable().Annotations(entgql.OrderField("PAID_AT")),
		field.Time("refunded_at").Optional().Nillable(),
		field.Int("collected_by_id").Optional().Nillable().Immutable(),
	}
}

// Edges of the Payment.
func (Payment) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("network_user", NetworkUser.Type).Field("network_user_id").Unique().Required().Immutable(),
		edge.To("invoice", Invoice.Type).Field("invoice_id").Unique().Immutable(),
		edge.To("gateway", PaymentGateway.Type).Field("payment_gateway_id").Unique().Immutable(),
		edge.To("collected_by", User.Type).Field("collected_by_id").Unique().Immutable(),
	}
}

// Indexes of the Payment.
func (Payment) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "number").Unique(),
		index.Fields("tenant_id", "idempotency_key").Unique(),
		index.Fields("tenant_id", "payment_gateway_id", "transaction_id").Unique(),
		index.Fields("tenant_id", "status", "paid_at"),
		index.Fields("tenant_id", "method", "paid_at"),
		index.Fields("tenant_id", "paid_at"),
		index.Fields("tenant_id", "network_user_id", "paid_at"),
		index.Fields("tenant_id", "invoice_id", "status"),
		index.Fields("tenant_id", "updated_at"),
	}
}

// Annotations of the Payment.
func (Payment) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		queryField("payments"),
	}
}
