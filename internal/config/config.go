// Package config owns the process configuration: reading it from the environment, letting
// command-line flags override it, validating it, and redacting it for the startup log.
package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by FromEnv.
const (
	EnvAddr            = "ISPGRAPH_ADDR"
	EnvDatabaseURL     = "DATABASE_URL"
	EnvRedisURL        = "REDIS_URL"
	EnvReplicaURL      = "DATABASE_REPLICA_URL"
	EnvReplicaMaxLag   = "ISPGRAPH_REPLICA_MAX_LAG"
	EnvSecretKey       = "ISPGRAPH_SECRET_KEY"
	EnvDataDir         = "ISPGRAPH_DATA_DIR"
	EnvDemoPassword    = "ISPGRAPH_DEMO_PASSWORD"
	EnvLogFormat       = "ISPGRAPH_LOG_FORMAT"
	EnvLogLevel        = "ISPGRAPH_LOG_LEVEL"
	EnvTokenTTL        = "ISPGRAPH_TOKEN_TTL"
	EnvWorkers         = "ISPGRAPH_WORKERS"
	EnvJobNamespace    = "ISPGRAPH_JOB_NAMESPACE"
	EnvShutdownTimeout = "ISPGRAPH_SHUTDOWN_TIMEOUT"
	EnvComplexityLimit = "ISPGRAPH_COMPLEXITY_LIMIT"
	EnvDepthLimit      = "ISPGRAPH_DEPTH_LIMIT"
	EnvFastReads       = "ISPGRAPH_FAST_READS"
	EnvMaxPageSize     = "ISPGRAPH_MAX_PAGE_SIZE"
	EnvDefaultPageSize = "ISPGRAPH_DEFAULT_PAGE_SIZE"
	EnvPreviousKeys    = "ISPGRAPH_SECRET_KEY_PREVIOUS"
	EnvOperatorKeys    = "ISPGRAPH_OPERATOR_KEYS"
	EnvAPIRateLimit    = "ISPGRAPH_API_RATE_LIMIT"
	EnvLoginRateLimit  = "ISPGRAPH_LOGIN_RATE_LIMIT"
	EnvCachePrefix     = "ISPGRAPH_CACHE_PREFIX"
	EnvCacheTTL        = "ISPGRAPH_CACHE_TTL"
	EnvMaxBodyBytes    = "ISPGRAPH_MAX_BODY_BYTES"
	EnvReadTimeout     = "ISPGRAPH_READ_TIMEOUT"
	EnvMetricsToken    = "ISPGRAPH_METRICS_TOKEN"
	EnvIntrospection   = "ISPGRAPH_INTROSPECTION"
	EnvPprofAddr       = "ISPGRAPH_PPROF_ADDR"

	EnvWorkerConcurrency   = "ISPGRAPH_WORKER_CONCURRENCY"
	EnvPaymentConcurrency  = "ISPGRAPH_PAYMENT_CONCURRENCY"
	EnvWorkerAddr          = "ISPGRAPH_WORKER_ADDR"
	EnvSMTPHost            = "ISPGRAPH_SMTP_HOST"
	EnvSMTPPort            = "ISPGRAPH_SMTP_PORT"
	EnvSMTPUsername        = "ISPGRAPH_SMTP_USERNAME"
	EnvSMTPPassword        = "ISPGRAPH_SMTP_PASSWORD"
	EnvSMTPFrom            = "ISPGRAPH_SMTP_FROM"
	EnvSMTPStartTLS        = "ISPGRAPH_SMTP_STARTTLS"
	EnvStaffSetupURL       = "ISPGRAPH_STAFF_SETUP_URL"
	EnvCORSOrigins         = "ISPGRAPH_CORS_ORIGINS"
	EnvSMSBatchSize        = "ISPGRAPH_SMS_BATCH_SIZE"
	EnvSMSRatePerSecond    = "ISPGRAPH_SMS_RATE"
	EnvStripeBaseURL       = "ISPGRAPH_STRIPE_BASE_URL"
	EnvSSLCommerzBaseURL   = "ISPGRAPH_SSLCOMMERZ_BASE_URL"
	EnvBKashBaseURL        = "ISPGRAPH_BKASH_BASE_URL"
	EnvSchedules           = "ISPGRAPH_SCHEDULES"
	EnvOutboxReopenAfter   = "ISPGRAPH_OUTBOX_REOPEN_AFTER"
	EnvWebhookAllowPrivate = "ISPGRAPH_WEBHOOK_ALLOW_PRIVATE"
	EnvWebhookAttempts     = "ISPGRAPH_WEBHOOK_ATTEMPTS"
	EnvWebhookRetryBase    = "ISPGRAPH_WEBHOOK_RETRY_BASE"
	EnvWebhookTimeout      = "ISPGRAPH_WEBHOOK_TIMEOUT"
)

// SecretKeySize is the length in bytes the decoded secret key must have.
const SecretKeySize = 32

// redactedValue replaces secrets in Redacted, matching net/url's URL.Redacted.
const redactedValue = "xxxxx"

