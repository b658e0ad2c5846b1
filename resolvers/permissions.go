package resolvers

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// guard is the read rule of a guarded type, with the fields (by object, then
// field name) that override it; or, for an interface or union, the mark
// that each value found is checked by its own type.
type guard struct {
	rule      authz.ReadRule
	overrides map[string]map[string]authz.ReadRule
	abstract  bool
}

// readChecker applies authz's read table to every field. Its maps are built
// once from the schema, so a field costs a context lookup and one map
// lookup by the name of the type it returns; only fields returning a guarded
// type look at the viewer.
type readChecker struct {
	guards    map[string]*guard // guarded object types (authenticated or any-of), interfaces and unions, by name
	graphName map[string]string // Go type name in package ent -> GraphQL type name
}

// ReadPermissions returns the field middleware that enforces read
// permissions, declared once per GraphQL object type in authz's table, on
// every field that returns that type: root fields, node(id)/nodes(ids) and
// nested fields alike. A field the caller may not read resolves to null with
// a FORBIDDEN (or UNAUTHENTICATED) error at its path; GraphQL's null
// propagation then nulls the nearest nullable parent. Mutation fields are
// governed by their @perm directive instead (what a caller may do), and
// their answers' nested fields by the table again.
//
// It returns an error naming every gap when the schema has an object type
// without a read rule or a root field that nothing governs (see
// UncoveredFields), so such a server never starts.
func ReadPermissions(s *ast.Schema) (graphql.FieldMiddleware, error) {
	if gaps := UncoveredFields(s); len(gaps) > 0 {
		return nil, fmt.Errorf("permissions: %d gap(s) in the schema:\n  %s", len(gaps), strings.Join(gaps, "\n  "))
	}
	c := &readChecker{
		guards:    map[string]*guard{},
		graphName: map[string]string{},
	}
	for name, def := range s.Types {
		switch def.Kind {
		case ast.Object:
			if r, _ := authz.ReadRuleOf(name); r.Kind == authz.ReadAuthenticated || r.Kind == authz.ReadAnyOf {
				c.guards[name] = &guard{rule: r}
			}
		case ast.Interface, ast.Union:
			c.guards[name] = &guard{abstract: true}
			for _, p := range s.GetPossibleTypes(def) {
				c.graphName[goTypeName(p)] = p.Name
			}
		}
	}
	// Overrides, attached to the guard of the type the field returns.
	for name, def := range s.Types {
		if def.Kind != ast.Object {
			continue
		}
		for _, f := range def.Fields {
			o, ok := authz.FieldReadOverride(name, f.Name)
			g := c.guards[f.Type.Name()]
			if !ok || g == nil || g.abstract {
				continue
			}
			if g.overrides == nil {
				g.overrides = map[string]map[string]authz.ReadRule{}
			}
			if g.overrides[name] == nil {
				g.overrides[name] = map[string]authz.ReadRule{}
			}
			g.overrides[name][f.Name] = o
		}
	}
	return c.middleware, nil
}

// goTypeName returns the Go type name a GraphQL object type is bound to: its
// @goModel's type, or its own name.
func goTypeName(def *ast.Definition) string {
	if d := def.Directives.ForName("goModel"); d != nil {
		if a := d.Arguments.ForName("model"); a != nil && a.Value != nil {
			m := a.Value.Raw
			return m[strings.LastIndex(m, ".")+1:]
		}
	}
	return def.Name
}

func (c *readChecker) middleware(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Definition == nil || fc.Object == "Mutation" {
		return next(ctx)
	}
	typ := fc.Field.Definition.Type.Name()
	g := c.guards[typ]
	if g == nil {
		return next(ctx)
	}
	if g.abstract {
		return c.resolveAbstract(ctx, fc, next)
	}
	rule := g.rule
	if g.overrides != nil {
		if o, ok := g.overrides[fc.Object][fc.Field.Name]; ok {
			rule = o
		}
	}
	if err := checkRule(ctx, rule, typ); err != nil {
		return nil, err
	}
	return next(ctx)
}

// checkRule checks the viewer in ctx against rule. Without a viewer it
// answers why the request's credential was refused, when it was.
func checkRule(ctx context.Context, rule authz.ReadRule, typ string) error {
	v := viewer.FromContext(ctx)
	if rule.Allows(v) {
		return nil
	}
	if v != nil && v.Kind == viewer.Operator && !v.HasTenant() {
		// A platform operator reads tenants; anything inside one needs
		// the tenant named.
		if authz.PlatformReadable(typ) {
			return nil
		}
		return auth.ErrOperatorNeedsTenant()
	}
	if v == nil {
		_, err := auth.Require(ctx)
		return err
	}
	return rule.CheckRead(v, typ)
}

