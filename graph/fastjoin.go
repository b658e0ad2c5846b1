package graph

// Joined edges (issue 15). Through entgql's eager loading a subscriber page
// costs one statement per edge level: the subscribers, their packages, their
// invoices, the invoices' payments, one round trip each, and ent scans every
// row of every level. On Postgres the planned executor instead loads a
// subscriber's package and invoices (with their payments) in the statement
// that loads the subscriber: one column more, built by Postgres as a JSON
// array of arrays (positional, only the fields the query selects), read
// back here into ent structs, which the same writers and the same generated
// edge resolvers (paging, cursors) then answer from.
//
// Tenancy: the subscriber rows come from ent, through the privacy rules of
// the data layer (tenancy.FilterByTenant). Every joined row is reached from
// those rows and carries the same tenant as the row it hangs from, as
// billing.SelectAmountDue does: a package of the subscriber's tenant,
// invoices of the subscriber in its tenant, payments of those invoices in
// the same tenant. So a joined row can never belong to another tenant than
// the row ent's rules admitted. For a portal customer, whom the rules
// narrow to its own subscriber, the payments must also be the subscriber's
// (tenancy's customer filter on payments); staff queries leave that
// condition out, which lets Postgres find an invoice's payments by the
// (tenant_id, invoice_id) index.

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/money"
)

// joinColumn is the subscriber row's column carrying its joined edges.
const joinColumn = "fastpath_edges"

// FastReadsOptions configures WithFastReads.
type FastReadsOptions struct {
	// JoinEdges loads the package and the invoices (with their payments)
	// of the subscribers a plan reads in the statement that loads the
	// subscribers (Postgres only: the statement builds JSON).
	JoinEdges bool
}

// fastJoin is a root field's joined edges.
type fastJoin struct {
	// field is the root field without the joined edges: what entgql's
	// field collection sees, so that it does not eager-load them too. The
	// balance and amountDue fields become credit there: their amount due
	// is joined too (due), and entgql, meeting no field it does not know,
	// selects the columns the query reads instead of all of them.
	field graphql.CollectedField
	due   bool // the amount due leads the joined column
	edges []*joinEdge

	texts  sync.Map     // the joined column's SQL by form of the arguments (text)
	ntexts atomic.Int32 // forms kept
}

// joinEdge is one subscriber field loaded in the subscriber's statement:
// its package or a connection of its invoices.
type joinEdge struct {
	f    *fastField
	pkg  []joinCol[ent.ServicePackage]
	inv  []joinCol[ent.Invoice]
	pays []joinPayments // the invoice node's payments fields
}

type joinPayments struct {
	alias string
	cols  []joinCol[ent.Payment]
	// direct: the invoice node's only payments field, read back into
	// Edges.Payments, where the writer takes them (fastField.joinDirect),
	// instead of a named edge (a map per invoice).
	direct bool
}

// joinKind is how a column is written into the JSON and read back.
type joinKind uint8

const (
	jkInt   joinKind = iota // integer, not null
	jkIntP                  // integer or null
	jkStr                   // text, not null
	jkStrP                  // text or null
	jkTime                  // timestamptz, not null: microseconds since the epoch
	jkTimeP                 // timestamptz or null
)

type joinCol[T any] struct {
	column string
	kind   joinKind
	set    func(*T, *joinValue)
}

type joinValue struct {
	null  bool
	n     int64
	s     string
	times *joinArena[time.Time]
}

// joinArena hands out zeroed values of T from chunks, one allocation per
// chunk rather than per value: a page's joined rows are many small
// structs. A chunk is never grown in place (the pointers handed out stay
// valid) and never reused after the request. Chunks start small and double
// up to maxJoinChunk: a subscriber detail needs one package, a dozen
// invoices and about as many payments, and fixed chunks of 32 of ent's
// structs were a third of the bytes it allocated.
type joinArena[T any] struct{ chunk []T }

// maxJoinChunk is the largest chunk a joinArena allocates, in values.
const maxJoinChunk = 64

func (a *joinArena[T]) new() *T {
	if len(a.chunk) == cap(a.chunk) {
		a.chunk = make([]T, 0, min(max(2*cap(a.chunk), 4), maxJoinChunk))
	}
	a.chunk = a.chunk[:len(a.chunk)+1]
	return &a.chunk[len(a.chunk)-1]
}