// Config is the configuration of one ispgraph process.
type Config struct {
	// Addr is the HTTP listen address; empty means ListenAddr's default.
	Addr string
	// DatabaseURL is the Postgres URL; empty (with RedisURL empty) selects the embedded default.
	DatabaseURL string
	// RedisURL is the Redis URL for cache and jobs; empty (with DatabaseURL empty) selects the embedded default.
	RedisURL string
	// ReplicaURL, when set, is a streaming replica of DatabaseURL that serves
	// reads marked lag-tolerant (lists, dashboards, reports; docs/scaling.md).
	ReplicaURL string
	// ReplicaMaxLag is how far behind the primary the replica may be and
	// still serve, and how long a caller's own writes keep its reads on the
	// primary (read-your-writes).
	ReplicaMaxLag time.Duration
	// SecretKey is 32 bytes, base64 or hex encoded, that encrypts stored secrets and signs tokens.
	SecretKey string
	// DataDir holds the embedded default's SQLite database and other local state.
	DataDir string
	// DemoPassword, when set, is the password of seeded demo users.
	DemoPassword string
	// LogFormat is "text" or "json".
	LogFormat string
	// LogLevel is the minimum level logged.
	LogLevel slog.Level
	// TokenTTL is how long an issued session token stays valid.
	TokenTTL time.Duration
	// Workers runs the job workers inside the server process.
	Workers bool
	// JobNamespace prefixes every job queue key in Redis.
	JobNamespace string
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration
	// ComplexityLimit is the largest GraphQL query complexity accepted.
	ComplexityLimit int
	// DepthLimit is the deepest GraphQL selection accepted.
	DepthLimit int
	// FastReads answers the partner read queries (connections of subscribers
	// and invoices, node on a subscriber) with the planned executor
	// (graph.WithFastReads) instead of gqlgen's per-field one; off, gqlgen
	// answers every request.
	FastReads bool
	// MaxPageSize is the largest page a connection field returns.
	MaxPageSize int
	// DefaultPageSize is the page size when a query gives neither first nor last.
	DefaultPageSize int
	// PreviousKeys are earlier secret keys (comma-separated, hex or base64),
	// still accepted for reading while secrets are resealed after a rotation.
	PreviousKeys string
	// OperatorKeys lists platform operators' keys as name:sha256hex, comma-separated.
	OperatorKeys string
	// APIRateLimit is API calls per minute per credential unless the tenant or key says otherwise.
	APIRateLimit int
	// LoginRateLimit is login attempts per minute per account and address.
	LoginRateLimit int
	// CachePrefix starts every cache key in Redis.
	CachePrefix string
	// CacheTTL overrides cache TTL classes, e.g. "packages=10m,dashboard=1m" (see docs/caching.md).
	CacheTTL string
	// MaxBodyBytes is the largest GraphQL request body read; a larger one is refused with 413.
	MaxBodyBytes int
	// Introspection is who may introspect the GraphQL schema: "all", "authenticated" or "off";
	// empty means "all" on the embedded default and "authenticated" in production.
	Introspection string
	// MetricsToken, when set, is the bearer token GET /metrics requires.
	MetricsToken string
	// ReadTimeout bounds reading one request, headers and body, so a slow sender cannot hold a connection.
	ReadTimeout time.Duration
	// PprofAddr, when set, is a loopback address where `serve` answers Go's
	// profiling endpoints (/debug/pprof/), for the benchmark (docs/benchmarks.md).
	PprofAddr string

	// WorkerConcurrency is the number of general job workers per process.
	WorkerConcurrency int
	// PaymentConcurrency is the number of high-priority payment job workers per process.
	PaymentConcurrency int
	// WorkerAddr is where `ispgraph worker` serves /healthz, /readyz and /metrics.
	WorkerAddr string
	// SMTPHost is the mail relay for invoice e-mail; empty disables sending (jobs fail and retry).
	SMTPHost string
	// SMTPPort is the mail relay's port (587 with STARTTLS, 25 without).
	SMTPPort int
	// SMTPUsername and SMTPPassword authenticate (PLAIN) to the relay when set.
	SMTPUsername string
	// SMTPPassword is the relay password.
	SMTPPassword string
	// SMTPFrom is the sender address of invoice e-mail.
	SMTPFrom string
	// SMTPStartTLS requires STARTTLS before authenticating and sending.
	SMTPStartTLS bool
	// StaffSetupURL is the page staff invitation and password-reset e-mails
	// link to (the one-time token is appended as ?token=); empty: the e-mail
	// carries the token for acceptInvite.
	StaffSetupURL string
	// CORSOrigins lists, comma-separated, the browser origins allowed to call
	// the API (e.g. "https://portal.acme.example"); empty allows none.
	CORSOrigins string
	// SMSBatchSize is how many recipients a bulk SMS job sends per batch.
	SMSBatchSize int
	// SMSRatePerSecond limits messages per second sent to a tenant's SMS provider.
	SMSRatePerSecond int
	// StripeBaseURL is the Stripe API base URL payments are verified against.
	StripeBaseURL string
	// SSLCommerzBaseURL is the SSLCommerz base URL of its validation API.
	SSLCommerzBaseURL string
	// BKashBaseURL is bKash's tokenized checkout API root, version included.
	BKashBaseURL string
	// Schedules overrides periodic jobs' cron specs (with seconds), as
	// "JobName=spec;JobName=spec"; empty keeps every default (docs/jobs.md).
	Schedules string
	// OutboxReopenAfter, when positive, replaces each job's derived bound
	// (jobs.Spec.EffectBound) after which the outbox sweeper enqueues a job
	// whose effect is not done again; a job's timeout is the floor. Zero keeps
	// the derived bounds (docs/jobs.md).
	OutboxReopenAfter time.Duration
	// WebhookAllowPrivate lets partner webhook endpoints use plain HTTP and
	// loopback, private and link-local addresses (tests, the soak, on-premises
	// installations); off, only HTTPS to public addresses is allowed, checked
	// at registration and again when each request dials.
	WebhookAllowPrivate bool
	// WebhookAttempts is how many automatic attempts a webhook delivery gets
	// before it is FAILED.
	WebhookAttempts int
	// WebhookRetryBase is the wait after a delivery's first failed attempt;
	// each later wait is three times the previous one, at most 12 hours.
	WebhookRetryBase time.Duration
	// WebhookTimeout bounds one webhook request, answer included.
	WebhookTimeout time.Duration
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		DataDir:         "./data",
		ReplicaMaxLag:   5 * time.Second,
		LogFormat:       "text",
		LogLevel:        slog.LevelInfo,
		TokenTTL:        24 * time.Hour,
		Workers:         true,
		JobNamespace:    "ispgraph",
		ShutdownTimeout: 15 * time.Second,
		ComplexityLimit: 30000,
		DepthLimit:      10,
		FastReads:       true,
		MaxPageSize:     500,
		DefaultPageSize: 50,
		APIRateLimit:    60,
		LoginRateLimit:  5,
		CachePrefix:     "ispgraph:cache:",
		MaxBodyBytes:    1 << 20,
		ReadTimeout:     30 * time.Second,

		WorkerConcurrency:  2,
		PaymentConcurrency: 1,
		WorkerAddr:         "127.0.0.1:9090",
		SMTPPort:           587,
		SMTPFrom:           "billing@ispgraph.invalid",
		SMTPStartTLS:       true,
		SMSBatchSize:       50,
		SMSRatePerSecond:   10,
		StripeBaseURL:      "https://api.stripe.com",
		SSLCommerzBaseURL:  "https://securepay.sslcommerz.com",
		BKashBaseURL:       "https://tokenized.pay.bka.sh/v1.2.0-beta",
		WebhookAttempts:    8,
		WebhookRetryBase:   time.Minute,
		WebhookTimeout:     10 * time.Second,
	}
}

