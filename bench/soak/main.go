// Command soak is the operations soak, "an ISP day in five minutes": it
// builds ispgraph, runs it in production mode (`serve` without in-process
// workers plus a separate `worker`) on its own Postgres database and its own
// Redis namespace, with every peer faked at the protocol level in this
// process (RouterOS API routers, an SMTP relay, an SMS provider, Stripe),
// plays a scripted day through the GraphQL API — billing, cash and gateway
// payments, overdue suspension and reactivation, a router outage, a worker
// killed mid-job, Redis losing its data — and then checks invariants and
// prints a table. It exits 1 when a check that is not skipped fails.
//
//	go run ./bench/soak [-duration 4m] [-skip dead-jobs,payments-settled] [-keep]
//
// See docs/operations.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		duration = flag.Duration("duration", 6*time.Minute, "budget of the scripted day after start-up (the checks follow)")
		skip     = flag.String("skip", "", "comma-separated checks to run and show but not fail on: "+strings.Join(checkNames, ","))
		keep     = flag.Bool("keep", false, "keep the database, the Redis keys and the logs")
		pgURL    = flag.String("postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "Postgres maintenance database; the soak creates its own database next to it")
		redisURL = flag.String("redis", "redis://127.0.0.1:6379", "Redis server (shared: the soak uses its own database number and key prefixes)")
		redisDB  = flag.Int("redis-db", 12, "Redis database number for the soak; give one no one else uses (its clients are disconnected mid-run)")
		bin      = flag.String("bin", "", "an ispgraph binary to run instead of building ./cmd/ispgraph")
	)
	flag.Parse()
	skipped := map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		known := false
		for _, n := range checkNames {
			known = known || n == s
		}
		if !known {
			fmt.Fprintf(os.Stderr, "soak: -skip: no check named %q (checks: %s)\n", s, strings.Join(checkNames, ", "))
			return 2
		}
		skipped[s] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	id := randHex(4)
	dir, err := os.MkdirTemp("", "ispgraph-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 1
	}
	e := &env{dir: dir, adminURL: *pgURL, dbName: "ispgraph_soak_" + id, redisDB: *redisDB,
		namespace: "soak-" + id, cachePref: "soak-" + id + ":cache:", secretKey: randHex(32),
		demoPass: "soak-demo-" + id, seedPass: "soak-seed-" + id}
	e.redisURL = fmt.Sprintf("%s/%d", strings.TrimRight(*redisURL, "/"), *redisDB)
	d := &day{e: e, start: start}
	fmt.Printf("ispgraph operations soak %s — logs in %s\n", id, dir)

	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "\nsoak: %v\n(logs in %s)\n", err, dir)
		d.cleanup(*keep)
		return 1
	}
	if *bin != "" {
		e.bin = *bin
	} else {
		d.logf("building ./cmd/ispgraph")
		if err := e.build(ctx); err != nil {
			return fail(fmt.Errorf("build: %w", err))
		}
	}
	d.logf("database %s on %s, Redis %s namespace %q", e.dbName, redactURL(*pgURL), e.redisURL, e.namespace)
	if err := e.createDatabase(ctx); err != nil {
		return fail(err)
	}
	opt, err := config.RedisOptions(e.redisURL)
	if err != nil {
		return fail(err)
	}
	e.rdb = redis.NewClient(opt)
	if err := e.rdb.Ping(ctx).Err(); err != nil {
		return fail(fmt.Errorf("redis: %w", err))
	}
	pool, err := pgxpool.New(ctx, e.dbURL)
	if err != nil {
		return fail(err)
	}
	db := &checkDB{pool: pool}

	// Peers, all on 127.0.0.1.
	if d.smtp, err = startSMTP(); err != nil {
		return fail(err)
	}
	d.sms = startSMS("sms-token-" + id)
	d.stripe = startStripe("sk_test_soak_" + id)
	d.partner = startPartner()
	for _, a := range []*string{&e.serveAddr, &e.serve2Addr, &e.workerAddr, &e.worker2Addr} {
		if *a, err = freeAddr(); err != nil {
			return fail(err)
		}
	}
	schedules := strings.Join([]string{
		"MarkOverdueInvoices=*/15 * * * * *", "GenerateInvoices=*/30 * * * * *", "SyncRouterSessions=*/10 * * * * *",
		"ExpireHotspotUsers=*/30 * * * * *", "SendReminders=*/30 * * * * *", "ReconcileRouters=*/20 * * * * *"}, ";")
	e.extraEnv = []string{
		"ISPGRAPH_SCHEDULES=" + schedules,
		"ISPGRAPH_OUTBOX_REOPEN_AFTER=" + reopenAfter.String(),
		"ISPGRAPH_SMTP_HOST=127.0.0.1", fmt.Sprintf("ISPGRAPH_SMTP_PORT=%d", d.smtp.port()), "ISPGRAPH_SMTP_STARTTLS=false",
		"ISPGRAPH_STRIPE_BASE_URL=" + d.stripe.srv.URL,
		"ISPGRAPH_SSLCOMMERZ_BASE_URL=http://127.0.0.1:1", // never used: no SSLCommerz gateway
		"ISPGRAPH_API_RATE_LIMIT=100000", "ISPGRAPH_LOGIN_RATE_LIMIT=1000",
		// The partner's receiver is on 127.0.0.1; its 503s are retried within seconds.
		"ISPGRAPH_WEBHOOK_ALLOW_PRIVATE=true", "ISPGRAPH_WEBHOOK_RETRY_BASE=2s",
	}
	d.logf("peers: SMTP 127.0.0.1:%d, SMS %s, Stripe %s; schedules %s; outbox rows reopened after %s", d.smtp.port(), d.sms.srv.URL, d.stripe.srv.URL, schedules, reopenAfter)

	// Tenants: the demo tenant and one benchmark tenant, from the seed command.
	d.logf("seeding: ispgraph seed -demo; ispgraph seed -tenants 1 -subscribers 10 -months 2")
	if err := e.runCLI(ctx, "seed-demo", "seed", "-demo"); err != nil {
		return fail(err)
	}
	if err := e.runCLI(ctx, "seed-bench", "seed", "-tenants", "1", "-subscribers", "10", "-months", "2", "-password", e.seedPass); err != nil {
		return fail(err)
	}
	for _, t := range []*tenantRun{{slug: "demo", email: "admin@demo.example", password: e.demoPass}, {slug: "t1", email: "admin@t1.example", password: e.seedPass}} {
		if t.router, err = routerostest.Listen("127.0.0.1:0"); err != nil {
			return fail(err)
		}
		if err := db.setSMSProvider(ctx, t.slug, d.sms.url(t.slug), d.sms.token); err != nil {
			return fail(fmt.Errorf("SMS settings of %s: %w", t.slug, err))
		}
		d.tenants = append(d.tenants, t)
	}
	d.logf("starting ispgraph serve (ISPGRAPH_WORKERS=false) on %s", e.serveAddr)
	if err := e.startServe(ctx); err != nil {
		return fail(err)
	}
	d.logf("starting a second ispgraph serve on %s", e.serve2Addr)
	if e.serve2, err = e.startServeAs(ctx, "serve-2", e.serve2Addr); err != nil {
		return fail(err)
	}
	for i, t := range d.tenants {
		// Clients spread over both servers.
		t.api = newAPI("http://" + []string{e.serveAddr, e.serve2Addr}[i%2])
		if err := t.api.login(ctx, t.slug, t.email, t.password); err != nil {
			return fail(fmt.Errorf("login to %s: %w", t.slug, err))
		}
		// Seeded routers carry documentation addresses: never dial them.
		var rs struct {
			Routers struct {
				Edges []struct {
					Node struct{ ID, Name, Host string }
				}
			}
		}
		if err := t.api.call(ctx, `{ routers(first: 50) { edges { node { id name host } } } }`, nil, &rs); err != nil {
			return fail(err)
		}
		for _, r := range rs.Routers.Edges {
			if err := t.api.call(ctx, `mutation($id: ID!) { updateRouter(id: $id, input: {status: INACTIVE}) { id } }`, map[string]any{"id": r.Node.ID}, nil); err != nil {
				return fail(err)
			}
			d.logf("   %s: seeded router %q (%s) set INACTIVE so nothing dials it", t.slug, r.Node.Name, r.Node.Host)
		}
	}
	d.logf("starting ispgraph worker")
	if err := e.startWorker(); err != nil {
		return fail(err)
	}
	d.logf("starting a second ispgraph worker")
	if err := e.startSecondWorker(); err != nil {
		return fail(err)
	}
	d.end = time.Now().Add(*duration)

	steps := []struct {
		name string
		fn   func(context.Context, *checkDB)
	}{
		{"instances", d.instances},
		{"billing", d.billing},
		{"subscribe", d.subscribeStart}, // subscriptions.go: a window around the payments
		{"payments", d.payments},
		{"subscriptions", d.subscribeStop},
		{"online payments", d.onlinePayments},
		{"new month", func(ctx context.Context, _ *checkDB) { d.newMonth(ctx) }},
		{"router down", d.routerDown},
		{"worker killed", d.workerKilled},
		{"routers", d.routers},
		{"redis lost", d.redisLost},
		{"settle", d.settle},
	}
	if err := d.morning(ctx, db); err != nil {
		return fail(fmt.Errorf("morning: %w", err))
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		s.fn(ctx, db)
	}

	d.logf("checks")
	checks := d.runChecks(ctx, db)
	failed := d.report(checks, skipped)
	d.cleanup(*keep)
	if *keep {
		fmt.Printf("kept: database %s, Redis db %d prefix %s, logs %s\n", e.dbName, e.redisDB, e.namespace, dir)
	}
	fmt.Printf("soak took %s\n", time.Since(start).Round(time.Second))
	if failed > 0 {
		fmt.Printf("FAIL: %d check(s) failed\n", failed)
		return 1
	}
	fmt.Println("PASS")
	return 0
}

