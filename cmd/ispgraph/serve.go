package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/99designs/gqlgen/graphql"
	"github.com/alicebob/miniredis/v2"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/catalog"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/dashboard"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/events"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/ratelimit"
	"github.com/ispgraph/ispgraph/internal/secret"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/server"
	"github.com/ispgraph/ispgraph/internal/sqlstats"
	"github.com/ispgraph/ispgraph/internal/tenants"
	"github.com/ispgraph/ispgraph/internal/webhook"
	"github.com/ispgraph/ispgraph/loaders"
	"github.com/ispgraph/ispgraph/workers"
)

var errUsage = errors.New("usage")

// errHelp ends a command whose help was asked for: it exits 0.
var errHelp = errors.New("help")

// Main is a running ispgraph server: its configuration and every resource it
// opened, closed in reverse by Close.
type Main struct {
	Config  config.Config
	Logger  *slog.Logger
	Metrics *observability.Metrics
	DB      *database.DB
	Redis   *redis.Client
	Cache   *cache.Cache
	Stdout  io.Writer

	// The services, each built once by Open (the composition root) and
	// shared by the API and the workers of this process.
	Secrets  *secret.Box
	IDs      *gid.Codec // the API's opaque ids, keyed like Secrets
	Gateways *gateway.Service
	Online   *gateway.Online // payments customers start on a provider's page
	// Webhooks records partner events in the transaction of each change
	// (its ent hook), registers endpoints and delivers to them.
	Webhooks   *webhook.Service
	Billing    *billing.Service
	Mikrotik   *mikrotik.Service // its router connection pool is shared by requests and jobs
	Mailer     *notify.Mailer
	Audit      *audit.Recorder
	Auth       *auth.Service
	Tenants    *tenants.Service
	Catalog    *catalog.Service
	Dashboards *dashboard.Service
	Warmers    []cache.Warmer
	// Events carries live changes between processes (Redis pub/sub): every
	// process publishes through its ent hook, API processes deliver them to
	// subscriptions.
	Events *events.Bus

	// Jobs is the redigo pool gocraft/work uses; Workers runs when enabled.
	Jobs    *redigo.Pool
	Workers *workers.Workers
	// Monitor reads queue statistics over its own pool (MonitorRedis), and
	// the jobs web UI has its own (JobsUI), so neither can take a
	// connection the workers need.
	Monitor      *jobs.Monitor
	MonitorRedis *redigo.Pool
	JobsUI       *redigo.Pool
	redisURL     string

	demo      seed.DemoResult
	miniredis *miniredis.Miniredis
	listener  net.Listener
	http      *http.Server
	pprof     *http.Server
}

// loadConfig reads the environment, then the command's flags: the settings of
// groups and the command's own (extra).
func loadConfig(name string, groups config.Group, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return cfg, nil, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlagsFor(fs, groups)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, fs, errHelp
		}
		return cfg, fs, errUsage
	}
	return cfg, fs, nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("serve", config.All, args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	m := &Main{Config: cfg, Stdout: stdout, Logger: observability.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)}
	defer m.Close()
	applyMemoryDefaults(os.Getenv) // read by the runtime itself, not by config
	// gocraft/work prints to the process's standard output: capture it
	// when this command's output is that.
	if err := observability.RouteLibraryLogs(m.Logger, stdout == io.Writer(os.Stdout)); err != nil {
		return err
	}
	if err := m.Open(ctx); err != nil {
		return err
	}
	if err := m.Listen(); err != nil {
		return err
	}
	return m.Serve(ctx)
}

// Open validates the configuration, opens the database and Redis — Postgres
// and Redis when configured, else the embedded default (SQLite in the data
// directory, an in-process Redis, the demo tenant) — and builds every service.
func (m *Main) Open(ctx context.Context) error {
	if err := m.Config.Validate(); err != nil {
		return err
	}
	m.Metrics = observability.NewMetrics()
	m.Metrics.Registry.MustRegister(buildInfo())
	m.Logger.Info("starting ispgraph", "config", m.Config.Redacted())
	if m.Config.Embedded() {
		if err := m.openEmbedded(ctx); err != nil {
			return err
		}
		return m.build()
	}
	// Redis first: the replica router keeps who wrote recently there.
	opt, err := config.RedisOptions(m.Config.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	m.Redis = redis.NewClient(opt)
	m.redisURL = m.Config.RedisURL
	dbo := m.dbOptions()
	dbo.Replica = m.replicaOptions()
	db, err := database.OpenPostgres(ctx, m.Config.DatabaseURL, dbo)
	if err != nil {
		return err
	}
	m.DB = db
	applied, err := db.Migrate(ctx, func(format string, args ...any) { m.Logger.Info(fmt.Sprintf(format, args...)) })
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		m.Logger.Info("migrations applied", "versions", applied)
	}
	return m.build()
}

