// Command bench is ispgraph's benchmark, one command against Postgres:
//
//	go run ./bench/cmd/bench [-database-url URL] [-reuse] [-duration 10s] [-clients 8,16,32]
//
// It seeds (or reuses) the benchmark data set, builds and starts `ispgraph
// serve` as a subprocess, starts the hand-written baseline (bench/baseline)
// in this process, drives the four benchmark requests at each client count
// on both, and writes the report to bench/results/<date>.md and the latest
// run into docs/benchmarks.md. All traffic goes to 127.0.0.1; every loop is
// bounded by time.
package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/bench"
	"github.com/ispgraph/ispgraph/bench/baseline"
	_ "github.com/ispgraph/ispgraph/ent/runtime" // registers ent policies and hooks (migrate)
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/seed"
)

type config struct {
	databaseURL, redisURL, password, bin, out, docs string
	statementMode                                   string
	tenants, subscribers, months, pool              int
	reuse                                           bool
	profile                                         string
	duration, warmup, since                         time.Duration
	clients                                         []int
	scenarios                                       []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	defURL := os.Getenv("BENCH_DATABASE_URL")
	if defURL == "" {
		defURL = "postgres://postgres@127.0.0.1:5432/ispgraph_bench?sslmode=disable"
	}
	fs.StringVar(&c.databaseURL, "database-url", defURL, "Postgres database of the benchmark (created if missing; env BENCH_DATABASE_URL)")
	fs.StringVar(&c.redisURL, "redis-url", "redis://127.0.0.1:6379/1", "Redis for ispgraph serve")
	fs.BoolVar(&c.reuse, "reuse", true, "reuse the data set when the database holds it (false: fail instead)")
	fs.IntVar(&c.tenants, "tenants", 10, "tenants t1..tN")
	fs.IntVar(&c.subscribers, "subscribers", 10000, "subscribers per tenant")
	fs.IntVar(&c.months, "months", 12, "months of invoices and payments")
	fs.StringVar(&c.password, "password", "bench-password", "password of every admin@tN.example")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time of each cell")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each cell")
	clients := fs.String("clients", "8,16,32", "concurrent client counts, comma separated")
	scenarios := fs.String("scenarios", "billing,detail,dashboard,export", "scenarios to run, comma separated")
	fs.DurationVar(&c.since, "export-since", 60*24*time.Hour, "the export asks for invoices changed in this past window")
	fs.IntVar(&c.pool, "baseline-pool", 20, "baseline's Postgres connections (ispgraph serve's default is 20)")
	fs.StringVar(&c.bin, "ispgraph-bin", "", "ispgraph binary to run (default: build ./cmd/ispgraph)")
	fs.StringVar(&c.out, "out", "bench/results", "directory of the dated report")
	fs.StringVar(&c.docs, "docs", "docs/benchmarks.md", "document whose latest-run section is replaced (empty: none)")
	fs.StringVar(&c.statementMode, "statement-mode", "cache_statement", "pgx statement mode of ispgraph serve (the default_query_exec_mode of its DATABASE_URL): "+
		"cache_statement prepares each statement once per connection, as docs/deploy.md recommends on a direct connection and as the baseline's pgx pool does; "+
		"cache_describe is ispgraph's default, which also works through PgBouncer; empty: what -database-url says")
	fs.StringVar(&c.profile, "profile", "", "directory to write the server's CPU and allocation profiles of every ispgraph cell to (empty: none)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 256 {
			fmt.Fprintf(os.Stderr, "bench: -clients: %q is not a client count (1..256)\n", s)
			return c, errors.New("bad -clients")
		}
		c.clients = append(c.clients, n)
	}
	for _, s := range strings.Split(*scenarios, ",") {
		s = strings.TrimSpace(s)
		if _, ok := bench.ScenarioTitles[s]; !ok {
			fmt.Fprintf(os.Stderr, "bench: -scenarios: unknown scenario %q\n", s)
			return c, errors.New("bad -scenarios")
		}
		c.scenarios = append(c.scenarios, s)
	}
	if c.duration <= 0 || c.duration > time.Hour {
		fmt.Fprintln(os.Stderr, "bench: -duration must be between 0 and 1h")
		return c, errors.New("bad -duration")
	}
	return c, nil
}

