package seed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/role"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/ent/sequence"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/ent/user"
	"github.com/ispgraph/ispgraph/internal/progress"
)

// BenchOptions configures Bench.
type BenchOptions struct {
	// Tenants, Subscribers and Months size the data set: tenants t1…tN, each
	// with M subscribers and K monthly invoices per subscriber ending last month.
	Tenants, Subscribers, Months int
	// Password is every tenant admin's password (admin@tN.example) and every
	// subscriber's customer-portal password; required.
	Password string
	// HashPassword hashes Password, once (auth.HashPassword); required.
	HashPassword func(string) (string, error)
	// Roles are each tenant's default roles (authz.DefaultRoles); required, must include "admin".
	Roles []RoleSpec
	// Encrypt encrypts subscribers' service passwords; when nil they are left empty.
	Encrypt func(string) (string, error)
	// Seed makes the data set deterministic: the same seed yields the same rows.
	Seed int64
	// Reuse accepts an existing data set: Bench then only counts its rows.
	Reuse bool
	// Workers is the number of tenants loaded at once; zero means 2.
	Workers int
	// Now is the reference time for periods and statuses; zero means time.Now().
	Now time.Time
}

// BenchResult counts the rows of the benchmark data set.
type BenchResult struct {
	// Reused is true when the data set existed and nothing was written.
	Reused bool
	// Row counts over tenants t1…tN.
	Tenants, Roles, Users, Packages, Routers, Subscribers, Invoices, Payments, Sequences int64
	// Elapsed is the time Bench took.
	Elapsed time.Duration
}

// Rows returns the total number of rows counted.
func (r BenchResult) Rows() int64 {
	return r.Tenants + r.Roles + r.Users + r.Packages + r.Routers + r.Subscribers + r.Invoices + r.Payments + r.Sequences
}

// String summarises the result for a command's output.
func (r BenchResult) String() string {
	verb := "seeded"
	if r.Reused {
		verb = "reused"
	}
	return fmt.Sprintf("%s %d tenants, %d subscribers, %d invoices, %d payments (%d rows) in %s",
		verb, r.Tenants, r.Subscribers, r.Invoices, r.Payments, r.Rows(), r.Elapsed.Round(time.Millisecond))
}

// BenchSlug returns the slug of benchmark tenant n (1-based): "t1", "t2", ….
func BenchSlug(n int) string { return "t" + strconv.Itoa(n) }

// BenchAdminEmail returns the admin login of benchmark tenant n.
func BenchAdminEmail(n int) string { return "admin@" + BenchSlug(n) + ".example" }

// BenchUsername returns the username of subscriber i (0-based) in every benchmark tenant.
func BenchUsername(i int) string { return fmt.Sprintf("user%06d", i+1) }

// The tables Bench writes, in load (foreign key) order.
var benchTables = []string{
	tenant.Table, role.Table, user.Table, servicepackage.Table, router.Table,
	networkuser.Table, invoice.Table, payment.Table, sequence.Table,
}

const benchRouters = 2

