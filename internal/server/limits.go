package server

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// listEstimate is what an unpaginated list edge (an invoice's payments) is
// assumed to hold when costing a query.
// Measured on the benchmark data set, an invoice has 1.1 payments on average
// (a partly paid one 2, rarely 3); docs/query-surface.md has the calibration.
const listEstimate = 2

// costArgs are the only arguments the costs of complexityRoot read:
// complexityLimit remembers a document's cost for the values of the
// variables these arguments take, so a cost reading another argument must
// be added here.
var costArgs = map[string]bool{"first": true, "last": true, "ids": true}

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
	memo  *lru.LRU[*costMemo]
}

// costMemo is a document's cost for the values of the variables its cost
// read (those of costArgs): partners send the same few documents with
// other ids, so the walk runs once per document and page size.
type costMemo struct {
	doc  *ast.QueryDocument
	vars []string
	vals []any
	cost int
}

func (m *costMemo) matches(oc *graphql.OperationContext) bool {
	if m.doc != oc.Doc {
		return false
	}
	for i, name := range m.vars {
		if oc.Variables[name] != m.vals[i] {
			return false
		}
	}
	return true
}

var (
	_ graphql.HandlerExtension        = (*complexityLimit)(nil)
	_ graphql.OperationContextMutator = (*complexityLimit)(nil)
)

func (complexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *complexityLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	c.memo = lru.New[*costMemo](1000)
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if op == nil {
		return nil
	}
	key := oc.OperationName + "\x00" + oc.RawQuery
	var cost int
	if m, ok := c.memo.Get(ctx, key); ok && m.matches(oc) {
		cost = m.cost
	} else {
		w := costWalker{es: c.es, schema: c.es.Schema(), vars: oc.Variables, frags: map[string]int{}, costVars: map[string]bool{}}
		cost = w.set(ctx, op.SelectionSet)
		m := &costMemo{doc: oc.Doc, cost: cost}
		comparable := true
		for name := range w.costVars {
			v := oc.Variables[name]
			if v != nil && !reflect.TypeOf(v).Comparable() {
				comparable = false // a list of ids: not remembered
			}
			m.vars, m.vals = append(m.vars, name), append(m.vals, v)
		}
		if comparable {
			c.memo.Add(ctx, key, m)
		}
	}
	if cost <= c.Limit {
		return nil
	}
	err := gqlerror.Errorf("query cost %d is over the limit of %d: ask for smaller pages (first/last) or nest fewer connections", cost, c.Limit)
	errcode.Set(err, string(apperr.ComplexityLimitExceeded))
	return err
}

// costWalker computes what gqlgen's complexity.Calculate computes, but costs
// each fragment once and reuses the figure at every spread: gqlgen's walker
// expands every spread, so a 1 KB document of fragments that each spread the
// previous one twice costs 2^n walks to refuse.
type costWalker struct {
	es     graphql.ExecutableSchema
	schema *ast.Schema
	vars   map[string]any
	frags  map[string]int // cost of each fragment's selection set
	visits int            // selections walked, for tests
	// costVars collects the variables the costArgs arguments take (nil:
	// not collected).
	costVars map[string]bool
}

// collectCostVars notes in w.costVars the variables in v.
func (w *costWalker) collectCostVars(v *ast.Value) {
	if v == nil || w.costVars == nil {
		return
	}
	if v.Kind == ast.Variable {
		w.costVars[v.Raw] = true
	}
	for _, ch := range v.Children {
		w.collectCostVars(ch.Value)
	}
}

