package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// NetworkSession is a PPPoE or hotspot session seen on a router.
type NetworkSession struct {
	ent.Schema
}

// Mixin of the NetworkSession.
func (NetworkSession) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the NetworkSession.
func (NetworkSession) Fields() []ent.Field {
	return []ent.Field{
		field.Int("router_id"),
		field.Int("network_user_id").Optional().Nillable(),
		field.Int("hotspot_user_id").Optional().Nillable(),
		field.Enum("kind").Values("PPPOE", "HOTSPOT"),
		field.String("username").Annotations(entgql.OrderField("USERNAME")),
		field.String("router_session_id").Comment("the router's .id for the active entry"),
		field.String("address").Default(""),
		field.String("caller_id").Default("").Comment("MAC address or caller id"),
		// GraphQL's Int is 32-bit: the API serves these as Int64 (the *64
		// fields of graph/counters.graphqls); the Int fields are deprecated.
		field.Int64("uptime_seconds").Default(0).Annotations(int32Deprecated("uptimeSeconds64")),
		field.Int64("bytes_in").Default(0).Annotations(int32Deprecated("bytesIn64")),
		field.Int64("bytes_out").Default(0).Annotations(int32Deprecated("bytesOut64")),
		field.Time("started_at").Annotations(entgql.OrderField("STARTED_AT")),
		field.Time("last_seen_at"),
		field.Time("ended_at").Optional().Nillable(),
		field.Enum("status").Values("ACTIVE", "CLOSED").Default("ACTIVE"),
	}
}

// Edges of the NetworkSession.
func (NetworkSession) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("router", Router.Type).Field("router_id").Unique().Required(),
		edge.To("network_user", NetworkUser.Type).Field("network_user_id").Unique(),
		edge.To("hotspot_user", HotspotUser.Type).Field("hotspot_user_id").Unique(),
	}
}

// Indexes of the NetworkSession.
func (NetworkSession) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "router_id", "status"),
		index.Fields("tenant_id", "network_user_id", "status"),
		index.Fields("tenant_id", "hotspot_user_id", "status"),
		index.Fields("tenant_id", "status", "started_at"),
	}
}

// Annotations of the NetworkSession.
func (NetworkSession) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		queryField("networkSessions"),
	}
}

// int32Deprecated deprecates the 32-bit Int field of a 64-bit counter in
// favour of its Int64 twin (docs/api-evolution.md).
func int32Deprecated(replacement string) schema.Annotation {
	return entgql.Directives(entgql.Deprecated(
		"Int is 32-bit and wrong past 2147483647: use " + replacement + " (Int64); removed after 2027-06-30"))
}
