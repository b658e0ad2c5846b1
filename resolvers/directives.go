package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Directives returns the implementations of the permission directives
// declared in graph/identity.graphqls. They run before the field's resolver,
// so a refused mutation never reaches ent. What a caller may read is not
// declared with them but in authz's read table (see ReadPermissions).
func Directives() graph.DirectiveRoot {
	return graph.DirectiveRoot{
		Perm:          Perm,
		Authenticated: Authenticated,
		Public:        Public,
		Platform:      Platform,
	}
}

// requireTenant refuses a caller that acts in no tenant, telling a platform
// operator to name one.
func requireTenant(v *viewer.Viewer) error {
	if v.HasTenant() {
		return nil
	}
	if v.Kind == viewer.Operator {
		return auth.ErrOperatorNeedsTenant()
	}
	return apperr.E(apperr.Unauthenticated, "log in first: send Authorization: Bearer <token>")
}

// Perm lets the field resolve when the caller holds any one of requires and,
// when also is given, every one of also.
func Perm(ctx context.Context, _ any, next graphql.Resolver, requires []string, also []string) (any, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireTenant(v); err != nil {
		return nil, err
	}
	for _, p := range also {
		if !v.Can(p) {
			return nil, apperr.E(apperr.Forbidden, "you need the %q permission for this: ask your administrator", p)
		}
	}
	for _, p := range requires {
		if v.Can(p) {
			return next(ctx)
		}
	}
	if len(requires) == 1 {
		return nil, apperr.E(apperr.Forbidden, "you need the %q permission for this: ask your administrator", requires[0])
	}
	return nil, apperr.E(apperr.Forbidden, "you need one of the permissions %q for this: ask your administrator", requires)
}

// Authenticated lets the field resolve for any caller with a valid credential.
func Authenticated(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireTenant(v); err != nil {
		return nil, err
	}
	return next(ctx)
}

// Platform lets the field resolve for platform operators only (an operator
// key, with or without a tenant named).
func Platform(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if v.Kind != viewer.Operator {
		return nil, apperr.E(apperr.Forbidden, "only platform operators manage tenants: use an operator key")
	}
	return next(ctx)
}

// Public lets the field resolve for anyone.
func Public(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	return next(ctx)
}

// PermissionDirectives are the directive names that declare a root field's permission.
var PermissionDirectives = []string{"perm", "authenticated", "public", "platform"}

// DeclaresPermission reports whether a field definition carries one of
// PermissionDirectives.
func DeclaresPermission(f *ast.FieldDefinition) bool {
	if f == nil {
		return false
	}
	for _, d := range PermissionDirectives {
		if f.Directives.ForName(d) != nil {
			return true
		}
	}
	return false
}
