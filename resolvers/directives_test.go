package resolvers_test

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/resolvers"
)

// TestEveryTypeHasAReadRule fails, listing them, when an object type of the
// schema has no entry in authz's read table, a Mutation or Subscription
// field declares no permission directive, or a Query field is governed by nothing. The server
// refuses to start on the same gaps.
func TestEveryTypeHasAReadRule(t *testing.T) {
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	if gaps := resolvers.UncoveredFields(s); len(gaps) > 0 {
		t.Errorf("%d permission gap(s); add the type to readRules in internal/authz/read.go, or the directive "+
			"(@perm(requires: \"...\"), @authenticated or @public) to the field:\n  %s", len(gaps), strings.Join(gaps, "\n  "))
	}
	if _, err := resolvers.ReadPermissions(s); err != nil {
		t.Error(err)
	}
	objects := 0
	for name, def := range s.Types {
		if def.Kind == ast.Object && !strings.HasPrefix(name, "__") && name != "Query" && name != "Mutation" && name != "Subscription" {
			objects++
			if _, ok := authz.ReadRuleOf(name); !ok {
				t.Errorf("type %s has no read rule", name)
			}
		}
	}
	if objects < 40 {
		t.Fatalf("only %d object types found in the schema: the walk is broken", objects)
	}
}

// TestUncoveredFieldsReportsGaps checks the checker on a schema with one gap
// of each kind, and that the server would refuse it.
func TestUncoveredFieldsReportsGaps(t *testing.T) {
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "gaps.graphqls", Input: `
directive @perm(requires: [String!]!, also: [String!]) on FIELD_DEFINITION
directive @public on FIELD_DEFINITION
type Router { id: ID! }
type PageInfo { hasNextPage: Boolean! }
type Brandnew { id: ID! }
type Query {
  routers: [Router!]!
  pageInfo: PageInfo!
  count: Int!
  counted: Int! @perm(requires: "reports:run")
}
type Mutation {
  ok: Boolean! @public
  forgotten: Boolean!
}`})
	if err != nil {
		t.Fatal(err)
	}
	got := resolvers.UncoveredFields(s)
	want := []string{
		"Mutation.forgotten declares none of @perm, @authenticated, @public",
		"Query.count returns Int: declare @perm, @authenticated or @public",
		"Query.pageInfo returns PageInfo, which has no read rule of its own: declare @perm, @authenticated or @public",
		"type Brandnew has no read rule in internal/authz (readRules)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if _, err := resolvers.ReadPermissions(s); err == nil || !strings.Contains(err.Error(), "Brandnew") {
		t.Fatalf("ReadPermissions on a schema with gaps: %v", err)
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
			if d.Arguments.ForName("requires") == nil {
				t.Errorf("%s.%s: @perm without requires", typ.Name, f.Name)
				continue
			}
			var vals []*ast.Value
			for _, arg := range d.Arguments {
				if arg.Value.Kind != ast.ListValue {
					vals = append(vals, arg.Value)
				}
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