func (w *costWalker) set(ctx context.Context, set ast.SelectionSet) int {
	total := 0
	for _, sel := range set {
		w.visits++
		switch s := sel.(type) {
		case *ast.Field:
			if s.Definition == nil || s.ObjectDefinition == nil {
				continue
			}
			def := w.schema.Types[s.Definition.Type.Name()]
			if def == nil || def.Name == "__Schema" {
				continue
			}
			child := 0
			switch def.Kind {
			case ast.Object, ast.Interface, ast.Union:
				child = w.set(ctx, s.SelectionSet)
			}
			for _, a := range s.Arguments {
				if costArgs[a.Name] {
					w.collectCostVars(a.Value)
				}
			}
			args := s.ArgumentMap(w.vars)
			var cost int
			if s.ObjectDefinition.Kind == ast.Interface {
				for _, t := range w.schema.GetPossibleTypes(s.ObjectDefinition) {
					cost = max(cost, w.field(ctx, t, def.Kind, s.Name, child, args))
				}
			} else {
				cost = w.field(ctx, s.ObjectDefinition, def.Kind, s.Name, child, args)
			}
			total = saturatingAdd(total, cost)
		case *ast.FragmentSpread:
			c, ok := w.frags[s.Name]
			if !ok && s.Definition != nil {
				w.frags[s.Name] = 0 // a cycle (refused by validation) costs nothing more
				c = w.set(ctx, s.Definition.SelectionSet)
				w.frags[s.Name] = c
			}
			total = saturatingAdd(total, c)
		case *ast.InlineFragment:
			total = saturatingAdd(total, w.set(ctx, s.SelectionSet))
		}
	}
	return total
}

func (w *costWalker) field(ctx context.Context, def *ast.Definition, kind ast.DefinitionKind, name string, child int, args map[string]any) int {
	if c, ok := w.es.Complexity(ctx, def.Name, name, child, args); ok && c >= 1 {
		return c
	}
	return saturatingAdd(1, child)
}

// saturatingAdd adds non-negative costs without overflowing.
func saturatingAdd(a, b int) int {
	a, b = max(a, 0), max(b, 0)
	if c := a + b; c >= a {
		return c
	}
	return int(^uint(0) >> 1)
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
	w := depthWalker{frags: map[string]int{}}
	if depth := w.set(op.SelectionSet); depth > d.Limit {
		err := gqlerror.Errorf("query nests more than %d levels deep: split it into several queries", d.Limit)
		errcode.Set(err, string(apperr.DepthLimitExceeded))
		return err
	}
	return nil
}

// depthWalker measures how deep a selection set nests, each fragment's depth
// computed once and reused at every spread of it.
type depthWalker struct {
	frags  map[string]int
	visits int // selections walked, for tests
}

func (w *depthWalker) set(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		w.visits++
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			d = 1 + w.set(s.SelectionSet)
		case *ast.InlineFragment:
			d = w.set(s.SelectionSet)
		case *ast.FragmentSpread:
			var ok bool
			if d, ok = w.frags[s.Name]; !ok && s.Definition != nil {
				w.frags[s.Name] = 0 // a cycle (refused by validation) adds nothing
				d = w.set(s.Definition.SelectionSet)
				w.frags[s.Name] = d
			}
		}
		deepest = max(deepest, d)
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
						return badInput("%s.%s must not be negative (got %d)", s.Alias, name, n)
					case p.Max > 0 && n > int64(p.Max):
						return badInput("%s.%s: page size %d is over the maximum of %d: page with first/after", s.Alias, name, n, p.Max)
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

// stringGuard refuses, before anything runs, a string argument or variable
// that holds a NUL character or is not UTF-8: Postgres cannot store either,
// and the client should hear BAD_USER_INPUT naming the value, not INTERNAL.
type stringGuard struct{}

var (
	_ graphql.HandlerExtension        = stringGuard{}
	_ graphql.OperationContextMutator = stringGuard{}
)

