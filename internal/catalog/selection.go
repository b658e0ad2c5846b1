package catalog

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// onlyNodeScalars reports whether the connection field resolving in ctx
// selects, under edges.node, only fields without a selection of their own.
func onlyNodeScalars(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return false
	}
	oc := graphql.GetOperationContext(ctx)
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, nil) {
		if f.Name != "edges" {
			continue
		}
		for _, e := range graphql.CollectFields(oc, f.Selections, nil) {
			if e.Name != "node" {
				continue
			}
			for _, n := range graphql.CollectFields(oc, e.Selections, nil) {
				if len(n.Selections) > 0 {
					return false
				}
			}
		}
	}
	return true
}