// FromEnv returns Default overridden by every variable getenv reports non-empty; it reports
// values that do not parse but leaves the rest of checking to Validate.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Default()
	var errs []error
	str := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	parse := func(key string, set func(string) error) {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return
		}
		if err := set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
	}
	duration := func(dst *time.Duration, key string) {
		parse(key, func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return errors.New("not a duration (e.g. 24h, 90s)")
			}
			*dst = d
			return nil
		})
	}
	integer := func(dst *int, key string) {
		parse(key, func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errors.New("not an integer")
			}
			*dst = n
			return nil
		})
	}

	str(&c.Addr, EnvAddr)
	str(&c.DatabaseURL, EnvDatabaseURL)
	str(&c.RedisURL, EnvRedisURL)
	str(&c.ReplicaURL, EnvReplicaURL)
	duration(&c.ReplicaMaxLag, EnvReplicaMaxLag)
	str(&c.SecretKey, EnvSecretKey)
	str(&c.DataDir, EnvDataDir)
	str(&c.DemoPassword, EnvDemoPassword)
	str(&c.LogFormat, EnvLogFormat)
	str(&c.JobNamespace, EnvJobNamespace)
	str(&c.PreviousKeys, EnvPreviousKeys)
	str(&c.OperatorKeys, EnvOperatorKeys)
	integer(&c.APIRateLimit, EnvAPIRateLimit)
	integer(&c.LoginRateLimit, EnvLoginRateLimit)
	str(&c.CachePrefix, EnvCachePrefix)
	str(&c.CacheTTL, EnvCacheTTL)
	parse(EnvLogLevel, func(v string) error {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return errors.New("not a log level (debug, info, warn, error)")
		}
		return nil
	})
	parse(EnvWorkers, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("not a boolean (true, false)")
		}
		c.Workers = b
		return nil
	})
	duration(&c.TokenTTL, EnvTokenTTL)
	duration(&c.ShutdownTimeout, EnvShutdownTimeout)
	duration(&c.ReadTimeout, EnvReadTimeout)
	integer(&c.MaxBodyBytes, EnvMaxBodyBytes)
	str(&c.MetricsToken, EnvMetricsToken)
	str(&c.PprofAddr, EnvPprofAddr)
	str(&c.Introspection, EnvIntrospection)
	integer(&c.ComplexityLimit, EnvComplexityLimit)
	integer(&c.DepthLimit, EnvDepthLimit)
	parse(EnvFastReads, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("not a boolean (true, false)")
		}
		c.FastReads = b
		return nil
	})
	integer(&c.MaxPageSize, EnvMaxPageSize)
	integer(&c.DefaultPageSize, EnvDefaultPageSize)
	integer(&c.WorkerConcurrency, EnvWorkerConcurrency)
	integer(&c.PaymentConcurrency, EnvPaymentConcurrency)
	str(&c.WorkerAddr, EnvWorkerAddr)
	str(&c.SMTPHost, EnvSMTPHost)
	integer(&c.SMTPPort, EnvSMTPPort)
	str(&c.SMTPUsername, EnvSMTPUsername)
	str(&c.SMTPPassword, EnvSMTPPassword)
	str(&c.SMTPFrom, EnvSMTPFrom)
	str(&c.StaffSetupURL, EnvStaffSetupURL)
	str(&c.CORSOrigins, EnvCORSOrigins)
	parse(EnvSMTPStartTLS, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("not a boolean (true, false)")
		}
		c.SMTPStartTLS = b
		return nil
	})
	integer(&c.SMSBatchSize, EnvSMSBatchSize)
	integer(&c.SMSRatePerSecond, EnvSMSRatePerSecond)
	str(&c.StripeBaseURL, EnvStripeBaseURL)
	str(&c.SSLCommerzBaseURL, EnvSSLCommerzBaseURL)
	str(&c.BKashBaseURL, EnvBKashBaseURL)
	str(&c.Schedules, EnvSchedules)
	duration(&c.OutboxReopenAfter, EnvOutboxReopenAfter)
	parse(EnvWebhookAllowPrivate, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("not a boolean (true, false)")
		}
		c.WebhookAllowPrivate = b
		return nil
	})
	integer(&c.WebhookAttempts, EnvWebhookAttempts)
	duration(&c.WebhookRetryBase, EnvWebhookRetryBase)
	duration(&c.WebhookTimeout, EnvWebhookTimeout)
	return c, errors.Join(errs...)
}