// resolveAbstract resolves a field returning an interface (node, nodes) and
// checks the read rule of the concrete type of each value: a value the
// caller may not read becomes null with an error at its own path.
func (c *readChecker) resolveAbstract(ctx context.Context, fc *graphql.FieldContext, next graphql.Resolver) (any, error) {
	if err := checkRule(ctx, authz.ReadRule{Kind: authz.ReadAuthenticated}, fc.Field.Definition.Type.Name()); err != nil {
		return nil, err
	}
	res, err := next(ctx)
	if err != nil || res == nil {
		return res, err
	}
	switch res := res.(type) {
	case ent.Noder:
		if err := c.checkValue(ctx, res); err != nil {
			return nil, err
		}
		return res, nil
	case []ent.Noder:
		for i, n := range res {
			if n == nil {
				continue
			}
			if err := c.checkValue(ctx, n); err != nil {
				graphql.AddError(graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i}), err)
				res[i] = nil
			}
		}
		return res, nil
	}
	return nil, apperr.E(apperr.Forbidden, "%s cannot be read: its values have no read check", fc.Field.Name)
}

// checkValue checks the read rule of the GraphQL type of value n.
func (c *readChecker) checkValue(ctx context.Context, n any) error {
	t := reflect.TypeOf(n)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name, ok := c.graphName[t.Name()]
	if !ok {
		return apperr.E(apperr.Forbidden, "a %s cannot be read through node(id)", t.Name())
	}
	rule, ok := authz.ReadRuleOf(name)
	if !ok || rule.Kind == authz.ReadNested {
		return apperr.E(apperr.Forbidden, "a %s cannot be read through node(id)", name)
	}
	return checkRule(ctx, rule, name)
}

// UncoveredFields lists the gaps in the schema's permissions: object types
// without a read rule in authz's table, rules naming unknown permissions,
// Mutation fields without @perm, @authenticated or @public, and Query fields
// that declare none and return a type without a read rule of its own.
func UncoveredFields(s *ast.Schema) []string {
	var out []string
	known := func(p string) bool { return authz.Valid(p) || slices.Contains(authz.CustomerPermissions(), p) }
	for name, def := range s.Types {
		if def.Kind != ast.Object || strings.HasPrefix(name, "__") || isRoot(s, def) {
			continue
		}
		r, ok := authz.ReadRuleOf(name)
		if !ok {
			out = append(out, "type "+name+" has no read rule in internal/authz (readRules)")
			continue
		}
		for _, p := range r.Permissions {
			if !known(p) {
				out = append(out, fmt.Sprintf("type %s: read rule names %q, which is not a permission", name, p))
			}
		}
	}
	if s.Mutation != nil {
		for _, f := range s.Mutation.Fields {
			if !strings.HasPrefix(f.Name, "__") && !DeclaresPermission(f) {
				out = append(out, "Mutation."+f.Name+" declares none of @perm, @authenticated, @public")
			}
		}
	}
	if s.Subscription != nil {
		for _, f := range s.Subscription.Fields {
			if !strings.HasPrefix(f.Name, "__") && !DeclaresPermission(f) {
				out = append(out, "Subscription."+f.Name+" declares none of @perm, @authenticated, @public")
			}
		}
	}
	if s.Query != nil {
		for _, f := range s.Query.Fields {
			if strings.HasPrefix(f.Name, "__") || DeclaresPermission(f) {
				continue
			}
			def := s.Types[f.Type.Name()]
			switch {
			case def != nil && (def.Kind == ast.Interface || def.Kind == ast.Union):
			case def != nil && def.Kind == ast.Object:
				if r, ok := authz.ReadRuleOf(def.Name); ok && r.Kind != authz.ReadNested {
					continue
				}
				out = append(out, "Query."+f.Name+" returns "+def.Name+", which has no read rule of its own: declare @perm, @authenticated or @public")
			default:
				out = append(out, "Query."+f.Name+" returns "+f.Type.Name()+": declare @perm, @authenticated or @public")
			}
		}
	}
	slices.Sort(out)
	return out
}

func isRoot(s *ast.Schema, def *ast.Definition) bool {
	return def == s.Query || def == s.Mutation || def == s.Subscription
}
