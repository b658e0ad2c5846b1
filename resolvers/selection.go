package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/ispgraph/ispgraph/loaders"
)

// amountDueFields are the NetworkUser fields computed from the amount due.
var amountDueFields = map[string]bool{"balance": true, "amountDue": true}

// withAmountDue returns ctx marked (loaders.WithAmountDue) so the
// subscribers the resolver's query loads carry their amount due, when the
// field being resolved selects balance or amountDue on them: under path (the
// connection's edges and node), on objects of type satisfies.
func withAmountDue(ctx context.Context, satisfies []string, path ...string) context.Context {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return ctx
	}
	oc := graphql.GetOperationContext(ctx)
	sel := fc.Field.Selections
walk:
	for _, name := range path {
		for _, f := range graphql.CollectFields(oc, sel, nil) {
			if f.Name == name {
				sel = f.Selections
				continue walk
			}
		}
		return ctx
	}
	for _, f := range graphql.CollectFields(oc, sel, satisfies) {
		if amountDueFields[f.Name] {
			return loaders.WithAmountDue(ctx)
		}
	}
	return ctx
}