// Group is a set of settings a command may take as flags.
type Group uint

// The groups of settings.
const (
	Database Group = 1 << iota // -database-url
	Redis                      // -redis-url
	Embedded                   // -data-dir, the embedded default's data
	Logging                    // -log-format, -log-level
	Process                    // -shutdown-timeout
	HTTP                       // the API server: -addr, limits, CORS, token lifetime
	Jobs                       // queues and workers: namespace, concurrency, schedules
	Cache                      // -cache-prefix, -cache-ttl
	Effects                    // the outside world: SMTP, SMS, payment providers, mail links
	Stores   = Database | Redis | Embedded
	All      = Stores | Logging | Process | HTTP | Jobs | Cache | Effects
)

// flagGroups puts every flag in its group (TestEveryFlagHasAGroup).
var flagGroups = map[string]Group{
	"database-url": Database, "redis-url": Redis, "data-dir": Embedded,
	"log-format": Logging, "log-level": Logging,
	"shutdown-timeout": Process,
	"addr":             HTTP, "token-ttl": HTTP, "complexity-limit": HTTP, "depth-limit": HTTP, "fast-reads": HTTP,
	"max-page-size": HTTP, "default-page-size": HTTP, "cors-origins": HTTP,
	"workers": Jobs, "job-namespace": Jobs, "worker-concurrency": Jobs, "payment-concurrency": Jobs,
	"worker-addr": Jobs, "schedules": Jobs, "outbox-reopen-after": Jobs,
	"cache-prefix": Cache, "cache-ttl": Cache,
	"smtp-host": Effects, "smtp-port": Effects, "smtp-username": Effects, "smtp-from": Effects,
	"smtp-starttls": Effects, "staff-setup-url": Effects, "sms-batch-size": Effects, "sms-rate": Effects,
	"stripe-base-url": Effects, "sslcommerz-base-url": Effects, "bkash-base-url": Effects,
	// Registration (API) and delivery (workers) both check endpoint URLs.
	"webhook-allow-private": HTTP | Effects, "webhook-attempts": Effects, "webhook-retry-base": Effects,
	"webhook-timeout": Effects,
	// The read replica serves the API's lists and the workers' reports.
	"database-replica-url": HTTP | Jobs, "replica-max-lag": HTTP | Jobs,
}

// RegisterFlags defines a flag for every setting on fs (see RegisterFlagsFor).
func (c *Config) RegisterFlags(fs *flag.FlagSet) { c.RegisterFlagsFor(fs, All) }

