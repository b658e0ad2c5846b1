package seed_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ispgraph/ispgraph/ent"
	_ "github.com/ispgraph/ispgraph/ent/runtime"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// testRoles stands in for authz.DefaultRoles.
var testRoles = []seed.RoleSpec{
	{Name: "admin", Description: "Everything", Permissions: []string{"network_users:read", "network_users:write", "billing:read", "billing:write", "staff:manage"}},
	{Name: "manager", Description: "Runs the ISP", Permissions: []string{"network_users:read", "billing:read", "reports:run"}},
	{Name: "operator", Description: "Network", Permissions: []string{"network_users:read", "routers:manage"}},
	{Name: "accountant", Description: "Billing", Permissions: []string{"billing:read", "billing:write", "payments:record"}},
	{Name: "staff", Description: "Front desk", Permissions: nil},
}

// testHash stands in for auth.HashPassword: cheap and recognisable.
func testHash(pw string) (string, error) { return "test$" + pw, nil }

// testEncrypt stands in for the secret box: recognisable, never the plain text.
func testEncrypt(s string) (string, error) { return "enc:" + strings.ToUpper(s), nil }

// The tables every seeded tenant owns rows in.
var tenantTables = []string{"roles", "users", "packages", "routers", "network_users", "invoices", "payments", "sequences"}

