//go:build ignore

// entc.go generates the ent client and the entgql GraphQL schema from
// ent/schema. Run it through `go generate ./...` at the repository root.
package main

import (
	"fmt"
	"log"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
	"github.com/vektah/gqlparser/v2/ast"
)

// authenticatedNode declares the permission of the generated node and nodes
// fields: any authenticated caller; the resolver then checks the read
// permission of the type it found (authz.NodePermissions).
func authenticatedNode(_ *gen.Graph, s *ast.Schema) error {
	q := s.Types["Query"]
	if q == nil {
		return nil
	}
	for _, f := range q.Fields {
		if f.Name == "node" || f.Name == "nodes" {
			f.Directives = append(f.Directives, &ast.Directive{Name: "authenticated"})
		}
	}
	return nil
}

// refusableEdges are required edges whose target the caller may not be
// allowed to read (the read table in internal/authz): GraphQL answers a
// refused non-null field by nulling its parent, so a billing:read key would
// lose the whole invoice for its subscriber. In the API they are nullable;
// the database keeps them required.
var refusableEdges = map[string][]string{
	"Invoice":        {"networkUser"},
	"Payment":        {"networkUser"},
	"NetworkSession": {"router"},
}

// nullableEdges makes the refusableEdges nullable in the schema.
func nullableEdges(_ *gen.Graph, s *ast.Schema) error {
	for typ, fields := range refusableEdges {
		def := s.Types[typ]
		if def == nil {
			return fmt.Errorf("nullableEdges: no type %s", typ)
		}
		for _, name := range fields {
			f := def.Fields.ForName(name)
			if f == nil {
				return fmt.Errorf("nullableEdges: no field %s.%s", typ, name)
			}
			f.Type.NonNull = false
		}
	}
	return nil
}

func main() {
	ex, err := entgql.NewExtension(
		entgql.WithConfigPath("gqlgen.yml"),
		entgql.WithSchemaGenerator(),
		entgql.WithSchemaPath("graph/ent.graphqls"),
		entgql.WithWhereInputs(true),
		entgql.WithNodeDescriptor(false),
		entgql.WithSchemaHook(authenticatedNode, nullableEdges),
	)
	if err != nil {
		log.Fatalf("creating entgql extension: %v", err)
	}
	err = entc.Generate("./ent/schema", &gen.Config{
		Target:  "./ent",
		Package: "github.com/ispgraph/ispgraph/ent",
		Features: []gen.Feature{
			gen.FeaturePrivacy,
			gen.FeatureEntQL,
			gen.FeatureIntercept,
			gen.FeatureGlobalID,
			gen.FeatureVersionedMigration,
			gen.FeatureLock,
			gen.FeatureUpsert,
			gen.FeatureModifier,
			gen.FeatureExecQuery,
		},
	}, entc.Extensions(ex))
	if err != nil {
		log.Fatalf("running ent codegen: %v", err)
	}
}