// RegisterFlagsFor defines a flag for each setting of the groups g on fs,
// defaulting to c's current values so flags override the environment. A
// command registers the groups it uses, so its -help lists only those; the
// environment still configures everything.
func (c *Config) RegisterFlagsFor(fs *flag.FlagSet, g Group) {
	every := flag.NewFlagSet("", flag.ContinueOnError)
	c.registerAll(every)
	every.VisitAll(func(f *flag.Flag) {
		if flagGroups[f.Name]&g != 0 {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
}

// registerAll defines every setting's flag. The secret key and demo password
// have no flag: a command line is visible to every user of the host.
func (c *Config) registerAll(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen address; default 127.0.0.1:8080 for the embedded default, :8080 otherwise ("+EnvAddr+")")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "Postgres URL; empty with -redis-url empty runs the embedded default ("+EnvDatabaseURL+")")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis URL ("+EnvRedisURL+")")
	fs.StringVar(&c.ReplicaURL, "database-replica-url", c.ReplicaURL, "Postgres streaming replica for lag-tolerant reads; empty: every read goes to the primary ("+EnvReplicaURL+")")
	fs.DurationVar(&c.ReplicaMaxLag, "replica-max-lag", c.ReplicaMaxLag, "how far behind the replica may be and still serve, and how long a caller's writes keep its reads on the primary ("+EnvReplicaMaxLag+")")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the embedded default's data ("+EnvDataDir+")")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json ("+EnvLogFormat+")")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "minimum log level: debug, info, warn, error ("+EnvLogLevel+")")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "session token lifetime ("+EnvTokenTTL+")")
	fs.BoolVar(&c.Workers, "workers", c.Workers, "run job workers in this process ("+EnvWorkers+")")
	fs.StringVar(&c.JobNamespace, "job-namespace", c.JobNamespace, "Redis key prefix for job queues ("+EnvJobNamespace+")")
	fs.StringVar(&c.CachePrefix, "cache-prefix", c.CachePrefix, "Redis key prefix for the cache ("+EnvCachePrefix+")")
	fs.StringVar(&c.CacheTTL, "cache-ttl", c.CacheTTL, "cache TTL overrides, e.g. packages=10m,dashboard=1m ("+EnvCacheTTL+")")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "graceful shutdown limit ("+EnvShutdownTimeout+")")
	fs.IntVar(&c.ComplexityLimit, "complexity-limit", c.ComplexityLimit, "largest GraphQL query complexity accepted ("+EnvComplexityLimit+")")
	fs.IntVar(&c.DepthLimit, "depth-limit", c.DepthLimit, "deepest GraphQL selection accepted ("+EnvDepthLimit+")")
	fs.BoolVar(&c.FastReads, "fast-reads", c.FastReads, "answer the partner read queries with the planned executor ("+EnvFastReads+")")
	fs.IntVar(&c.MaxPageSize, "max-page-size", c.MaxPageSize, "largest connection page ("+EnvMaxPageSize+")")
	fs.IntVar(&c.DefaultPageSize, "default-page-size", c.DefaultPageSize, "page size when a query gives neither first nor last ("+EnvDefaultPageSize+")")
	fs.IntVar(&c.WorkerConcurrency, "worker-concurrency", c.WorkerConcurrency, "general job workers per process ("+EnvWorkerConcurrency+")")
	fs.IntVar(&c.PaymentConcurrency, "payment-concurrency", c.PaymentConcurrency, "payment job workers per process ("+EnvPaymentConcurrency+")")
	fs.StringVar(&c.WorkerAddr, "worker-addr", c.WorkerAddr, "address the worker command serves /healthz, /readyz and /metrics on ("+EnvWorkerAddr+")")
	fs.StringVar(&c.SMTPHost, "smtp-host", c.SMTPHost, "SMTP relay host for invoice e-mail ("+EnvSMTPHost+")")
	fs.IntVar(&c.SMTPPort, "smtp-port", c.SMTPPort, "SMTP relay port ("+EnvSMTPPort+")")
	fs.StringVar(&c.SMTPUsername, "smtp-username", c.SMTPUsername, "SMTP user; the password comes only from "+EnvSMTPPassword+" ("+EnvSMTPUsername+")")
	fs.StringVar(&c.SMTPFrom, "smtp-from", c.SMTPFrom, "sender address of invoice e-mail ("+EnvSMTPFrom+")")
	fs.BoolVar(&c.SMTPStartTLS, "smtp-starttls", c.SMTPStartTLS, "require STARTTLS ("+EnvSMTPStartTLS+")")
	fs.StringVar(&c.CORSOrigins, "cors-origins", c.CORSOrigins, "browser origins allowed to call the API, comma-separated ("+EnvCORSOrigins+")")
	fs.StringVar(&c.StaffSetupURL, "staff-setup-url", c.StaffSetupURL, "page staff invitation e-mails link to ("+EnvStaffSetupURL+")")
	fs.IntVar(&c.SMSBatchSize, "sms-batch-size", c.SMSBatchSize, "recipients per bulk SMS batch ("+EnvSMSBatchSize+")")
	fs.IntVar(&c.SMSRatePerSecond, "sms-rate", c.SMSRatePerSecond, "SMS messages per second per tenant ("+EnvSMSRatePerSecond+")")
	fs.StringVar(&c.StripeBaseURL, "stripe-base-url", c.StripeBaseURL, "Stripe API base URL ("+EnvStripeBaseURL+")")
	fs.StringVar(&c.SSLCommerzBaseURL, "sslcommerz-base-url", c.SSLCommerzBaseURL, "SSLCommerz base URL ("+EnvSSLCommerzBaseURL+")")
	fs.StringVar(&c.BKashBaseURL, "bkash-base-url", c.BKashBaseURL, "bKash tokenized checkout base URL, version included ("+EnvBKashBaseURL+")")
	fs.StringVar(&c.Schedules, "schedules", c.Schedules, "periodic job schedule overrides, e.g. \"MarkOverdueInvoices=*/15 * * * * *;SyncRouterSessions=*/10 * * * * *\" ("+EnvSchedules+")")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", c.WebhookAllowPrivate, "allow partner webhook endpoints on plain HTTP and on loopback, private and link-local addresses ("+EnvWebhookAllowPrivate+")")
	fs.IntVar(&c.WebhookAttempts, "webhook-attempts", c.WebhookAttempts, "automatic attempts per webhook delivery before it is FAILED ("+EnvWebhookAttempts+")")
	fs.DurationVar(&c.WebhookRetryBase, "webhook-retry-base", c.WebhookRetryBase, "wait after a webhook delivery's first failure; each later wait triples, at most 12h ("+EnvWebhookRetryBase+")")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "time limit of one webhook request ("+EnvWebhookTimeout+")")
	fs.DurationVar(&c.OutboxReopenAfter, "outbox-reopen-after", c.OutboxReopenAfter, "enqueue outbox jobs whose effect is not done again after this long instead of each job's derived bound; 0 keeps the derived bounds ("+EnvOutboxReopenAfter+")")
}