// joinArenas are a request's arenas.
type joinArenas struct {
	invoices joinArena[ent.Invoice]
	payments joinArena[ent.Payment]
	packages joinArena[ent.ServicePackage]
	times    joinArena[time.Time]
}

func (v *joinValue) intp() *int {
	if v.null {
		return nil
	}
	n := int(v.n)
	return &n
}

func (v *joinValue) int64p() *int64 {
	if v.null {
		return nil
	}
	n := v.n
	return &n
}

func (v *joinValue) strp() *string {
	if v.null {
		return nil
	}
	s := v.s
	return &s
}

// time is the value as pgx reads a timestamptz: in the local time zone.
func (v *joinValue) time() time.Time { return time.UnixMicro(v.n) }

func (v *joinValue) timep() *time.Time {
	if v.null {
		return nil
	}
	t := v.times.new()
	*t = time.UnixMicro(v.n)
	return t
}

var packageJoinCols = map[string]joinCol[ent.ServicePackage]{
	"id":                     {"id", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.ID = int(v.n) }},
	"createdAt":              {"created_at", jkTime, func(o *ent.ServicePackage, v *joinValue) { o.CreatedAt = v.time() }},
	"updatedAt":              {"updated_at", jkTime, func(o *ent.ServicePackage, v *joinValue) { o.UpdatedAt = v.time() }},
	"name":                   {"name", jkStr, func(o *ent.ServicePackage, v *joinValue) { o.Name = v.s }},
	"description":            {"description", jkStr, func(o *ent.ServicePackage, v *joinValue) { o.Description = v.s }},
	"bandwidthUpKbps":        {"bandwidth_up_kbps", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.BandwidthUpKbps = int(v.n) }},
	"bandwidthDownKbps":      {"bandwidth_down_kbps", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.BandwidthDownKbps = int(v.n) }},
	"price":                  {"price", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.Price = money.Money(v.n) }},
	"billingCycle":           {"billing_cycle", jkStr, func(o *ent.ServicePackage, v *joinValue) { o.BillingCycle = servicepackage.BillingCycle(v.s) }},
	"validityDays":           {"validity_days", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.ValidityDays = int(v.n) }},
	"routerProfile":          {"router_profile", jkStr, func(o *ent.ServicePackage, v *joinValue) { o.RouterProfile = v.s }},
	"burstUpKbps":            {"burst_up_kbps", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.BurstUpKbps = int(v.n) }},
	"burstDownKbps":          {"burst_down_kbps", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.BurstDownKbps = int(v.n) }},
	"burstThresholdUpKbps":   {"burst_threshold_up_kbps", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.BurstThresholdUpKbps = int(v.n) }},
	"burstThresholdDownKbps": {"burst_threshold_down_kbps", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.BurstThresholdDownKbps = int(v.n) }},
	"burstTimeSeconds":       {"burst_time_seconds", jkInt, func(o *ent.ServicePackage, v *joinValue) { o.BurstTimeSeconds = int(v.n) }},
	"uptimeLimitSeconds":     {"uptime_limit_seconds", jkIntP, func(o *ent.ServicePackage, v *joinValue) { o.UptimeLimitSeconds = v.int64p() }},
	"dataLimitBytes":         {"data_limit_bytes", jkIntP, func(o *ent.ServicePackage, v *joinValue) { o.DataLimitBytes = v.int64p() }},
	"status":                 {"status", jkStr, func(o *ent.ServicePackage, v *joinValue) { o.Status = servicepackage.Status(v.s) }},
}

