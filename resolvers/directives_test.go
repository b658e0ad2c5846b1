package resolvers_test

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/resolvers"
)

// TestEveryRootFieldDeclaresAPermission walks the schema and fails, listing
// them, when a field of Query or Mutation declares none of @perm,
// @authenticated or @public.
func TestEveryRootFieldDeclaresAPermission(t *testing.T) {
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	if missing := resolvers.UndeclaredRootFields(s); len(missing) > 0 {
		t.Errorf("%d root field(s) declare no permission; add @perm(requires: \"...\"), @authenticated or @public "+
			"(generated fields: queryField(...) in ent/schema):\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
}

// TestPermNamesAreInTheCatalogue catches a misspelt permission, which would
// make a field unusable by everyone.
func TestPermNamesAreInTheCatalogue(t *testing.T) {
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	customer := map[string]bool{}
	for _, p := range authz.CustomerPermissions() {
		customer[p] = true
	}
	for _, typ := range []*ast.Definition{s.Query, s.Mutation} {
		for _, f := range typ.Fields {
			d := f.Directives.ForName("perm")
			if d == nil {
				continue
			}
			arg := d.Arguments.ForName("requires")
			if arg == nil {
				t.Errorf("%s.%s: @perm without requires", typ.Name, f.Name)
				continue
			}
			vals := []*ast.Value{arg.Value}
			if arg.Value.Kind == ast.ListValue {
				vals = nil
				for _, c := range arg.Value.Children {
					vals = append(vals, c.Value)
				}
			}
			for _, v := range vals {
				if !authz.Valid(v.Raw) && !customer[v.Raw] {
					t.Errorf("%s.%s: @perm names %q, which is not in the permission catalogue", typ.Name, f.Name, v.Raw)
				}
			}
		}
	}
}

// TestUndeclaredRootFieldsReportsOffenders checks the checker on a schema
// with a field that declares nothing.
func TestUndeclaredRootFieldsReportsOffenders(t *testing.T) {
	q := &ast.Definition{Name: "Query", Fields: ast.FieldList{
		{Name: "ok", Directives: ast.DirectiveList{{Name: "public"}}},
		{Name: "forgotten"},
		{Name: "__schema"},
	}}
	got := resolvers.UndeclaredRootFields(&ast.Schema{Query: q})
	if len(got) != 1 || got[0] != "Query.forgotten" {
		t.Fatalf("got %v, want [Query.forgotten]", got)
	}
}