// Bench fills a Postgres database with the benchmark data set: tenants
// t1…tN, each with its default roles, admin, packages, routers, subscribers,
// monthly invoices and payments. Rows go in with COPY, ids are taken from
// each table's global-id range (reserved up front, so ent inserts made later
// or meanwhile never collide), each tenant loads in one transaction, several
// tenants at once. Afterwards the id sequences are past the data, the
// sequences table continues the numbering and the tables are analyzed.
// Progress is drawn on out (nil for none).
//
// Bench refuses a database that holds any of t1…tN unless opts.Reuse is set;
// then, when all exist, it returns their counts without writing.
func Bench(ctx context.Context, pool *pgxpool.Pool, opts BenchOptions, out io.Writer) (BenchResult, error) {
	started := time.Now()
	if err := opts.check(); err != nil {
		return BenchResult{}, err
	}
	slugs := make([]string, opts.Tenants)
	for i := range slugs {
		slugs[i] = BenchSlug(i + 1)
	}
	existing, err := existingSlugs(ctx, pool, slugs)
	if err != nil {
		return BenchResult{}, err
	}
	if len(existing) > 0 {
		switch {
		case !opts.Reuse:
			return BenchResult{}, fmt.Errorf("seed: tenant %s already exists: the database holds a benchmark data set "+
				"(reuse it, or seed an empty database)", existing[0])
		case len(existing) < len(slugs):
			return BenchResult{}, fmt.Errorf("seed: cannot reuse a partial benchmark data set: %d of tenants t1…t%d exist",
				len(existing), opts.Tenants)
		}
		res, err := countBench(ctx, pool, slugs)
		res.Reused = true
		res.Elapsed = time.Since(started)
		return res, err
	}

	b, err := newBench(opts)
	if err != nil {
		return BenchResult{}, err
	}
	b.plan()
	counts := b.counts()
	first, err := reserveIDs(ctx, pool, counts)
	if err != nil {
		return BenchResult{}, err
	}
	b.assignIDs(first)

	var total int64
	for _, n := range counts {
		total += n
	}
	if out == nil {
		out = io.Discard
	}
	bar := progress.New(out, "seed", total)
	defer bar.Finish()
	if err := b.load(ctx, pool, bar); err != nil {
		return BenchResult{}, err
	}
	if err := finishLoad(ctx, pool); err != nil {
		return BenchResult{}, err
	}

	res := BenchResult{
		Tenants: counts[tenant.Table], Roles: counts[role.Table], Users: counts[user.Table],
		Packages: counts[servicepackage.Table], Routers: counts[router.Table],
		Subscribers: counts[networkuser.Table], Invoices: counts[invoice.Table],
		Payments: counts[payment.Table], Sequences: counts[sequence.Table],
		Elapsed: time.Since(started),
	}
	return res, nil
}

func (o *BenchOptions) check() error {
	switch {
	case o.Tenants < 1:
		return errors.New("seed: at least one tenant is needed")
	case o.Subscribers < 0 || o.Months < 0:
		return errors.New("seed: subscribers and months cannot be negative")
	case o.Password == "":
		return errors.New("seed: a password for the tenant admins is required")
	case o.HashPassword == nil:
		return errors.New("seed: BenchOptions.HashPassword is required")
	}
	return checkRoles(o.Roles)
}

