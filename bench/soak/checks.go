package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/jackc/pgx/v5/pgxpool"
)

// checkDB reads the soak's own database for the invariant checks.
type checkDB struct {
	pool *pgxpool.Pool
}

func (db *checkDB) count(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, q, args...).Scan(&n)
	return n, err
}

// backdateSoakSubscribers sets the join date of the soak's subscribers
// 100 days back, so that a period two months ago bills them.
// onlineDigest summarises what a replayed webhook must not change:
// payments, invoices, subscribers' status and credit, stored gateway events
// and router changes queued.
func (db *checkDB) onlineDigest(ctx context.Context) (string, error) {
	var out string
	err := db.pool.QueryRow(ctx, `SELECT concat_ws(' ',
		(SELECT md5(coalesce(string_agg(concat(id, status, amount), ',' ORDER BY id), '')) FROM payments),
		(SELECT md5(coalesce(string_agg(concat(id, status, amount_paid), ',' ORDER BY id), '')) FROM invoices),
		(SELECT md5(coalesce(string_agg(concat(id, status, credit), ',' ORDER BY id), '')) FROM network_users),
		(SELECT count(*) FROM gateway_events), (SELECT count(*) FROM outbox WHERE job_name = 'RouterProvision'))`).Scan(&out)
	return out, err
}

