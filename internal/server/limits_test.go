package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"

	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/config"
)

// nestedSpreads is a document of n fragments, each spreading the one before
// it twice: expanded, its selection holds 2^n copies of the first.
func nestedSpreads(n int) string {
	var b strings.Builder
	b.WriteString("{ routers(first: 1) { edges { node { ...F" + fmt.Sprint(n) + " } } } }\n")
	b.WriteString("fragment F0 on Router { id name }\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Router { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	return b.String()
}

// TestLimitsCostEachFragmentOnce counts the selections the depth and cost
// walkers visit for a document of nested spreads: each fragment is walked
// once, so the count grows with the document, not with its expansion.
func TestLimitsCostEachFragmentOnce(t *testing.T) {
	cfg := graph.Config{}
	complexityRoot(&cfg.Complexity, 50)
	es := graph.NewExecutableSchema(cfg)
	for _, n := range []int{4, 24} {
		q := nestedSpreads(n)
		doc, errs := gqlparser.LoadQuery(es.Schema(), q)
		if errs != nil {
			t.Fatalf("n=%d: %v", n, errs)
		}
		op := doc.Operations[0]
		dw := depthWalker{frags: map[string]int{}}
		if d := dw.set(op.SelectionSet); d != 4 {
			t.Errorf("n=%d: depth %d, want 4 (routers.edges.node.id)", n, d)
		}
		cw := costWalker{es: es, schema: es.Schema(), frags: map[string]int{}}
		cost := cw.set(context.Background(), op.SelectionSet)
		// routers(first: 1) costs 1 + edges (1 + node (1 + 2^n copies of {id name})).
		if want := 3 + 2<<n; cost != want {
			t.Errorf("n=%d: cost %d, want %d", n, cost, want)
		}
		if n == 4 {
			if gq := complexity.Calculate(context.Background(), es, op, nil); gq != cost {
				t.Errorf("gqlgen's walker costs it %d, ours %d", gq, cost)
			}
		}
		// Visits: 3 fields down to node, 1 spread there, 2 spreads per
		// fragment F1..Fn and 2 fields in F0.
		want := 3 + 1 + 2*n + 2
		if dw.visits != want || cw.visits != want {
			t.Errorf("n=%d (%d bytes): depth walked %d selections, cost %d; want %d each", n, len(q), dw.visits, cw.visits, want)
		}
	}
}

// TestDocumentLimits counts tokens, aliases, fragments and directives the
// way the pre-parse limit does.
func TestDocumentLimits(t *testing.T) {
	q := `query Q($a: Int = 1) @x { one: routers(first: $a, where: {nameContains: "a:b"}) { totalCount } two: routers { totalCount @skip(if: true) } }
fragment F on Router { id } fragment G on Router { name }`
	c, err := countDocument(q, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if c.aliases != 2 || c.fragments != 2 || c.directives != 2 {
		t.Errorf("counted %+v, want 2 aliases, 2 fragments, 2 directives", c)
	}
	d := documentLimit{Tokens: 1000, Aliases: 1, Fragments: 10, Directives: 10}
	if err := d.MutateOperationParameters(context.Background(), rawQuery(q)); err == nil || !strings.Contains(err.Message, "2 aliases") {
		t.Errorf("2 aliases over a limit of 1: %v", err)
	}
	d = documentLimit{Tokens: 10, Aliases: 10, Fragments: 10, Directives: 10}
	if err := d.MutateOperationParameters(context.Background(), rawQuery(q)); err == nil || !strings.Contains(err.Message, "more than 10 tokens") {
		t.Errorf("over 10 tokens: %v", err)
	}
	d = documentLimit{Tokens: 1000, Aliases: 10, Fragments: 10, Directives: 10}
	if err := d.MutateOperationParameters(context.Background(), rawQuery(q)); err != nil {
		t.Errorf("within every limit: %v", err)
	}
}

func rawQuery(q string) *graphql.RawParams { return &graphql.RawParams{Query: q} }

// TestCSVCell checks report cells that a spreadsheet would run as formulas
// are escaped, and nothing else changes.
func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		`=HYPERLINK("http://x","y")`: `'=HYPERLINK("http://x","y")`,
		"+1+1":                       "'+1+1",
		"-2+3":                       "'-2+3",
		"@SUM(A1)":                   "'@SUM(A1)",
		"\tx":                        "'\tx",
		"\rx":                        "'\rx",
		"-12.50":                     "-12.50",
		"Alice":                      "Alice",
		"":                           "",
	} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCostModelCalibration pins the figures docs/query-surface.md calibrates
// the default limit with: the partner page at first: 100 with 12 invoices
// per subscriber fits; twice that page, 500 subscribers with 3 invoices, the
// default pages nested three deep, and 200 × 100 invoices do not.
func TestCostModelCalibration(t *testing.T) {
	cfg := graph.Config{}
	complexityRoot(&cfg.Complexity, config.Default().DefaultPageSize)
	es := graph.NewExecutableSchema(cfg)
	limit := config.Default().ComplexityLimit
	partner := func(first, invoices int) string {
		return fmt.Sprintf(`{ networkUsers(first: %d, where: {status: ACTIVE}) { totalCount pageInfo { hasNextPage endCursor } edges { node {
			id username fullName status serviceType balance package { id name price bandwidthDownKbps }
			invoices(first: %d, orderBy: {field: ISSUED_AT, direction: DESC}) { edges { node { id number status total amountPaid dueDate
				payments { id amount method status paidAt } } } } } } } }`, first, invoices)
	}
	for _, c := range []struct {
		query string
		cost  int
	}{
		{partner(50, 3), 3751},
		{partner(100, 3), 7501},
		{partner(100, 12), 24601},
		{partner(200, 12), 49201},
		{partner(500, 3), 37501},
		{`{ networkUsers { edges { node { id invoices { edges { node { id number status total payments { id amount method status paidAt } } } }
			payments { edges { node { id amount method } } } } } } }`, 55251},
		{`{ networkUsers(first: 200) { edges { node { invoices(first: 100) { edges { node { payments { id } } } } } } } }`, 100601},
	} {
		doc, errs := gqlparser.LoadQuery(es.Schema(), c.query)
		if errs != nil {
			t.Fatal(errs)
		}
		w := costWalker{es: es, schema: es.Schema(), frags: map[string]int{}}
		if got := w.set(context.Background(), doc.Operations[0].SelectionSet); got != c.cost {
			t.Errorf("cost %d, want %d: %.90s", got, c.cost, c.query)
		}
	}
	if partnerCost := 24601; partnerCost > limit || 37501 <= limit {
		t.Errorf("limit %d: the 100 × 12 partner page must fit, the 500 × 3 one must not", limit)
	}
}

// TestCostMemo: a document's cost is remembered for the values of the
// variables of its page sizes only; another page size is walked again (and
// refused when over the limit), another id is not.
func TestCostMemo(t *testing.T) {
	cfg := graph.Config{}
	complexityRoot(&cfg.Complexity, 50)
	es := graph.NewExecutableSchema(cfg)
	c := &complexityLimit{Limit: 2000}
	if err := c.Validate(es); err != nil {
		t.Fatal(err)
	}
	q := `query($n: Int, $id: ID!) { routers(first: $n) { edges { node { id name } } } node(id: $id) { id } }`
	doc, errs := gqlparser.LoadQuery(es.Schema(), q)
	if errs != nil {
		t.Fatal(errs)
	}
	run := func(n int64, id string) (walked bool, refused bool) {
		oc := &graphql.OperationContext{RawQuery: q, Doc: doc, Variables: map[string]any{"n": n, "id": id}}
		before := c.memo
		key := "\x00" + q
		m, hit := before.Get(context.Background(), key)
		err := c.MutateOperationContext(context.Background(), oc)
		return !(hit && m.matches(oc)), err != nil
	}
	if walked, refused := run(10, "a"); !walked || refused {
		t.Fatalf("first request: walked %v, refused %v", walked, refused)
	}
	if walked, _ := run(10, "b"); walked {
		t.Error("another id walked the document again")
	}
	if walked, refused := run(1000, "b"); !walked || !refused {
		t.Errorf("first: 1000: walked %v, refused %v; want both", walked, refused)
	}
	if walked, refused := run(10, "c"); refused || !walked {
		t.Errorf("back to first: 10: walked %v, refused %v", walked, refused)
	}
}
