package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestSchemaDescribed fails listing every type, field, input field, argument
// and enum value of the client schema that has no description: client
// developers read schema.graphql (and introspection) as the API reference.
func TestSchemaDescribed(t *testing.T) {
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: string(clientSchema())})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for name, d := range s.Types {
		if d.BuiltIn || strings.HasPrefix(name, "__") {
			continue
		}
		if strings.TrimSpace(d.Description) == "" {
			missing = append(missing, name)
		}
		for _, f := range d.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if strings.TrimSpace(f.Description) == "" {
				missing = append(missing, name+"."+f.Name)
			}
			for _, a := range f.Arguments {
				if strings.TrimSpace(a.Description) == "" {
					missing = append(missing, name+"."+f.Name+"("+a.Name+")")
				}
			}
		}
		for _, v := range d.EnumValues {
			if strings.TrimSpace(v.Description) == "" {
				missing = append(missing, name+"."+v.Name)
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no description: %s", m)
	}
	if len(missing) > 0 {
		t.Logf("%d elements without a description", len(missing))
	}
}
