package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/bench"
	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/server"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// TestFastReadsDifferential sends every document twice to the same server,
// once with the fast path (graph.WithFastReads) and once through gqlgen,
// and requires byte-identical answers and the same number of SQL statements
// (or, where the fast path loads the subscribers' edges with them on
// Postgres, graph/fastjoin.go, the number the case gives, which is fewer);
// it also requires the fast path to have answered exactly the documents it
// supports, so the comparison is not vacuous. It runs in ispgraph's
// default statement mode and with prepared statements, which docs/deploy.md
// recommends on a direct connection.
func TestFastReadsDifferential(t *testing.T) {
	for _, mode := range []string{"", "cache_statement"} {
		t.Run("mode="+mode, func(t *testing.T) { testFastReadsDifferential(t, mode) })
	}
}

func testFastReadsDifferential(t *testing.T, mode string) {
	dbURL := testenv.PostgresURL(t)
	switch {
	case mode == "":
	case !strings.Contains(dbURL, "://"): // a keyword/value DSN
		dbURL += " default_query_exec_mode=" + mode
	case strings.Contains(dbURL, "?"):
		dbURL += "&default_query_exec_mode=" + mode
	default:
		dbURL += "?default_query_exec_mode=" + mode
	}
	redisURL, prefix := testenv.RedisURL(t)
	m, base := startServer(t, map[string]string{
		"DATABASE_URL":           dbURL,
		"REDIS_URL":              redisURL,
		"ISPGRAPH_JOB_NAMESPACE": strings.TrimSuffix(prefix, ":"),
		"ISPGRAPH_SECRET_KEY":    strings.Repeat("ef", 32),
		"ISPGRAPH_WORKERS":       "false",
	})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const pw = "fast-reads-1"
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 3, Subscribers: 14, Months: 3, Password: pw,
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 15,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Tenants in currencies of 2, 0 and 3 fraction digits.
	for slug, cur := range map[string]string{"t2": "JPY", "t3": "KWD"} {
		if _, err := pool.Exec(ctx, `UPDATE tenants SET currency = $1 WHERE slug = $2`, cur, slug); err != nil {
			t.Fatal(err)
		}
	}
	// Strings gqlgen escapes (quotes, backslashes, control characters) and
	// copies (HTML characters, non-ASCII, U+2028).
	odd := "Quote \" back\\slash \n\t\r \x01\x1f <b>&amp;</b> 'ünï' 漢字 \u2028 😀"
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const firstActive = `(SELECT id FROM network_users WHERE status = 'ACTIVE' AND tenant_id = (SELECT id FROM tenants WHERE slug = 't1') ORDER BY id LIMIT 1 OFFSET %d)`
	exec(`UPDATE network_users SET full_name = $1, email = $2 WHERE id = `+fmt.Sprintf(firstActive, 0), odd, "a\"b@example.com")
	exec(`UPDATE network_users SET package_id = NULL WHERE id = ` + fmt.Sprintf(firstActive, 1))
	exec(`UPDATE invoices SET notes = $1 WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 't1')`, odd)

	admin := login(t, base, "t1", seed.BenchAdminEmail(1), pw)
	adminJPY := login(t, base, "t2", seed.BenchAdminEmail(2), pw)
	adminKWD := login(t, base, "t3", seed.BenchAdminEmail(3), pw)
	noBilling := apiKey(t, base, admin, authz.NetworkUsersRead)

	do := func(token, query string, vars map[string]any, fast, debug bool) (string, bool) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		if debug {
			req.Header.Set(server.DebugHeader, "1")
		}
		probe := &graph.FastReadsProbe{Off: !fast}
		req = req.WithContext(graph.WithFastReadsProbe(req.Context(), probe))
		w := httptest.NewRecorder()
		m.http.Handler.ServeHTTP(w, req)
		return fmt.Sprintf("%d %s", w.Code, w.Body.String()), probe.Answered
	}
	statements := func(raw string) int {
		var r struct {
			Extensions struct{ Debug struct{ SQLStatements int } }
		}
		json.Unmarshal([]byte(raw[strings.IndexByte(raw, ' ')+1:]), &r)
		return r.Extensions.Debug.SQLStatements
	}

	// Ids to ask for: subscribers (one with the odd strings, one without
	// a package, one without invoices), an invoice, another tenant's subscriber.
	var ids struct {
		NetworkUsers struct {
			Edges []struct{ Node struct{ ID string } }
		}
		Invoices struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	json.Unmarshal(mustData(t, base, admin, `{ networkUsers(first: 3, where: {status: ACTIVE}) { edges { node { id } } }
		invoices(first: 1) { edges { node { id } } } }`, nil), &ids)
	var page struct {
		NetworkUsers struct{ PageInfo struct{ EndCursor string } }
	}
	json.Unmarshal(mustData(t, base, admin, `{ networkUsers(first: 4) { pageInfo { endCursor } edges { cursor } } }`, nil), &page)
	t1Cursor := page.NetworkUsers.PageInfo.EndCursor
	oddUser, noPackage := ids.NetworkUsers.Edges[0].Node.ID, ids.NetworkUsers.Edges[1].Node.ID
	anInvoice := ids.Invoices.Edges[0].Node.ID
	var created struct{ CreateNetworkUser struct{ ID string } }
	json.Unmarshal(mustData(t, base, admin, `mutation { createNetworkUser(input: {username: "fast-empty", fullName: "No Invoices", servicePassword: "pw-fast-1"}) { id } }`, nil), &created)
	noInvoices := created.CreateNetworkUser.ID
	var other struct {
		NetworkUsers struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	json.Unmarshal(mustData(t, base, adminJPY, `{ networkUsers(first: 1) { edges { node { id } } } }`, nil), &other)
	otherTenants := other.NetworkUsers.Edges[0].Node.ID
	json.Unmarshal(mustData(t, base, adminKWD, `{ networkUsers(first: 1) { edges { node { id } } } }`, nil), &other)
	kwdUser := other.NetworkUsers.Edges[0].Node.ID

	detail := func(id string) map[string]any { return map[string]any{"id": id} }
	// A subscriber's own token (the customer portal's viewer).
	mustData(t, base, admin, `mutation($id: ID!, $p: String) { setPortalPassword(networkUserID: $id, password: $p) { id } }`,
		map[string]any{"id": noPackage, "p": "portal-fast-1"})
	var me struct{ Node struct{ Username string } }
	json.Unmarshal(mustData(t, base, admin, `query($id: ID!) { node(id: $id) { ... on NetworkUser { username } } }`, detail(noPackage)), &me)
	customer := customerLogin(t, base, "t1", me.Node.Username, "portal-fast-1")
	type tc struct {
		name  string
		token string
		query string
		vars  map[string]any
		fast  bool // the fast path answers it
		sql   int  // the fast path's statements when they are fewer than gqlgen's (0: as many)
	}
	const pageForm = `query($id: ID!, $n: Int, $dir: OrderDirection!) { node(id: $id) { ... on NetworkUser { balance package { name }
		invoices(first: $n, orderBy: {field: ISSUED_AT, direction: $dir}) { pageInfo { hasNextPage } edges { node { number issuedAt payments { number } } } } } } }`
	pageVars := func(n int, dir string) map[string]any { return map[string]any{"id": oddUser, "n": n, "dir": dir} }
	cases := []tc{
		{"billing first 1", admin, bench.PartnerBilling, map[string]any{"first": 1}, true, 1},
		{"billing first 5", admin, bench.PartnerBilling, map[string]any{"first": 5}, true, 1},
		{"billing first 50", admin, bench.PartnerBilling, map[string]any{"first": 50}, true, 1},
		{"billing JPY", adminJPY, bench.PartnerBilling, map[string]any{"first": 10}, true, 1},
		{"billing KWD", adminKWD, bench.PartnerBilling, map[string]any{"first": 10}, true, 1},
		{"detail", admin, bench.SubscriberDetail, detail(oddUser), true, 1},
		{"detail without package", admin, bench.SubscriberDetail, detail(noPackage), true, 1},
		{"detail without invoices", admin, bench.SubscriberDetail, detail(noInvoices), true, 1},
		{"detail KWD", adminKWD, bench.SubscriberDetail, detail(kwdUser), true, 1},
		{"cross-tenant detail", adminKWD, bench.SubscriberDetail, detail(otherTenants), false, 0}, // t2's id: NOT_FOUND
		{"cross-tenant cursor", adminJPY, bench.PartnerBilling, map[string]any{"first": 5, "after": t1Cursor}, true, 1},
		{"cross-tenant node", adminKWD, `query($id: ID!) { node(id: $id) { id } }`, detail(otherTenants), false, 0},
		{"export", admin, bench.InvoiceExport, map[string]any{"first": 500, "since": "2000-01-01T00:00:00Z"}, true, 0},
		{"export first 3", admin, bench.InvoiceExport, map[string]any{"first": 3, "since": "2000-01-01T00:00:00Z"}, true, 0},
		{"aliases, typename, fragments", admin, `query Q($first: Int) {
			__typename
			a: networkUsers(first: $first, orderBy: {field: USERNAME, direction: DESC}) {
				__typename count: totalCount
				pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
				edges { __typename cursor node { ...NU } } }
			b: networkUsers(first: 2) { edges { node { uid: id ... on NetworkUser { username } } } }
		}
		fragment NU on NetworkUser { __typename id createdAt updatedAt username fullName email phone address serviceType status
			billingType packageID routerID staticIP macAddress expiresAt suspensionReason suspendedAt credit routerSyncedAt
			routerSyncError balance amountDue
			p: package { __typename id createdAt updatedAt name description bandwidthUpKbps bandwidthDownKbps price billingCycle
				validityDays routerProfile burstUpKbps burstDownKbps burstThresholdUpKbps burstThresholdDownKbps burstTimeSeconds
				uptimeLimitSeconds dataLimitBytes status }
			inv: invoices(first: 2) { totalCount edges { cursor node { ...INV } } }
			old: invoices(last: 1, orderBy: {field: ISSUED_AT, direction: ASC}) { edges { node { id number } } } }
		fragment INV on Invoice { __typename id createdAt updatedAt networkUserID packageID number amount tax total amountPaid
			creditApplied status periodStart periodEnd issuedAt dueDate paidAt notes
			payments { __typename id createdAt updatedAt networkUserID invoiceID paymentGatewayID number amount method status
				transactionID failureReason paidAt refundedAt collectedByID } }`, map[string]any{"first": 6}, true, 0},
		{"skip/include with variables, on", admin, `query($s: Boolean!, $i: Boolean!) { networkUsers(first: 3) {
			totalCount @skip(if: $s) edges { node { id username @include(if: $i) fullName @skip(if: true) } } } }`,
			map[string]any{"s": true, "i": true}, true, 0},
		{"skip/include with variables, off", admin, `query($s: Boolean!, $i: Boolean!) { networkUsers(first: 3) {
			totalCount @skip(if: $s) edges { node { id username @include(if: $i) fullName @skip(if: true) } } } }`,
			map[string]any{"s": false, "i": false}, true, 0},
		// The edges loaded with the subscribers (graph/fastjoin.go): every
		// column, the orders and page sizes it answers, several aliases.
		{"joined edges, every field", admin, `query($first: Int!) { networkUsers(first: $first) { edges { node { id balance amountDue credit
			p: package { __typename id createdAt updatedAt name description bandwidthUpKbps bandwidthDownKbps price billingCycle
				validityDays routerProfile burstUpKbps burstDownKbps burstThresholdUpKbps burstThresholdDownKbps burstTimeSeconds
				uptimeLimitSeconds dataLimitBytes status }
			inv: invoices(first: 2) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node {
				__typename id createdAt updatedAt networkUserID packageID number amount tax total amountPaid
				creditApplied status periodStart periodEnd issuedAt dueDate paidAt notes
				payments { __typename id createdAt updatedAt networkUserID invoiceID paymentGatewayID number amount method status
					transactionID failureReason paidAt refundedAt collectedByID } } } } } } } }`, map[string]any{"first": 6}, true, 1},
		{"joined edges, orders and aliases", admin, `query($id: ID!) { node(id: $id) { id ... on NetworkUser {
			byDue: invoices(first: 3, orderBy: {field: DUE_DATE, direction: ASC}) { pageInfo { hasNextPage endCursor } edges { cursor node { id dueDate } } }
			byID: invoices(first: 2) { edges { cursor node { id a: payments { id } b: payments { amount paidAt } } } }
			none: invoices(first: 0) { pageInfo { hasNextPage startCursor } edges { node { id } } }
			all: invoices(first: 50, orderBy: {field: ISSUED_AT, direction: ASC}) { edges { node { number payments { number } } } } } } }`,
			detail(oddUser), true, 1},
		// Not joined: two package aliases (one Edges.Package), invoices
		// without edges (entgql loads none).
		{"joined edges, two package aliases", admin, `query($id: ID!) { node(id: $id) { ... on NetworkUser {
			a: package { name price } b: package { id } invoices(first: 2) { edges { node { id } } } } } }`, detail(oddUser), true, 0},
		{"joined edges, invoices without edges", admin, `query($id: ID!) { node(id: $id) { ... on NetworkUser {
			package { name } invoices(first: 2) { pageInfo { hasNextPage startCursor endCursor } } } } }`, detail(oddUser), true, 0},
		{"joined edges, node on an invoice", admin, `query($id: ID!) { node(id: $id) { id ... on NetworkUser { package { name } invoices(first: 1) { edges { node { id } } } }
			... on Invoice { number networkUser { username } } } }`, detail(anInvoice), true, 0},
		{"joined edges, a null cursor", admin, `query($id: ID!, $after: Cursor) { node(id: $id) { ... on NetworkUser {
			package { name } invoices(first: 2, after: $after) { edges { cursor node { id } } } } } }`,
			map[string]any{"id": oddUser, "after": nil}, true, 1},
		// One document, two forms of its arguments: the joined column's
		// text is kept per form (graph/fastjoin.go), so the second must not
		// reuse the first's page size or order.
		{"joined edges, page and order from variables (1)", admin, pageForm, pageVars(1, "ASC"), true, 1},
		{"joined edges, page and order from variables (2)", admin, pageForm, pageVars(4, "ASC"), true, 1},
		{"joined edges, page and order from variables (3)", admin, pageForm, pageVars(4, "DESC"), true, 1},
		{"joined edges, page and order from variables (4)", admin, pageForm, pageVars(1, "ASC"), true, 1},
		{"node on an invoice", admin, `query($id: ID!) { node(id: $id) { id ... on Invoice { number total } ... on NetworkUser { username } } }`,
			detail(anInvoice), true, 0},
		// A where on an edge is read by entgql's field collection through
		// the input unmarshalers in the context (the fast path once loaded
		// these invoices unfiltered).
		{"where on the invoices edge", admin, `query($s: InvoiceStatus!) { networkUsers(first: 5, where: {hasInvoicesWith: {status: PENDING}}) {
			edges { node { id inv: invoices(first: 3, where: {status: $s}) { totalCount edges { node { number status payments { id } } } }
				paid: invoices(first: 2, where: {statusIn: [PAID, OVERDUE], totalGT: "1.00"}) { edges { node { number status total } } } } } } }`,
			map[string]any{"s": "PENDING"}, true, 0},
		{"two roots", admin, `{ networkUsers(first: 2) { totalCount } invoices(first: 2) { totalCount edges { node { id } } } }`, nil, true, 0},
		// The amount due is not loaded with the page (only the first edges
		// are looked at): gqlgen answers, batching the dataloader.
		{"balance not loaded with the page", admin, `{ networkUsers(first: 3) { edges { a: node { id } b: node { id balance } } } }`, nil, false, 0},
		// Unsupported shapes: gqlgen answers.
		{"unsupported field", admin, `{ networkUsers(first: 3) { edges { node { id router { id } } } } }`, nil, false, 0},
		{"amount due only", admin, `{ networkUsers(first: 3) { edges { node { id amountDue } } } }`, nil, true, 0},
		{"unsupported root", admin, `{ packages(first: 3) { edges { node { id } } } }`, nil, false, 0},
		{"mutation", admin, `mutation { createNetworkUser(input: {username: ""}) { id } }`, nil, false, 0},
		// Errors: gqlgen answers them all.
		{"bad cursor", admin, bench.PartnerBilling, map[string]any{"first": 5, "after": "not-a-cursor"}, false, 0},
		{"page too large", admin, bench.PartnerBilling, map[string]any{"first": 100000}, false, 0},
		{"no billing permission", noBilling, bench.PartnerBilling, map[string]any{"first": 5}, false, 0},
		{"no billing permission, detail", noBilling, bench.SubscriberDetail, detail(oddUser), false, 0},
		{"other tenant's node", adminJPY, bench.SubscriberDetail, detail(oddUser), false, 0},
		{"bad id", admin, bench.SubscriberDetail, detail("nope"), false, 0},
		{"anonymous", "", bench.PartnerBilling, map[string]any{"first": 5}, false, 0},
		// Staff first, then the subscriber, on one document: the joined
		// column's text is kept per viewer kind (graph/fastjoin.go).
		{"staff, the portal subscriber's detail", admin, bench.SubscriberDetail, detail(noPackage), true, 1},
		{"customer, own detail", customer, bench.SubscriberDetail, detail(noPackage), true, 0},
		{"customer, another subscriber", customer, bench.SubscriberDetail, detail(oddUser), false, 0},
		{"customer, list", customer, bench.PartnerBilling, map[string]any{"first": 5}, true, 0},
		{"customer, invoices", customer, bench.InvoiceExport, map[string]any{"first": 5, "since": "2000-01-01T00:00:00Z"}, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			slow, answered := do(c.token, c.query, c.vars, false, false)
			if answered {
				t.Fatal("the fast path answered with the fast path off")
			}
			fast, answered := do(c.token, c.query, c.vars, true, false)
			if sameErrorsSorted(fast) != sameErrorsSorted(slow) {
				t.Fatalf("answers differ\nfast: %s\nslow: %s", fast, slow)
			}
			if answered != c.fast {
				t.Errorf("fast path answered: %v, want %v (%s)", answered, c.fast, fast)
			}
			if c.fast && !strings.HasPrefix(slow, "200 {\"data\"") {
				t.Errorf("not an answer: %s", slow)
			}
			if c.fast && c.token != customer { // the debug extension is for staff
				s, _ := do(c.token, c.query, c.vars, false, true)
				f, _ := do(c.token, c.query, c.vars, true, true)
				want := statements(s)
				if c.sql > 0 {
					want = c.sql
				}
				if statements(f) != want || statements(f) == 0 {
					t.Errorf("SQL statements: fast %d, gqlgen %d, want %d", statements(f), statements(s), want)
				}
			}
		})
	}
	// The odd strings went through the fast path.
	if out, _ := do(admin, bench.SubscriberDetail, detail(oddUser), true, false); !strings.Contains(out, `\u0001\u001F <b>&amp;</b>`) {
		t.Errorf("odd strings not in the answer: %s", out)
	}
}

