package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent/schema"
	"github.com/vektah/gqlparser/v2/ast"
)

// perm is the @perm directive a generated root field carries: the caller needs
// any one of perms (see graph/identity.graphqls and docs/security.md).
func perm(perms ...string) entgql.Directive {
	list := &ast.Value{Kind: ast.ListValue}
	for _, p := range perms {
		list.Children = append(list.Children, &ast.ChildValue{Value: &ast.Value{Kind: ast.StringValue, Raw: p}})
	}
	return entgql.NewDirective("perm", &ast.Argument{Name: "requires", Value: list})
}

// queryField names an entity's root connection field and declares the
// permission(s) reading it needs.
func queryField(name string, perms ...string) schema.Annotation {
	return entgql.QueryField(name).Directives(perm(perms...))
}