var invoiceJoinCols = map[string]joinCol[ent.Invoice]{
	"id":            {"id", jkInt, func(o *ent.Invoice, v *joinValue) { o.ID = int(v.n) }},
	"createdAt":     {"created_at", jkTime, func(o *ent.Invoice, v *joinValue) { o.CreatedAt = v.time() }},
	"updatedAt":     {"updated_at", jkTime, func(o *ent.Invoice, v *joinValue) { o.UpdatedAt = v.time() }},
	"networkUserID": {"network_user_id", jkInt, func(o *ent.Invoice, v *joinValue) { o.NetworkUserID = int(v.n) }},
	"packageID":     {"package_id", jkIntP, func(o *ent.Invoice, v *joinValue) { o.PackageID = v.intp() }},
	"number":        {"number", jkStr, func(o *ent.Invoice, v *joinValue) { o.Number = v.s }},
	"amount":        {"amount", jkInt, func(o *ent.Invoice, v *joinValue) { o.Amount = money.Money(v.n) }},
	"tax":           {"tax", jkInt, func(o *ent.Invoice, v *joinValue) { o.Tax = money.Money(v.n) }},
	"total":         {"total", jkInt, func(o *ent.Invoice, v *joinValue) { o.Total = money.Money(v.n) }},
	"amountPaid":    {"amount_paid", jkInt, func(o *ent.Invoice, v *joinValue) { o.AmountPaid = money.Money(v.n) }},
	"creditApplied": {"credit_applied", jkInt, func(o *ent.Invoice, v *joinValue) { o.CreditApplied = money.Money(v.n) }},
	"status":        {"status", jkStr, func(o *ent.Invoice, v *joinValue) { o.Status = invoice.Status(v.s) }},
	"periodStart":   {"period_start", jkTime, func(o *ent.Invoice, v *joinValue) { o.PeriodStart = v.time() }},
	"periodEnd":     {"period_end", jkTime, func(o *ent.Invoice, v *joinValue) { o.PeriodEnd = v.time() }},
	"issuedAt":      {"issued_at", jkTime, func(o *ent.Invoice, v *joinValue) { o.IssuedAt = v.time() }},
	"dueDate":       {"due_date", jkTime, func(o *ent.Invoice, v *joinValue) { o.DueDate = v.time() }},
	"paidAt":        {"paid_at", jkTimeP, func(o *ent.Invoice, v *joinValue) { o.PaidAt = v.timep() }},
	"notes":         {"notes", jkStr, func(o *ent.Invoice, v *joinValue) { o.Notes = v.s }},
}

var paymentJoinCols = map[string]joinCol[ent.Payment]{
	"id":               {"id", jkInt, func(o *ent.Payment, v *joinValue) { o.ID = int(v.n) }},
	"createdAt":        {"created_at", jkTime, func(o *ent.Payment, v *joinValue) { o.CreatedAt = v.time() }},
	"updatedAt":        {"updated_at", jkTime, func(o *ent.Payment, v *joinValue) { o.UpdatedAt = v.time() }},
	"networkUserID":    {"network_user_id", jkInt, func(o *ent.Payment, v *joinValue) { o.NetworkUserID = int(v.n) }},
	"invoiceID":        {"invoice_id", jkIntP, func(o *ent.Payment, v *joinValue) { o.InvoiceID = v.intp() }},
	"paymentGatewayID": {"payment_gateway_id", jkIntP, func(o *ent.Payment, v *joinValue) { o.PaymentGatewayID = v.intp() }},
	"number":           {"number", jkStr, func(o *ent.Payment, v *joinValue) { o.Number = v.s }},
	"amount":           {"amount", jkInt, func(o *ent.Payment, v *joinValue) { o.Amount = money.Money(v.n) }},
	"method":           {"method", jkStr, func(o *ent.Payment, v *joinValue) { o.Method = payment.Method(v.s) }},
	"status":           {"status", jkStr, func(o *ent.Payment, v *joinValue) { o.Status = payment.Status(v.s) }},
	"transactionID":    {"transaction_id", jkStrP, func(o *ent.Payment, v *joinValue) { o.TransactionID = v.strp() }},
	"failureReason":    {"failure_reason", jkStrP, func(o *ent.Payment, v *joinValue) { o.FailureReason = v.strp() }},
	"paidAt":           {"paid_at", jkTimeP, func(o *ent.Payment, v *joinValue) { o.PaidAt = v.timep() }},
	"refundedAt":       {"refunded_at", jkTimeP, func(o *ent.Payment, v *joinValue) { o.RefundedAt = v.timep() }},
	"collectedByID":    {"collected_by_id", jkIntP, func(o *ent.Payment, v *joinValue) { o.CollectedByID = v.intp() }},
}