// build is the composition root: the ent client gets every hook and
// interceptor here, once, and each service is built here, once.
func (m *Main) build() error {
	if err := m.openCache(); err != nil {
		return err
	}
	m.Metrics.Registry.MustRegister(m.replicaReads())
	// Every entity list a request loads becomes a batch for its loaders.
	m.DB.Client.Intercept(loaders.Interceptor())
	m.Events = &events.Bus{Redis: m.Redis, Prefix: m.Config.JobNamespace + ":", Logger: m.Logger}
	m.DB.Client.Use(m.Events.Hook())
	if m.Secrets == nil {
		box, err := m.secretBox()
		if err != nil {
			return err
		}
		m.Secrets = box
	}
	box := m.Secrets
	ids, err := m.idCodec()
	if err != nil {
		return err
	}
	m.IDs = ids
	operators, err := auth.ParseOperatorKeys(m.Config.OperatorKeys)
	if err != nil {
		return err
	}
	c := m.Config
	m.Billing = &billing.Service{Client: m.DB.Client}
	m.Mikrotik = &mikrotik.Service{Client: m.DB.Client, Pool: mikrotik.NewPool(), Open: box.Open, Seal: box.Seal,
		OTPLimiter: &ratelimit.Limiter{Redis: m.Redis, Prefix: c.JobNamespace + ":", Period: time.Hour}}
	if m.Gateways, err = m.gateways(); err != nil {
		return err
	}
	if m.Online, err = gateway.NewOnline(m.DB.Client, m.Gateways, m.Billing); err != nil {
		return err
	}
	wp := webhook.Policy{AllowPrivate: c.WebhookAllowPrivate}
	m.Webhooks = &webhook.Service{Client: m.DB.Client, Secrets: box, IDs: ids, Policy: wp,
		HTTP: wp.HTTPClient(c.WebhookTimeout), Attempts: c.WebhookAttempts, RetryBase: c.WebhookRetryBase, Logger: m.Logger}
	m.DB.Client.Use(m.Webhooks.Hook())
	m.Mailer = smtpMailer(c)
	m.Audit = &audit.Recorder{Client: m.DB.Client, Logger: m.Logger}
	m.Auth = &auth.Service{Client: m.DB.Client, Cache: m.Cache, TokenTTL: c.TokenTTL, Now: time.Now, Logger: m.Logger,
		Limiter:    &ratelimit.Limiter{Redis: m.Redis, Prefix: c.JobNamespace + ":"},
		LoginLimit: c.LoginRateLimit,
		APILimit:   c.APIRateLimit,
		Audit:      m.Audit,
		Operators:  operators,
		Mailer:     m.Mailer,
		SetupURL:   c.StaffSetupURL,
	}
	// Revocations bump the generations every cached verification checks.
	m.DB.Client.Use(m.Auth.Hook())
	m.Tenants = &tenants.Service{Client: m.DB.Client, Auth: m.Auth, Audit: m.Audit}
	m.Catalog = &catalog.Service{Client: m.DB.Client, Cache: m.Cache, PageSize: c.DefaultPageSize}
	m.Dashboards = &dashboard.Service{Client: m.DB.Client, Billing: m.Billing, Cache: m.Cache}
	m.Warmers = []cache.Warmer{m.Auth.WarmTenant, m.Catalog.Warm}
	m.Jobs = workers.NewRedisPool(m.redisURL)
	m.MonitorRedis = jobs.NewMonitorPool(m.redisURL)
	m.JobsUI = jobs.NewWebUIPool(m.redisURL)
	m.Monitor = jobs.NewMonitor(c.JobNamespace, m.MonitorRedis)
	return nil
}

// openCache builds the cache chain over the database and Redis and hooks its
// invalidation into every ent mutation.
func (m *Main) openCache() error {
	ttls, err := cache.ParseTTLs(m.Config.CacheTTL)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvCacheTTL, err)
	}
	c, err := cache.New(cache.Options{
		DB: m.DB.Client, Redis: m.Redis.Options(), Prefix: m.Config.CachePrefix, TTLs: ttls,
		Metrics: m.Metrics, Logger: m.Logger,
	})
	if err != nil {
		return err
	}
	m.Cache = c
	m.DB.Client.Use(c.Hook())
	return nil
}

