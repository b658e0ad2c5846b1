package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/jackc/pgx/v5/pgxpool"

	_ "github.com/ispgraph/ispgraph/ent/runtime" // registers ent policies and hooks
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/server"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// The EXPLAIN data set. Every query is scoped to one tenant, so what decides
// the planner's choice is the share of a table one tenant holds and the
// table's size in pages. With 3 tenants a tenant holds a third of each table
// (the production share is far smaller, which only favours indexes more), and
// at 3000 subscribers × 6 months invoices and payments fill about 1 200 pages
// each and network_users about 375, where a sequential scan costs the planner
// more than an index path for every query below. Seeding it takes 15–20 s on
// a busy 2-CPU machine (logged).
const (
	explainTenants     = 3
	explainSubscribers = 3000
	explainMonths      = 6
	explainPassword    = "explain-pass-1"
)

// largeTables are the tables whose sequential scan fails the test: they grow
// with subscribers × months.
var largeTables = map[string]bool{"network_users": true, "invoices": true, "payments": true}

// TestHotQueriesUseIndexes runs the API's hot requests through the real
// server on a benchmark-shaped data set, records every SQL statement they
// issue, EXPLAINs each and fails on a sequential scan of a large table.
//
// With ISPGRAPH_EXPLAIN_DATABASE_URL it checks that database instead (one
// seeded by `ispgraph seed` or `make bench`, tenants t1…t3 at least; the
// admins' password in ISPGRAPH_EXPLAIN_PASSWORD, default the benchmark's).
func TestHotQueriesUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds a data set of tens of thousands of rows")
	}
	ctx := context.Background()
	url, password := os.Getenv("ISPGRAPH_EXPLAIN_DATABASE_URL"), explainPassword
	existing := url != "" // seeded by `ispgraph seed` or the benchmark: checked as it is
	if existing {
		if password = os.Getenv("ISPGRAPH_EXPLAIN_PASSWORD"); password == "" {
			password = "bench-password" // the benchmark's default
		}
	} else {
		url = testenv.PostgresURL(t)
	}
	rec := &recorder{}
	db, err := database.OpenPostgres(ctx, url, database.Options{MaxOpenConns: 4, Wrap: rec.wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if !existing {
		seedExplain(t, db, url)
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ids, err := gid.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.Handler(server.Options{
		Client:          db.Client,
		IDs:             ids,
		Auth:            &auth.Service{Client: db.Client, TokenTTL: time.Hour, Now: time.Now, Logger: logger},
		Billing:         &billing.Service{Client: db.Client},
		Logger:          logger,
		Metrics:         observability.NewMetrics(),
		DefaultPageSize: 50,
		MaxPageSize:     500,
	}))
	t.Cleanup(srv.Close)
	gql := &GraphQL{HTTP: srv.Client(), URL: srv.URL + "/graphql"}

	// The check itself must see a sequential scan where there is one: nothing
	// indexes an invoice's notes.
	if _, seq, _, err := explain(db, statement{query: "SELECT id FROM invoices WHERE notes = $1", args: []any{"x"}}); err != nil || len(seq) != 1 {
		t.Fatalf("the plan check missed a sequential scan of invoices: %v %v", seq, err)
	}

	const tenant = 2 // the middle tenant: its rows are neither first nor last in any table
	rec.start()
	if err := gql.Login(ctx, seed.BenchSlug(tenant), seed.BenchAdminEmail(tenant), password); err != nil {
		t.Fatal(err)
	}
	explainAll(t, db, "login", rec.stop())

	// A cursor in the middle of the active subscribers and one subscriber.
	first, err := gql.ActivePage(ctx, 500, "")
	if err != nil {
		t.Fatal(err)
	}
	mid, sub := first.End, first.IDs[len(first.IDs)/2]

	now := time.Now().UTC()
	day := now.Truncate(24 * time.Hour)
	cases := []struct {
		name, query string
		vars        map[string]any
		optional    bool // not in every build yet: skipped when the schema lacks it
	}{
		{"partner billing, first page", PartnerBilling, map[string]any{"first": BillingPageSize}, false},
		{"partner billing, a later page", PartnerBilling, map[string]any{"first": BillingPageSize, "after": mid}, false},
		{"subscriber detail: invoices newest first with payments", SubscriberDetail, map[string]any{"id": sub}, false},
		{"invoice export changed since, first page", InvoiceExport, map[string]any{"first": ExportPageSize, "since": now.AddDate(0, -2, 0)}, false},
		{"staff dashboard", Dashboard, nil, true},
		{"payments in a date range", `query($from: Time!, $to: Time!) { payments(first: 50, where: {paidAtGTE: $from, paidAtLT: $to}, orderBy: {field: PAID_AT, direction: DESC}) { totalCount edges { node { id number amount method paidAt } } } }`,
			map[string]any{"from": day.AddDate(0, 0, -7), "to": day}, false},
		{"payments by method in a date range", `query($from: Time!) { payments(first: 50, where: {method: MOBILE_WALLET, paidAtGTE: $from}, orderBy: {field: PAID_AT, direction: DESC}) { totalCount edges { node { id amount paidAt } } } }`,
			map[string]any{"from": day.AddDate(0, -1, 0)}, false},
		{"completed payments, newest first", `{ payments(first: 50, where: {status: COMPLETED}, orderBy: {field: PAID_AT, direction: DESC}) { edges { node { id amount } } } }`, nil, false},
		{"overdue invoices", `{ invoices(first: 50, where: {status: OVERDUE}, orderBy: {field: DUE_DATE, direction: ASC}) { totalCount edges { node { id number total dueDate } } } }`, nil, false},
		{"pending invoices past due", `query($today: Time!) { invoices(first: 50, where: {status: PENDING, dueDateLT: $today}, orderBy: {field: DUE_DATE, direction: ASC}) { totalCount edges { node { id number dueDate } } } }`,
			map[string]any{"today": day}, false},
		{"subscriber by username", `query($u: String!) { networkUsers(first: 1, where: {username: $u}) { edges { node { id } } } }`,
			map[string]any{"u": seed.BenchUsername(1234)}, false},
		{"subscribers by service type", `{ networkUsers(first: 50, where: {status: ACTIVE, serviceType: HOTSPOT}) { totalCount edges { node { id } } } }`, nil, false},
		{"subscribers not expired", `query($now: Time!) { networkUsers(first: 50, where: {expiresAtGT: $now}, orderBy: {field: EXPIRES_AT, direction: ASC}) { edges { node { id expiresAt } } } }`,
			map[string]any{"now": now}, false},
		{"active and verified hotspot users", `{ hotspotUsers(first: 50, where: {status: ACTIVE, verified: true}) { totalCount edges { node { id } } } }`, nil, false},
		{"active routers", `{ routers(first: 50, where: {status: ACTIVE}) { edges { node { id name } } } }`, nil, false},
		{"active payment gateways", `{ paymentGateways(first: 50, where: {active: true}) { edges { node { id name } } } }`, nil, false},
	}
	for _, c := range cases {
		rec.start()
		err := gql.Do(ctx, c.query, c.vars, nil)
		stmts := rec.stop()
		var re *ResponseError
		if c.optional && errors.As(err, &re) && strings.HasPrefix(re.Errors[0].Message, "Cannot query field") {
			t.Logf("%s: not in this build (%s); skipped", c.name, re.Errors[0].Message)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		explainAll(t, db, c.name, stmts)
	}
}

// seedExplain migrates the fresh database at url and seeds the EXPLAIN data set.
func seedExplain(t *testing.T, db *database.DB, url string) {
	ctx := context.Background()
	if _, err := db.Migrate(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var roles []seed.RoleSpec
	for _, r := range authz.DefaultRoles() {
		roles = append(roles, seed.RoleSpec(r))
	}
	res, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: explainTenants, Subscribers: explainSubscribers, Months: explainMonths,
		Password: explainPassword, HashPassword: auth.HashPassword, Roles: roles, Seed: 1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", res)
}

// explainAll EXPLAINs every statement of one request and fails the test on a
// sequential scan of a large table.
func explainAll(t *testing.T, db *database.DB, name string, stmts []statement) {
	t.Helper()
	if len(stmts) == 0 {
		t.Errorf("%s: no SQL recorded", name)
	}
	// A statement run once per row (an N+1) is explained once: its plan
	// shape does not change with the row.
	seen := map[string]int{}
	for _, s := range stmts {
		seen[s.query]++
	}
	for i, s := range stmts {
		n := seen[s.query]
		if n == 0 {
			continue
		}
		seen[s.query] = 0
		verb := strings.ToUpper(strings.Fields(s.query)[0])
		if verb != "SELECT" && verb != "WITH" && verb != "UPDATE" && verb != "DELETE" {
			continue // INSERTs scan nothing
		}
		scans, seq, raw, err := explain(db, s)
		if err != nil {
			t.Errorf("%s: statement %d: %v\n%s", name, i+1, err, s.query)
			continue
		}
		for _, rel := range seq {
			t.Errorf("%s: statement %d scans %s sequentially:\n%s\nargs %v\nplan %s", name, i+1, rel, s.query, s.args, raw)
		}
		times := ""
		if n > 1 {
			times = fmt.Sprintf(" (run %d times)", n)
		}
		t.Logf("%s [%d]%s: %s\n\t%.400s", name, i+1, times, strings.Join(scans, "; "), s.query)
	}
}

// explain EXPLAINs one statement with its arguments and returns its scans,
// described for the log, the large tables it scans sequentially and the plan.
func explain(db *database.DB, s statement) (scans, seq []string, raw []byte, err error) {
	if err := db.SQL.QueryRow("EXPLAIN (FORMAT JSON) "+s.query, s.args...).Scan(&raw); err != nil {
		return nil, nil, nil, fmt.Errorf("EXPLAIN: %w", err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) == 0 {
		return nil, nil, raw, fmt.Errorf("EXPLAIN output %.200s: %v", raw, err)
	}
	plans[0].Plan.walk(func(n planNode) {
		switch {
		case n.Relation == "" && n.Index != "":
			scans = append(scans, fmt.Sprintf("%s using %s", n.Type, n.Index))
		case n.Relation == "":
		case n.Index != "":
			scans = append(scans, fmt.Sprintf("%s on %s using %s", n.Type, n.Relation, n.Index))
		default:
			scans = append(scans, fmt.Sprintf("%s on %s", n.Type, n.Relation))
		}
		if n.Type == "Seq Scan" && largeTables[n.Relation] {
			seq = append(seq, n.Relation)
		}
	})
	return scans, seq, raw, nil
}

// planNode is the part of an EXPLAIN (FORMAT JSON) node the test reads.
type planNode struct {
	Type     string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Index    string     `json:"Index Name"`
	Plans    []planNode `json:"Plans"`
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// statement is one SQL statement the server ran.
type statement struct {
	query string
	args  []any
}

// recorder wraps the ent driver and records the statements run between
// start and stop.
type recorder struct {
	mu    sync.Mutex
	on    bool
	stmts []statement
}

func (r *recorder) wrap(d dialect.Driver) dialect.Driver { return &recordingDriver{Driver: d, r: r} }

func (r *recorder) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.stmts = true, nil
}

func (r *recorder) stop() []statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.stmts
}

func (r *recorder) record(query string, args any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		a, _ := args.([]any)
		r.stmts = append(r.stmts, statement{query: query, args: a})
	}
}

type recordingDriver struct {
	dialect.Driver
	r *recorder
}

func (d *recordingDriver) Exec(ctx context.Context, query string, args, v any) error {
	d.r.record(query, args)
	return d.Driver.Exec(ctx, query, args, v)
}

func (d *recordingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.r.record(query, args)
	return d.Driver.Query(ctx, query, args, v)
}

func (d *recordingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return &recordingTx{Tx: tx, r: d.r}, nil
}

type recordingTx struct {
	dialect.Tx
	r *recorder
}

func (t *recordingTx) Exec(ctx context.Context, query string, args, v any) error {
	t.r.record(query, args)
	return t.Tx.Exec(ctx, query, args, v)
}

func (t *recordingTx) Query(ctx context.Context, query string, args, v any) error {
	t.r.record(query, args)
	return t.Tx.Query(ctx, query, args, v)
}
