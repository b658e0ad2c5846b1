package server

import (
	"context"
	"encoding/json"
	"strings"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/apperr"
)

// listEstimate is what an unpaginated list edge (an invoice's payments) is
// assumed to hold when costing a query.
const listEstimate = 5

// complexityRoot sets the cost of every connection to its page size times the
// cost of what is asked of each item. A missing first/last counts as the
// default page size, which is what the resolvers serve.
func complexityRoot(c *graph.ComplexityRoot, defaultPage int) {
	page := func(first, last *int) int {
		n := defaultPage
		switch {
		case first != nil:
			n = *first
		case last != nil:
			n = *last
		}
		// Negative sizes are refused by the resolver; cost them as empty.
		return max(n, 0)
	}
	conn := func(child int, first, last *int) int { return 1 + page(first, last)*child }
	type cur = *entgql.Cursor[int]

	q := &c.Query
	q.AuditLogs = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.AuditLogOrder, _ *ent.AuditLogWhereInput) int {
		return conn(ch, f, l)
	}
	q.BillingReports = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.BillingReportOrder, _ *ent.BillingReportWhereInput) int {
		return conn(ch, f, l)
	}
	q.HotspotUsers = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.HotspotUserOrder, _ *ent.HotspotUserWhereInput) int {
		return conn(ch, f, l)
	}
	q.Invoices = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.InvoiceOrder, _ *ent.InvoiceWhereInput) int {
		return conn(ch, f, l)
	}
	q.NetworkSessions = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.NetworkSessionOrder, _ *ent.NetworkSessionWhereInput) int {
		return conn(ch, f, l)
	}
	q.NetworkUsers = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.NetworkUserOrder, _ *ent.NetworkUserWhereInput) int {
		return conn(ch, f, l)
	}
	q.Notifications = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.NotificationOrder, _ *ent.NotificationWhereInput) int {
		return conn(ch, f, l)
	}
	q.Packages = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.PackageOrder, _ *ent.PackageWhereInput) int {
		return conn(ch, f, l)
	}
	q.PaymentGateways = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.PaymentGatewayOrder, _ *ent.PaymentGatewayWhereInput) int {
		return conn(ch, f, l)
	}
	q.Payments = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.PaymentOrder, _ *ent.PaymentWhereInput) int {
		return conn(ch, f, l)
	}
	q.Routers = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.RouterOrder, _ *ent.RouterWhereInput) int {
		return conn(ch, f, l)
	}
	q.Users = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.UserOrder, _ *ent.UserWhereInput) int {
		return conn(ch, f, l)
	}
	q.Nodes = func(ch int, ids []int) int { return 1 + len(ids)*ch }

	c.NetworkUser.Invoices = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.InvoiceOrder, _ *ent.InvoiceWhereInput) int {
		return conn(ch, f, l)
	}
	c.NetworkUser.Payments = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.PaymentOrder, _ *ent.PaymentWhereInput) int {
		return conn(ch, f, l)
	}
	c.NetworkUser.Sessions = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.NetworkSessionOrder, _ *ent.NetworkSessionWhereInput) int {
		return conn(ch, f, l)
	}
	c.HotspotUser.Sessions = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.NetworkSessionOrder, _ *ent.NetworkSessionWhereInput) int {
		return conn(ch, f, l)
	}
	c.Package.NetworkUsers = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.NetworkUserOrder, _ *ent.NetworkUserWhereInput) int {
		return conn(ch, f, l)
	}
	c.Router.NetworkUsers = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.NetworkUserOrder, _ *ent.NetworkUserWhereInput) int {
		return conn(ch, f, l)
	}
	c.Router.Sessions = func(ch int, _ cur, f *int, _ cur, l *int, _ *ent.NetworkSessionOrder, _ *ent.NetworkSessionWhereInput) int {
		return conn(ch, f, l)
	}
	c.Invoice.Payments = func(ch int) int { return 1 + listEstimate*ch }
	c.CustomerDashboard.RecentInvoices = func(ch int) int { return 1 + listEstimate*ch }
	c.CustomerDashboard.RecentPayments = func(ch int) int { return 1 + listEstimate*ch }
}