// dbOptions wraps the ent driver so every statement is counted per request,
// timed, and logged when slow.
func (m *Main) dbOptions() database.Options {
	return database.Options{Wrap: func(d dialect.Driver) dialect.Driver {
		return sqlstats.Wrap(d, m.Logger, func(time.Duration) { m.Metrics.SQLStatements.Inc() })
	}}
}

// persistedQueries keeps automatic persisted queries in the shared Redis, known
// to every process (nil: the server's in-memory default).
func persistedQueries(c *cache.Cache) graphql.Cache[string] {
	if pq := c.PersistedQueries(); pq != nil {
		return pq
	}
	return nil
}

func (m *Main) openEmbedded(ctx context.Context) error {
	dir := m.Config.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if m.Config.SecretKey == "" {
		key, err := loadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			return err
		}
		m.Config.SecretKey = key
	}
	db, err := database.OpenSQLite(ctx, filepath.Join(dir, "ispgraph.db"), m.dbOptions())
	if err != nil {
		return err
	}
	m.DB = db
	if err := db.CreateSchema(ctx); err != nil {
		return err
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("embedded redis: %w", err)
	}
	m.miniredis = mr
	m.Redis = redis.NewClient(config.QuietRedis(&redis.Options{Addr: mr.Addr()}))
	m.redisURL = "redis://" + mr.Addr()
	box, err := m.secretBox()
	if err != nil {
		return err
	}
	m.Secrets = box
	opts := demoOptions(m.Config.DemoPassword)
	opts.Encrypt = box.Seal
	res, err := seed.Demo(ctx, db.Client, opts)
	if err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	m.demo = res
	return nil
}

// loadOrCreateKey returns the embedded default's secret key, creating it once.
func loadOrCreateKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("secret key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	key := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("secret key: %w", err)
	}
	return key, nil
}

// Listen binds the configured address (":0" picks a free port; see Addr).
func (m *Main) Listen() error {
	ln, err := net.Listen("tcp", m.Config.ListenAddr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.ListenAddr(), err)
	}
	m.listener = ln
	key, err := m.Config.SecretKeyBytes()
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvSecretKey, err)
	}
	h := server.Handler(server.Options{
		Client:           m.DB.Client,
		Auth:             m.Auth,
		Tenants:          m.Tenants,
		Billing:          m.Billing,
		Mikrotik:         m.Mikrotik,
		Secrets:          m.Secrets,
		Gateways:         m.Gateways,
		IDs:              m.IDs,
		Online:           m.Online,
		PartnerWebhooks:  m.Webhooks,
		Webhooks:         &gateway.Webhooks{Client: m.DB.Client, IDs: m.IDs, Gateways: m.Gateways, Billing: m.Billing, Logger: m.Logger},
		Audit:            m.Audit,
		Catalog:          m.Catalog,
		Cache:            m.Cache,
		Warmers:          m.Warmers,
		PersistedQueries: persistedQueries(m.Cache),
		Dashboards:       m.Dashboards,
		Logger:           m.Logger,
		Metrics:          m.Metrics,
		Jobs:             m.Monitor,
		JobsUI:           m.JobsUI,
		JobsUIKey:        key,
		ReadyChecks:      m.readyChecks(),
		ComplexityLimit:  m.Config.ComplexityLimit,
		DepthLimit:       m.Config.DepthLimit,
		FastReads:        m.Config.FastReads,
		FastReadsJoin:    m.DB.Dialect == dialect.Postgres,
		DefaultPageSize:  m.Config.DefaultPageSize,
		MaxPageSize:      m.Config.MaxPageSize,
		MaxBodyBytes:     int64(m.Config.MaxBodyBytes),
		MetricsToken:     m.Config.MetricsToken,
		Introspection:    m.Config.IntrospectionMode(),
		CORSOrigins:      server.ParseOrigins(m.Config.CORSOrigins),
		Events:           m.Events,
	})
	// ReadTimeout covers the body too: a client sending a byte a second
	// cannot hold a connection (and a goroutine) for longer.
	m.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: m.Config.ReadTimeout, IdleTimeout: 2 * time.Minute}
	if err := m.listenPprof(); err != nil {
		return err
	}
	m.announce()
	return nil
}