// ListenAddr is Addr with its default filled in: the embedded default prints
// its admin password at start-up and listens on loopback only
// (127.0.0.1:8080); a production server listens on every interface (:8080).
func (c Config) ListenAddr() string {
	switch {
	case c.Addr != "":
		return c.Addr
	case c.Embedded():
		return "127.0.0.1:8080"
	}
	return ":8080"
}

// IntrospectionMode is Introspection with its default filled in: anonymous
// callers may introspect the embedded default (a developer's machine), not a
// production server.
func (c Config) IntrospectionMode() string {
	switch {
	case c.Introspection != "":
		return c.Introspection
	case c.Embedded():
		return "all"
	}
	return "authenticated"
}

// Embedded reports whether the process runs the embedded default (SQLite and in-process
// Redis) because neither DatabaseURL nor RedisURL is set.
func (c Config) Embedded() bool {
	return c.DatabaseURL == "" && c.RedisURL == ""
}

// Validate reports every problem with c at once, each naming the variable to fix.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case c.DatabaseURL != "" && c.RedisURL == "":
		add("%s is set but %s is not: set both for a production server, or neither for the embedded default", EnvDatabaseURL, EnvRedisURL)
	case c.RedisURL != "" && c.DatabaseURL == "":
		add("%s is set but %s is not: set both for a production server, or neither for the embedded default", EnvRedisURL, EnvDatabaseURL)
	}
	if c.DatabaseURL != "" {
		if err := checkURL(c.DatabaseURL, "postgres", "postgresql"); err != nil {
			add("%s: %w", EnvDatabaseURL, err)
		}
	}
	if c.RedisURL != "" {
		if err := checkURL(c.RedisURL, "redis", "rediss", "unix"); err != nil {
			add("%s: %w", EnvRedisURL, err)
		}
	}
	if c.ReplicaURL != "" {
		if c.DatabaseURL == "" {
			add("%s is set but %s is not: a replica needs its primary", EnvReplicaURL, EnvDatabaseURL)
		}
		if err := checkURL(c.ReplicaURL, "postgres", "postgresql"); err != nil {
			add("%s: %w", EnvReplicaURL, err)
		}
	}
	if c.ReplicaMaxLag <= 0 {
		add("%s=%v: must be positive", EnvReplicaMaxLag, c.ReplicaMaxLag)
	}

	switch {
	case c.SecretKey == "" && !c.Embedded():
		add("%s is required when %s and %s are set: generate one with `openssl rand -base64 32`", EnvSecretKey, EnvDatabaseURL, EnvRedisURL)
	case c.SecretKey != "":
		if _, err := c.SecretKeyBytes(); err != nil {
			add("%s: %w", EnvSecretKey, err)
		}
	}

	if _, _, err := net.SplitHostPort(c.ListenAddr()); err != nil {
		add("%s=%q: want host:port, e.g. :8080", EnvAddr, c.Addr)
	}
	if c.PprofAddr != "" && !loopback(c.PprofAddr) {
		add("%s=%q: want a loopback host:port such as 127.0.0.1:6060 (profiles expose the process's memory)", EnvPprofAddr, c.PprofAddr)
	}
	if c.DataDir == "" {
		add("%s must not be empty", EnvDataDir)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("%s=%q: want text or json", EnvLogFormat, c.LogFormat)
	}
	if strings.TrimSpace(c.JobNamespace) == "" || strings.ContainsAny(c.JobNamespace, " \t\r\n") {
		add("%s=%q: want a non-empty name without spaces", EnvJobNamespace, c.JobNamespace)
	}
	if strings.TrimSpace(c.CachePrefix) == "" || strings.ContainsAny(c.CachePrefix, " \t\r\n") {
		add("%s=%q: want a non-empty prefix without spaces", EnvCachePrefix, c.CachePrefix)
	}
	if c.TokenTTL <= 0 {
		add("%s=%v: must be positive", EnvTokenTTL, c.TokenTTL)
	}
	if c.WebhookAttempts <= 0 {
		add("%s=%d: must be positive", EnvWebhookAttempts, c.WebhookAttempts)
	}
	if c.WebhookRetryBase <= 0 {
		add("%s=%v: must be positive", EnvWebhookRetryBase, c.WebhookRetryBase)
	}
	if c.WebhookTimeout <= 0 {
		add("%s=%v: must be positive", EnvWebhookTimeout, c.WebhookTimeout)
	}
	if c.OutboxReopenAfter < 0 {
		add("%s=%v: must be positive, or 0 for each job's derived bound", EnvOutboxReopenAfter, c.OutboxReopenAfter)
	}
	if c.ShutdownTimeout <= 0 {
		add("%s=%v: must be positive", EnvShutdownTimeout, c.ShutdownTimeout)
	}
	switch c.Introspection {
	case "", "all", "authenticated", "off":
	default:
		add("%s=%q: want all, authenticated or off", EnvIntrospection, c.Introspection)
	}
	if c.MaxBodyBytes <= 0 {
		add("%s=%d: must be positive", EnvMaxBodyBytes, c.MaxBodyBytes)
	}
	if c.ReadTimeout <= 0 {
		add("%s=%v: must be positive", EnvReadTimeout, c.ReadTimeout)
	}
	if c.ComplexityLimit <= 0 {
		add("%s=%d: must be positive", EnvComplexityLimit, c.ComplexityLimit)
	}
	if c.DepthLimit <= 0 {
		add("%s=%d: must be positive", EnvDepthLimit, c.DepthLimit)
	}
	if c.MaxPageSize <= 0 {
		add("%s=%d: must be positive", EnvMaxPageSize, c.MaxPageSize)
	}
	if c.DefaultPageSize <= 0 || c.DefaultPageSize > c.MaxPageSize {
		add("%s=%d: must be between 1 and %s (%d)", EnvDefaultPageSize, c.DefaultPageSize, EnvMaxPageSize, c.MaxPageSize)
	}
	if c.WorkerConcurrency <= 0 {
		add("%s=%d: must be positive", EnvWorkerConcurrency, c.WorkerConcurrency)
	}
	if c.PaymentConcurrency <= 0 {
		add("%s=%d: must be positive", EnvPaymentConcurrency, c.PaymentConcurrency)
	}
	if c.SMTPPort <= 0 || c.SMTPPort > 65535 {
		add("%s=%d: want a TCP port", EnvSMTPPort, c.SMTPPort)
	}
	if c.SMSBatchSize <= 0 {
		add("%s=%d: must be positive", EnvSMSBatchSize, c.SMSBatchSize)
	}
	if c.SMSRatePerSecond <= 0 {
		add("%s=%d: must be positive", EnvSMSRatePerSecond, c.SMSRatePerSecond)
	}
	for key, u := range map[string]string{EnvStripeBaseURL: c.StripeBaseURL, EnvSSLCommerzBaseURL: c.SSLCommerzBaseURL, EnvBKashBaseURL: c.BKashBaseURL} {
		if err := checkURL(u, "http", "https"); err != nil {
			add("%s: %w", key, err)
		}
	}
	return errors.Join(errs...)
}