// joinColumns returns the columns of the scalar fields among fields, the
// id and always first, each once; ok is false when a field has no column.
func joinColumns[T any](table map[string]joinCol[T], fields []*fastField, always ...string) ([]joinCol[T], bool) {
	var out []joinCol[T]
	seen := map[string]bool{}
	add := func(name string) bool {
		c, ok := table[name]
		if !ok {
			return false
		}
		if !seen[c.column] {
			seen[c.column] = true
			out = append(out, c)
		}
		return true
	}
	for _, name := range append([]string{"id"}, always...) {
		add(name)
	}
	for _, f := range fields {
		switch f.kind {
		case fkTypename, fkPayments:
		case fkScalar:
			if !add(f.field.Name) {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return out, true
}

// one returns the field of kind k among fields; ok is false when there are
// several (two aliases of edges, say), which the join does not support.
func one(fields []*fastField, k fastKind) (f *fastField, ok bool) {
	for _, x := range fields {
		if x.kind == k {
			if f != nil {
				return nil, false
			}
			f = x
		}
	}
	return f, true
}

// join compiles root's joined edges; nil when it has none or the query's
// shape is one the join does not support (the edges are then eager-loaded
// by entgql as without it).
func (c *fastCompiler) join(root *fastField) *fastJoin {
	var nu []*fastField
	var path []string
	switch root.kind {
	case fkRootNode:
		nu = root.children
	case fkRootNetworkUsers:
		edges, ok := one(root.children, fkEdges)
		if !ok || edges == nil {
			return nil
		}
		node, ok := one(edges.children, fkNode)
		if !ok || node == nil {
			return nil
		}
		nu, path = node.children, []string{edges.field.Name, node.field.Name}
	default:
		return nil
	}
	j := &fastJoin{}
	packages := 0
	for _, f := range nu {
		switch f.kind {
		case fkBalance, fkAmountDue:
			j.due = true
		case fkPackage:
			cols, ok := joinColumns(packageJoinCols, f.children)
			if !ok || packages > 0 {
				// Two aliases of package would share Edges.Package.
				return nil
			}
			packages++
			j.edges = append(j.edges, &joinEdge{f: f, pkg: cols})
		case fkInvoices:
			e := c.joinInvoices(f)
			if e == nil {
				return nil
			}
			j.edges = append(j.edges, e)
		}
	}
	if len(j.edges) == 0 {
		return nil
	}
	sel, ok := withoutJoined(root.field.Selections, path, root.kind == fkRootNode)
	if !ok {
		return nil
	}
	j.field = root.field
	j.field.Selections = sel
	return j
}

// joinInvoices compiles a subscriber's invoices connection: page info,
// one edges with cursor and one node; no totalCount (counted apart).
func (c *fastCompiler) joinInvoices(f *fastField) *joinEdge {
	for _, x := range f.children {
		if x.kind == fkTotalCount {
			return nil
		}
	}
	e := &joinEdge{f: f}
	var nodeFields []*fastField
	edges, ok := one(f.children, fkEdges)
	if !ok || edges == nil {
		// Without edges entgql loads no invoice (the page info says
		// there is no next page): nothing to join.
		return nil
	}
	if edges != nil {
		node, ok := one(edges.children, fkNode)
		if !ok {
			return nil
		}
		if node != nil {
			nodeFields = node.children
		}
	}
	// The id and the order fields the cursors read.
	e.inv, ok = joinColumns(invoiceJoinCols, nodeFields, "issuedAt", "dueDate")
	if !ok {
		return nil
	}
	for _, x := range nodeFields {
		if x.kind != fkPayments {
			continue
		}
		cols, ok := joinColumns(paymentJoinCols, x.children)
		if !ok {
			return nil
		}
		e.pays = append(e.pays, joinPayments{alias: x.field.Alias, cols: cols})
	}
	if len(e.pays) == 1 {
		e.pays[0].direct = true
		for _, x := range nodeFields {
			if x.kind == fkPayments {
				x.joinDirect = true
			}
		}
	}
	return e
}

// withoutJoined returns sel without the subscriber's package and invoices
// fields; path names the fields from sel down to the subscriber's
// selection. Under node, the subscriber's fields are in fragments on
// NetworkUser (or on Node, or without a type condition); fragments on
// other types are kept as they are. ok is false for a fragment spread on
// the way, which the join does not rewrite.
func withoutJoined(sel ast.SelectionSet, path []string, node bool) (ast.SelectionSet, bool) {
	out := make(ast.SelectionSet, 0, len(sel))
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if len(path) == 0 {
				switch s.Name {
				case "package", "invoices":
				case "balance", "amountDue":
					out = append(out, &ast.Field{Alias: "credit", Name: "credit", Position: s.Position})
				default:
					out = append(out, s)
				}
				continue
			}
			if s.Name != path[0] {
				out = append(out, s)
				continue
			}
			inner, ok := withoutJoined(s.SelectionSet, path[1:], false)
			if !ok {
				return nil, false
			}
			cp := *s
			cp.SelectionSet = inner
			out = append(out, &cp)
		case *ast.InlineFragment:
			if len(path) == 0 && node && s.TypeCondition != "" && s.TypeCondition != "NetworkUser" && s.TypeCondition != "Node" {
				out = append(out, s)
				continue
			}
			inner, ok := withoutJoined(s.SelectionSet, path, node)
			if !ok {
				return nil, false
			}
			cp := *s
			cp.SelectionSet = inner
			out = append(out, &cp)
		default:
			return nil, false
		}
	}
	return out, true
}

// joinedInvoices is one request's form of a joined invoices field: its page
// size and order (from the field's arguments).
type joinedInvoices struct {
	limit int // first + 1: the extra row says whether there is a next page
	order string
	desc  bool
	edge  *joinEdge
}

// joinSelect returns what adds j's column to the subscriber statement of
// this request, false when the arguments of a joined connection are ones
// the join does not answer (a cursor, last, a filter, an order other than
// by issue date, due date or id): entgql then loads the edges.
func (r *fastRun) joinSelect(j *fastJoin, customer bool) (func(*sql.Selector), bool) {
	invs := make([]joinedInvoices, 0, len(j.edges))
	for _, e := range j.edges {
		if e.f.kind != fkInvoices {
			continue
		}
		a := r.args[e.f.slot]
		first, _ := a["first"].(*int)
		if a["after"].(*entgql.Cursor[int]) != nil || a["before"].(*entgql.Cursor[int]) != nil || a["last"].(*int) != nil ||
			a["where"].(*ent.InvoiceWhereInput) != nil || first == nil || *first < 0 || *first > maxJoinedPage {
			return nil, false
		}
		ji := joinedInvoices{limit: *first + 1, order: invoice.FieldID, edge: e}
		if *first == 0 {
			ji.limit = 0 // entgql loads nothing for first: 0, and says there is no next page
		}
		if o := a["orderBy"].(*ent.InvoiceOrder); o != nil {
			if o.Field == nil {
				return nil, false
			}
			switch o.Field.String() {
			case "ISSUED_AT":
				ji.order = invoice.FieldIssuedAt
			case "DUE_DATE":
				ji.order = invoice.FieldDueDate
			default:
				return nil, false
			}
			ji.desc = o.Direction.String() == "DESC"
		}
		invs = append(invs, ji)
	}
	applied := false
	return func(s *sql.Selector) {
		// The root field's statement only: a subscriber query of an edge
		// below another root type (node on an invoice) reads no column.
		if applied {
			return
		}
		applied = true
		s.AppendSelectExprAs(sql.Expr(j.text(s, invs, customer)), joinColumn)
	}, true
}

// text returns the joined column's SQL for the subscriber statement s and
// this request's form of the invoices arguments: built once per form and
// kept (up to maxJoinTexts forms per query), since building it with ent's
// builder was 7 % of a subscriber detail's CPU. It holds no argument: every
// value in it is a constant or a page size.
func (j *fastJoin) text(s *sql.Selector, invs []joinedInvoices, customer bool) string {
	tenantCol, idCol := s.C("tenant_id"), s.C("id")
	var k strings.Builder
	k.WriteString(idCol)
	if customer {
		k.WriteString(" customer")
	}
	for _, ji := range invs {
		k.WriteString(" " + ji.order + ":" + strconv.Itoa(ji.limit))
		if ji.desc {
			k.WriteString(":desc")
		}
	}
	key := k.String()
	if t, ok := j.texts.Load(key); ok {
		return t.(string)
	}
	var b strings.Builder
	b.WriteString("CAST(JSON_BUILD_ARRAY(")
	if j.due {
		b.WriteString(billing.AmountDueSQL(tenantCol, idCol))
	}
	next := 0
	for i, e := range j.edges {
		if i > 0 || j.due {
			b.WriteString(", ")
		}
		if e.f.kind == fkPackage {
			b.WriteString("(SELECT JSON_BUILD_ARRAY(")
			writeJoinCols(&b, "fj_p", e.pkg)
			b.WriteString(`) FROM "packages" AS "fj_p" WHERE "fj_p"."id" = `)
			b.WriteString(s.C("package_id"))
			b.WriteString(` AND "fj_p"."tenant_id" = `)
			b.WriteString(tenantCol)
			b.WriteString(")")
			continue
		}
		writeJoinInvoices(&b, tenantCol, idCol, invs[next], i, customer)
		next++
	}
	b.WriteString(") AS TEXT)")
	t := b.String()
	if j.ntexts.Load() < maxJoinTexts {
		if _, loaded := j.texts.LoadOrStore(key, t); !loaded {
			j.ntexts.Add(1)
		}
	}
	return t
}

// maxJoinTexts bounds the forms of one query's joined column text keeps:
// a partner's pages ask for one or two page sizes and orders.
const maxJoinTexts = 64

// maxJoinedPage bounds the invoices page the join loads; the cost limit
// refuses larger pages before this matters.
const maxJoinedPage = 1000

func writeJoinCols[T any](b *strings.Builder, alias string, cols []joinCol[T]) {
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		col := `"` + alias + `"."` + c.column + `"`
		if c.kind == jkTime || c.kind == jkTimeP {
			b.WriteString("CAST(EXTRACT(EPOCH FROM " + col + ") * 1000000 AS BIGINT)")
		} else {
			b.WriteString(col)
		}
	}
}