// install copies the executable at from to a new file at to.
func install(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("install %s: %w", to, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("install %s: %w", to, err)
	}
	return os.Remove(from)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, cfg config) error {
	rep := &bench.Report{Started: time.Now()}
	if err := ensureDatabase(ctx, cfg.databaseURL); err != nil {
		return err
	}
	res, err := seedData(ctx, cfg)
	if err != nil {
		return err
	}
	logf("%s", res)

	pool, err := pgxpool.New(ctx, poolURL(cfg.databaseURL, cfg.pool))
	if err != nil {
		return err
	}
	defer pool.Close()
	var pgVersion string
	_ = pool.QueryRow(ctx, "SHOW server_version").Scan(&pgVersion)

	bin := cfg.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "ispgraph-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		built := filepath.Join(dir, "build", "ispgraph")
		logf("building ./cmd/ispgraph")
		build := exec.CommandContext(ctx, "go", "build", "-o", built, "./cmd/ispgraph")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build ispgraph (run from the repository root): %w", err)
		}
		// Run an installed copy, as a deployment does (an image layer, a
		// package, scp), not the linker's output: on this machine's kernel
		// the file the linker has just written sits in the page cache in
		// 2 MB folios that are mapped whole, which added 7-9 MB of the
		// binary's pages to serve's RSS (docs/benchmarks.md, "sixth pass").
		bin = filepath.Join(dir, "ispgraph")
		if err := install(built, bin); err != nil {
			return err
		}
	}
	srv, err := startServer(ctx, bin, cfg)
	if err != nil {
		return err
	}
	defer srv.stop()
	logf("ispgraph serve (pid %d) at %s", srv.cmd.Process.Pid, srv.url)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := &http.Server{Handler: baseline.Handler(pool), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = base.Serve(ln) }()
	defer base.Close()
	baseURL := "http://" + ln.Addr().String()

	maxClients := 0
	for _, n := range cfg.clients {
		maxClients = max(maxClients, n)
	}
	fx, err := gather(ctx, cfg, srv.url, srv.ids, baseURL, maxClients)
	if err != nil {
		return err
	}

	rep.Probes = probes(ctx, fx, metricsClientFor(), srv.url)

	loadAvg := func() string {
		b, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(b))[:min(3, len(strings.Fields(string(b))))], " ")
	}
	loadBefore := loadAvg()
	pid := srv.cmd.Process.Pid
	if peak, err := bench.PeakRSS(pid); err == nil {
		rep.PeakRSS, rep.SetupPeakRSS = peak, peak
	}
	metricsClient := metricsClientFor()
	for _, sc := range cfg.scenarios {
		ispWorker, baseWorker, na := fx.workers(sc)
		for _, n := range cfg.clients {
			cell := bench.Cell{Scenario: sc, Clients: n, NotAvailable: na}
			load := bench.Load{Clients: n, Warmup: cfg.warmup, Duration: cfg.duration, Seed: uint64(n)}
			if na == "" {
				resetOK := bench.ResetPeakRSS(pid) == nil
				var before bench.StatementCounters
				var cpuBefore time.Duration
				var profiles func() error
				load.BeforeMeasure = func() {
					before, _ = bench.ScrapeStatements(metricsClient, srv.url+"/metrics")
					if cfg.profile != "" {
						profiles = profile(ctx, srv.pprof, cfg.profile, fmt.Sprintf("%s-%d", sc, n), cfg.duration)
					}
					cpuBefore, _ = bench.ProcessCPU(pid)
				}
				cell.ISPGraph = bench.Run(ctx, load, ispWorker)
				if cpuAfter, err := bench.ProcessCPU(pid); err == nil && cpuBefore > 0 {
					cell.CPU = cpuAfter - cpuBefore
				}
				after, _ := bench.ScrapeStatements(metricsClient, srv.url+"/metrics")
				cell.Statements, cell.HasStatements = bench.PerRequest(before, after, cell.ISPGraph.Requests)
				cell.StatementsAll, cell.HasStatementsAll = bench.StatementsIncludingAuth(before, after, cell.ISPGraph.Requests)
				if profiles != nil {
					if err := profiles(); err != nil {
						logf("profile of %s at %d clients: %v", sc, n, err)
					}
				}
				if peak, err := bench.PeakRSS(pid); err == nil {
					rep.PeakRSS = max(rep.PeakRSS, peak)
					if resetOK {
						cell.PeakRSS = peak
					}
				}
				logf("%-9s %2d clients  ispgraph %7.1f req/s  p50 %s  p99 %s  errors %d  SQL/req %.1f (all %.1f)  CPU/req %s", sc, n,
					cell.ISPGraph.RPS(), cell.ISPGraph.Percentile(0.5), cell.ISPGraph.Percentile(0.99), cell.ISPGraph.Errors,
					cell.Statements, cell.StatementsAll, cell.CPUPerRequest())
			}
			load.BeforeMeasure = nil
			cell.Baseline = bench.Run(ctx, load, baseWorker)
			logf("%-9s %2d clients  baseline %7.1f req/s  p50 %s  p99 %s  errors %d", sc, n,
				cell.Baseline.RPS(), cell.Baseline.Percentile(0.5), cell.Baseline.Percentile(0.99), cell.Baseline.Errors)
			rep.Cells = append(rep.Cells, cell)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	rep.Finished = time.Now()

	dataset := fmt.Sprintf("data set: %d tenants × %d subscribers × %d months = %d subscribers, %d invoices, %d payments",
		cfg.tenants, cfg.subscribers, cfg.months, res.Subscribers, res.Invoices, res.Payments)
	if res.Reused {
		dataset += " (reused)"
	} else {
		dataset += fmt.Sprintf(" (seeded in %s)", res.Elapsed.Round(time.Second))
	}
	rep.Environment = []string{
		fmt.Sprintf("machine: %s/%s, %d CPUs, Go %s, PostgreSQL %s on the same host; load average %s before the cells, %s after "+
			"(the machine is shared: other work running meanwhile lowers both servers' figures)",
			runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), strings.TrimPrefix(runtime.Version(), "go"), pgVersion, loadBefore, loadAvg()),
		dataset,
		fmt.Sprintf("each cell: %s warm-up, then %s measured; every client sends its next request when the previous one is answered", cfg.warmup, cfg.duration),
		fmt.Sprintf("ispgraph: `ispgraph serve` subprocess (%s) on Postgres (20 connections, pgx statement mode %s) and Redis; baseline: bench/baseline in the harness process, pgx pool of %d (cache_statement); "+
			"both on 127.0.0.1, the load generator shares the machine with them", binOf(cfg), statementModeOf(cfg), cfg.pool),
		fmt.Sprintf("export: invoices changed in the last %s, %d per page; each client walks one tenant's pages to the end, then starts another",
			days(cfg.since), bench.ExportPageSize),
		"command: `go run ./bench/cmd/bench " + strings.Join(os.Args[1:], " ") + "`",
	}
	md := rep.Markdown()
	fmt.Println(md)
	if cfg.out != "" {
		if err := os.MkdirAll(cfg.out, 0o755); err != nil {
			return err
		}
		path := filepath.Join(cfg.out, rep.Started.UTC().Format("2006-01-02")+".md")
		if _, err := os.Stat(path); err == nil {
			path = filepath.Join(cfg.out, rep.Started.UTC().Format("2006-01-02-1504")+".md")
		}
		if err := os.WriteFile(path, []byte("# ispgraph benchmark\n\n"+md), 0o644); err != nil {
			return err
		}
		logf("report written to %s", path)
	}
	if cfg.docs != "" {
		if err := bench.UpdateDoc(cfg.docs, md); err != nil {
			return err
		}
		logf("latest run written to %s", cfg.docs)
	}
	return nil
}