// sameErrorsSorted returns an answer with its errors in a fixed order:
// gqlgen resolves list elements concurrently, so it reports their errors in
// any order. An answer without errors is returned as it is.
func sameErrorsSorted(answer string) string {
	status, body, _ := strings.Cut(answer, " ")
	var r struct {
		Errors []json.RawMessage `json:"errors"`
		Data   json.RawMessage   `json:"data"`
	}
	if !strings.Contains(body, `"errors"`) || json.Unmarshal([]byte(body), &r) != nil {
		return answer
	}
	errs := make([]string, len(r.Errors))
	for i, e := range r.Errors {
		errs[i] = string(e)
	}
	slices.Sort(errs)
	return status + " " + strings.Join(errs, "\n") + "\n" + string(r.Data)
}

// TestFastReadsOff: with ISPGRAPH_FAST_READS=false gqlgen answers every
// request.
func TestFastReadsOff(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	m, base := startServer(t, map[string]string{
		"DATABASE_URL":           dbURL,
		"REDIS_URL":              redisURL,
		"ISPGRAPH_JOB_NAMESPACE": strings.TrimSuffix(prefix, ":"),
		"ISPGRAPH_SECRET_KEY":    strings.Repeat("ef", 32),
		"ISPGRAPH_WORKERS":       "false",
		"ISPGRAPH_FAST_READS":    "false",
	})
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := seed.Bench(context.Background(), pool, seed.BenchOptions{
		Tenants: 1, Subscribers: 3, Months: 1, Password: "fast-reads-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 16,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	admin := login(t, base, "t1", seed.BenchAdminEmail(1), "fast-reads-1")
	body, _ := json.Marshal(map[string]any{"query": bench.PartnerBilling, "variables": map[string]any{"first": 3}})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	probe := &graph.FastReadsProbe{}
	req = req.WithContext(graph.WithFastReadsProbe(req.Context(), probe))
	w := httptest.NewRecorder()
	m.http.Handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"edges":[{`) {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if probe.Answered {
		t.Error("the fast path answered with ISPGRAPH_FAST_READS=false")
	}
}