// listenPprof serves Go's profiling endpoints on the loopback address
// ISPGRAPH_PPROF_ADDR when it is set (the benchmark's profiles,
// docs/benchmarks.md); config.Validate refuses any other address.
func (m *Main) listenPprof() error {
	if m.Config.PprofAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.Config.PprofAddr)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvPprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.pprof.Serve(ln) }()
	fmt.Fprintf(m.Stdout, "  pprof:      http://%s/debug/pprof/\n", ln.Addr())
	return nil
}

// secretBox opens the AES-256-GCM box for secrets at rest under
// ISPGRAPH_SECRET_KEY (and ISPGRAPH_SECRET_KEY_PREVIOUS during a rotation).
func (m *Main) secretBox() (*secret.Box, error) {
	key, err := m.Config.SecretKeyBytes()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvSecretKey, err)
	}
	prev, err := m.Config.PreviousKeyBytes()
	if err != nil {
		return nil, err
	}
	return secret.New(key, prev...)
}

// idCodec builds the codec of the API's opaque ids under ISPGRAPH_SECRET_KEY;
// ids issued under ISPGRAPH_SECRET_KEY_PREVIOUS are still accepted.
func (m *Main) idCodec() (*gid.Codec, error) {
	key, err := m.Config.SecretKeyBytes()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvSecretKey, err)
	}
	prev, err := m.Config.PreviousKeyBytes()
	if err != nil {
		return nil, err
	}
	return gid.New(key, prev...)
}

// Addr is the address the server listens on.
func (m *Main) Addr() string { return m.listener.Addr().String() }

// URL is the base URL of the server, for people and tests.
func (m *Main) URL() string {
	host, port, _ := net.SplitHostPort(m.Addr())
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Serve answers requests until ctx ends, then shuts down gracefully.
func (m *Main) Serve(ctx context.Context) error {
	if m.Config.Workers {
		if err := m.StartWorkers(); err != nil {
			return err
		}
	} else {
		m.Logger.Info("job workers are off in this process (" + config.EnvWorkers + "=false): run `ispgraph worker`")
	}
	errc := make(chan error, 1)
	go func() { errc <- m.http.Serve(m.listener) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	m.Logger.Info("shutting down", "timeout", m.Config.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	if err := m.http.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	m.StopWorkers()
	m.Logger.Info("stopped")
	return nil
}

func (m *Main) announce() {
	fmt.Fprintf(m.Stdout, "ispgraph is listening on %s\n", m.URL())
	fmt.Fprintf(m.Stdout, "  playground: %s/\n  graphql:    %s/graphql\n", m.URL(), m.URL())
	if m.Config.Embedded() {
		fmt.Fprintf(m.Stdout, "  mode:       embedded default (data in %s; set DATABASE_URL and REDIS_URL for production)\n", m.Config.DataDir)
		if m.demo.Created {
			fmt.Fprintf(m.Stdout, "  demo login: tenant %q, %s", seed.DemoSlug, m.demo.AdminEmail)
			if m.demo.Password != "" {
				fmt.Fprintf(m.Stdout, " / %s (generated once: note it; set ISPGRAPH_DEMO_PASSWORD to choose it)", m.demo.Password)
			}
			fmt.Fprintln(m.Stdout)
		} else {
			fmt.Fprintf(m.Stdout, "  demo login: tenant \"demo\", admin@demo.example (password as printed on first start, or ISPGRAPH_DEMO_PASSWORD)\n")
		}
	}
}

// Close releases everything Open and Listen acquired.
func (m *Main) Close() error {
	if m.http != nil {
		m.http.Close()
	}
	if m.pprof != nil {
		m.pprof.Close()
	}
	if m.Mikrotik != nil && m.Mikrotik.Pool != nil {
		m.Mikrotik.Pool.Close()
	}
	if m.Cache != nil {
		m.Cache.Close()
	}
	if m.Events != nil {
		m.Events.Close()
	}
	for _, p := range []*redigo.Pool{m.Jobs, m.MonitorRedis, m.JobsUI} {
		if p != nil {
			p.Close()
		}
	}
	if m.Redis != nil {
		m.Redis.Close()
	}
	if m.miniredis != nil {
		m.miniredis.Close()
	}
	if m.DB != nil {
		return m.DB.Close()
	}
	return nil
}

// roles converts the default role catalogue for the seeder.
func roles() []seed.RoleSpec {
	var out []seed.RoleSpec
	for _, r := range authz.DefaultRoles() {
		out = append(out, seed.RoleSpec(r))
	}
	return out
}

// demoOptions are the demo tenant's seeding options.
func demoOptions(password string) seed.DemoOptions {
	return seed.DemoOptions{Password: password, HashPassword: auth.HashPassword, Roles: roles()}
}
