package graph

// The fast path for plain read queries (issue 15). gqlgen spends most of a
// partner page's CPU on per-field machinery: a FieldContext, a context, the
// field middleware, a boxed value, a Marshaler closure for every one of the
// ~2 200 values of a page, and a goroutine per list element. For the read
// queries partners script (connections of subscribers and invoices, node(id)
// on a subscriber) this file runs a plan instead: the same resolvers and ent
// edge methods the generated code calls, the field middleware once per
// (type, field) of the plan, and JSON appended to one buffer, byte for byte
// what gqlgen writes. Anything else, and any error, is left to gqlgen, which
// then answers the request from the start (errors, partial nulls and all).
//
// This file is hand-written: it lives in package graph for the generated,
// unexported machinery (argument coercion, the resolver roots).

import (
	"context"
	"strconv"
	"sync"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/loaders"
)

// WithFastReads returns es answering the read queries the fast path
// supports itself and everything else through gqlgen. It sits below every
// handler extension (it replaces only the executable schema's Exec), so
// persisted queries, limits, cost, read routing, statistics, the response
// interceptors and the error presenter apply to both paths alike. es must be
// what NewExecutableSchema returned; any other schema is returned unchanged.
func WithFastReads(es graphql.ExecutableSchema, opts ...FastReadsOptions) graphql.ExecutableSchema {
	e, ok := es.(*executableSchema)
	if !ok {
		return es
	}
	s := &fastSchema{executableSchema: e, plans: lru.New[*fastPlan](fastPlanCacheSize)}
	for _, o := range opts {
		s.joinEdges = s.joinEdges || o.JoinEdges
	}
	return s
}

// fastPlanCacheSize bounds the compiled plans kept (one per document and
// operation name, unsupported ones included).
const fastPlanCacheSize = 1000

type fastSchema struct {
	*executableSchema
	plans     *lru.LRU[*fastPlan]
	joinEdges bool
}

// FastReadsProbe lets a test switch the fast path off for one request (Off)
// and learn whether the fast path answered it (Answered).
type FastReadsProbe struct {
	Off      bool
	Answered bool
}

type fastProbeKey struct{}

// WithFastReadsProbe returns ctx carrying p for the request run in it.
func WithFastReadsProbe(ctx context.Context, p *FastReadsProbe) context.Context {
	return context.WithValue(ctx, fastProbeKey{}, p)
}

// Exec answers a supported query operation from its plan; anything else, or
// a plan that meets an error, goes to gqlgen's Exec.
func (s *fastSchema) Exec(ctx context.Context) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	probe, _ := ctx.Value(fastProbeKey{}).(*FastReadsProbe)
	if oc.Operation == nil || oc.Operation.Operation != ast.Query || (probe != nil && probe.Off) {
		return s.executableSchema.Exec(ctx)
	}
	p := s.plan(ctx, oc)
	if p == nil {
		return s.executableSchema.Exec(ctx)
	}
	var slow graphql.ResponseHandler
	done := false
	return func(rctx context.Context) *graphql.Response {
		if slow != nil {
			return slow(rctx)
		}
		if done {
			return nil
		}
		done = true
		if data, ok := s.run(rctx, oc, p); ok {
			if probe != nil {
				probe.Answered = true
			}
			return &graphql.Response{Data: data}
		}
		slow = s.executableSchema.Exec(ctx)
		return slow(rctx)
	}
}

// fastKind is what a plan field reads and how it writes it.
type fastKind uint8

const (
	fkTypename fastKind = iota
	fkScalar
	fkTotalCount
	fkPageInfo
	fkEdges
	fkCursor
	fkNode
	fkHasNext
	fkHasPrev
	fkStartCursor
	fkEndCursor
	fkPackage
	fkInvoices
	fkPayments
	fkBalance
	fkAmountDue
	fkRootNetworkUsers
	fkRootInvoices
	fkRootNode
)

// fastField is one field of a plan, in the order and under the alias
// CollectFields gives it.
type fastField struct {
	key      []byte // "alias":
	field    graphql.CollectedField
	object   string // the GraphQL type the field belongs to
	kind     fastKind
	lit      []byte // __typename's answer, quoted
	nu       func(*fastRun, *ent.NetworkUser) bool
	inv      func(*fastRun, *ent.Invoice) bool
	pay      func(*fastRun, *ent.Payment) bool
	pkg      func(*fastRun, *ent.ServicePackage) bool
	children []*fastField
	slot     int          // per-request context and arguments of a resolved field
	edges    []*fastField // under a root field: its resolved fields (package, invoices, …)
	join     *fastJoin    // under a root field: the edges loaded with the subscribers (fastjoin.go)
	// joinDirect: a payments field whose payments a join reads back into
	// the invoice's Edges.Payments (joinPayments.direct).
	joinDirect bool
}

// fastCheck is a (type, field) pair whose read permission is checked once
// per request: the field middleware's answer for an object type's field
// depends on the viewer, the type and the field, not on the value (see the
// AroundFields in internal/server). A middleware that looked at values
// would have to run per value here too.
type fastCheck struct {
	object string
	field  graphql.CollectedField
}

type fastPlan struct {
	doc    *ast.QueryDocument
	ok     bool
	root   []*fastField
	checks []fastCheck
	slots  int
}