// newDB returns a fresh Postgres database with the ent schema, an ent client and a database/sql handle on it.
func newDB(t *testing.T) (dbURL string, client *ent.Client, db *sql.DB) {
	t.Helper()
	dbURL = testenv.PostgresURL(t)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	client = ent.NewClient(ent.Driver(entsql.OpenDB(dialect.Postgres, db)))
	if err := client.Schema.Create(context.Background()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	return dbURL, client, db
}

func newPool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func queryInt(t *testing.T, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

func TestDemoIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, client, db := newDB(t)
	opts := seed.DemoOptions{HashPassword: testHash, Roles: testRoles}

	first, err := seed.Demo(ctx, client, opts)
	if err != nil {
		t.Fatalf("Demo: %v", err)
	}
	if !first.Created || first.TenantID == 0 {
		t.Fatalf("first Demo = %+v, want Created with a tenant", first)
	}
	if len(first.Password) != seed.GeneratedPasswordLength {
		t.Fatalf("generated password %q: want %d characters", first.Password, seed.GeneratedPasswordLength)
	}
	if !strings.Contains(first.String(), first.Password) {
		t.Errorf("String() = %q, want the generated password in it", first.String())
	}
	rows := func() (n int64) {
		for _, table := range append([]string{"tenants"}, tenantTables...) {
			n += queryInt(t, db, "SELECT count(*) FROM "+table)
		}
		return n
	}
	before := rows()

	second, err := seed.Demo(ctx, client, seed.DemoOptions{HashPassword: testHash, Roles: testRoles, Password: "other"})
	if err != nil {
		t.Fatalf("second Demo: %v", err)
	}
	if second.Created || second.Password != "" {
		t.Fatalf("second Demo = %+v, want a no-op", second)
	}
	if !strings.Contains(second.String(), "already exists") {
		t.Errorf("second String() = %q, want it to say the tenant exists", second.String())
	}
	if after := rows(); after != before {
		t.Fatalf("second Demo changed the row count from %d to %d", before, after)
	}
	// The admin keeps the first password.
	var hash string
	if err := db.QueryRow("SELECT password_hash FROM users WHERE email = $1", seed.DemoAdminEmail).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if want, _ := testHash(first.Password); hash != want {
		t.Fatalf("admin password hash %q, want the first run's %q", hash, want)
	}
}

func TestDemoData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, client, db := newDB(t)
	now := time.Date(2026, time.November, 26, 7, 0, 0, 0, time.UTC)
	res, err := seed.Demo(ctx, client, seed.DemoOptions{
		Password: "demo-password", HashPassword: testHash, Roles: testRoles, Encrypt: testEncrypt, Now: now,
	})
	if err != nil {
		t.Fatalf("Demo: %v", err)
	}
	if res.Password != "" {
		t.Errorf("Password = %q: a given password must not be echoed", res.Password)
	}
	if res.Subscribers != seed.DemoSubscribers || res.Invoices != seed.DemoSubscribers*seed.DemoMonths {
		t.Fatalf("result %+v: want %d subscribers and %d invoices", res, seed.DemoSubscribers, seed.DemoSubscribers*seed.DemoMonths)
	}

	// The tenant as the API and the billing code read it.
	tn, err := client.Tenant.Query().Where(tenant.Slug(seed.DemoSlug)).Only(tenancy.Bypass(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if tn.Domain != "demo.localhost" || tn.Subdomain == nil || *tn.Subdomain != "demo" || tn.Currency != "BDT" ||
		tn.TaxRateBp != 500 || tn.InvoicePrefix != "INV" || tn.GraceDays != 7 || tn.Timezone != "Asia/Dhaka" {
		t.Errorf("demo tenant %+v", tn)
	}
	tctx := viewer.ForTenant(ctx, tn.ID)
	admin, err := client.User.Query().WithRole().Only(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if admin.Email != seed.DemoAdminEmail || admin.Edges.Role == nil || admin.Edges.Role.Name != "admin" ||
		admin.PasswordHash != "test$demo-password" || !admin.Active {
		t.Errorf("admin %+v role %+v", admin, admin.Edges.Role)
	}
	if n := client.Role.Query().CountX(tctx); n != len(testRoles) {
		t.Errorf("%d roles, want %d", n, len(testRoles))
	}
	if n := client.ServicePackage.Query().CountX(tctx); n != res.Packages || n < 5 {
		t.Errorf("%d packages (result says %d), want at least 5", n, res.Packages)
	}
	if n := client.Router.Query().CountX(tctx); n != 1 {
		t.Errorf("%d routers, want 1", n)
	}
	// A documentation address is never dialled: the demo router is inactive.
	if n := queryInt(t, db, "SELECT count(*) FROM routers WHERE status <> 'INACTIVE'"); n != 0 {
		t.Errorf("%d demo routers not INACTIVE, want 0", n)
	}
	customer, err := client.NetworkUser.Query().Where().All(tctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, nu := range customer {
		if nu.Username == res.CustomerUsername {
			found = nu.PortalPasswordHash != nil && *nu.PortalPasswordHash == "test$demo-password"
		}
		if !strings.HasPrefix(nu.ServicePassword, "enc:") {
			t.Errorf("subscriber %s: service password %q not encrypted", nu.Username, nu.ServicePassword)
		}
	}
	if !found {
		t.Errorf("customer %q has no portal password", res.CustomerUsername)
	}

	// Variety: every status and service type, the three invoice statuses, several methods.
	expectDistinct(t, db, "SELECT DISTINCT status FROM network_users", "ACTIVE", "SUSPENDED", "EXPIRED", "INACTIVE")
	expectDistinct(t, db, "SELECT DISTINCT service_type FROM network_users", "PPPOE", "HOTSPOT", "STATIC")
	expectDistinct(t, db, "SELECT DISTINCT status FROM invoices", "PAID", "PENDING", "OVERDUE")
	expectDistinct(t, db, "SELECT DISTINCT method FROM payments WHERE status = 'COMPLETED'", "CASH", "MOBILE_WALLET", "BANK_TRANSFER", "CARD")
	if n := queryInt(t, db, "SELECT count(*) FROM invoices WHERE status <> 'PAID' AND amount_paid > 0"); n == 0 {
		t.Error("no partly paid invoice")
	}
	// Demo statuses follow the clock: OVERDUE exactly when unpaid past the due date.
	if n := queryInt(t, db, `SELECT count(*) FROM invoices WHERE status <> 'PAID' AND
		(status = 'OVERDUE') <> (due_date < $1)`, now); n != 0 {
		t.Errorf("%d unpaid invoices whose status disagrees with the due date", n)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM payments WHERE paid_at > $1 OR created_at > $1", now); n != 0 {
		t.Errorf("%d payments in the future", n)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM invoices WHERE number LIKE 'INV-2026-______'"); n != int64(res.Invoices) {
		t.Errorf("%d invoices numbered INV-2026-NNNNNN, want %d", n, res.Invoices)
	}

	// Every row belongs to the demo tenant.
	for _, table := range tenantTables {
		if n := queryInt(t, db, "SELECT count(*) FROM "+table); n == 0 {
			t.Errorf("%s is empty", table)
		}
		if n := queryInt(t, db, "SELECT count(*) FROM "+table+" WHERE tenant_id <> $1", tn.ID); n != 0 {
			t.Errorf("%s: %d rows of another tenant", table, n)
		}
	}
	checkBilling(t, db, tn.ID)

	// Numbering continues through ent where the seed stopped.
	nu := customer[0]
	inv, err := client.Invoice.Create().SetNetworkUserID(nu.ID).SetNumber("INV-2026-999999").
		SetAmount(money.FromMajor(1)).SetTax(0).SetTotal(money.FromMajor(1)).
		SetPeriodStart(now).SetPeriodEnd(now).SetIssuedAt(now).SetDueDate(now).Save(tctx)
	if err != nil {
		t.Fatalf("ent insert after the demo seed: %v", err)
	}
	if inv.TenantID != tn.ID {
		t.Errorf("new invoice in tenant %d", inv.TenantID)
	}
}

func expectDistinct(t *testing.T, db *sql.DB, q string, want ...string) {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got[s] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("%s: no %s (got %v)", q, w, got)
		}
	}
}

// checkBilling checks the billing invariants of one tenant's data.
func checkBilling(t *testing.T, db *sql.DB, tenantID int) {
	t.Helper()
	checks := []struct{ what, q string }{
		{"invoices whose amount_paid is not the sum of their completed payments, or paid_at not the last of them", `
			SELECT count(*) FROM invoices i LEFT JOIN (
			  SELECT invoice_id, sum(amount) AS paid, max(paid_at) AS last FROM payments
			  WHERE tenant_id = $1 AND status = 'COMPLETED' GROUP BY invoice_id) p ON p.invoice_id = i.id
			WHERE i.tenant_id = $1 AND
			  (i.amount_paid <> coalesce(p.paid, 0) OR (i.status = 'PAID' AND i.paid_at IS DISTINCT FROM p.last))`},
		{"invoices whose total is not amount plus tax", `
			SELECT count(*) FROM invoices WHERE tenant_id = $1 AND total <> amount + tax`},
		{"invoices where PAID, paid_at and amount_paid = total disagree", `
			SELECT count(*) FROM invoices WHERE tenant_id = $1 AND
			  ((status = 'PAID') <> (paid_at IS NOT NULL) OR (status = 'PAID') <> (amount_paid = total))`},
		{"invoices with an inconsistent period", `
			SELECT count(*) FROM invoices WHERE tenant_id = $1 AND NOT
			  (period_start = issued_at AND period_start < period_end AND period_end < due_date)`},
		{"payments where COMPLETED and paid_at disagree", `
			SELECT count(*) FROM payments WHERE tenant_id = $1 AND (status = 'COMPLETED') <> (paid_at IS NOT NULL)`},
		{"payments with a non-positive amount", `
			SELECT count(*) FROM payments WHERE tenant_id = $1 AND amount <= 0`},
		{"payments made before their invoice was issued", `
			SELECT count(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id
			WHERE p.tenant_id = $1 AND p.created_at < i.issued_at`},
		{"payments for another subscriber's or tenant's invoice", `
			SELECT count(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id
			WHERE p.tenant_id = $1 AND (i.network_user_id <> p.network_user_id OR i.tenant_id <> p.tenant_id)`},
		{"invoices of another tenant's subscriber or package", `
			SELECT count(*) FROM invoices i JOIN network_users n ON n.id = i.network_user_id
			JOIN packages k ON k.id = i.package_id WHERE i.tenant_id = $1 AND (n.tenant_id <> $1 OR k.tenant_id <> $1)`},
		{"subscribers on another tenant's package or router", `
			SELECT count(*) FROM network_users n JOIN packages k ON k.id = n.package_id JOIN routers r ON r.id = n.router_id
			WHERE n.tenant_id = $1 AND (k.tenant_id <> $1 OR r.tenant_id <> $1)`},
	}
	for _, c := range checks {
		if n := queryInt(t, db, c.q, tenantID); n != 0 {
			t.Errorf("tenant %d: %d %s", tenantID, n, c.what)
		}
	}
	checkNumbers(t, db, tenantID, "invoices", "invoice")
	checkNumbers(t, db, tenantID, "payments", "payment")
}

// checkForeignKeys checks every foreign key of the database by hand: Bench
// loads with the foreign key triggers off when it may.
func checkForeignKeys(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, f.attname
		FROM pg_constraint c
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
		JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1]
		WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace`)
	if err != nil {
		t.Fatal(err)
	}
	var fks [][4]string
	for rows.Next() {
		var fk [4]string
		if err := rows.Scan(&fk[0], &fk[1], &fk[2], &fk[3]); err != nil {
			t.Fatal(err)
		}
		fks = append(fks, fk)
	}
	rows.Close()
	if len(fks) < 10 {
		t.Fatalf("found only %d foreign keys", len(fks))
	}
	for _, fk := range fks {
		q := fmt.Sprintf(`SELECT count(*) FROM %s x WHERE x.%s IS NOT NULL AND NOT EXISTS
			(SELECT 1 FROM %s r WHERE r.%s = x.%s)`, fk[0], fk[1], fk[2], fk[3], fk[1])
		if n := queryInt(t, db, q); n != 0 {
			t.Errorf("%s.%s: %d rows refer to a missing %s", fk[0], fk[1], n, fk[2])
		}
	}
}

// checkNumbers checks that a tenant's numbers are unique and gapless per year
// and that the sequences row of every year holds the last one.
func checkNumbers(t *testing.T, db *sql.DB, tenantID int, table, seqName string) {
	t.Helper()
	rows, err := db.Query(`SELECT split_part(number, '-', 2)::int, count(*), count(DISTINCT number),
		min(split_part(number, '-', 3)::int), max(split_part(number, '-', 3)::int)
		FROM `+table+` WHERE tenant_id = $1 GROUP BY 1`, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	years := 0
	for rows.Next() {
		var year, n, distinct, lo, hi int64
		if err := rows.Scan(&year, &n, &distinct, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		years++
		if n != distinct || lo != 1 || hi != n {
			t.Errorf("tenant %d %s %d: %d numbers, %d distinct, from %d to %d: want unique and gapless from 1",
				tenantID, table, year, n, distinct, lo, hi)
		}
		var value int64
		name := fmt.Sprintf("%s:%d", seqName, year)
		if err := db.QueryRow("SELECT value FROM sequences WHERE tenant_id = $1 AND name = $2", tenantID, name).Scan(&value); err != nil {
			t.Errorf("tenant %d: sequence %s: %v", tenantID, name, err)
		} else if value != hi {
			t.Errorf("tenant %d: sequence %s = %d, want %d", tenantID, name, value, hi)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if years == 0 {
		t.Errorf("tenant %d: no %s", tenantID, table)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM sequences WHERE tenant_id = $1 AND name LIKE $2", tenantID, seqName+":%"); n != int64(years) {
		t.Errorf("tenant %d: %d %s sequences for %d years", tenantID, n, seqName, years)
	}
}

func benchOptions() seed.BenchOptions {
	return seed.BenchOptions{
		Tenants: 2, Subscribers: 50, Months: 3, Password: "bench-pass",
		HashPassword: testHash, Roles: testRoles, Encrypt: testEncrypt, Seed: 42,
		Now: time.Date(2026, time.November, 26, 7, 0, 0, 0, time.UTC),
	}
}

func TestBenchSmall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, client, db := newDB(t)
	pool := newPool(t, dbURL)
	opts := benchOptions()

	var out strings.Builder
	res, err := seed.Bench(ctx, pool, opts, &out)
	if err != nil {
		t.Fatalf("Bench: %v", err)
	}
	t.Logf("%s; progress output:\n%s", res, out.String())
	if !strings.Contains(out.String(), "100%") {
		t.Errorf("progress output %q: want a finished bar", out.String())
	}
	want := map[string]int64{
		"tenants": 2, "roles": 2 * int64(len(testRoles)), "users": 2, "packages": 12, "routers": 4,
		"network_users": 100, "invoices": 300,
	}
	got := map[string]int64{
		"tenants": res.Tenants, "roles": res.Roles, "users": res.Users, "packages": res.Packages, "routers": res.Routers,
		"network_users": res.Subscribers, "invoices": res.Invoices, "payments": res.Payments, "sequences": res.Sequences,
	}
	for table, n := range want {
		if got[table] != n {
			t.Errorf("result: %d %s, want %d", got[table], table, n)
		}
	}
	for table, n := range got {
		if c := queryInt(t, db, "SELECT count(*) FROM "+table); c != n {
			t.Errorf("%s holds %d rows, result says %d", table, c, n)
		}
	}
	// Seeded routers carry documentation addresses: never dialled.
	if n := queryInt(t, db, "SELECT count(*) FROM routers WHERE status <> 'INACTIVE'"); n != 0 {
		t.Errorf("%d seeded routers not INACTIVE, want 0", n)
	}
	if res.Payments < 250 || res.Payments > 450 {
		t.Errorf("%d payments for 300 invoices", res.Payments)
	}

	// Ids lie inside each table's global-id range and the id sequence is past them.
	for _, table := range append([]string{"tenants"}, tenantTables...) {
		var start, lo, hi, last int64
		if err := db.QueryRow(`SELECT s.seqstart, min(t.id), max(t.id),
			(SELECT last_value FROM pg_sequences WHERE format('%I.%I', schemaname, sequencename) = pg_get_serial_sequence($1, 'id'))
			FROM `+table+` t, pg_sequence s WHERE s.seqrelid = pg_get_serial_sequence($1, 'id')::regclass
			GROUP BY s.seqstart`, table).Scan(&start, &lo, &hi, &last); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		rangeStart := start - start%(1<<32)
		if lo <= rangeStart || hi >= rangeStart+1<<32 {
			t.Errorf("%s: ids %d…%d outside the range %d…%d", table, lo, hi, rangeStart, rangeStart+1<<32)
		}
		if n := queryInt(t, db, "SELECT count(*) FROM "+table); hi-lo+1 != n {
			t.Errorf("%s: ids %d…%d are not contiguous for %d rows", table, lo, hi, n)
		}
		if last < hi {
			t.Errorf("%s: id sequence at %d, before the largest id %d", table, last, hi)
		}
	}

	// Tenants are apart: each sees its own rows only, through ent as through SQL.
	tenants := client.Tenant.Query().Order(ent.Asc(tenant.FieldSlug)).AllX(tenancy.Bypass(ctx))
	if len(tenants) != 2 || tenants[0].Slug != "t1" || tenants[1].Slug != "t2" || tenants[0].Domain != "t1.example" {
		t.Fatalf("tenants %+v", tenants)
	}
	for _, tn := range tenants {
		tctx := viewer.ForTenant(ctx, tn.ID)
		if n := client.NetworkUser.Query().CountX(tctx); n != 50 {
			t.Errorf("%s sees %d subscribers, want 50", tn.Slug, n)
		}
		if n := client.Invoice.Query().CountX(tctx); n != 150 {
			t.Errorf("%s sees %d invoices, want 150", tn.Slug, n)
		}
		admin := client.User.Query().WithRole().OnlyX(tctx)
		n, _ := strconv.Atoi(strings.TrimPrefix(tn.Slug, "t"))
		if admin.Email != seed.BenchAdminEmail(n) || admin.Edges.Role.Name != "admin" || admin.PasswordHash != "test$bench-pass" {
			t.Errorf("%s admin %+v", tn.Slug, admin)
		}
		for _, r := range client.Role.Query().AllX(tctx) {
			for _, want := range testRoles {
				if want.Name == r.Name && (len(r.Permissions) != len(want.Permissions) || !r.Builtin ||
					r.Description != want.Description) {
					t.Errorf("%s role %+v, want %+v", tn.Slug, r, want)
				}
			}
		}
		expectDistinctTenant(t, db, tn.ID)
		checkBilling(t, db, tn.ID)

		// The global ids resolve to their types, in their tenant only.
		inv := client.Invoice.Query().FirstX(tctx)
		if node, err := client.Noder(tctx, inv.ID); err != nil {
			t.Errorf("%s: node(%d): %v", tn.Slug, inv.ID, err)
		} else if _, ok := node.(*ent.Invoice); !ok {
			t.Errorf("%s: node(%d) is a %T", tn.Slug, inv.ID, node)
		}
		other := tenants[0]
		if other.ID == tn.ID {
			other = tenants[1]
		}
		if _, err := client.Noder(viewer.ForTenant(ctx, other.ID), inv.ID); !ent.IsNotFound(err) {
			t.Errorf("%s's invoice from tenant %s: %v, want not found", tn.Slug, other.Slug, err)
		}
	}

	checkForeignKeys(t, db)

	// ent inserts after the seed take fresh ids.
	tctx := viewer.ForTenant(ctx, tenants[0].ID)
	maxInvoice := queryInt(t, db, "SELECT max(id) FROM invoices")
	nu := client.NetworkUser.Create().SetUsername("after-seed").SaveX(tctx)
	now := time.Now()
	inv, err := client.Invoice.Create().SetNetworkUserID(nu.ID).SetNumber("INV-AFTER-1").
		SetAmount(100).SetTax(0).SetTotal(100).
		SetPeriodStart(now).SetPeriodEnd(now).SetIssuedAt(now).SetDueDate(now).Save(tctx)
	if err != nil {
		t.Fatalf("ent insert after seed: %v", err)
	}
	if inv.ID <= int(maxInvoice) {
		t.Errorf("new invoice id %d, not past the seeded %d", inv.ID, maxInvoice)
	}
	client.Payment.Create().SetNetworkUserID(nu.ID).SetInvoiceID(inv.ID).SetNumber("PAY-AFTER-1").
		SetAmount(100).SetMethod("CASH").SetIdempotencyKey("after").SaveX(tctx)
	client.ServicePackage.Create().SetName("After").SetBandwidthUpKbps(1).SetBandwidthDownKbps(1).SetPrice(1).SaveX(tctx)
	client.Sequence.Create().SetName("after").SaveX(tctx)
	client.Tenant.Create().SetName("After").SetSlug("after").SetDomain("after.example").SaveX(tenancy.Bypass(ctx))

	// A second run refuses, unless asked to reuse the data set.
	if _, err := seed.Bench(ctx, pool, opts, nil); err == nil || !strings.Contains(err.Error(), "t1 already exists") {
		t.Errorf("second Bench: %v, want a refusal naming t1", err)
	}
	opts.Reuse = true
	again, err := seed.Bench(ctx, pool, opts, nil)
	if err != nil {
		t.Fatalf("Bench with Reuse: %v", err)
	}
	// The counts include the rows inserted through ent above.
	if !again.Reused || again.Invoices != res.Invoices+1 || again.Payments != res.Payments+1 ||
		again.Subscribers != res.Subscribers+1 || again.Tenants != 2 {
		t.Errorf("reused %+v, seeded %+v", again, res)
	}
	opts.Tenants = 3
	if _, err := seed.Bench(ctx, pool, opts, nil); err == nil || !strings.Contains(err.Error(), "partial") {
		t.Errorf("reusing t1…t3 when t3 is missing: %v, want a refusal", err)
	}
}

func expectDistinctTenant(t *testing.T, db *sql.DB, tenantID int) {
	t.Helper()
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"SELECT DISTINCT status FROM invoices WHERE tenant_id = %d", []string{"PAID", "PENDING", "OVERDUE"}},
		{"SELECT DISTINCT service_type FROM network_users WHERE tenant_id = %d", []string{"PPPOE", "HOTSPOT", "STATIC"}},
		{"SELECT DISTINCT method FROM payments WHERE tenant_id = %d", []string{"CASH", "MOBILE_WALLET"}},
	} {
		expectDistinct(t, db, fmt.Sprintf(c.q, tenantID), c.want...)
	}
}

// TestBenchDeterministic checks that a seed yields the same data set.
func TestBenchDeterministic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	digest := func() string {
		dbURL, _, db := newDB(t)
		if _, err := seed.Bench(ctx, newPool(t, dbURL), benchOptions(), nil); err != nil {
			t.Fatalf("Bench: %v", err)
		}
		var d string
		if err := db.QueryRow(`SELECT md5(string_agg(concat_ws('|', i.id, i.number, i.status, i.total, i.amount_paid, i.paid_at,
			n.username, n.full_name, n.status), ',' ORDER BY i.id)) || md5((SELECT string_agg(concat_ws('|', id, number, amount,
			method, status, paid_at, invoice_id), ',' ORDER BY id) FROM payments))
			FROM invoices i JOIN network_users n ON n.id = i.network_user_id`).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if a, b := digest(), digest(); a != b {
		t.Errorf("two runs with the same seed differ: %s vs %s", a, b)
	}
}

func TestBenchRejectsBadOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, mutate := range map[string]func(*seed.BenchOptions){
		"no tenants":  func(o *seed.BenchOptions) { o.Tenants = 0 },
		"no password": func(o *seed.BenchOptions) { o.Password = "" },
		"no hasher":   func(o *seed.BenchOptions) { o.HashPassword = nil },
		"no roles":    func(o *seed.BenchOptions) { o.Roles = nil },
		"no admin":    func(o *seed.BenchOptions) { o.Roles = testRoles[1:] },
	} {
		opts := benchOptions()
		mutate(&opts)
		// The options are checked before the database is touched.
		if _, err := seed.Bench(ctx, nil, opts, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestBenchFull loads the full benchmark data set (10 tenants × 10,000
// subscribers × 12 months) and reports the time; it runs only with
// ISPGRAPH_SEED_FULL=1. ISPGRAPH_SEED_WORKERS overrides the tenants loaded at
// once. Besides the wall time it reports the CPU time of the seeder and of the
// Postgres processes that served it, which tells what the load costs on a
// machine shared with other work.
func TestBenchFull(t *testing.T) {
	if os.Getenv("ISPGRAPH_SEED_FULL") != "1" {
		t.Skip("set ISPGRAPH_SEED_FULL=1 to load the full benchmark data set")
	}
	ctx := context.Background()
	dbURL, _, db := newDB(t)
	opts := seed.BenchOptions{
		Tenants: 10, Subscribers: 10_000, Months: 12, Password: "bench-pass",
		HashPassword: testHash, Roles: testRoles, Seed: 1,
	}
	if w, err := strconv.Atoi(os.Getenv("ISPGRAPH_SEED_WORKERS")); err == nil {
		opts.Workers = w
	}
	pool := newPool(t, dbURL)
	cpu := startCPUWatch(t, db)
	t.Logf("load average before: %s", loadAverage())
	res, err := seed.Bench(ctx, pool, opts, os.Stderr)
	if err != nil {
		t.Fatalf("Bench: %v", err)
	}
	self, server := cpu()
	t.Logf("%s (%.0f rows/s); CPU: seeder %s, Postgres %s", res, float64(res.Rows())/res.Elapsed.Seconds(),
		self.Round(time.Millisecond), server.Round(time.Millisecond))
	if res.Invoices != 1_200_000 {
		t.Errorf("%d invoices, want 1,200,000", res.Invoices)
	}
	// Not a failure: on a shared machine the wall time says more about the
	// neighbours than about the seeder; the CPU times above are the measure.
	if res.Elapsed > 2*time.Minute {
		t.Logf("over the two-minute target (load average now: %s)", loadAverage())
	}
	var tn int
	if err := db.QueryRow("SELECT id FROM tenants WHERE slug = 't7'").Scan(&tn); err != nil {
		t.Fatal(err)
	}
	checkBilling(t, db, tn)
	checkForeignKeys(t, db)
}

// loadAverage returns the machine's load averages, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// startCPUWatch starts recording the Postgres processes serving this test's
// database; the function it returns reports the CPU time this process and
// those Postgres processes (with the server's WAL writer, checkpointer and
// background writer) used since. Linux only: elsewhere it reports zeros.
func startCPUWatch(t *testing.T, db *sql.DB) func() (self, server time.Duration) {
	t.Helper()
	pids := func(q string) []int {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []int
		for rows.Next() {
			var pid int
			if err := rows.Scan(&pid); err != nil {
				t.Fatal(err)
			}
			out = append(out, pid)
		}
		return out
	}
	procCPU := func(pid string) time.Duration {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return 0
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
	}
	shared := pids(`SELECT pid FROM pg_stat_activity WHERE backend_type IN ('walwriter', 'checkpointer', 'background writer')`)
	var sharedBefore time.Duration
	for _, pid := range shared {
		sharedBefore += procCPU(strconv.Itoa(pid))
	}
	selfBefore := procCPU("self")

	// Connections open before the load (schema creation, this watch) are not its.
	before := map[int]bool{}
	for _, pid := range pids("SELECT pid FROM pg_stat_activity WHERE datname = current_database()") {
		before[pid] = true
	}
	seen := map[int]bool{}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, pid := range pids("SELECT pid FROM pg_stat_activity WHERE datname = current_database()") {
				seen[pid] = !before[pid]
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (self, server time.Duration) {
		close(done)
		<-stopped
		for pid, ours := range seen {
			if ours {
				server += procCPU(strconv.Itoa(pid))
			}
		}
		for _, pid := range shared {
			server += procCPU(strconv.Itoa(pid))
		}
		return procCPU("self") - selfBefore, server - sharedBefore
	}
}

// TestBenchWithoutSuperuser loads as an ordinary role, which may not turn the
// foreign key checks off.
func TestBenchWithoutSuperuser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, _, db := newDB(t)
	role := "ispgraph_seed_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN NOSUPERUSER",
		"GRANT ALL ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO " + role,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := db.Exec(q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	pool := newPool(t, u.String())
	var super bool
	if err := pool.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || super {
		t.Fatalf("connected as a superuser (%v)", err)
	}
	res, err := seed.Bench(ctx, pool, benchOptions(), nil)
	if err != nil {
		t.Fatalf("Bench as an ordinary role: %v", err)
	}
	if res.Invoices != 300 {
		t.Errorf("%d invoices, want 300", res.Invoices)
	}
	for _, id := range []string{"t1", "t2"} {
		var tn int
		if err := db.QueryRow("SELECT id FROM tenants WHERE slug = $1", id).Scan(&tn); err != nil {
			t.Fatal(err)
		}
		checkBilling(t, db, tn)
	}
}