// writeJoinInvoices writes the JSON array of a subscriber's invoices page:
// each invoice's columns, then one array per payments field.
func writeJoinInvoices(b *strings.Builder, tenantCol, idCol string, ji joinedInvoices, n int, customer bool) {
	a := "fj_i" + strconv.Itoa(n)
	dir := " ASC"
	if ji.desc {
		dir = " DESC"
	}
	order := `"` + a + `"."` + ji.order + `"` + dir
	if ji.order != invoice.FieldID {
		order += `, "` + a + `"."id"` + dir
	}
	b.WriteString("(SELECT COALESCE(JSON_AGG(JSON_BUILD_ARRAY(")
	writeJoinCols(b, a, ji.edge.inv)
	for k, p := range ji.edge.pays {
		y := a + "_y" + strconv.Itoa(k)
		b.WriteString(", (SELECT COALESCE(JSON_AGG(JSON_BUILD_ARRAY(")
		writeJoinCols(b, y, p.cols)
		b.WriteString(`) ORDER BY "` + y + `"."id"), '[]') FROM "payments" AS "` + y + `" WHERE "` + y + `"."tenant_id" = "` + a + `"."tenant_id" AND "` +
			y + `"."invoice_id" = "` + a + `"."id"`)
		if customer {
			b.WriteString(` AND "` + y + `"."network_user_id" = "` + a + `"."network_user_id"`)
		}
		b.WriteString(")")
	}
	b.WriteString(") ORDER BY " + order + "), '[]') FROM (SELECT * FROM \"invoices\" AS \"" + a + "\" WHERE \"" + a + "\".\"tenant_id\" = ")
	b.WriteString(tenantCol)
	b.WriteString(` AND "` + a + `"."network_user_id" = `)
	b.WriteString(idCol)
	b.WriteString(" ORDER BY " + order + " LIMIT " + strconv.Itoa(ji.limit) + `) AS "` + a + `")`)
}