// plan returns the operation's plan, nil when the fast path does not
// support it. Plans are cached by document and operation name unless
// @skip/@include read variables; then the plan is compiled per request.
func (s *fastSchema) plan(ctx context.Context, oc *graphql.OperationContext) *fastPlan {
	key := oc.OperationName + "\x00" + oc.RawQuery
	if p, ok := s.plans.Get(ctx, key); ok && p.doc == oc.Doc {
		if !p.ok {
			return nil
		}
		return p
	}
	c := &fastCompiler{oc: oc, seen: map[[2]string]bool{}, joinEdges: s.joinEdges}
	supported := c.scan(oc.Operation.SelectionSet, 0)
	if supported && len(oc.Operation.Directives) > 0 {
		supported = false
	}
	p := &fastPlan{doc: oc.Doc}
	if supported {
		p.root, supported = c.query(oc.Operation.SelectionSet)
	}
	p.ok = supported
	p.checks, p.slots = c.checks, c.slots
	if !c.varDirectives {
		s.plans.Add(ctx, key, p)
	}
	if !p.ok {
		return nil
	}
	return p
}

type fastCompiler struct {
	oc            *graphql.OperationContext
	joinEdges     bool
	varDirectives bool
	seen          map[[2]string]bool
	checks        []fastCheck
	slots         int
	edges         *[]*fastField
}