func (db *checkDB) backdateSoakSubscribers(ctx context.Context) (int64, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE network_users SET created_at = now() - interval '100 days' WHERE username LIKE 'soak-%'`)
	return tag.RowsAffected(), err
}

// setSMSProvider points a tenant's SMS settings at the sink (there is no API
// for tenant settings).
func (db *checkDB) setSMSProvider(ctx context.Context, slug, url, token string) error {
	cfg, _ := json.Marshal(map[string]any{"sms": map[string]string{"url": url, "token": token, "sender": "SOAK"}})
	tag, err := db.pool.Exec(ctx, `UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || $2::jsonb WHERE slug = $1`, slug, string(cfg))
	if err == nil && tag.RowsAffected() != 1 {
		err = fmt.Errorf("tenant %q not found", slug)
	}
	return err
}

// check is one invariant: its name (for -skip), what it means, and the
// violations found (none = pass).
type check struct {
	name, what string
	detail     string
	violations []string
	err        error
	skipped    bool
}

func (c *check) fail(format string, args ...any) {
	c.violations = append(c.violations, fmt.Sprintf(format, args...))
}

// checkNames lists every check in the order of the table.
var checkNames = []string{"processes", "dead-jobs", "queues-drained", "outbox-relayed", "payments-settled", "payments-expected",
	"ledger", "router-matches-db", "router-refusals", "router-drift", "foreign-untouched", "overdue-suspension", "email-once", "sms-once",
	"online-webhooks", "partner-webhooks", "cache-across", "rate-limit-shared", "schedules-once", "outbox-once", "subscriptions-across"}

func (d *day) runChecks(ctx context.Context, db *checkDB) []*check {
	fns := map[string]func(context.Context, *checkDB, *check){
		"processes":          d.checkProcesses,
		"cache-across":       d.checkCacheAcross,
		"rate-limit-shared":  d.checkRateLimitShared,
		"schedules-once":     d.checkSchedulesOnce,
		"outbox-once":        d.checkOutboxOnce,
		"dead-jobs":          d.checkDeadJobs,
		"queues-drained":     d.checkQueues,
		"outbox-relayed":     d.checkOutbox,
		"payments-settled":   d.checkPaymentsSettled,
		"payments-expected":  d.checkPaymentsExpected,
		"ledger":             d.checkLedger,
		"router-matches-db":  d.checkRouters,
		"router-refusals":    d.checkRefusals,
		"router-drift":       d.checkDrift,
		"foreign-untouched":  d.checkForeign,
		"overdue-suspension": d.checkSuspension,
		"email-once":         d.checkEmail,
		"sms-once":           d.checkSMS,
		"online-webhooks":    d.checkOnline,
		"partner-webhooks":   d.checkPartner,
	}
	fns["subscriptions-across"] = d.checkSubscriptionsAcross // subscriptions.go
	var out []*check
	for _, name := range checkNames {
		c := &check{name: name}
		fns[name](ctx, db, c)
		out = append(out, c)
	}
	return out
}

func (d *day) checkProcesses(_ context.Context, _ *checkDB, c *check) {
	c.what = "both serves and both workers are still running"
	for _, p := range []*proc{d.e.serve, d.e.serve2, d.e.worker, d.e.worker2} {
		if p.exited() {
			c.fail("%s exited on its own (log %s)", p.name, p.log.Name())
		}
	}
	c.detail = fmt.Sprintf("worker started %d times (1 SIGKILL)", d.e.workerRuns)
}

// checkDeadJobs reads gocraft's dead set of the soak's namespace: every job
// that used up its attempts, whatever its tenant.
func (d *day) checkDeadJobs(ctx context.Context, _ *checkDB, c *check) {
	c.what = "no job used up its attempts (gocraft dead set)"
	now, err := d.e.jobSet(ctx, "dead")
	if err != nil {
		c.err = err
		return
	}
	// Jobs that died before Redis was lost count too.
	raw := append(append([]string(nil), d.e.deadAtWipe...), now...)
	type agg struct {
		n   int
		err string
	}
	byName := map[string]*agg{}
	for _, r := range raw {
		var j struct {
			Name string `json:"name"`
			Err  string `json:"err"`
		}
		_ = json.Unmarshal([]byte(r), &j)
		a := byName[j.Name]
		if a == nil {
			a = &agg{err: j.Err}
			byName[j.Name] = a
		}
		a.n++
	}
	for _, name := range sortedKeys(byName) {
		c.fail("%d × %s dead: %q", byName[name].n, name, byName[name].err)
	}
	c.detail = fmt.Sprintf("%d dead (%d before the Redis loss)", len(raw), len(d.e.deadAtWipe))
}

// queueDepth is the number of jobs queued, in progress or waiting for a
// retry, over every queue's namespace (jobs.Namespace).
func (e *env) queueDepth(ctx context.Context) (int64, error) {
	var n int64
	for _, q := range jobs.Queues {
		ns := jobs.Namespace(e.namespace, q)
		r, err := e.rdb.ZCard(ctx, ns+":retry").Result()
		if err != nil {
			return 0, err
		}
		n += r
		keys, err := e.rdb.Keys(ctx, ns+":jobs:*").Result()
		if err != nil {
			return 0, err
		}
		for _, k := range keys {
			rest := strings.TrimPrefix(k, ns+":jobs:")
			if strings.Contains(rest, ":") && !strings.HasSuffix(rest, ":inprogress") {
				continue // locks, lock info, paused flags
			}
			if t, _ := e.rdb.Type(ctx, k).Result(); t != "list" {
				continue
			}
			l, err := e.rdb.LLen(ctx, k).Result()
			if err != nil {
				return 0, err
			}
			n += l
		}
	}
	return n, nil
}

// jobSet reads gocraft's sorted set named set ("dead", "retry") of every
// queue's namespace.
func (e *env) jobSet(ctx context.Context, set string) ([]string, error) {
	var all []string
	for _, q := range jobs.Queues {
		v, err := e.rdb.ZRange(ctx, jobs.Namespace(e.namespace, q)+":"+set, 0, -1).Result()
		if err != nil {
			return nil, err
		}
		all = append(all, v...)
	}
	return all, nil
}

func (d *day) checkQueues(ctx context.Context, _ *checkDB, c *check) {
	c.what = "nothing left queued, in progress or waiting for a retry"
	n, err := d.e.queueDepth(ctx)
	if err != nil {
		c.err = err
		return
	}
	if n > 0 {
		keys, _ := d.e.rdb.Keys(ctx, d.e.namespace+":jobs:*").Result()
		sort.Strings(keys)
		var busy []string
		for _, k := range keys {
			if l, _ := d.e.rdb.LLen(ctx, k).Result(); l > 0 {
				busy = append(busy, fmt.Sprintf("%s=%d", strings.TrimPrefix(k, d.e.namespace+":jobs:"), l))
			}
		}
		r, _ := d.e.rdb.ZCard(ctx, d.e.namespace+":retry").Result()
		c.fail("%d jobs not finished: %d waiting for a retry; lists %s", n, r, strings.Join(busy, ", "))
	}
	c.detail = fmt.Sprintf("%d left", n)
}

func (d *day) checkOutbox(ctx context.Context, db *checkDB, c *check) {
	c.what = "every outbox row was handed to the queue"
	// A row scheduled for later (the verification of an online payment
	// after its session expires) is not due yet.
	rows, err := db.pool.Query(ctx, `SELECT CASE WHEN status = 'PENDING' AND available_at > now() THEN 'SCHEDULED' ELSE status END,
		job_name, count(*) FROM outbox GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		c.err = err
		return
	}
	defer rows.Close()
	total := map[string]int64{}
	for rows.Next() {
		var st, job string
		var n int64
		if err := rows.Scan(&st, &job, &n); err != nil {
			c.err = err
			return
		}
		total[st] += n
		if st == "PENDING" {
			c.fail("%d × %s still PENDING", n, job)
		}
	}
	var parts []string
	for _, st := range sortedKeys(total) {
		parts = append(parts, fmt.Sprintf("%s %d", st, total[st]))
	}
	c.detail = strings.Join(parts, ", ")
}