// checkURL reports whether raw parses as a URL with one of schemes; errors never quote raw,
// which may hold a password.
func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	for _, s := range schemes {
		if strings.EqualFold(u.Scheme, s) {
			return nil
		}
	}
	return fmt.Errorf("scheme %q: want %s://", u.Scheme, strings.Join(schemes, ":// or "))
}

// PreviousKeyBytes decodes PreviousKeys (see SecretKeyBytes).
func (c Config) PreviousKeyBytes() ([][]byte, error) {
	var out [][]byte
	for _, k := range strings.Split(c.PreviousKeys, ",") {
		if strings.TrimSpace(k) == "" {
			continue
		}
		b, err := Config{SecretKey: k}.SecretKeyBytes()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvPreviousKeys, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// SecretKeyBytes decodes SecretKey from hex or base64 (standard or URL, padded or not) and
// checks it is SecretKeySize bytes.
func (c Config) SecretKeyBytes() ([]byte, error) {
	s := strings.TrimSpace(c.SecretKey)
	if s == "" {
		return nil, errors.New("not set")
	}
	if len(s) == hex.EncodedLen(SecretKeySize) {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != SecretKeySize {
			return nil, fmt.Errorf("decodes to %d bytes, want %d: generate one with `openssl rand -base64 32`", len(b), SecretKeySize)
		}
		return b, nil
	}
	return nil, fmt.Errorf("neither hex nor base64 of %d bytes: generate one with `openssl rand -base64 32`", SecretKeySize)
}

// Redacted returns every setting as a string for the startup log, with the secret key, the
// demo password and passwords inside URLs replaced by "xxxxx".
func (c Config) Redacted() map[string]string {
	secret := func(s string) string {
		if s == "" {
			return ""
		}
		return redactedValue
	}
	return map[string]string{
		"addr":              c.ListenAddr(),
		"database_url":      redactDSN(c.DatabaseURL),
		"redis_url":         redactDSN(c.RedisURL),
		"replica_url":       redactDSN(c.ReplicaURL),
		"replica_max_lag":   c.ReplicaMaxLag.String(),
		"secret_key":        secret(c.SecretKey),
		"data_dir":          c.DataDir,
		"demo_password":     secret(c.DemoPassword),
		"log_format":        c.LogFormat,
		"log_level":         c.LogLevel.String(),
		"token_ttl":         c.TokenTTL.String(),
		"workers":           strconv.FormatBool(c.Workers),
		"job_namespace":     c.JobNamespace,
		"shutdown_timeout":  c.ShutdownTimeout.String(),
		"complexity_limit":  strconv.Itoa(c.ComplexityLimit),
		"depth_limit":       strconv.Itoa(c.DepthLimit),
		"fast_reads":        strconv.FormatBool(c.FastReads),
		"max_page_size":     strconv.Itoa(c.MaxPageSize),
		"default_page_size": strconv.Itoa(c.DefaultPageSize),
		"previous_keys":     secret(c.PreviousKeys),
		"operator_keys":     secret(c.OperatorKeys),
		"api_rate_limit":    strconv.Itoa(c.APIRateLimit),
		"login_rate_limit":  strconv.Itoa(c.LoginRateLimit),
		"cache_prefix":      c.CachePrefix,
		"cache_ttl":         c.CacheTTL,
		"max_body_bytes":    strconv.Itoa(c.MaxBodyBytes),
		"read_timeout":      c.ReadTimeout.String(),
		"metrics_token":     secret(c.MetricsToken),
		"pprof_addr":        c.PprofAddr,
		"introspection":     c.IntrospectionMode(),
		"embedded":          strconv.FormatBool(c.Embedded()),

		"worker_concurrency":    strconv.Itoa(c.WorkerConcurrency),
		"payment_concurrency":   strconv.Itoa(c.PaymentConcurrency),
		"worker_addr":           c.WorkerAddr,
		"smtp_host":             c.SMTPHost,
		"smtp_port":             strconv.Itoa(c.SMTPPort),
		"smtp_username":         c.SMTPUsername,
		"smtp_password":         secret(c.SMTPPassword),
		"smtp_from":             c.SMTPFrom,
		"smtp_starttls":         strconv.FormatBool(c.SMTPStartTLS),
		"staff_setup_url":       c.StaffSetupURL,
		"cors_origins":          c.CORSOrigins,
		"sms_batch_size":        strconv.Itoa(c.SMSBatchSize),
		"sms_rate":              strconv.Itoa(c.SMSRatePerSecond),
		"stripe_base_url":       c.StripeBaseURL,
		"sslcommerz_base_url":   c.SSLCommerzBaseURL,
		"bkash_base_url":        c.BKashBaseURL,
		"schedules":             c.Schedules,
		"outbox_reopen_after":   c.OutboxReopenAfter.String(),
		"webhook_allow_private": strconv.FormatBool(c.WebhookAllowPrivate),
		"webhook_attempts":      strconv.Itoa(c.WebhookAttempts),
		"webhook_retry_base":    c.WebhookRetryBase.String(),
		"webhook_timeout":       c.WebhookTimeout.String(),
	}
}

// redactDSN hides the password of a URL (user info or a password query parameter) or of a
// libpq key=value string; anything it cannot parse is hidden whole.
func redactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if !strings.Contains(dsn, "://") {
		return redactKeyValueDSN(dsn)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return redactedValue
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", redactedValue)
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// redactKeyValueDSN hides the value of password in "host=db user=u password='p w'".
func redactKeyValueDSN(dsn string) string {
	var out strings.Builder
	rest := dsn
	for rest != "" {
		// Copy whitespace between pairs as is.
		i := 0
		for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t' || rest[i] == '\n') {
			i++
		}
		out.WriteString(rest[:i])
		rest = rest[i:]
		if rest == "" {
			break
		}
		key, _, hasEq := strings.Cut(rest, "=")
		if !hasEq || strings.ContainsAny(key, " \t\n") {
			// Not key=value: we cannot tell where a secret might be.
			return redactedValue
		}
		valStart := len(key) + 1
		end := valueEnd(rest, valStart)
		if end < 0 {
			return redactedValue
		}
		if strings.TrimSpace(key) == "password" {
			out.WriteString(rest[:valStart] + redactedValue)
		} else {
			out.WriteString(rest[:end])
		}
		rest = rest[end:]
	}
	return out.String()
}

// valueEnd returns the index in s just past the value starting at start: a single-quoted
// string with backslash escapes, or a run of non-space characters; -1 for an unclosed quote.
func valueEnd(s string, start int) int {
	if start < len(s) && s[start] == '\'' {
		for i := start + 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '\'':
				return i + 1
			}
		}
		return -1
	}
	i := start
	for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' {
		i++
	}
	return i
}

// loopback reports whether addr is host:port with a loopback host.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