func existingSlugs(ctx context.Context, pool *pgxpool.Pool, slugs []string) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT slug FROM tenants WHERE slug = ANY($1)
		ORDER BY length(slug), slug`, slugs)
	if err != nil {
		return nil, fmt.Errorf("seed: look for existing tenants: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("seed: look for existing tenants: %w", err)
	}
	return found, nil
}

// countBench counts the rows of tenants slugs in every table Bench writes.
func countBench(ctx context.Context, pool *pgxpool.Pool, slugs []string) (BenchResult, error) {
	var r BenchResult
	dst := []*int64{&r.Tenants, &r.Roles, &r.Users, &r.Packages, &r.Routers, &r.Subscribers, &r.Invoices, &r.Payments, &r.Sequences}
	q := "WITH t AS (SELECT id FROM tenants WHERE slug = ANY($1)) SELECT (SELECT count(*) FROM t)"
	for _, table := range benchTables[1:] {
		q += fmt.Sprintf(", (SELECT count(*) FROM %s WHERE tenant_id IN (SELECT id FROM t))", pgx.Identifier{table}.Sanitize())
	}
	args := make([]any, len(dst))
	for i, d := range dst {
		args[i] = d
	}
	if err := pool.QueryRow(ctx, q, slugs).Scan(args...); err != nil {
		return r, fmt.Errorf("seed: count the benchmark data set: %w", err)
	}
	return r, nil
}

// bench is one run of Bench.
type bench struct {
	opts    BenchOptions
	hash    string
	loc     *time.Location
	prof    profile
	now     time.Time
	periods []period
	env     subscriberEnv
	tenants []*benchTenant
	workers int
}

// benchTenant is the plan of one tenant: what the counting pass learned and
// the first id of its block in every table.
type benchTenant struct {
	n                  int // 1-based
	subPkg             []uint8
	payments           int
	invYears, payYears yearCounts
	first              map[string]int64
	roleIDs            map[string]int64
}

func newBench(opts BenchOptions) (*bench, error) {
	hash, err := opts.HashPassword(opts.Password)
	if err != nil {
		return nil, fmt.Errorf("seed: hash the admin password: %w", err)
	}
	prof := profile{timezone: "Asia/Dhaka", currency: "BDT", taxBP: 500, graceDays: 7, invoicePrefix: "INV"}
	loc, err := time.LoadLocation(prof.timezone)
	if err != nil {
		return nil, fmt.Errorf("seed: time zone %s: %w", prof.timezone, err)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	b := &bench{opts: opts, hash: hash, loc: loc, prof: prof, now: now, workers: opts.Workers}
	if b.workers <= 0 {
		b.workers = 2
	}
	b.periods = months(now, loc, prof.graceDays, opts.Months, false)
	since := now
	if len(b.periods) > 0 {
		since = b.periods[0].start
	}
	b.env = subscriberEnv{pkgs: benchPackages, routers: benchRouters, since: since, now: now,
		periodEnd: currentPeriodEnd(now, loc)}
	for n := 1; n <= opts.Tenants; n++ {
		b.tenants = append(b.tenants, &benchTenant{n: n, invYears: yearCounts{}, payYears: yearCounts{}})
	}
	return b, nil
}

// Stream kinds of the per-row random generators.
const (
	streamSubscriber = 1
	streamInvoice    = 2
)

func (b *bench) subscriber(t *benchTenant, i int) subscriberFact {
	r := newRNG(uint64(b.opts.Seed), uint64(t.n), streamSubscriber, uint64(i))
	uStatus, uType := r.float(), r.float()
	return makeSubscriber(&r, i, &b.env, uStatus, uType)
}

// mix returns how the invoices of month m (0 = oldest) end up: older months
// are mostly paid; last month is a mix of paid, pending and overdue.
func (b *bench) mix(m int) statusMix {
	if m == len(b.periods)-1 {
		return statusMix{paid: 0.50, partial: 0.10, pendingPastDue: 0.6}
	}
	return statusMix{paid: 0.95, partial: 0.02}
}

func (b *bench) invoice(t *benchTenant, i, m int) (total int64, f invoiceFact) {
	price := benchPackages[t.subPkg[i]].price
	total = price + tax(price, b.prof.taxBP)
	r := newRNG(uint64(b.opts.Seed), uint64(t.n), streamInvoice, uint64(i), uint64(m))
	return total, billInvoice(&r, total, b.periods[m], b.now, b.mix(m))
}

// plan runs the counting pass over every tenant: the package of every
// subscriber and the number of payments and of numbers per year, which the id
// reservation, the progress total and the sequences rows need before loading.
func (b *bench) plan() {
	b.parallel(func(t *benchTenant) {
		t.subPkg = make([]uint8, b.opts.Subscribers)
		for i := range t.subPkg {
			t.subPkg[i] = uint8(b.subscriber(t, i).pkg)
		}
		for m, per := range b.periods {
			t.invYears[per.year] += b.opts.Subscribers
			for i := range b.opts.Subscribers {
				_, f := b.invoice(t, i, m)
				for _, p := range f.pays[:f.n] {
					t.payYears[per.yearOf(p.at)]++
				}
				t.payments += f.n
			}
		}
	})
}

// parallel runs fn for every tenant on b.workers goroutines.
func (b *bench) parallel(fn func(t *benchTenant)) {
	var wg sync.WaitGroup
	next := make(chan *benchTenant)
	for range min(b.workers, len(b.tenants)) {
		wg.Go(func() {
			for t := range next {
				fn(t)
			}
		})
	}
	for _, t := range b.tenants {
		next <- t
	}
	close(next)
	wg.Wait()
}

// rows returns the number of rows tenant t has in every table.
func (b *bench) rows(t *benchTenant) map[string]int64 {
	return map[string]int64{
		tenant.Table:         1,
		role.Table:           int64(len(b.opts.Roles)),
		user.Table:           1,
		servicepackage.Table: int64(len(benchPackages)),
		router.Table:         benchRouters,
		networkuser.Table:    int64(b.opts.Subscribers),
		invoice.Table:        int64(b.opts.Subscribers * len(b.periods)),
		payment.Table:        int64(t.payments),
		sequence.Table:       int64(len(t.invYears) + len(t.payYears)),
	}
}

func (b *bench) counts() map[string]int64 {
	total := map[string]int64{}
	for _, t := range b.tenants {
		for table, n := range b.rows(t) {
			total[table] += n
		}
	}
	return total
}

// assignIDs gives every tenant its contiguous block of each table's reserved ids.
func (b *bench) assignIDs(first map[string]int64) {
	next := map[string]int64{}
	for table, id := range first {
		next[table] = id
	}
	for _, t := range b.tenants {
		t.first = map[string]int64{}
		for table, n := range b.rows(t) {
			t.first[table] = next[table]
			next[table] += n
		}
		t.roleIDs = map[string]int64{}
		for k, r := range b.opts.Roles {
			t.roleIDs[r.Name] = t.first[role.Table] + int64(k)
		}
	}
}

// load writes every tenant, b.workers at a time, and stops at the first failure.
func (b *bench) load(ctx context.Context, pool *pgxpool.Pool, bar *progress.Bar) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
	)
	b.parallel(func(t *benchTenant) {
		if ctx.Err() != nil {
			return
		}
		if err := b.loadTenant(ctx, pool, t, bar); err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("seed: load tenant %s: %w", BenchSlug(t.n), err)
			}
			mu.Unlock()
			cancel()
		}
	})
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// loadTenant writes one tenant in one transaction, so a failure leaves no trace of it.
func (b *bench) loadTenant(ctx context.Context, pool *pgxpool.Pool, t *benchTenant, bar *progress.Bar) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := skipForeignKeyChecks(ctx, tx); err != nil {
		return err
	}
	for _, c := range b.copies(t) {
		if err := copyRows(ctx, tx, c, bar); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// skipForeignKeyChecks turns off the foreign key triggers for the rest of tx,
// as pg_restore --disable-triggers does, when the role may (superuser, or from
// Postgres 15 a SET grant on session_replication_role); otherwise the load runs
// with the checks. Skipping them is safe here: every row a tenant's rows refer
// to is written in the same transaction, invisible to anyone else until
// commit, and the checks cost about as much as the inserts themselves.
func skipForeignKeyChecks(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SAVEPOINT seed_fk_checks"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		_, err = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT seed_fk_checks")
		return err
	}
	_, err := tx.Exec(ctx, "RELEASE SAVEPOINT seed_fk_checks")
	return err
}

// copySpec is one COPY: a table, its columns and a generator of n rows.
type copySpec struct {
	table string
	cols  []string
	n     int
	row   func(i int, vals []any) error
}

// copyRows streams c's rows into its table with COPY, counting them on bar.
func copyRows(ctx context.Context, tx pgx.Tx, c copySpec, bar *progress.Bar) error {
	const step = 2048
	vals := make([]any, len(c.cols))
	i, unreported := 0, int64(0)
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == c.n {
			return nil, nil
		}
		clear(vals)
		if err := c.row(i, vals); err != nil {
			return nil, err
		}
		i++
		if unreported++; unreported == step {
			bar.Add(step)
			unreported = 0
		}
		return vals, nil
	})
	n, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, src)
	bar.Add(unreported)
	if err != nil {
		return fmt.Errorf("copy %s: %w", c.table, err)
	}
	if n != int64(c.n) {
		return fmt.Errorf("copy %s: wrote %d rows, want %d", c.table, n, c.n)
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// copies returns the COPY statements of tenant t, in foreign key order.
func (b *bench) copies(t *benchTenant) []copySpec {
	tid := t.first[tenant.Table]
	slug := BenchSlug(t.n)
	now := b.now
	p := b.prof
	subs, months := b.opts.Subscribers, len(b.periods)

	specs := []copySpec{
		{
			table: tenant.Table,
			cols: []string{tenant.FieldID, tenant.FieldCreatedAt, tenant.FieldUpdatedAt, tenant.FieldName,
				tenant.FieldSlug, tenant.FieldDomain, tenant.FieldSubdomain, tenant.FieldStatus,
				tenant.FieldTimezone, tenant.FieldCurrency, tenant.FieldTaxRateBp, tenant.FieldInvoicePrefix,
				tenant.FieldGraceDays},
			n: 1,
			row: func(_ int, v []any) error {
				copy(v, []any{tid, now, now, fmt.Sprintf("Bench ISP %d", t.n), slug, slug + ".example", slug,
					"ACTIVE", p.timezone, p.currency, int64(p.taxBP), p.invoicePrefix, int64(p.graceDays)})
				return nil
			},
		},
		{
			table: role.Table,
			cols: []string{role.FieldID, role.FieldCreatedAt, role.FieldUpdatedAt, role.FieldName,
				role.FieldDescription, role.FieldPermissions, role.FieldBuiltin, role.FieldTenantID},
			n: len(b.opts.Roles),
			row: func(i int, v []any) error {
				r := b.opts.Roles[i]
				perms, err := json.Marshal(nonNil(r.Permissions))
				if err != nil {
					return err
				}
				copy(v, []any{t.first[role.Table] + int64(i), now, now, r.Name, r.Description, perms, true, tid})
				return nil
			},
		},
		{
			table: user.Table,
			cols: []string{user.FieldID, user.FieldCreatedAt, user.FieldUpdatedAt, user.FieldName,
				user.FieldEmail, user.FieldPasswordHash, user.FieldActive, user.FieldTenantID, user.FieldRoleID},
			n: 1,
			row: func(_ int, v []any) error {
				copy(v, []any{t.first[user.Table], now, now, "Admin " + slug, BenchAdminEmail(t.n), b.hash, true,
					tid, t.roleIDs[AdminRole]})
				return nil
			},
		},
		{
			table: servicepackage.Table,
			cols: []string{servicepackage.FieldID, servicepackage.FieldCreatedAt, servicepackage.FieldUpdatedAt,
				servicepackage.FieldName, servicepackage.FieldDescription, servicepackage.FieldBandwidthUpKbps,
				servicepackage.FieldBandwidthDownKbps, servicepackage.FieldPrice, servicepackage.FieldBillingCycle,
				servicepackage.FieldValidityDays, servicepackage.FieldRouterProfile, servicepackage.FieldStatus,
				servicepackage.FieldTenantID},
			n: len(benchPackages),
			row: func(i int, v []any) error {
				s := benchPackages[i]
				copy(v, []any{t.first[servicepackage.Table] + int64(i), now, now, s.name, s.description,
					int64(s.upKbps), int64(s.downKbps), s.price, s.cycle, int64(s.validityDays), s.profile, "ACTIVE", tid})
				return nil
			},
		},
		{
			table: router.Table,
			cols: []string{router.FieldID, router.FieldCreatedAt, router.FieldUpdatedAt, router.FieldName,
				router.FieldHost, router.FieldAPIPort, router.FieldUseTLS, router.FieldUsername, router.FieldPassword,
				router.FieldStatus, router.FieldAPIStatus, router.FieldTenantID},
			n: benchRouters,
			// Documentation addresses (RFC 5737), created INACTIVE: a
			// seeded server never dials them.
			row: func(i int, v []any) error {
				copy(v, []any{t.first[router.Table] + int64(i), now, now, fmt.Sprintf("Core Router %d", i+1),
					fmt.Sprintf("198.51.100.%d", i+1), int64(8728), false, "api", "", "INACTIVE", "UNKNOWN", tid})
				return nil
			},
		},
		{
			table: networkuser.Table,
			cols: []string{networkuser.FieldID, networkuser.FieldCreatedAt, networkuser.FieldUpdatedAt,
				networkuser.FieldUsername, networkuser.FieldServicePassword, networkuser.FieldPortalPasswordHash,
				networkuser.FieldFullName, networkuser.FieldEmail, networkuser.FieldPhone, networkuser.FieldAddress,
				networkuser.FieldServiceType, networkuser.FieldStatus, networkuser.FieldBillingType,
				networkuser.FieldStaticIP, networkuser.FieldMACAddress, networkuser.FieldExpiresAt,
				networkuser.FieldSuspensionReason, networkuser.FieldSuspendedAt, networkuser.FieldCredit,
				networkuser.FieldTenantID, networkuser.FieldPackageID, networkuser.FieldRouterID},
			n: subs,
			row: func(i int, v []any) error {
				s := b.subscriber(t, i)
				secret := ""
				if b.opts.Encrypt != nil {
					var err error
					if secret, err = b.opts.Encrypt(s.servicePassword); err != nil {
						return fmt.Errorf("encrypt a service password: %w", err)
					}
				}
				copy(v, []any{t.first[networkuser.Table] + int64(i), s.createdAt, s.createdAt, BenchUsername(i),
					secret, b.hash, s.fullName, s.email, s.phone, s.address, s.serviceType, s.status, s.billingType,
					nullString(s.staticIP), nullString(s.mac), nullTime(s.expiresAt), nullString(s.suspensionReason),
					nullTime(s.suspendedAt), int64(0), tid,
					t.first[servicepackage.Table] + int64(s.pkg), t.first[router.Table] + int64(s.router)})
				return nil
			},
		},
	}

	// Invoices and payments go month by month, subscriber by subscriber; the
	// k-th invoice is (month k/subs, subscriber k%subs).
	invNumbers := yearCounts{}
	specs = append(specs, copySpec{
		table: invoice.Table,
		cols: []string{invoice.FieldID, invoice.FieldCreatedAt, invoice.FieldUpdatedAt, invoice.FieldNumber,
			invoice.FieldAmount, invoice.FieldTax, invoice.FieldTotal, invoice.FieldAmountPaid, invoice.FieldStatus,
			invoice.FieldPeriodStart, invoice.FieldPeriodEnd, invoice.FieldIssuedAt, invoice.FieldDueDate,
			invoice.FieldPaidAt, invoice.FieldNotes, invoice.FieldTenantID, invoice.FieldNetworkUserID,
			invoice.FieldPackageID},
		n: subs * months,
		row: func(k int, v []any) error {
			m, i := k/subs, k%subs
			per := b.periods[m]
			total, f := b.invoice(t, i, m)
			price := benchPackages[t.subPkg[i]].price
			invNumbers[per.year]++
			copy(v, []any{t.first[invoice.Table] + int64(k), per.start, f.updatedAt,
				invoiceNumber(p.invoicePrefix, per.year, invNumbers[per.year]),
				price, total - price, total, f.amountPaid, f.status,
				per.start, per.end, per.start, per.due, nullTime(f.paidAt), "", tid,
				t.first[networkuser.Table] + int64(i), t.first[servicepackage.Table] + int64(t.subPkg[i])})
			return nil
		},
	})

	payNumbers := yearCounts{}
	var (
		k    = 0 // next invoice
		cur  invoiceFact
		curK = -1
		j    = 0 // next payment of cur
	)
	specs = append(specs, copySpec{
		table: payment.Table,
		cols: []string{payment.FieldID, payment.FieldCreatedAt, payment.FieldUpdatedAt, payment.FieldNumber,
			payment.FieldAmount, payment.FieldMethod, payment.FieldStatus, payment.FieldTransactionID,
			payment.FieldIdempotencyKey, payment.FieldFailureReason, payment.FieldPaidAt, payment.FieldTenantID,
			payment.FieldNetworkUserID, payment.FieldInvoiceID, payment.FieldCollectedByID},
		n: t.payments,
		row: func(n int, v []any) error {
			for curK != k || j == cur.n {
				if curK == k {
					k++
				}
				if k >= subs*months {
					return errors.New("more payments planned than generated")
				}
				_, cur = b.invoice(t, k%subs, k/subs)
				curK, j = k, 0
			}
			pf := cur.pays[j]
			j++
			m, i := k/subs, k%subs
			year := b.periods[m].yearOf(pf.at)
			payNumbers[year]++
			number := paymentNumber(year, payNumbers[year])
			var txID, collector, paidAt, failure any
			if pf.method != "CASH" {
				txID = transactionID(number)
			} else if pf.status == statusCompleted {
				collector = t.first[user.Table]
			}
			if pf.status == statusCompleted {
				paidAt = pf.at
			} else {
				failure = pf.failure
			}
			copy(v, []any{t.first[payment.Table] + int64(n), pf.at, pf.at, number, pf.amount, pf.method, pf.status,
				txID, "seed:" + number, failure, paidAt, tid,
				t.first[networkuser.Table] + int64(i), t.first[invoice.Table] + int64(k), collector})
			return nil
		},
	})

	seqs := sequenceRows(t.invYears, t.payYears)
	specs = append(specs, copySpec{
		table: sequence.Table,
		cols:  []string{sequence.FieldID, sequence.FieldName, sequence.FieldValue, sequence.FieldTenantID},
		n:     len(seqs),
		row: func(i int, v []any) error {
			copy(v, []any{t.first[sequence.Table] + int64(i), seqs[i][0], seqs[i][1], tid})
			return nil
		},
	})
	return specs
}

// idRange is the global-id range of a table: ent gives every table 1<<32 ids.
const idRange = int64(1) << 32

// reserveIDs reserves count[table] ids in each table's global-id range and
// returns the first of each block. Under a lock that keeps inserts out for an
// instant, it moves the table's id sequence past the block, so rows ent
// inserts meanwhile or later take ids after it.
func reserveIDs(ctx context.Context, pool *pgxpool.Pool, count map[string]int64) (map[string]int64, error) {
	first := map[string]int64{}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, table := range benchTables {
			ident := pgx.Identifier{table}.Sanitize()
			if _, err := tx.Exec(ctx, "LOCK TABLE "+ident+" IN SHARE ROW EXCLUSIVE MODE"); err != nil {
				return fmt.Errorf("seed: lock %s: %w", table, err)
			}
			var seq *string
			var start, last, maxID int64
			var called bool
			err := tx.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, 'id'),
				(SELECT coalesce(max(id), 0) FROM `+ident+`)`, table).Scan(&seq, &maxID)
			if err != nil {
				return fmt.Errorf("seed: id sequence of %s: %w", table, err)
			}
			if seq == nil {
				return fmt.Errorf("seed: %s.id is not an identity column: apply the migrations first", table)
			}
			err = tx.QueryRow(ctx, `SELECT s.seqstart, q.last_value, q.is_called
				FROM pg_sequence s, `+*seq+` q WHERE s.seqrelid = $1::regclass`, *seq).Scan(&start, &last, &called)
			if err != nil {
				return fmt.Errorf("seed: id sequence of %s: %w", table, err)
			}
			base := max(start, maxID)
			if called {
				base = max(base, last)
			}
			n := count[table]
			if end := start - start%idRange + idRange; base+n >= end {
				return fmt.Errorf("seed: %s: %d more ids do not fit in the table's id range (next id %d, range ends at %d)",
					table, n, base+1, end)
			}
			if n > 0 {
				if _, err := tx.Exec(ctx, "SELECT setval($1, $2, true)", *seq, base+n); err != nil {
					return fmt.Errorf("seed: reserve ids in %s: %w", table, err)
				}
			}
			first[table] = base + 1
		}
		return nil
	})
	return first, err
}