// joinLoad reads o's joined column: its amount due into r.due, the package into
// Edges.Package (nil: it has none), each invoices page and
// each invoice's payments as named edges under the fields' aliases, where
// the generated edge resolvers find them.
func (r *fastRun) joinLoad(j *fastJoin, o *ent.NetworkUser) bool {
	v, err := o.Value(joinColumn)
	if err != nil {
		return false
	}
	s, ok := v.(string)
	if !ok {
		return false
	}
	d := joinDecoder{b: s}
	if !d.open() {
		return false
	}
	if j.due {
		var due int64
		if !d.int(&due) {
			return false
		}
		r.due = money.Money(due)
	}
	for i, e := range j.edges {
		if (i > 0 || j.due) && !d.comma() {
			return false
		}
		if e.f.kind == fkPackage {
			if d.null() {
				continue
			}
			p := r.arenas.packages.new()
			if !joinRow(&d, e.pkg, p, &r.arenas.times) || !d.close() {
				return false
			}
			o.Edges.Package = p
			continue
		}
		var invs []*ent.Invoice
		if !d.open() {
			return false
		}
		for k := 0; !d.close(); k++ {
			if k > 0 && !d.comma() {
				return false
			}
			inv := r.arenas.invoices.new()
			if !joinRow(&d, e.inv, inv, &r.arenas.times) {
				return false
			}
			for _, p := range e.pays {
				if !d.comma() || !d.open() {
					return false
				}
				ps := []*ent.Payment{}
				for m := 0; !d.close(); m++ {
					if m > 0 && !d.comma() {
						return false
					}
					pay := r.arenas.payments.new()
					if !joinRow(&d, p.cols, pay, &r.arenas.times) || !d.close() {
						return false
					}
					ps = append(ps, pay)
				}
				if p.direct {
					inv.Edges.Payments = ps
				} else {
					inv.AppendNamedPayments(p.alias, ps...)
				}
			}
			if !d.close() {
				return false
			}
			invs = append(invs, inv)
		}
		o.AppendNamedInvoices(e.f.field.Alias, invs...)
	}
	return d.close() && d.i == len(d.b)
}