func (stringGuard) ExtensionName() string                   { return "StringGuard" }
func (stringGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (stringGuard) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if bad, why := badString(oc.RawQuery); bad {
		return badInput("the query %s", why)
	}
	for name, v := range oc.Variables {
		if path, why, bad := badVariable(name, v); bad {
			return badInput("variable $%s %s", path, why)
		}
	}
	if oc.Doc == nil {
		return nil
	}
	for _, op := range oc.Doc.Operations {
		for _, vd := range op.VariableDefinitions {
			if err := checkLiteral(vd.DefaultValue); err != nil {
				return err
			}
		}
		if err := checkDirectives(op.Directives); err != nil {
			return err
		}
		if err := checkSelections(op.SelectionSet); err != nil {
			return err
		}
	}
	for _, f := range oc.Doc.Fragments {
		if err := checkDirectives(f.Directives); err != nil {
			return err
		}
		if err := checkSelections(f.SelectionSet); err != nil {
			return err
		}
	}
	return nil
}

// badString reports whether s cannot be stored as text, and why.
func badString(s string) (bool, string) {
	switch {
	case !utf8.ValidString(s):
		return true, "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return true, "contains a NUL character (\\u0000), which no field accepts"
	}
	return false, ""
}

func badVariable(path string, v any) (string, string, bool) {
	switch x := v.(type) {
	case string:
		if bad, why := badString(x); bad {
			return path, why, true
		}
	case map[string]any:
		for k, e := range x {
			if bad, why := badString(k); bad {
				return path, "has a key that " + why, true
			}
			if p, why, bad := badVariable(path+"."+k, e); bad {
				return p, why, true
			}
		}
	case []any:
		for i, e := range x {
			if p, why, bad := badVariable(fmt.Sprintf("%s[%d]", path, i), e); bad {
				return p, why, true
			}
		}
	}
	return "", "", false
}