// complexityLimit refuses operations that cost more than Limit (see
// complexityRoot) before anything runs.
type complexityLimit struct {
	Limit int
	es    graphql.ExecutableSchema
}

var (
	_ graphql.HandlerExtension        = (*complexityLimit)(nil)
	_ graphql.OperationContextMutator = (*complexityLimit)(nil)
)

func (complexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *complexityLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if op == nil {
		return nil
	}
	cost := complexity.Calculate(ctx, c.es, op, oc.Variables)
	if cost <= c.Limit {
		return nil
	}
	err := gqlerror.Errorf("query cost %d is over the limit of %d: ask for smaller pages (first/last) or nest fewer connections", cost, c.Limit)
	errcode.Set(err, string(apperr.ComplexityLimitExceeded))
	return err
}

// depthLimit refuses operations whose selections nest deeper than Limit
// fields (fragments expanded; introspection, which GraphiQL sends, exempt).
type depthLimit struct{ Limit int }

var (
	_ graphql.HandlerExtension        = depthLimit{}
	_ graphql.OperationContextMutator = depthLimit{}
)

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if op == nil {
		return nil
	}
	if depth := selectionDepth(op.SelectionSet, oc.Doc.Fragments, d.Limit+1, map[string]bool{}); depth > d.Limit {
		err := gqlerror.Errorf("query nests more than %d levels deep: split it into several queries", d.Limit)
		errcode.Set(err, string(apperr.DepthLimitExceeded))
		return err
	}
	return nil
}

// selectionDepth returns the depth of set, stopping once it passes stop (so
// a hostile document costs little). visiting guards against fragment cycles,
// which validation rejects anyway.
func selectionDepth(set ast.SelectionSet, frags ast.FragmentDefinitionList, stop int, visiting map[string]bool) int {
	deepest := 0
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			d = 1
			if len(s.SelectionSet) > 0 && stop > 1 {
				d += selectionDepth(s.SelectionSet, frags, stop-1, visiting)
			}
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, frags, stop, visiting)
		case *ast.FragmentSpread:
			def := s.Definition
			if def == nil {
				def = frags.ForName(s.Name)
			}
			if def == nil || visiting[s.Name] {
				continue
			}
			visiting[s.Name] = true
			d = selectionDepth(def.SelectionSet, frags, stop, visiting)
			delete(visiting, s.Name)
		}
		deepest = max(deepest, d)
		if deepest >= stop {
			return deepest
		}
	}
	return deepest
}

// pageLimit refuses, before anything runs, a first or last anywhere in the
// operation (nested connections too) that is negative or over Max.
type pageLimit struct{ Max int }

var (
	_ graphql.HandlerExtension        = pageLimit{}
	_ graphql.OperationContextMutator = pageLimit{}
)

func (pageLimit) ExtensionName() string                   { return "PageLimit" }
func (pageLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (p pageLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if op == nil {
		return nil
	}
	return p.check(op.SelectionSet, oc, map[string]bool{})
}

func (p pageLimit) check(set ast.SelectionSet, oc *graphql.OperationContext, seen map[string]bool) *gqlerror.Error {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Definition != nil && s.Definition.Arguments.ForName("first") != nil {
				args := s.ArgumentMap(oc.Variables)
				for _, name := range []string{"first", "last"} {
					n, ok := asInt(args[name])
					switch {
					case !ok:
					case n < 0:
						return badPage("%s.%s must not be negative (got %d)", s.Alias, name, n)
					case p.Max > 0 && n > int64(p.Max):
						return badPage("%s.%s: page size %d is over the maximum of %d: page with first/after", s.Alias, name, n, p.Max)
					}
				}
			}
			if err := p.check(s.SelectionSet, oc, seen); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := p.check(s.SelectionSet, oc, seen); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			if seen[s.Name] || s.Definition == nil {
				continue
			}
			seen[s.Name] = true
			if err := p.check(s.Definition.SelectionSet, oc, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

func badPage(format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	errcode.Set(err, string(apperr.BadUserInput))
	return err
}

// asInt reads an integer argument however the variables decoder typed it.
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}