func (d *day) checkPaymentsSettled(ctx context.Context, db *checkDB, c *check) {
	c.what = "every payment COMPLETED, FAILED with a reason, or REFUNDED"
	rows, err := db.pool.Query(ctx, `SELECT t.slug, p.number, p.method, p.status, coalesce(p.failure_reason, ''), p.paid_at IS NOT NULL,
		round(extract(epoch FROM now() - p.created_at))::int FROM payments p JOIN tenants t ON t.id = p.tenant_id ORDER BY p.id`)
	if err != nil {
		c.err = err
		return
	}
	defer rows.Close()
	byStatus := map[string]int{}
	for rows.Next() {
		var slug, number, method, status, reason string
		var paid bool
		var age int
		if err := rows.Scan(&slug, &number, &method, &status, &reason, &paid, &age); err != nil {
			c.err = err
			return
		}
		byStatus[status]++
		switch {
		case status == "PENDING":
			c.fail("%s %s (%s) still PENDING after %ds", slug, number, method, age)
		case status == "FAILED" && strings.TrimSpace(reason) == "":
			c.fail("%s %s FAILED without a reason", slug, number)
		case status == "COMPLETED" && !paid:
			c.fail("%s %s COMPLETED without paid_at", slug, number)
		}
	}
	var parts []string
	for _, st := range sortedKeys(byStatus) {
		parts = append(parts, fmt.Sprintf("%s %d", st, byStatus[st]))
	}
	c.detail = strings.Join(parts, ", ")
}

func (d *day) checkPaymentsExpected(ctx context.Context, db *checkDB, c *check) {
	c.what = "each payment the soak made ended as its provider said"
	for _, x := range d.expect {
		var status, reason string
		var n int
		err := db.pool.QueryRow(ctx, `SELECT count(*) OVER (), p.status, coalesce(p.failure_reason, '') FROM payments p JOIN tenants t ON t.id = p.tenant_id
			WHERE t.slug = $1 AND p.idempotency_key = $2`, x.tenant, x.key).Scan(&n, &status, &reason)
		switch {
		case err != nil:
			c.fail("%s %s (%s): %v", x.tenant, x.key, x.why, err)
		case n != 1:
			c.fail("%s %s (%s): %d payments", x.tenant, x.key, x.why, n)
		case status != x.status:
			msg := fmt.Sprintf("%s %s (%s): %s, want %s", x.tenant, x.key, x.why, status, x.status)
			if reason != "" {
				msg += " — " + reason
			}
			c.fail("%s", msg)
		}
	}
	var dup int64
	dup, _ = db.count(ctx, `SELECT count(*) FROM payments WHERE idempotency_key LIKE 'soak-%-retried'`)
	if dup != int64(len(d.tenants)) {
		c.fail("the retried request made %d payments for %d tenants", dup, len(d.tenants))
	}
	c.detail = fmt.Sprintf("%d payments", len(d.expect))
}

