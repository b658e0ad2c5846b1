package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// PaymentGateway is a tenant's account with a payment provider. Its configuration
// is encrypted at rest and write-only; the API shows a masked summary.
type PaymentGateway struct {
	ent.Schema
}

// Mixin of the PaymentGateway.
func (PaymentGateway) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the PaymentGateway.
func (PaymentGateway) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("provider").Values("BKASH", "NAGAD", "SSLCOMMERZ", "STRIPE", "MANUAL"),
		field.String("name").NotEmpty().Annotations(entgql.OrderField("NAME")),
		field.Bool("active").Default(true),
		field.Bool("test_mode").Default(false),
		field.Bytes("config_encrypted").Sensitive().Optional().Annotations(hidden()),
		field.JSON("config_summary", map[string]string{}).Optional().Annotations(hidden()),
	}
}

// Edges of the PaymentGateway.
func (PaymentGateway) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("payments", Payment.Type).Ref("gateway").Annotations(entgql.Skip()),
	}
}

// Indexes of the PaymentGateway.
func (PaymentGateway) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "active"),
		index.Fields("tenant_id", "provider"),
	}
}

// Annotations of the PaymentGateway.
func (PaymentGateway) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		queryField("paymentGateways"),
		entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate()),
	}
}
