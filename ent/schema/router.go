package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Router is a MikroTik router reached through its API.
type Router struct {
	ent.Schema
}

// Mixin of the Router.
func (Router) Mixin() []ent.Mixin {
	return []ent.Mixin{TenantMixin{}, TimeMixin{}}
}

// Fields of the Router.
func (Router) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Annotations(entgql.OrderField("NAME")),
		field.String("host").NotEmpty(),
		field.Int("api_port").Default(8728).Range(1, 65535),
		field.Bool("use_tls").Default(false),
		field.String("username").NotEmpty(),
		field.String("password").Sensitive().Default("").Annotations(writeOnly()).
			Comment("AES-256-GCM ciphertext"),
		field.Enum("status").Values("ACTIVE", "INACTIVE", "ERROR").Default("ACTIVE"),
		field.Enum("api_status").Values("ONLINE", "OFFLINE", "UNKNOWN").Default("UNKNOWN").Annotations(noInput()),
		field.Time("last_checked_at").Optional().Nillable().Annotations(noInput()),
		field.Time("last_synced_at").Optional().Nillable().Annotations(noInput()),
		field.String("last_error").Optional().Nillable().Annotations(noInput()),
		field.Int("response_time_ms").Optional().Nillable().Annotations(noInput()),
		// Health, from the scheduled check (/system/resource, /system/identity).
		field.Time("last_seen_at").Optional().Nillable().Annotations(reported()).
			Comment("when the router last answered (a refusal counts: it answered)"),
		field.Int("cpu_load").Optional().Nillable().Annotations(reported()).
			Comment("CPU load in percent at the last health check"),
		field.Int64("free_memory").Optional().Nillable().Annotations(reported()).
			Comment("free memory in bytes at the last health check"),
		field.Int64("total_memory").Optional().Nillable().Annotations(reported()).
			Comment("total memory in bytes"),
		field.Int64("uptime_seconds").Optional().Nillable().Annotations(reported()).
			Comment("seconds since the router started, at the last health check"),
		field.String("routeros_version").Optional().Nillable().Annotations(reported()).
			Comment("RouterOS version, e.g. 7.14.3 (stable)"),
		field.String("identity").Optional().Nillable().Annotations(reported()).
			Comment("the router's system identity (its name on the router)"),
		field.String("board_name").Optional().Nillable().Annotations(reported()).
			Comment("the router's model"),
	}
}

// Edges of the Router.
func (Router) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("network_users", NetworkUser.Type).Ref("router").Annotations(entgql.RelayConnection(), noInput()),
		edge.From("sessions", NetworkSession.Type).Ref("router").Annotations(entgql.RelayConnection(), noInput()),
	}
}

// Indexes of the Router.
func (Router) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "status"),
		index.Fields("tenant_id", "host"),
		index.Fields("tenant_id", "name").Unique(),
	}
}

// Annotations of the Router.
func (Router) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		queryField("routers"),
		entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate()),
	}
}

// reported marks a field only the router reports: not settable, and not a
// filter (nothing lists routers by free memory).
func reported() entgql.Annotation {
	return entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput, entgql.SkipWhereInput)
}