// checkLedger: invoice amount_paid = completed payments + credit applied
// (capped at the total), the status follows, and per subscriber completed
// payments = Σ amount_paid + credit (docs/billing.md "Check").
func (d *day) checkLedger(ctx context.Context, db *checkDB, c *check) {
	c.what = "invoice amount_paid = Σ completed payments + credit applied; per subscriber Σ completed = Σ amount_paid + credit"
	rows, err := db.pool.Query(ctx, `
		SELECT t.slug, i.number, i.status, i.total, i.amount_paid, i.credit_applied,
		       coalesce((SELECT sum(p.amount) FROM payments p WHERE p.invoice_id = i.id AND p.status = 'COMPLETED'), 0)
		FROM invoices i JOIN tenants t ON t.id = i.tenant_id ORDER BY i.id`)
	if err != nil {
		c.err = err
		return
	}
	invoices := 0
	for rows.Next() {
		var slug, number, status string
		var total, paid, credit, completed int64
		if err := rows.Scan(&slug, &number, &status, &total, &paid, &credit, &completed); err != nil {
			rows.Close()
			c.err = err
			return
		}
		invoices++
		if status == "CANCELLED" || status == "DRAFT" {
			continue
		}
		if want := min(total, completed+credit); paid != want {
			c.fail("%s %s: amount_paid %s, completed payments %s + credit %s (total %s)", slug, number, money(paid), money(completed), money(credit), money(total))
		}
		if (status == "PAID") != (paid >= total) {
			c.fail("%s %s: status %s with %s of %s paid", slug, number, status, money(paid), money(total))
		}
	}
	rows.Close()
	rows, err = db.pool.Query(ctx, `
		SELECT t.slug, n.username, n.credit,
		       coalesce((SELECT sum(p.amount) FROM payments p WHERE p.network_user_id = n.id AND p.status = 'COMPLETED'), 0),
		       coalesce((SELECT sum(i.amount_paid) FROM invoices i WHERE i.network_user_id = n.id AND i.status NOT IN ('CANCELLED', 'DRAFT')), 0)
		FROM network_users n JOIN tenants t ON t.id = n.tenant_id ORDER BY n.id`)
	if err != nil {
		c.err = err
		return
	}
	defer rows.Close()
	subs := 0
	for rows.Next() {
		var slug, username string
		var credit, completed, paid int64
		if err := rows.Scan(&slug, &username, &credit, &completed, &paid); err != nil {
			c.err = err
			return
		}
		subs++
		if completed != paid+credit {
			c.fail("%s %s: completed payments %s ≠ amount paid on invoices %s + credit %s", slug, username, money(completed), money(paid), money(credit))
		}
	}
	c.detail = fmt.Sprintf("%d invoices, %d subscribers", invoices, subs)
}

// dbSub is a subscriber as the database has it, for the router comparison.
type dbSub struct {
	id                  int
	tenant, username    string
	status, profile     string
	routerID            int
	synced, syncErrored bool
}

