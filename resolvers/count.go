package resolvers

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// pageWithoutCount returns a context in which entgql's Paginate sees neither
// totalCount nor pageInfo selected on the connection being resolved, and
// whether totalCount is selected. Paginate counts every matching row whenever
// either is selected, though pageInfo needs no count (it fetches one row past
// the page): a keyset export selecting pageInfo paid a COUNT over all
// matching rows on every page. The resolver counts itself, only for
// totalCount (see count).
func pageWithoutCount(ctx context.Context) (context.Context, bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return ctx, false
	}
	oc := graphql.GetOperationContext(ctx)
	total, hidden := false, false
	keep := make(ast.SelectionSet, 0, len(fc.Field.Selections))
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, nil) {
		switch f.Name {
		case "totalCount":
			total, hidden = true, true
			continue
		case "pageInfo":
			hidden = true
			continue
		}
		keep = append(keep, f.Field)
	}
	if !hidden {
		return ctx, false
	}
	page := *fc
	page.Field.Selections = keep
	return graphql.WithFieldContext(ctx, &page), total
}

// count returns a connection's totalCount: load runs the count (the
// connection's filter, no cursor), through the counts cache class when the
// filter allows, so a partner paging through subscribers counts them once
// per change instead of on every page. name is the connection's root field.
func (r *Resolver) count(ctx context.Context, name string, load func(context.Context) (int, error)) (int, error) {
	v := viewer.FromContext(ctx)
	key, ok := countKey(ctx, name)
	// A customer sees only its own rows: its counts are not the tenant's.
	// Inside a mutation's transaction the rows may not be committed yet.
	if !ok || r.Cache == nil || !v.HasTenant() || v.Kind == viewer.Customer || ent.FromContext(ctx) != nil {
		return load(ctx)
	}
	return cache.Get(ctx, r.Cache, cache.ClassCounts, v.TenantID, key, load)
}

// countKey names a count by the connection and its where argument as the
// client sent it; ok is false when the count may not be cached: its filter
// depends on the time (timeRelativeScopes) or reaches another entity through
// an edge (has…), whose changes do not all invalidate the counts class.
func countKey(ctx context.Context, name string) (string, bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return "", false
	}
	where := fc.Field.ArgumentMap(graphql.GetOperationContext(ctx).Variables)["where"]
	if where != nil && !ownFieldsOnly(where) {
		return "", false
	}
	b, err := json.Marshal(where) // maps marshal with sorted keys
	if err != nil {
		return "", false
	}
	return name + ":" + string(b), true
}

// ownFieldsOnly reports whether a where argument filters only on the
// entity's own, time-independent fields.
func ownFieldsOnly(where any) bool {
	switch w := where.(type) {
	case map[string]any:
		for k, v := range w {
			if strings.HasPrefix(k, "has") || timeRelativeScopes[k] {
				return false
			}
			if (k == "and" || k == "or" || k == "not") && !ownFieldsOnly(v) {
				return false
			}
		}
	case []any:
		for _, e := range w {
			if !ownFieldsOnly(e) {
				return false
			}
		}
	}
	return true
}
