package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent/schema"
)

// queryField names an entity's root connection field. Who may read it is
// declared once, for the entity's GraphQL type, in internal/authz's read
// table, which the server applies to every field returning that type (see
// docs/security.md).
func queryField(name string) schema.Annotation {
	return entgql.QueryField(name)
}