// routerProblems compares each soak router with the database: every
// subscriber on it has its secret, enabled exactly when ACTIVE, with its
// package's profile and password; no session of a subscriber who is not
// ACTIVE; no secret of anyone else (another tenant's included).
func (d *day) routerProblems(ctx context.Context, db *checkDB) ([]string, error) {
	var problems []string
	for _, t := range d.tenants {
		if t.routerID == "" {
			continue
		}
		rows, err := db.pool.Query(ctx, `
			SELECT n.id, n.username, n.status, coalesce(p.router_profile, ''), n.router_synced_at IS NOT NULL, n.router_sync_error IS NOT NULL
			FROM network_users n JOIN tenants t ON t.id = n.tenant_id JOIN routers r ON r.id = n.router_id
			LEFT JOIN packages p ON p.id = n.package_id
			WHERE t.slug = $1 AND r.name = 'Soak POP' AND n.service_type = 'PPPOE'`, t.slug)
		if err != nil {
			return nil, err
		}
		want := map[string]dbSub{}
		for rows.Next() {
			var s dbSub
			if err := rows.Scan(&s.id, &s.username, &s.status, &s.profile, &s.synced, &s.syncErrored); err != nil {
				rows.Close()
				return nil, err
			}
			want[s.username] = s
		}
		rows.Close()
		secrets := map[string]map[string]string{}
		for _, r := range t.router.Rows("/ppp/secret") {
			secrets[r["name"]] = r
		}
		online := map[string]bool{}
		for _, r := range t.router.Rows("/ppp/active") {
			online[r["name"]] = true
		}
		for _, name := range sortedKeys(want) {
			s := want[name]
			sec := secrets[name]
			active := s.status == "ACTIVE"
			if t.foreignName(name) {
				continue // the operator's secret: checkForeign
			}
			if s.status == "DELETED" {
				if sec != nil {
					problems = append(problems, fmt.Sprintf("%s/%s: DELETED but its secret is on the router", t.slug, name))
				}
				continue
			}
			switch {
			case sec == nil:
				problems = append(problems, fmt.Sprintf("%s/%s (%s): no secret on the router", t.slug, name, s.status))
				continue
			case (sec["disabled"] == "true") == active:
				problems = append(problems, fmt.Sprintf("%s/%s: %s in the database, disabled=%s on the router", t.slug, name, s.status, sec["disabled"]))
			case sec["profile"] != s.profile && s.profile != "":
				problems = append(problems, fmt.Sprintf("%s/%s: profile %q on the router, package says %q", t.slug, name, sec["profile"], s.profile))
			case sec["comment"] != "ispgraph:"+strconv.Itoa(s.id):
				problems = append(problems, fmt.Sprintf("%s/%s: comment %q", t.slug, name, sec["comment"]))
			case strings.HasPrefix(name, "soak-") && sec["password"] != "pw-"+strings.TrimPrefix(name, "soak-"):
				problems = append(problems, fmt.Sprintf("%s/%s: wrong service password on the router", t.slug, name))
			case !active && online[name]:
				problems = append(problems, fmt.Sprintf("%s/%s: %s but still online", t.slug, name, s.status))
			case !s.synced || s.syncErrored:
				problems = append(problems, fmt.Sprintf("%s/%s: router matches but the subscriber is not marked in step", t.slug, name))
			}
		}
		for name := range secrets {
			if _, ok := want[name]; !ok && !t.foreignName(name) {
				problems = append(problems, fmt.Sprintf("%s router: secret %q belongs to no subscriber of %s on it", t.slug, name, t.slug))
			}
		}
	}
	sort.Strings(problems)
	return problems, nil
}

func (d *day) checkRouters(ctx context.Context, db *checkDB, c *check) {
	c.what = "each router holds exactly its subscribers, enabled iff ACTIVE, no session of a suspended one"
	problems, err := d.routerProblems(ctx, db)
	if err != nil {
		c.err = err
		return
	}
	c.violations = problems
	n := 0
	for _, t := range d.tenants {
		n += len(t.router.Rows("/ppp/secret"))
	}
	c.detail = fmt.Sprintf("%d secrets on %d routers", n, len(d.tenants))
}

// checkSuspension: a subscriber suspended for an overdue invoice has one; a
// soak subscriber with an overdue invoice is suspended unless staff said
// otherwise.
func (d *day) checkSuspension(ctx context.Context, db *checkDB, c *check) {
	c.what = "suspended for overdue ⇔ an OVERDUE invoice (staff decisions aside)"
	rows, err := db.pool.Query(ctx, `
		SELECT t.slug, n.username, n.status, coalesce(n.suspension_reason, ''),
		       EXISTS (SELECT 1 FROM invoices i WHERE i.network_user_id = n.id AND i.status = 'OVERDUE')
		FROM network_users n JOIN tenants t ON t.id = n.tenant_id ORDER BY n.id`)
	if err != nil {
		c.err = err
		return
	}
	defer rows.Close()
	staff := map[string]bool{}
	for _, t := range d.tenants {
		for _, i := range []int{roleStaffActivated, roleStaffSuspended, roleCash1} {
			if s := t.subs[i]; s != nil {
				staff[s.username] = true
			}
		}
	}
	suspended := 0
	for rows.Next() {
		var slug, username, status, reason string
		var overdue bool
		if err := rows.Scan(&slug, &username, &status, &reason, &overdue); err != nil {
			c.err = err
			return
		}
		if status == "SUSPENDED" {
			suspended++
		}
		if status == "SUSPENDED" && strings.HasPrefix(reason, "Overdue") && !overdue {
			c.fail("%s %s suspended for %q without an overdue invoice", slug, username, reason)
		}
		if strings.HasPrefix(username, "soak-") && !staff[username] && overdue && status == "ACTIVE" {
			c.fail("%s %s ACTIVE with an overdue invoice", slug, username)
		}
	}
	c.detail = fmt.Sprintf("%d suspended", suspended)
}