// scan refuses directives other than @skip and @include and notes whether
// those read variables.
func (c *fastCompiler) scan(sel ast.SelectionSet, depth int) bool {
	if depth > 64 {
		return false
	}
	dirs := func(ds ast.DirectiveList) bool {
		for _, d := range ds {
			if d.Name != "skip" && d.Name != "include" {
				return false
			}
			for _, a := range d.Arguments {
				if a.Value == nil || a.Value.Kind != ast.BooleanValue {
					c.varDirectives = true
				}
			}
		}
		return true
	}
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if !dirs(s.Directives) || !c.scan(s.SelectionSet, depth+1) {
				return false
			}
		case *ast.InlineFragment:
			if !dirs(s.Directives) || !c.scan(s.SelectionSet, depth+1) {
				return false
			}
		case *ast.FragmentSpread:
			f := c.oc.Doc.Fragments.ForName(s.Name)
			if f == nil || !dirs(s.Directives) || len(f.Directives) > 0 || !c.scan(f.SelectionSet, depth+1) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (c *fastCompiler) base(f graphql.CollectedField, object string) *fastField {
	key := strconv.AppendQuote(nil, f.Alias) // aliases are names: quoted as gqlgen quotes them
	key = append(key, ':')
	return &fastField{key: key, field: f, object: object}
}

func (c *fastCompiler) typename(f graphql.CollectedField, object string) *fastField {
	ff := c.base(f, object)
	ff.kind = fkTypename
	ff.lit = strconv.AppendQuote(nil, object)
	return ff
}

// check records the (type, field) pair for the per-request permission check.
func (c *fastCompiler) check(object string, f graphql.CollectedField) {
	k := [2]string{object, f.Name}
	if !c.seen[k] {
		c.seen[k] = true
		c.checks = append(c.checks, fastCheck{object: object, field: f})
	}
}

func (c *fastCompiler) slot(ff *fastField) {
	ff.slot = c.slots
	c.slots++
	if c.edges != nil {
		*c.edges = append(*c.edges, ff)
	}
}

func (c *fastCompiler) query(sel ast.SelectionSet) ([]*fastField, bool) {
	var out []*fastField
	for _, f := range graphql.CollectFields(c.oc, sel, queryImplementors) {
		if f.Name == "__typename" {
			out = append(out, c.typename(f, "Query"))
			continue
		}
		ff := c.base(f, "Query")
		ff.slot = c.slots
		c.slots++
		c.edges = &ff.edges
		var ok bool
		switch f.Name {
		case "networkUsers":
			ff.kind = fkRootNetworkUsers
			ff.children, ok = c.connection(f.Selections, "NetworkUser")
		case "invoices":
			ff.kind = fkRootInvoices
			ff.children, ok = c.connection(f.Selections, "Invoice")
		case "node":
			ff.kind = fkRootNode
			ff.children, ok = c.networkUser(f.Selections)
		}
		c.edges = nil
		if !ok {
			return nil, false
		}
		if c.joinEdges {
			ff.join = c.join(ff)
		}
		out = append(out, ff)
	}
	return out, len(out) > 0
}

// connection compiles a NetworkUserConnection or an InvoiceConnection.
func (c *fastCompiler) connection(sel ast.SelectionSet, node string) ([]*fastField, bool) {
	conn, edge := node+"Connection", node+"Edge"
	var out []*fastField
	for _, f := range graphql.CollectFields(c.oc, sel, []string{conn}) {
		if f.Name == "__typename" {
			out = append(out, c.typename(f, conn))
			continue
		}
		ff := c.base(f, conn)
		c.check(conn, f)
		ok := true
		switch f.Name {
		case "totalCount":
			ff.kind = fkTotalCount
		case "pageInfo":
			ff.kind = fkPageInfo
			ff.children, ok = c.pageInfo(f.Selections)
		case "edges":
			ff.kind = fkEdges
			ff.children, ok = c.edge(f.Selections, edge, node)
		default:
			return nil, false
		}
		if !ok {
			return nil, false
		}
		out = append(out, ff)
	}
	return out, true
}

func (c *fastCompiler) pageInfo(sel ast.SelectionSet) ([]*fastField, bool) {
	var out []*fastField
	for _, f := range graphql.CollectFields(c.oc, sel, pageInfoImplementors) {
		if f.Name == "__typename" {
			out = append(out, c.typename(f, "PageInfo"))
			continue
		}
		ff := c.base(f, "PageInfo")
		c.check("PageInfo", f)
		switch f.Name {
		case "hasNextPage":
			ff.kind = fkHasNext
		case "hasPreviousPage":
			ff.kind = fkHasPrev
		case "startCursor":
			ff.kind = fkStartCursor
		case "endCursor":
			ff.kind = fkEndCursor
		default:
			return nil, false
		}
		out = append(out, ff)
	}
	return out, true
}

func (c *fastCompiler) edge(sel ast.SelectionSet, edge, node string) ([]*fastField, bool) {
	var out []*fastField
	for _, f := range graphql.CollectFields(c.oc, sel, []string{edge}) {
		if f.Name == "__typename" {
			out = append(out, c.typename(f, edge))
			continue
		}
		ff := c.base(f, edge)
		c.check(edge, f)
		ok := true
		switch f.Name {
		case "cursor":
			ff.kind = fkCursor
		case "node":
			ff.kind = fkNode
			if node == "NetworkUser" {
				ff.children, ok = c.networkUser(f.Selections)
			} else {
				ff.children, ok = c.invoice(f.Selections)
			}
		default:
			return nil, false
		}
		if !ok {
			return nil, false
		}
		out = append(out, ff)
	}
	return out, true
}

func (c *fastCompiler) networkUser(sel ast.SelectionSet) ([]*fastField, bool) {
	var out []*fastField
	for _, f := range graphql.CollectFields(c.oc, sel, networkUserImplementors) {
		if f.Name == "__typename" {
			out = append(out, c.typename(f, "NetworkUser"))
			continue
		}
		ff := c.base(f, "NetworkUser")
		c.check("NetworkUser", f)
		ok := true
		switch f.Name {
		case "balance":
			ff.kind = fkBalance
			c.slot(ff)
		case "amountDue":
			ff.kind = fkAmountDue
			c.slot(ff)
		case "package":
			ff.kind = fkPackage
			c.slot(ff)
			ff.children, ok = c.servicePackage(f.Selections)
		case "invoices":
			ff.kind = fkInvoices
			c.slot(ff)
			ff.children, ok = c.connection(f.Selections, "Invoice")
		default:
			ff.kind = fkScalar
			ff.nu = networkUserScalars[f.Name]
			ok = ff.nu != nil
		}
		if !ok {
			return nil, false
		}
		out = append(out, ff)
	}
	return out, true
}

func (c *fastCompiler) servicePackage(sel ast.SelectionSet) ([]*fastField, bool) {
	var out []*fastField
	for _, f := range graphql.CollectFields(c.oc, sel, packageImplementors) {
		if f.Name == "__typename" {
			out = append(out, c.typename(f, "Package"))
			continue
		}
		ff := c.base(f, "Package")
		c.check("Package", f)
		ff.kind = fkScalar
		if ff.pkg = packageScalars[f.Name]; ff.pkg == nil {
			return nil, false
		}
		out = append(out, ff)
	}
	return out, true
}

func (c *fastCompiler) invoice(sel ast.SelectionSet) ([]*fastField, bool) {
	var out []*fastField
	for _, f := range graphql.CollectFields(c.oc, sel, invoiceImplementors) {
		if f.Name == "__typename" {
			out = append(out, c.typename(f, "Invoice"))
			continue
		}
		ff := c.base(f, "Invoice")
		c.check("Invoice", f)
		if f.Name == "payments" {
			ff.kind = fkPayments
			c.slot(ff)
			var ok bool
			if ff.children, ok = c.payment(f.Selections); !ok {
				return nil, false
			}
		} else {
			ff.kind = fkScalar
			if ff.inv = invoiceScalars[f.Name]; ff.inv == nil {
				return nil, false
			}
		}
		out = append(out, ff)
	}
	return out, true
}

func (c *fastCompiler) payment(sel ast.SelectionSet) ([]*fastField, bool) {
	var out []*fastField
	for _, f := range graphql.CollectFields(c.oc, sel, paymentImplementors) {
		if f.Name == "__typename" {
			out = append(out, c.typename(f, "Payment"))
			continue
		}
		ff := c.base(f, "Payment")
		c.check("Payment", f)
		ff.kind = fkScalar
		if ff.pay = paymentScalars[f.Name]; ff.pay == nil {
			return nil, false
		}
		out = append(out, ff)
	}
	return out, true
}

// fastRun is one request's execution: the JSON written so far and what
// the writers need.
type fastRun struct {
	buf    []byte
	ec     *executionContext
	codec  *gid.Codec
	digits int
	join   *fastJoin   // the root field being written loaded its subscribers' edges with them
	due    money.Money // with join: the amount due of the subscriber being written
	arenas joinArenas
	ctxs   []context.Context
	args   []map[string]any
}

var fastRuns = sync.Pool{New: func() any { return &fastRun{buf: make([]byte, 0, 64<<10)} }}

// Write appends p (for marshalers that write to an io.Writer).
func (r *fastRun) Write(p []byte) (int, error) {
	r.buf = append(r.buf, p...)
	return len(p), nil
}

func nilResolver(context.Context) (any, error) { return nil, nil }

// run executes p; ok is false when gqlgen must answer instead.
func (s *fastSchema) run(ctx context.Context, oc *graphql.OperationContext, p *fastPlan) (data []byte, ok bool) {
	codec := gid.FromContext(ctx)
	if codec == nil {
		return nil, false
	}
	r := fastRuns.Get().(*fastRun)
	defer func() {
		if recover() != nil {
			data, ok = nil, false
		}
		if cap(r.buf) <= 1<<20 {
			r.buf = r.buf[:0]
			clear(r.ctxs)
			clear(r.args)
			r.ec = nil
			r.join = nil
			r.arenas = joinArenas{}
			fastRuns.Put(r)
		}
	}()
	// Errors the resolvers report themselves land here, not in the
	// response: any of them sends the request to gqlgen.
	ctx = graphql.WithFreshResponseContext(ctx)
	r.ec = newExecutionContext(oc, s.executableSchema, nil)
	// entgql's field collection reads an edge's where argument (say
	// invoices(where: …) under a subscriber) through the input unmarshalers
	// gqlgen's Exec puts in the context; without them it loads the edge
	// unfiltered, silently. These are the where inputs of the edges a plan
	// may hold (the plan's compiler admits no other edge with a where).
	ec := r.ec
	ctx = graphql.WithLazyInputUnmarshalerIndex(ctx, func() *graphql.InputUnmarshalerIndex {
		return graphql.NewInputUnmarshalerIndex(
			graphql.NewInputUnmarshaler("InvoiceWhereInput", ec.unmarshalInputInvoiceWhereInput),
			graphql.NewInputUnmarshaler("PaymentWhereInput", ec.unmarshalInputPaymentWhereInput),
			graphql.NewInputUnmarshaler("NetworkUserWhereInput", ec.unmarshalInputNetworkUserWhereInput),
			graphql.NewInputUnmarshaler("PackageWhereInput", ec.unmarshalInputPackageWhereInput),
		)
	})
	r.codec = codec
	r.digits = money.DigitsFromContext(ctx)
	if cap(r.ctxs) < p.slots {
		r.ctxs, r.args = make([]context.Context, p.slots), make([]map[string]any, p.slots)
	}
	r.ctxs, r.args = r.ctxs[:p.slots], r.args[:p.slots]
	for _, c := range p.checks {
		fc := &graphql.FieldContext{Object: c.object, Field: c.field}
		if _, err := oc.ResolverMiddleware(graphql.WithFieldContext(ctx, fc), nilResolver); err != nil {
			return nil, false
		}
	}
	qctx := graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Query"})
	r.buf = append(r.buf[:0], '{')
	for i, f := range p.root {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		if f.kind == fkTypename {
			r.buf = append(r.buf, f.lit...)
			continue
		}
		if !r.root(qctx, f) {
			return nil, false
		}
	}
	r.buf = append(r.buf, '}')
	if len(graphql.GetErrors(ctx)) > 0 {
		return nil, false
	}
	return append([]byte(nil), r.buf...), true
}

// root resolves a root field the way its generated _Query_ function does
// and writes its value.
func (r *fastRun) root(qctx context.Context, f *fastField) bool {
	ec := r.ec
	ctx := graphql.WithRootFieldContext(qctx, &graphql.RootFieldContext{Object: f.field.Name, Field: f.field})
	fc := &graphql.FieldContext{Object: "Query", Field: f.field, IsMethod: true, IsResolver: true}
	ctx = graphql.WithFieldContext(ctx, fc)
	var err error
	switch f.kind {
	case fkRootNetworkUsers:
		fc.Args, err = ec.field_Query_networkUsers_args(ctx, f.field.ArgumentMap(ec.Variables))
	case fkRootInvoices:
		fc.Args, err = ec.field_Query_invoices_args(ctx, f.field.ArgumentMap(ec.Variables))
	case fkRootNode:
		fc.Args, err = ec.field_Query_node_args(ctx, f.field.ArgumentMap(ec.Variables))
	}
	if err != nil {
		return false
	}
	// The resolved fields below this root: one context each (entgql's
	// named edges read the alias from it) and their arguments.
	for _, e := range f.edges {
		efc := &graphql.FieldContext{Object: e.object, Field: e.field, IsMethod: true, IsResolver: e.kind == fkBalance || e.kind == fkAmountDue}
		ectx := graphql.WithFieldContext(ctx, efc)
		if e.kind == fkInvoices {
			if efc.Args, err = ec.field_NetworkUser_invoices_args(ectx, e.field.ArgumentMap(ec.Variables)); err != nil {
				return false
			}
			r.args[e.slot] = efc.Args
		}
		r.ctxs[e.slot] = ectx
	}
	// The subscribers' edges in their statement, when this request's
	// arguments allow it; entgql then collects the root field without them.
	var addColumns func(*sql.Selector)
	r.join = nil
	if f.join != nil {
		v := viewer.FromContext(ctx)
		if add, ok := r.joinSelect(f.join, v == nil || v.Kind == viewer.Customer); ok {
			addColumns, r.join = add, f.join
			fc.Field = f.join.field
		}
	}
	defer func() { r.join = nil }()
	var resolve graphql.Resolver
	switch f.kind {
	case fkRootNetworkUsers:
		resolve = func(ctx context.Context) (any, error) {
			a := fc.Args
			return ec.Resolvers.Query().NetworkUsers(ctx, a["after"].(*entgql.Cursor[int]), a["first"].(*int), a["before"].(*entgql.Cursor[int]), a["last"].(*int), a["orderBy"].(*ent.NetworkUserOrder), a["where"].(*ent.NetworkUserWhereInput))
		}
	case fkRootInvoices:
		resolve = func(ctx context.Context) (any, error) {
			a := fc.Args
			return ec.Resolvers.Query().Invoices(ctx, a["after"].(*entgql.Cursor[int]), a["first"].(*int), a["before"].(*entgql.Cursor[int]), a["last"].(*int), a["orderBy"].(*ent.InvoiceOrder), a["where"].(*ent.InvoiceWhereInput))
		}
	case fkRootNode:
		// node carries @authenticated, applied inside the field middleware
		// as the generated _Query_node does.
		next := func(ctx context.Context) (any, error) {
			return ec.Resolvers.Query().Node(ctx, fc.Args["id"].(int))
		}
		resolve = func(ctx context.Context) (any, error) {
			if ec.Directives.Authenticated == nil {
				return nil, errFastUnsupported
			}
			return ec.Directives.Authenticated(ctx, nil, next)
		}
	}
	rctx := ctx
	res, err := ec.OperationContext.ResolverMiddleware(ctx, func(c context.Context) (any, error) {
		rctx = c
		if addColumns != nil {
			c = loaders.WithNetworkUserColumns(c, addColumns)
		}
		return resolve(c)
	})
	if err != nil {
		return false
	}
	switch f.kind {
	case fkRootNetworkUsers:
		conn, _ := res.(*ent.NetworkUserConnection)
		return conn != nil && r.networkUserConnection(f.children, conn)
	case fkRootInvoices:
		conn, _ := res.(*ent.InvoiceConnection)
		return conn != nil && r.invoiceConnection(f.children, conn)
	default: // fkRootNode
		switch v := res.(type) {
		case nil:
			r.buf = append(r.buf, "null"...)
			return true
		case *ent.NetworkUser:
			if v == nil {
				r.buf = append(r.buf, "null"...)
				return true
			}
			return r.networkUser(f.children, v)
		case ent.Noder:
			// Another type: gqlgen's own marshaler writes it.
			ec.marshalONode2githubᚗcomᚋispgraphᚋispgraphᚋentᚐNoder(rctx, f.field.Selections, v).MarshalGQL(r)
			return true
		}
		return false
	}
}

type fastError string

func (e fastError) Error() string { return string(e) }

const errFastUnsupported = fastError("fast path: unsupported")

func (r *fastRun) null() { r.buf = append(r.buf, "null"...) }

func (r *fastRun) pageInfo(fields []*fastField, p *ent.PageInfo) bool {
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		switch f.kind {
		case fkTypename:
			r.buf = append(r.buf, f.lit...)
		case fkHasNext:
			r.buf = strconv.AppendBool(r.buf, p.HasNextPage)
		case fkHasPrev:
			r.buf = strconv.AppendBool(r.buf, p.HasPreviousPage)
		case fkStartCursor:
			r.cursorp(p.StartCursor)
		case fkEndCursor:
			r.cursorp(p.EndCursor)
		default:
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

func (r *fastRun) cursorp(c *ent.Cursor) {
	if c == nil {
		r.null()
		return
	}
	c.MarshalGQL(r)
}

func (r *fastRun) networkUserConnection(fields []*fastField, conn *ent.NetworkUserConnection) bool {
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		switch f.kind {
		case fkTypename:
			r.buf = append(r.buf, f.lit...)
		case fkTotalCount:
			r.buf = strconv.AppendInt(r.buf, int64(conn.TotalCount), 10)
		case fkPageInfo:
			if !r.pageInfo(f.children, &conn.PageInfo) {
				return false
			}
		case fkEdges:
			if conn.Edges == nil {
				r.null()
				continue
			}
			r.buf = append(r.buf, '[')
			for j, e := range conn.Edges {
				if j > 0 {
					r.buf = append(r.buf, ',')
				}
				if e == nil {
					r.null()
					continue
				}
				if !r.networkUserEdge(f.children, e) {
					return false
				}
			}
			r.buf = append(r.buf, ']')
		default:
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

func (r *fastRun) networkUserEdge(fields []*fastField, e *ent.NetworkUserEdge) bool {
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		switch f.kind {
		case fkTypename:
			r.buf = append(r.buf, f.lit...)
		case fkCursor:
			e.Cursor.MarshalGQL(r)
		case fkNode:
			if e.Node == nil {
				r.null()
			} else if !r.networkUser(f.children, e.Node) {
				return false
			}
		default:
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

func (r *fastRun) invoiceConnection(fields []*fastField, conn *ent.InvoiceConnection) bool {
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		switch f.kind {
		case fkTypename:
			r.buf = append(r.buf, f.lit...)
		case fkTotalCount:
			r.buf = strconv.AppendInt(r.buf, int64(conn.TotalCount), 10)
		case fkPageInfo:
			if !r.pageInfo(f.children, &conn.PageInfo) {
				return false
			}
		case fkEdges:
			if conn.Edges == nil {
				r.null()
				continue
			}
			r.buf = append(r.buf, '[')
			for j, e := range conn.Edges {
				if j > 0 {
					r.buf = append(r.buf, ',')
				}
				if e == nil {
					r.null()
					continue
				}
				if !r.invoiceEdge(f.children, e) {
					return false
				}
			}
			r.buf = append(r.buf, ']')
		default:
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

func (r *fastRun) invoiceEdge(fields []*fastField, e *ent.InvoiceEdge) bool {
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		switch f.kind {
		case fkTypename:
			r.buf = append(r.buf, f.lit...)
		case fkCursor:
			e.Cursor.MarshalGQL(r)
		case fkNode:
			if e.Node == nil {
				r.null()
			} else if !r.invoice(f.children, e.Node) {
				return false
			}
		default:
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

func (r *fastRun) networkUser(fields []*fastField, o *ent.NetworkUser) bool {
	if r.join != nil && !r.joinLoad(r.join, o) {
		return false
	}
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		switch f.kind {
		case fkTypename:
			r.buf = append(r.buf, f.lit...)
		case fkScalar:
			if !f.nu(r, o) {
				return false
			}
		case fkBalance, fkAmountDue:
			if r.join != nil && r.join.due {
				// Loaded with o; as the resolvers compute them from
				// billing.AmountDueOf.
				m := r.due
				if f.kind == fkBalance {
					m = billing.BalanceOf(r.due, o)
				}
				r.money(m)
				continue
			}
			// The resolvers read the amount due the root query loaded
			// with the page; without it, they go through a dataloader,
			// which batches concurrent calls: called one after another
			// each would wait out the batch window, so gqlgen (which
			// resolves the page's subscribers concurrently) answers.
			if _, ok := billing.AmountDueOf(o); !ok {
				return false
			}
			var m money.Money
			var err error
			if f.kind == fkBalance {
				m, err = r.ec.Resolvers.NetworkUser().Balance(r.ctxs[f.slot], o)
			} else {
				m, err = r.ec.Resolvers.NetworkUser().AmountDue(r.ctxs[f.slot], o)
			}
			if err != nil {
				return false
			}
			r.money(m)
		case fkPackage:
			var p *ent.ServicePackage
			var err error
			if r.join != nil {
				p = o.Edges.Package // loaded with o; nil: none
			} else if p, err = o.Package(r.ctxs[f.slot]); err != nil {
				return false
			}
			if p == nil {
				r.null()
			} else if !r.servicePackage(f.children, p) {
				return false
			}
		case fkInvoices:
			a := r.args[f.slot]
			conn, err := o.Invoices(r.ctxs[f.slot], a["after"].(*entgql.Cursor[int]), a["first"].(*int), a["before"].(*entgql.Cursor[int]), a["last"].(*int), a["orderBy"].(*ent.InvoiceOrder), a["where"].(*ent.InvoiceWhereInput))
			if err != nil || conn == nil || !r.invoiceConnection(f.children, conn) {
				return false
			}
		default:
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

func (r *fastRun) servicePackage(fields []*fastField, o *ent.ServicePackage) bool {
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		if f.kind == fkTypename {
			r.buf = append(r.buf, f.lit...)
		} else if !f.pkg(r, o) {
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

func (r *fastRun) invoice(fields []*fastField, o *ent.Invoice) bool {
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		switch f.kind {
		case fkTypename:
			r.buf = append(r.buf, f.lit...)
		case fkScalar:
			if !f.inv(r, o) {
				return false
			}
		case fkPayments:
			var ps []*ent.Payment
			var err error
			if r.join != nil && f.joinDirect {
				ps = o.Edges.Payments // loaded with the subscriber
			} else if ps, err = o.Payments(r.ctxs[f.slot]); err != nil {
				return false
			} else {
				ps = billing.PaymentsByID(ps) // as the payments resolver answers them
			}
			if ps == nil {
				r.null()
				continue
			}
			r.buf = append(r.buf, '[')
			for j, p := range ps {
				if j > 0 {
					r.buf = append(r.buf, ',')
				}
				if p == nil || !r.payment(f.children, p) {
					return false // [Payment!]: a null element is an error
				}
			}
			r.buf = append(r.buf, ']')
		default:
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

func (r *fastRun) payment(fields []*fastField, o *ent.Payment) bool {
	r.buf = append(r.buf, '{')
	for i, f := range fields {
		if i > 0 {
			r.buf = append(r.buf, ',')
		}
		r.buf = append(r.buf, f.key...)
		if f.kind == fkTypename {
			r.buf = append(r.buf, f.lit...)
		} else if !f.pay(r, o) {
			return false
		}
	}
	r.buf = append(r.buf, '}')
	return true
}

// The scalar writers, each byte for byte the generated marshaler of its
// GraphQL type. They return false where gqlgen would report an error (a
// null in a non-null field).

// str writes s quoted as graphql.MarshalString does: only '"', '\\' and
// control characters are escaped (\t, \r, \n by name, others as \u00XX);
// everything else, HTML characters and non-ASCII included, is copied.
func (r *fastRun) str(s string) bool {
	const hex = "0123456789ABCDEF"
	b := append(r.buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '\\' && c != '"' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '\t':
			b = append(b, `\t`...)
		case '\r':
			b = append(b, `\r`...)
		case '\n':
			b = append(b, `\n`...)
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	r.buf = append(b, '"')
	return true
}

func (r *fastRun) strp(s *string) bool {
	if s == nil {
		r.null()
		return true
	}
	return r.str(*s)
}

// enum writes an ent enum as its MarshalGQL does (strconv.Quote).
func (r *fastRun) enum(s string) bool {
	r.buf = strconv.AppendQuote(r.buf, s)
	return true
}

// id writes an ID as gid.MarshalID does: the URL-safe base64 alphabet needs
// no escaping.
func (r *fastRun) id(id int) bool {
	r.buf = append(r.codec.AppendEncoded(append(r.buf, '"'), id), '"')
	return true
}

func (r *fastRun) idp(id *int) bool {
	if id == nil {
		r.null()
		return true
	}
	return r.id(*id)
}

func (r *fastRun) money(m money.Money) bool {
	r.buf = append(m.AppendFormat(append(r.buf, '"'), r.digits), '"')
	return true
}

func (r *fastRun) int(n int) bool {
	r.buf = strconv.AppendInt(r.buf, int64(n), 10)
	return true
}

func (r *fastRun) int64p(n *int64) bool {
	if n == nil {
		r.null()
		return true
	}
	r.buf = strconv.AppendInt(r.buf, *n, 10)
	return true
}

// time writes a Time! as graphql.MarshalTime does (RFC 3339 with
// nanoseconds, ASCII only); the zero time is gqlgen's null, an error in a
// non-null field.
func (r *fastRun) time(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	r.buf = append(t.AppendFormat(append(r.buf, '"'), time.RFC3339Nano), '"')
	return true
}

func (r *fastRun) timep(t *time.Time) bool {
	if t == nil || t.IsZero() {
		r.null()
		return true
	}
	return r.time(*t)
}

var networkUserScalars = map[string]func(*fastRun, *ent.NetworkUser) bool{
	"id":               func(r *fastRun, o *ent.NetworkUser) bool { return r.id(o.ID) },
	"createdAt":        func(r *fastRun, o *ent.NetworkUser) bool { return r.time(o.CreatedAt) },
	"updatedAt":        func(r *fastRun, o *ent.NetworkUser) bool { return r.time(o.UpdatedAt) },
	"username":         func(r *fastRun, o *ent.NetworkUser) bool { return r.str(o.Username) },
	"fullName":         func(r *fastRun, o *ent.NetworkUser) bool { return r.str(o.FullName) },
	"email":            func(r *fastRun, o *ent.NetworkUser) bool { return r.str(o.Email) },
	"phone":            func(r *fastRun, o *ent.NetworkUser) bool { return r.str(o.Phone) },
	"address":          func(r *fastRun, o *ent.NetworkUser) bool { return r.str(o.Address) },
	"serviceType":      func(r *fastRun, o *ent.NetworkUser) bool { return r.enum(string(o.ServiceType)) },
	"status":           func(r *fastRun, o *ent.NetworkUser) bool { return r.enum(string(o.Status)) },
	"billingType":      func(r *fastRun, o *ent.NetworkUser) bool { return r.enum(string(o.BillingType)) },
	"packageID":        func(r *fastRun, o *ent.NetworkUser) bool { return r.idp(o.PackageID) },
	"routerID":         func(r *fastRun, o *ent.NetworkUser) bool { return r.idp(o.RouterID) },
	"staticIP":         func(r *fastRun, o *ent.NetworkUser) bool { return r.strp(o.StaticIP) },
	"macAddress":       func(r *fastRun, o *ent.NetworkUser) bool { return r.strp(o.MACAddress) },
	"expiresAt":        func(r *fastRun, o *ent.NetworkUser) bool { return r.timep(o.ExpiresAt) },
	"suspensionReason": func(r *fastRun, o *ent.NetworkUser) bool { return r.strp(o.SuspensionReason) },
	"suspendedAt":      func(r *fastRun, o *ent.NetworkUser) bool { return r.timep(o.SuspendedAt) },
	"credit":           func(r *fastRun, o *ent.NetworkUser) bool { return r.money(o.Credit) },
	"routerSyncedAt":   func(r *fastRun, o *ent.NetworkUser) bool { return r.timep(o.RouterSyncedAt) },
	"routerSyncError":  func(r *fastRun, o *ent.NetworkUser) bool { return r.strp(o.RouterSyncError) },
}

var packageScalars = map[string]func(*fastRun, *ent.ServicePackage) bool{
	"id":                     func(r *fastRun, o *ent.ServicePackage) bool { return r.id(o.ID) },
	"createdAt":              func(r *fastRun, o *ent.ServicePackage) bool { return r.time(o.CreatedAt) },
	"updatedAt":              func(r *fastRun, o *ent.ServicePackage) bool { return r.time(o.UpdatedAt) },
	"name":                   func(r *fastRun, o *ent.ServicePackage) bool { return r.str(o.Name) },
	"description":            func(r *fastRun, o *ent.ServicePackage) bool { return r.str(o.Description) },
	"bandwidthUpKbps":        func(r *fastRun, o *ent.ServicePackage) bool { return r.int(o.BandwidthUpKbps) },
	"bandwidthDownKbps":      func(r *fastRun, o *ent.ServicePackage) bool { return r.int(o.BandwidthDownKbps) },
	"price":                  func(r *fastRun, o *ent.ServicePackage) bool { return r.money(o.Price) },
	"billingCycle":           func(r *fastRun, o *ent.ServicePackage) bool { return r.enum(string(o.BillingCycle)) },
	"validityDays":           func(r *fastRun, o *ent.ServicePackage) bool { return r.int(o.ValidityDays) },
	"routerProfile":          func(r *fastRun, o *ent.ServicePackage) bool { return r.str(o.RouterProfile) },
	"burstUpKbps":            func(r *fastRun, o *ent.ServicePackage) bool { return r.int(o.BurstUpKbps) },
	"burstDownKbps":          func(r *fastRun, o *ent.ServicePackage) bool { return r.int(o.BurstDownKbps) },
	"burstThresholdUpKbps":   func(r *fastRun, o *ent.ServicePackage) bool { return r.int(o.BurstThresholdUpKbps) },
	"burstThresholdDownKbps": func(r *fastRun, o *ent.ServicePackage) bool { return r.int(o.BurstThresholdDownKbps) },
	"burstTimeSeconds":       func(r *fastRun, o *ent.ServicePackage) bool { return r.int(o.BurstTimeSeconds) },
	"uptimeLimitSeconds":     func(r *fastRun, o *ent.ServicePackage) bool { return r.int64p(o.UptimeLimitSeconds) },
	"dataLimitBytes":         func(r *fastRun, o *ent.ServicePackage) bool { return r.int64p(o.DataLimitBytes) },
	"status":                 func(r *fastRun, o *ent.ServicePackage) bool { return r.enum(string(o.Status)) },
}

var invoiceScalars = map[string]func(*fastRun, *ent.Invoice) bool{
	"id":            func(r *fastRun, o *ent.Invoice) bool { return r.id(o.ID) },
	"createdAt":     func(r *fastRun, o *ent.Invoice) bool { return r.time(o.CreatedAt) },
	"updatedAt":     func(r *fastRun, o *ent.Invoice) bool { return r.time(o.UpdatedAt) },
	"networkUserID": func(r *fastRun, o *ent.Invoice) bool { return r.id(o.NetworkUserID) },
	"packageID":     func(r *fastRun, o *ent.Invoice) bool { return r.idp(o.PackageID) },
	"number":        func(r *fastRun, o *ent.Invoice) bool { return r.str(o.Number) },
	"amount":        func(r *fastRun, o *ent.Invoice) bool { return r.money(o.Amount) },
	"tax":           func(r *fastRun, o *ent.Invoice) bool { return r.money(o.Tax) },
	"total":         func(r *fastRun, o *ent.Invoice) bool { return r.money(o.Total) },
	"amountPaid":    func(r *fastRun, o *ent.Invoice) bool { return r.money(o.AmountPaid) },
	"creditApplied": func(r *fastRun, o *ent.Invoice) bool { return r.money(o.CreditApplied) },
	"status":        func(r *fastRun, o *ent.Invoice) bool { return r.enum(string(o.Status)) },
	"periodStart":   func(r *fastRun, o *ent.Invoice) bool { return r.time(o.PeriodStart) },
	"periodEnd":     func(r *fastRun, o *ent.Invoice) bool { return r.time(o.PeriodEnd) },
	"issuedAt":      func(r *fastRun, o *ent.Invoice) bool { return r.time(o.IssuedAt) },
	"dueDate":       func(r *fastRun, o *ent.Invoice) bool { return r.time(o.DueDate) },
	"paidAt":        func(r *fastRun, o *ent.Invoice) bool { return r.timep(o.PaidAt) },
	"notes":         func(r *fastRun, o *ent.Invoice) bool { return r.str(o.Notes) },
}

var paymentScalars = map[string]func(*fastRun, *ent.Payment) bool{
	"id":               func(r *fastRun, o *ent.Payment) bool { return r.id(o.ID) },
	"createdAt":        func(r *fastRun, o *ent.Payment) bool { return r.time(o.CreatedAt) },
	"updatedAt":        func(r *fastRun, o *ent.Payment) bool { return r.time(o.UpdatedAt) },
	"networkUserID":    func(r *fastRun, o *ent.Payment) bool { return r.id(o.NetworkUserID) },
	"invoiceID":        func(r *fastRun, o *ent.Payment) bool { return r.idp(o.InvoiceID) },
	"paymentGatewayID": func(r *fastRun, o *ent.Payment) bool { return r.idp(o.PaymentGatewayID) },
	"number":           func(r *fastRun, o *ent.Payment) bool { return r.str(o.Number) },
	"amount":           func(r *fastRun, o *ent.Payment) bool { return r.money(o.Amount) },
	"method":           func(r *fastRun, o *ent.Payment) bool { return r.enum(string(o.Method)) },
	"status":           func(r *fastRun, o *ent.Payment) bool { return r.enum(string(o.Status)) },
	"transactionID":    func(r *fastRun, o *ent.Payment) bool { return r.strp(o.TransactionID) },
	"failureReason":    func(r *fastRun, o *ent.Payment) bool { return r.strp(o.FailureReason) },
	"paidAt":           func(r *fastRun, o *ent.Payment) bool { return r.timep(o.PaidAt) },
	"refundedAt":       func(r *fastRun, o *ent.Payment) bool { return r.timep(o.RefundedAt) },
	"collectedByID":    func(r *fastRun, o *ent.Payment) bool { return r.idp(o.CollectedByID) },
}