// ensureDatabase creates the benchmark database when it does not exist.
func ensureDatabase(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("-database-url must be a postgres:// URL")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if conn, err := pgx.Connect(ctx, dbURL); err == nil {
		return conn.Close(ctx)
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	logf("creating database %s", name)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// poolURL sets a pgx pool size on a database URL.
func poolURL(dbURL string, conns int) string {
	u, _ := url.Parse(dbURL)
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(conns))
	u.RawQuery = q.Encode()
	return u.String()
}

// seedData migrates the database and seeds (or reuses) the data set.
func seedData(ctx context.Context, cfg config) (seed.BenchResult, error) {
	db, err := database.OpenPostgres(ctx, cfg.databaseURL, database.Options{MaxOpenConns: 2})
	if err != nil {
		return seed.BenchResult{}, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx, logf); err != nil {
		return seed.BenchResult{}, err
	}
	pool, err := pgxpool.New(ctx, cfg.databaseURL)
	if err != nil {
		return seed.BenchResult{}, err
	}
	defer pool.Close()
	var roles []seed.RoleSpec
	for _, r := range authz.DefaultRoles() {
		roles = append(roles, seed.RoleSpec(r))
	}
	return seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: cfg.tenants, Subscribers: cfg.subscribers, Months: cfg.months,
		Password: cfg.password, HashPassword: auth.HashPassword, Roles: roles,
		Seed: 1, Reuse: cfg.reuse,
	}, os.Stderr)
}