// report prints the table of checks and figures; it returns the number of
// failed checks that are not skipped.
func (d *day) report(checks []*check, skipped map[string]bool) int {
	failed := 0
	fmt.Println()
	fmt.Printf("%-20s %-6s %-34s %s\n", "check", "result", "detail", "meaning")
	fmt.Println(strings.Repeat("-", 120))
	for _, c := range checks {
		res := "ok"
		switch {
		case c.err != nil:
			res = "ERROR"
		case len(c.violations) > 0:
			res = "FAIL"
		}
		if res != "ok" {
			if skipped[c.name] {
				res += "*"
			} else {
				failed++
			}
		}
		fmt.Printf("%-20s %-6s %-34s %s\n", c.name, res, c.detail, c.what)
	}
	fmt.Println(strings.Repeat("-", 120))
	if len(skipped) > 0 {
		fmt.Println("* skipped with -skip: shown, not counted")
	}
	for _, c := range checks {
		if c.err != nil {
			fmt.Printf("\n%s: could not check: %v\n", c.name, c.err)
		}
		if len(c.violations) == 0 {
			continue
		}
		fmt.Printf("\n%s (%d):\n", c.name, len(c.violations))
		for i, v := range c.violations {
			if i == 15 {
				fmt.Printf("  … and %d more\n", len(c.violations)-i)
				break
			}
			fmt.Printf("  - %s\n", v)
		}
	}
	fmt.Println("\nfigures:")
	for _, f := range d.figures {
		fmt.Printf("  %-55s %s\n", f[0], f[1])
	}
	relogins := 0
	for _, t := range d.tenants {
		relogins += t.api.relogins
	}
	fmt.Printf("  %-55s %d\n", "staff sessions lost (had to log in again)", relogins)
	fmt.Printf("  %-55s %d\n", "e-mails received by the relay", len(d.smtp.received()))
	fmt.Printf("  %-55s %d\n", "SMS received by the provider", len(d.sms.received()))
	fmt.Printf("  %-55s %d\n", "payment verifications Stripe received", d.stripe.total())
	fmt.Printf("  %-55s %d\n", "webhook requests the partner received", len(d.partner.received()))
	if len(d.notes) > 0 {
		fmt.Println("\nnotes (steps that did not go as scripted):")
		for _, n := range d.notes {
			fmt.Printf("  - %s\n", n)
		}
	}
	fmt.Println()
	return failed
}

// cleanup stops the processes and peers and, unless keep, drops the
// database and the soak's Redis keys.
func (d *day) cleanup(keep bool) {
	e := d.e
	for _, p := range []*proc{e.worker, e.worker2, e.serve, e.serve2} {
		if p != nil {
			p.stop(20 * time.Second)
		}
	}
	for _, t := range d.tenants {
		if t.router != nil {
			t.router.Close()
		}
	}
	if d.smtp != nil {
		d.smtp.close()
	}
	if d.sms != nil {
		d.sms.srv.Close()
	}
	if d.stripe != nil {
		d.stripe.srv.Close()
	}
	if d.partner != nil {
		d.partner.srv.Close()
	}
	if keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.rdb != nil {
		if keys, err := e.soakKeys(ctx); err == nil && len(keys) > 0 {
			e.rdb.Del(ctx, keys...)
		}
	}
	if e.dbURL != "" {
		if err := e.dropDatabase(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "soak: drop database %s: %v\n", e.dbName, err)
		}
	}
}