// checkEmail: every invoice e-mail the database says was sent reached the
// relay exactly once (by its stable Message-ID), every invoice issued today
// got its "new invoice" e-mail, and nothing else arrived.
func (d *day) checkEmail(ctx context.Context, db *checkDB, c *check) {
	c.what = "each invoice e-mail SENT reached the relay once; each new invoice got one"
	got := map[string]int{}
	for _, m := range d.smtp.received() {
		got[m.MessageID]++
	}
	rows, err := db.pool.Query(ctx, `SELECT coalesce(provider_ref, ''), status, kind, recipient FROM notifications WHERE channel = 'EMAIL'`)
	if err != nil {
		c.err = err
		return
	}
	sent, notSent := 0, 0
	known := map[string]bool{}
	for rows.Next() {
		var ref, status, kind, to string
		if err := rows.Scan(&ref, &status, &kind, &to); err != nil {
			rows.Close()
			c.err = err
			return
		}
		if status != "SENT" {
			notSent++
			c.fail("%s e-mail to %s is %s", kind, to, status)
			continue
		}
		sent++
		known[ref] = true
		if got[ref] != 1 {
			c.fail("%s e-mail to %s (%s) reached the relay %d times", kind, to, ref, got[ref])
		}
	}
	rows.Close()
	for id, n := range got {
		if !known[id] {
			c.fail("the relay received %d message(s) %q that no SENT notification records", n, id)
		}
	}
	missing, err := db.count(ctx, `SELECT count(*) FROM invoices i JOIN network_users n ON n.id = i.network_user_id
		WHERE i.issued_at >= $1 AND n.email <> '' AND NOT EXISTS (
			SELECT 1 FROM notifications x WHERE x.invoice_id = i.id AND x.kind = 'invoice_new' AND x.status = 'SENT')`, d.start)
	if err != nil {
		c.err = err
		return
	}
	if missing > 0 {
		c.fail("%d invoices issued during the soak have no SENT new-invoice e-mail", missing)
	}
	c.detail = fmt.Sprintf("%d sent, %d received", sent, len(d.smtp.received()))
}

// checkSMS: every bulk SMS the database says was sent reached the provider
// exactly once, and every recipient's delivery ended.
func (d *day) checkSMS(ctx context.Context, db *checkDB, c *check) {
	c.what = "each bulk SMS reached the provider exactly once"
	got := map[string]int{}
	for _, m := range d.sms.received() {
		got[m.Tenant+"|"+m.To]++
	}
	rows, err := db.pool.Query(ctx, `SELECT t.slug, x.recipient, x.status FROM notifications x JOIN tenants t ON t.id = x.tenant_id
		WHERE x.channel = 'SMS' AND x.kind = 'bulk_sms'`)
	if err != nil {
		c.err = err
		return
	}
	defer rows.Close()
	n := 0
	want := map[string]bool{}
	for rows.Next() {
		var slug, to, status string
		if err := rows.Scan(&slug, &to, &status); err != nil {
			c.err = err
			return
		}
		n++
		want[slug+"|"+to] = true
		if status != "SENT" {
			c.fail("SMS to %s (%s) is %s", to, slug, status)
		}
		if got[slug+"|"+to] != 1 {
			c.fail("SMS to %s (%s) reached the provider %d times", to, slug, got[slug+"|"+to])
		}
	}
	for k, v := range got {
		if !want[k] {
			c.fail("the provider received %d SMS for %s that no notification records", v, k)
		}
	}
	if n == 0 {
		c.fail("no bulk SMS was recorded")
	}
	c.detail = fmt.Sprintf("%d recipients, %d received", n, len(d.sms.received()))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