// server is the ispgraph serve subprocess.
type server struct {
	cmd *exec.Cmd
	url string
	// pprof is the base URL of its profiling endpoints.
	pprof string
	log   string
	// ids decodes the server's opaque ids (the benchmark made its key).
	ids *gid.Codec
	// done is closed when the process has exited, with its error in err.
	done chan struct{}
	err  error
}

// startServer starts `ispgraph serve` on a free port of 127.0.0.1 and waits
// until it is ready.
func startServer(ctx context.Context, bin string, cfg config) (*server, error) {
	key := make([]byte, 32)
	if _, err := crand.Read(key); err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp("", "ispgraph-bench-serve-*.log")
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+serveDatabaseURL(cfg),
		"REDIS_URL="+cfg.redisURL,
		"ISPGRAPH_SECRET_KEY="+hex.EncodeToString(key),
		"ISPGRAPH_ADDR=127.0.0.1:0",
		"ISPGRAPH_LOG_LEVEL=warn", // an access log line per request would cost the server CPU
		// Throughput is measured, not the per-credential limit: each
		// tenant's one token carries a whole client pool's requests.
		"ISPGRAPH_API_RATE_LIMIT=100000000",
		// Workers run as their own processes in production; their schedules
		// (router sync against the seeded, unreachable routers) are not
		// what this benchmark measures.
		"ISPGRAPH_WORKERS=false",
		// Profiles of the measured cells (-profile), on loopback only.
		"ISPGRAPH_PPROF_ADDR="+pprofAddr,
		// (c) measures the dashboard computed, not read from the cache: its
		// entries expire at once (concurrent misses of one tenant still
		// share one computation, as they would in production).
		"ISPGRAPH_CACHE_TTL=dashboard=1ms",
	)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	ids, err := gid.New(key)
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan struct{}), log: logFile.Name(), ids: ids, pprof: "http://" + pprofAddr}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "ispgraph is listening on "); ok {
				select {
				case found <- strings.TrimSpace(rest):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		s.err = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	select {
	case s.url = <-found:
	case <-s.done:
		return nil, fmt.Errorf("ispgraph serve exited (%v); its log: %s", s.err, s.log)
	case <-time.After(2 * time.Minute):
		s.stop()
		return nil, fmt.Errorf("ispgraph serve did not start within 2 minutes; its log: %s", s.log)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	for range 100 {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("ispgraph serve at %s is not ready (/readyz); its log: %s", s.url, s.log)
}

// stop ends the subprocess: SIGTERM, then SIGKILL after 15 s. Its log is
// removed when it is empty (log level warn: nothing went wrong).
func (s *server) stop() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if fi, err := os.Stat(s.log); err == nil && fi.Size() == 0 {
		_ = os.Remove(s.log)
	} else if err == nil {
		logf("ispgraph serve logged warnings: %s", s.log)
	}
}

// tenantFixture is what the workers need to address one tenant.
type tenantFixture struct {
	slug string
	gql  *bench.GraphQL
	// cursors[k], ids[k] and rawIDs[k] belong to the k-th active subscriber by id.
	cursors, ids []string
	rawIDs       []int
}

// fixtures are the logged-in tenants, the two servers and the export window.
type fixtures struct {
	tenants  []tenantFixture
	baseURL  string
	baseHTTP *http.Client
	since    time.Time
	// dashboard is empty when ispgraph answers the dashboard; else why not.
	dashboard string
}

// gather logs in to every tenant and collects its active subscribers'
// cursors and ids, so workers can ask for random pages and subscribers.
func gather(ctx context.Context, cfg config, srvURL string, ids *gid.Codec, baseURL string, clients int) (*fixtures, error) {
	ispHTTP := bench.NewHTTPClient(clients)
	fx := &fixtures{baseURL: baseURL, baseHTTP: bench.NewHTTPClient(clients), since: time.Now().Add(-cfg.since).UTC()}
	logf("logging in to %d tenants and collecting their active subscribers", cfg.tenants)
	for n := 1; n <= cfg.tenants; n++ {
		t := tenantFixture{slug: seed.BenchSlug(n), gql: &bench.GraphQL{HTTP: ispHTTP, URL: srvURL + "/graphql"}}
		if err := t.gql.Login(ctx, t.slug, seed.BenchAdminEmail(n), cfg.password); err != nil {
			return nil, fmt.Errorf("%w (a reused data set keeps the password it was seeded with: -password)", err)
		}
		after := ""
		for page := 0; page < 10000; page++ {
			p, err := t.gql.ActivePage(ctx, bench.ExportPageSize, after)
			if err != nil {
				return nil, fmt.Errorf("collect subscribers of %s: %w", t.slug, err)
			}
			t.cursors = append(t.cursors, p.Cursors...)
			t.ids = append(t.ids, p.IDs...)
			if !p.HasNext {
				break
			}
			after = p.End
		}
		for _, id := range t.ids {
			raw, err := ids.Decode(id)
			if err != nil {
				return nil, fmt.Errorf("subscriber id %q: %w", id, err)
			}
			t.rawIDs = append(t.rawIDs, raw)
		}
		if len(t.ids) < 2 {
			return nil, fmt.Errorf("tenant %s has %d active subscribers: too few to benchmark", t.slug, len(t.ids))
		}
		fx.tenants = append(fx.tenants, t)
	}
	err := fx.tenants[0].gql.Do(ctx, bench.Dashboard, nil, nil)
	var re *bench.ResponseError
	switch {
	case errors.As(err, &re) && strings.HasPrefix(re.Errors[0].Message, "Cannot query field"):
		fx.dashboard = "the server has no `dashboard` query"
		logf("dashboard: not available (%s)", re.Errors[0].Message)
	case err != nil:
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return fx, nil
}

// baseGet asks the baseline for path as tenant and checks the answer.
func (fx *fixtures) baseGet(ctx context.Context, tenant, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fx.baseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set(baseline.TenantHeader, tenant)
	resp, err := fx.baseHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("baseline %s: %s", path, resp.Status)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// workers returns the scenario's worker makers for ispgraph and the
// baseline, and why ispgraph cannot run it (empty when it can).
func (fx *fixtures) workers(scenario string) (isp, base bench.NewWorker, notAvailable string) {
	pick := func(rng *rand.Rand) (*tenantFixture, int) {
		t := &fx.tenants[rng.IntN(len(fx.tenants))]
		return t, rng.IntN(len(t.ids))
	}
	switch scenario {
	case bench.ScenarioBilling:
		isp = func(_ int, rng *rand.Rand) bench.Worker {
			return func(ctx context.Context) error {
				t, k := pick(rng)
				return t.gql.Do(ctx, bench.PartnerBilling, map[string]any{"first": bench.BillingPageSize, "after": t.cursors[k]}, nil)
			}
		}
		base = func(_ int, rng *rand.Rand) bench.Worker {
			return func(ctx context.Context) error {
				t, k := pick(rng)
				return fx.baseGet(ctx, t.slug, fmt.Sprintf("/billing?first=%d&after=%d", bench.BillingPageSize, t.rawIDs[k]), nil)
			}
		}
	case bench.ScenarioDetail:
		isp = func(_ int, rng *rand.Rand) bench.Worker {
			return func(ctx context.Context) error {
				t, k := pick(rng)
				return t.gql.Do(ctx, bench.SubscriberDetail, map[string]any{"id": t.ids[k]}, nil)
			}
		}
		base = func(_ int, rng *rand.Rand) bench.Worker {
			return func(ctx context.Context) error {
				t, k := pick(rng)
				return fx.baseGet(ctx, t.slug, fmt.Sprintf("/subscriber?id=%d", t.rawIDs[k]), nil)
			}
		}
	case bench.ScenarioDashboard:
		isp = func(_ int, rng *rand.Rand) bench.Worker {
			return func(ctx context.Context) error {
				t, _ := pick(rng)
				return t.gql.Do(ctx, bench.Dashboard, nil, nil)
			}
		}
		base = func(_ int, rng *rand.Rand) bench.Worker {
			return func(ctx context.Context) error {
				t, _ := pick(rng)
				return fx.baseGet(ctx, t.slug, "/dashboard", nil)
			}
		}
		notAvailable = fx.dashboard
	case bench.ScenarioExport:
		isp = func(_ int, rng *rand.Rand) bench.Worker {
			var t *tenantFixture
			after := ""
			return func(ctx context.Context) error {
				if t == nil {
					t, _ = pick(rng)
					after = ""
				}
				p, err := t.gql.Export(ctx, fx.since, after)
				if err != nil || !p.HasNext {
					t = nil
					return err
				}
				after = p.End
				return nil
			}
		}
		base = func(_ int, rng *rand.Rand) bench.Worker {
			var t *tenantFixture
			after := ""
			return func(ctx context.Context) error {
				if t == nil {
					t, _ = pick(rng)
					after = ""
				}
				var p struct {
					HasNextPage bool
					EndCursor   *struct {
						UpdatedAt time.Time
						ID        int64
					}
				}
				path := fmt.Sprintf("/export?first=%d&since=%s%s", bench.ExportPageSize, fx.since.Format(time.RFC3339Nano), after)
				if err := fx.baseGet(ctx, t.slug, path, &p); err != nil || !p.HasNextPage || p.EndCursor == nil {
					t = nil
					return err
				}
				after = fmt.Sprintf("&after_at=%s&after_id=%d", url.QueryEscape(p.EndCursor.UpdatedAt.Format(time.RFC3339Nano)), p.EndCursor.ID)
				return nil
			}
		}
	}
	return isp, base, notAvailable
}

// days renders a duration of whole days as "N days".
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// freeAddr returns a loopback address with a port free at the time of asking.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func metricsClientFor() *http.Client { return &http.Client{Timeout: 10 * time.Second} }

// profile starts the server's CPU and allocation profiles of the next d and
// returns a function that waits for them and writes them to dir as
// <name>.cpu.pprof and <name>.allocs.pprof (read them with `go tool pprof`).
func profile(ctx context.Context, base, dir, name string, d time.Duration) func() error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return func() error { return err }
	}
	secs := max(1, int(d.Seconds()))
	client := &http.Client{Timeout: d + time.Minute}
	errc := make(chan error, 2)
	for _, kind := range []string{"profile", "allocs"} {
		go func() {
			errc <- func() error {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", base, kind, secs), nil)
				if err != nil {
					return err
				}
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s: %s", kind, resp.Status)
				}
				ext := map[string]string{"profile": "cpu", "allocs": "allocs"}[kind]
				f, err := os.Create(filepath.Join(dir, name+"."+ext+".pprof"))
				if err != nil {
					return err
				}
				if _, err := io.Copy(f, resp.Body); err != nil {
					f.Close()
					return err
				}
				return f.Close()
			}()
		}()
	}
	return func() error { return errors.Join(<-errc, <-errc) }
}

// probeCount is how many requests of each shape a probe sends.
const probeCount = 20

// probes measures the SQL statements per request, the bearer token check
// included, of the shapes the statement targets name: the partner billing
// query at first: 10, 50 and 100 (first page) and the subscriber detail. Each
// shape is sent once to warm the server, then probeCount times one after
// another, nothing else reaching the server meanwhile.
func probes(ctx context.Context, fx *fixtures, client *http.Client, srvURL string) []bench.Probe {
	t := &fx.tenants[0]
	type shape struct {
		scenario, name string
		send           func(i int) error
	}
	var shapes []shape
	for _, first := range []int{10, 50, 100} {
		shapes = append(shapes, shape{bench.ScenarioBilling, fmt.Sprintf("(a) partner billing, first: %d", first), func(i int) error {
			vars := map[string]any{"first": first}
			if i > 0 {
				vars["after"] = t.cursors[(i*7919)%len(t.cursors)]
			}
			return t.gql.Do(ctx, bench.PartnerBilling, vars, nil)
		}})
	}
	shapes = append(shapes, shape{bench.ScenarioDetail, "(b) subscriber detail", func(i int) error {
		return t.gql.Do(ctx, bench.SubscriberDetail, map[string]any{"id": t.ids[(i*7919)%len(t.ids)]}, nil)
	}})
	var out []bench.Probe
	for _, s := range shapes {
		p := bench.Probe{Scenario: s.scenario, Name: s.name}
		err := s.send(0)
		var before, after bench.StatementCounters
		if err == nil {
			before, err = bench.ScrapeStatements(client, srvURL+"/metrics")
		}
		for i := 1; i <= probeCount && err == nil; i++ {
			err = s.send(i)
			p.Requests++
		}
		if err == nil {
			after, err = bench.ScrapeStatements(client, srvURL+"/metrics")
		}
		if err != nil {
			p.Err = err.Error()
		} else if n, ok := bench.StatementsIncludingAuth(before, after, p.Requests); ok {
			p.Statements = n
		} else {
			p.Err = "the server does not count statements"
		}
		logf("probe %s: %.1f statements per request (token check included)", p.Name, p.Statements)
		out = append(out, p)
	}
	return out
}

// serveDatabaseURL is the DATABASE_URL ispgraph serve runs with:
// -database-url with -statement-mode as its default_query_exec_mode, unless
// the URL sets one itself.
func serveDatabaseURL(cfg config) string {
	if cfg.statementMode == "" || strings.Contains(cfg.databaseURL, "default_query_exec_mode=") {
		return cfg.databaseURL
	}
	sep := "?"
	if strings.Contains(cfg.databaseURL, "?") {
		sep = "&"
	}
	return cfg.databaseURL + sep + "default_query_exec_mode=" + url.QueryEscape(cfg.statementMode)
}

// statementModeOf names the statement mode ispgraph serve runs in.
func statementModeOf(cfg config) string {
	u := serveDatabaseURL(cfg)
	if i := strings.Index(u, "default_query_exec_mode="); i >= 0 {
		mode := u[i+len("default_query_exec_mode="):]
		if j := strings.IndexAny(mode, "& "); j >= 0 {
			mode = mode[:j]
		}
		return mode
	}
	return "cache_describe (ispgraph's default)"
}

// binOf says which binary the run measured.
func binOf(cfg config) string {
	if cfg.bin != "" {
		return "-ispgraph-bin " + cfg.bin
	}
	return "built from the working tree, run from an installed copy"
}