// joinRow opens an array and reads cols into o, leaving the array open
// (payments may follow).
func joinRow[T any](d *joinDecoder, cols []joinCol[T], o *T, times *joinArena[time.Time]) bool {
	if !d.open() {
		return false
	}
	v := joinValue{times: times}
	for i, c := range cols {
		if i > 0 && !d.comma() {
			return false
		}
		if !d.value(c.kind, &v) {
			return false
		}
		c.set(o, &v)
	}
	return true
}

// joinDecoder reads the JSON Postgres writes for the join: arrays,
// integers, strings and nulls, no white space (json_build_array and
// json_agg write ", " between elements: skipped).
type joinDecoder struct {
	b string
	i int
}

func (d *joinDecoder) skip() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\n' || d.b[d.i] == '\t' || d.b[d.i] == '\r') {
		d.i++
	}
}

func (d *joinDecoder) byte(c byte) bool {
	d.skip()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *joinDecoder) open() bool  { return d.byte('[') }
func (d *joinDecoder) close() bool { return d.byte(']') }
func (d *joinDecoder) comma() bool { return d.byte(',') }

func (d *joinDecoder) null() bool {
	d.skip()
	if strings.HasPrefix(d.b[d.i:], "null") {
		d.i += 4
		return true
	}
	return false
}

// value reads one column of kind k into v.
func (d *joinDecoder) value(k joinKind, v *joinValue) bool {
	*v = joinValue{times: v.times}
	if d.null() {
		if k == jkInt || k == jkStr || k == jkTime {
			return false // null in a not-null column
		}
		v.null = true
		return true
	}
	switch k {
	case jkStr, jkStrP:
		s, ok := d.str()
		v.s = s
		return ok
	default:
		return d.int(&v.n)
	}
}

func (d *joinDecoder) int(n *int64) bool {
	d.skip()
	j := d.i
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	for j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9' {
		j++
	}
	x, err := strconv.ParseInt(d.b[d.i:j], 10, 64)
	if err != nil {
		return false
	}
	*n = x
	d.i = j
	return true
}

// str reads a JSON string: Postgres escapes '"', '\\' and control
// characters (\b \f \n \r \t by name, others as \u00XX).
func (d *joinDecoder) str() (string, bool) {
	d.skip()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	j := start
	for j < len(d.b) && d.b[j] != '"' && d.b[j] != '\\' {
		j++
	}
	if j < len(d.b) && d.b[j] == '"' {
		d.i = j + 1
		return d.b[start:j], true
	}
	var sb strings.Builder
	sb.WriteString(d.b[start:j])
	for j < len(d.b) {
		c := d.b[j]
		switch {
		case c == '"':
			d.i = j + 1
			return sb.String(), true
		case c != '\\':
			sb.WriteByte(c)
			j++
			continue
		}
		if j+1 >= len(d.b) {
			return "", false
		}
		switch d.b[j+1] {
		case '"', '\\', '/':
			sb.WriteByte(d.b[j+1])
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, ok := hex4(d.b, j+2)
			if !ok {
				return "", false
			}
			j += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(d.b, j+4); ok && strings.HasPrefix(d.b[j+2:], `\u`) {
					r = utf16.DecodeRune(r, r2)
					j += 6
				} else {
					r = utf8.RuneError
				}
			}
			sb.WriteRune(r)
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i < 0 || i+4 > len(s) {
		return 0, false
	}
	x, err := strconv.ParseUint(s[i:i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(x), true
}