// finishLoad leaves the database ready for use: every id sequence past the
// largest id (reserveIDs moved them already; this also covers anything written
// since) and fresh planner statistics.
func finishLoad(ctx context.Context, pool *pgxpool.Pool) error {
	for _, table := range benchTables {
		ident := pgx.Identifier{table}.Sanitize()
		var seq *string
		var maxID *int64
		err := pool.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, 'id'), (SELECT max(id) FROM `+ident+`)`, table).
			Scan(&seq, &maxID)
		if err != nil {
			return fmt.Errorf("seed: id sequence of %s: %w", table, err)
		}
		if seq == nil || maxID == nil {
			continue
		}
		if _, err := pool.Exec(ctx, `SELECT setval($1::regclass, $2, true) FROM `+*seq+`
			WHERE NOT is_called OR last_value < $2`, *seq, *maxID); err != nil {
			return fmt.Errorf("seed: move the id sequence of %s: %w", table, err)
		}
	}
	q := "ANALYZE"
	for i, table := range benchTables {
		if i > 0 {
			q += ","
		}
		q += " " + pgx.Identifier{table}.Sanitize()
	}
	if _, err := pool.Exec(ctx, q); err != nil {
		return fmt.Errorf("seed: analyze: %w", err)
	}
	return nil
}