// checkSelections checks the literals of every field and inline fragment in
// set; spreads are checked where their fragment is defined.
func checkSelections(set ast.SelectionSet) *gqlerror.Error {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			for _, a := range s.Arguments {
				if err := checkLiteral(a.Value); err != nil {
					return err
				}
			}
			if err := checkDirectives(s.Directives); err != nil {
				return err
			}
			if err := checkSelections(s.SelectionSet); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := checkDirectives(s.Directives); err != nil {
				return err
			}
			if err := checkSelections(s.SelectionSet); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			if err := checkDirectives(s.Directives); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkDirectives(ds ast.DirectiveList) *gqlerror.Error {
	for _, d := range ds {
		for _, a := range d.Arguments {
			if err := checkLiteral(a.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkLiteral(v *ast.Value) *gqlerror.Error {
	if v == nil {
		return nil
	}
	if v.Kind == ast.StringValue || v.Kind == ast.BlockValue {
		if bad, why := badString(v.Raw); bad {
			return badInput("a string in the query %s", why)
		}
	}
	for _, c := range v.Children {
		if err := checkLiteral(c.Value); err != nil {
			return err
		}
	}
	return nil
}

// badInput is a BAD_USER_INPUT raised before anything runs.
func badInput(format string, args ...any) *gqlerror.Error {
	return codedError(apperr.BadUserInput, format, args...)
}

// Document limits checked on the raw query before it is parsed or validated,
// so a hostile document is refused for the cost of reading it once.
const (
	DefaultMaxTokens     = 5000
	DefaultMaxAliases    = 100
	DefaultMaxFragments  = 50
	DefaultMaxDirectives = 50
)

// documentLimit refuses a query with more tokens, aliases, fragment
// definitions or directives than allowed, by lexing it (one linear pass,
// stopped at the first limit passed) before gqlgen parses and validates it.
type documentLimit struct {
	Tokens, Aliases, Fragments, Directives int
}

var (
	_ graphql.HandlerExtension          = documentLimit{}
	_ graphql.OperationParameterMutator = documentLimit{}
)

func (documentLimit) ExtensionName() string                   { return "DocumentLimit" }
func (documentLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d documentLimit) MutateOperationParameters(_ context.Context, raw *graphql.RawParams) *gqlerror.Error {
	c, err := countDocument(raw.Query, d.Tokens)
	switch {
	case err != nil:
		// The parser reports syntax errors with their position.
		return nil
	case c.tokens > d.Tokens:
		return badInput("the query has more than %d tokens: split it, or page through the data", d.Tokens)
	case c.aliases > d.Aliases:
		return badInput("the query has %d aliases, over the limit of %d: split it into several queries", c.aliases, d.Aliases)
	case c.fragments > d.Fragments:
		return badInput("the query defines %d fragments, over the limit of %d", c.fragments, d.Fragments)
	case c.directives > d.Directives:
		return badInput("the query uses %d directives, over the limit of %d", c.directives, d.Directives)
	}
	return nil
}

type docCounts struct{ tokens, aliases, fragments, directives int }

// countDocument lexes query, stopping after maxTokens+1 tokens. An alias is a
// name followed by a colon outside parentheses (inside them the colon belongs
// to an argument, a variable definition or an object field).
func countDocument(query string, maxTokens int) (docCounts, error) {
	var c docCounts
	lx := lexer.New(&ast.Source{Input: query})
	parens, braces := 0, 0
	var prev lexer.Token
	for c.tokens <= maxTokens {
		tok, err := lx.ReadToken()
		if err != nil {
			return c, err
		}
		if tok.Kind == lexer.EOF {
			break
		}
		c.tokens++
		switch tok.Kind {
		case lexer.ParenL:
			parens++
		case lexer.ParenR:
			parens--
		case lexer.BraceL:
			braces++
		case lexer.BraceR:
			braces--
		case lexer.At:
			c.directives++
		case lexer.Colon:
			if parens == 0 && prev.Kind == lexer.Name {
				c.aliases++
			}
		case lexer.Name:
			if braces == 0 && parens == 0 && tok.Value == "fragment" {
				c.fragments++
			}
		}
		prev = tok
	}
	return c, nil
}

// DefaultMaxPersistedQueryBytes is the largest query stored as an automatic
// persisted query.
const DefaultMaxPersistedQueryBytes = 16 << 10

// persistedQueries is gqlgen's automatic persisted queries with two rules
// added: only an authenticated caller registers a query (the store is shared
// by every process and lives for a day), and only a query of at most
// MaxBytes. Any other query with a hash still runs; it is just not stored, so
// the client keeps sending it in full.
type persistedQueries struct {
	APQ      extension.AutomaticPersistedQuery
	MaxBytes int
}

var (
	_ graphql.HandlerExtension          = persistedQueries{}
	_ graphql.OperationParameterMutator = persistedQueries{}
)

func (p persistedQueries) ExtensionName() string { return p.APQ.ExtensionName() }

func (p persistedQueries) Validate(es graphql.ExecutableSchema) error { return p.APQ.Validate(es) }

func (p persistedQueries) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if _, ok := raw.Extensions["persistedQuery"]; ok && raw.Query != "" &&
		(!viewer.FromContext(ctx).HasTenant() || len(raw.Query) > p.MaxBytes) {
		ext := make(map[string]any, len(raw.Extensions))
		for k, v := range raw.Extensions {
			if k != "persistedQuery" {
				ext[k] = v
			}
		}
		raw.Extensions = ext
		return nil
	}
	return p.APQ.MutateOperationParameters(ctx, raw)
}

// Introspection settings (Options.Introspection).
const (
	IntrospectionAll           = "all"           // anyone may introspect
	IntrospectionAuthenticated = "authenticated" // only a logged-in caller
	IntrospectionOff           = "off"           // nobody
)

// introspection allows __schema and __type queries per its Mode; a refused
// caller gets GraphQL's own "introspection disabled" validation error.
type introspection struct{ Mode string }

var (
	_ graphql.HandlerExtension        = introspection{}
	_ graphql.OperationContextMutator = introspection{}
)

func (introspection) ExtensionName() string                   { return "Introspection" }
func (introspection) Validate(graphql.ExecutableSchema) error { return nil }

func (i introspection) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	switch i.Mode {
	case IntrospectionAll:
		oc.DisableIntrospection = false
	case IntrospectionAuthenticated:
		oc.DisableIntrospection = !viewer.FromContext(ctx).HasTenant()
	default:
		oc.DisableIntrospection = true
	}
	return nil
}
