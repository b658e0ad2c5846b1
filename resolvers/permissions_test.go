package resolvers_test

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/resolvers"
)

// fieldCtx returns ctx as gqlgen hands it to field middleware for
// object.field of the schema.
func fieldCtx(tb testing.TB, ctx context.Context, s *ast.Schema, object, field string) context.Context {
	tb.Helper()
	def := s.Types[object].Fields.ForName(field)
	if def == nil {
		tb.Fatalf("no field %s.%s", object, field)
	}
	return graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: object,
		Field: graphql.CollectedField{Field: &ast.Field{Name: field, Alias: field, Definition: def}}})
}

// TestReadPermissionsMiddleware checks the middleware on single fields: it
// refuses before the resolver runs, and lets fields of unguarded types and
// mutations through untouched.
func TestReadPermissionsMiddleware(t *testing.T) {
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	mw, err := resolvers.ReadPermissions(s)
	if err != nil {
		t.Fatal(err)
	}
	billing := viewer.NewContext(context.Background(), &viewer.Viewer{Kind: viewer.Partner, TenantID: 1, Permissions: []string{authz.BillingRead}})
	staff := viewer.NewContext(context.Background(), &viewer.Viewer{Kind: viewer.Staff, TenantID: 1, UserID: 7, Permissions: []string{authz.NetworkUsersRead}})
	for _, c := range []struct {
		ctx           context.Context
		object, field string
		want          apperr.Code
	}{
		{billing, "NetworkUser", "router", apperr.Forbidden},
		{billing, "Payment", "collectedBy", apperr.Forbidden},
		{billing, "User", "role", apperr.Forbidden},
		{billing, "Query", "routers", apperr.Forbidden},
		{billing, "Query", "invoices", ""},
		{billing, "NetworkUser", "invoices", ""},
		{billing, "Invoice", "payments", ""},
		{billing, "Invoice", "total", ""},
		{billing, "Mutation", "createRouter", ""}, // its @perm decides
		{staff, "Viewer", "user", ""},             // the caller itself
		{staff, "Payment", "collectedBy", apperr.Forbidden},
		{context.Background(), "Invoice", "networkUser", apperr.Unauthenticated},
		{context.Background(), "Query", "viewer", apperr.Unauthenticated},
	} {
		called := false
		_, err := mw(fieldCtx(t, c.ctx, s, c.object, c.field), func(context.Context) (any, error) { called = true; return nil, nil })
		got := apperr.Code("")
		if err != nil {
			got = apperr.CodeOf(err)
		}
		if got != c.want || called != (c.want == "") {
			t.Errorf("%s.%s: code %q, resolver called %v; want %q", c.object, c.field, got, called, c.want)
		}
	}
}

// BenchmarkReadPermissions measures the middleware's cost per field: a
// scalar field (most of a partner query) and a field returning a guarded type.
func BenchmarkReadPermissions(b *testing.B) {
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	mw, err := resolvers.ReadPermissions(s)
	if err != nil {
		b.Fatal(err)
	}
	base := viewer.NewContext(context.Background(), &viewer.Viewer{Kind: viewer.Partner, TenantID: 1,
		Permissions: []string{authz.NetworkUsersRead, authz.BillingRead, authz.PackagesRead}})
	next := func(context.Context) (any, error) { return nil, nil }
	// baseline: what any field middleware costs (read the field context,
	// call the resolver), to compare against.
	baseline := func(ctx context.Context, next graphql.Resolver) (any, error) {
		if fc := graphql.GetFieldContext(ctx); fc == nil {
			b.Fatal("no field context")
		}
		return next(ctx)
	}
	b.Run("baseline", func(b *testing.B) {
		ctx := fieldCtx(b, base, s, "Invoice", "total")
		for i := 0; i < b.N; i++ {
			baseline(ctx, next)
		}
	})
	for _, c := range []struct{ name, object, field string }{
		{"scalar", "Invoice", "total"},
		{"guarded", "Invoice", "payments"},
	} {
		ctx := fieldCtx(b, base, s, c.object, c.field)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				mw(ctx, next)
			}
		})
	}
}
