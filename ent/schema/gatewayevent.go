package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// GatewayEvent is a provider event (a webhook or IPN call) that was verified
// and processed: its id is stored in the transaction that applied it, so a
// replayed or duplicated delivery changes nothing.
type GatewayEvent struct {
	ent.Schema
}

// Mixin of the GatewayEvent.
func (GatewayEvent) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}}
}

// Fields of the GatewayEvent.
func (GatewayEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int("payment_gateway_id").Immutable(),
		field.String("event_id").NotEmpty().MaxLen(255).Immutable(),
		field.String("kind").MaxLen(100).Immutable(),
		field.String("transaction_id").Optional().MaxLen(255).Immutable(),
		field.String("outcome").MaxLen(255).Immutable(),
		field.Time("received_at").Default(time.Now).Immutable(),
	}
}

// Indexes of the GatewayEvent.
func (GatewayEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "payment_gateway_id", "event_id").Unique(),
	}
}

// Annotations of the GatewayEvent.
func (GatewayEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip()}
}
