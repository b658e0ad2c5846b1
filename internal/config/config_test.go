package config

import (
	"encoding/base64"
	"flag"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over a fixed map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// The same 32-byte key, raw and in the two encodings operators use.
const (
	key32  = "0123456789abcdef0123456789abcdef"
	keyB64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	keyHex = "3031323334353637383961626364656630313233343536373839616263646566"
)

// prodEnv is a valid production environment.
func prodEnv() map[string]string {
	return map[string]string{
		EnvDatabaseURL: "postgres://ispgraph:hunter2@db:5432/ispgraph",
		EnvRedisURL:    "redis://:s3cret@redis:6379/0",
		EnvSecretKey:   keyB64,
	}
}

// with returns a copy of base with overrides applied.
func with(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(*Config)
		wantErr []string
	}{
		{name: "defaults", env: nil, want: func(*Config) {}},
		{
			name: "everything set",
			env: map[string]string{
				EnvAddr: "127.0.0.1:9000", EnvDatabaseURL: "postgres://db/x", EnvRedisURL: "redis://r:6379",
				EnvSecretKey: keyHex, EnvDataDir: "/var/lib/ispgraph", EnvDemoPassword: "demo",
				EnvLogFormat: "json", EnvLogLevel: "debug", EnvTokenTTL: "1h30m", EnvWorkers: "false",
				EnvJobNamespace: "isp-prod", EnvShutdownTimeout: "30s", EnvComplexityLimit: "5000",
				EnvDepthLimit: "7", EnvFastReads: "false", EnvMaxPageSize: "100", EnvDefaultPageSize: "20",
				EnvPreviousKeys: "old", EnvOperatorKeys: "ops:ab", EnvAPIRateLimit: "120", EnvLoginRateLimit: "3", EnvCachePrefix: "isp:c:", EnvCacheTTL: "packages=1m",
				EnvMaxBodyBytes: "4096", EnvReadTimeout: "5s",
				EnvReplicaURL: "postgres://replica/x", EnvReplicaMaxLag: "2s",
			},
			want: func(c *Config) {
				d := *c
				*c = Config{
					Addr: "127.0.0.1:9000", DatabaseURL: "postgres://db/x", RedisURL: "redis://r:6379",
					SecretKey: keyHex, DataDir: "/var/lib/ispgraph", DemoPassword: "demo",
					LogFormat: "json", LogLevel: slog.LevelDebug, TokenTTL: 90 * time.Minute, Workers: false,
					JobNamespace: "isp-prod", ShutdownTimeout: 30 * time.Second, ComplexityLimit: 5000,
					DepthLimit: 7, MaxPageSize: 100, DefaultPageSize: 20,
					PreviousKeys: "old", OperatorKeys: "ops:ab", APIRateLimit: 120, LoginRateLimit: 3, CachePrefix: "isp:c:", CacheTTL: "packages=1m",
					MaxBodyBytes: 4096, ReadTimeout: 5 * time.Second,
					ReplicaURL: "postgres://replica/x", ReplicaMaxLag: 2 * time.Second,
					WorkerConcurrency: d.WorkerConcurrency, PaymentConcurrency: d.PaymentConcurrency, WorkerAddr: d.WorkerAddr,
					SMTPPort: d.SMTPPort, SMTPFrom: d.SMTPFrom, SMTPStartTLS: d.SMTPStartTLS,
					SMSBatchSize: d.SMSBatchSize, SMSRatePerSecond: d.SMSRatePerSecond,
					StripeBaseURL: d.StripeBaseURL, SSLCommerzBaseURL: d.SSLCommerzBaseURL, BKashBaseURL: d.BKashBaseURL,
					WebhookAttempts: d.WebhookAttempts, WebhookRetryBase: d.WebhookRetryBase, WebhookTimeout: d.WebhookTimeout,
				}
			},
		},
		{name: "log level is case-insensitive", env: map[string]string{EnvLogLevel: "WARN"}, want: func(c *Config) { c.LogLevel = slog.LevelWarn }},
		{
			name: "jobs settings",
			env: map[string]string{EnvWorkerConcurrency: "4", EnvSMTPHost: "mail.example", EnvSMTPPort: "2525",
				EnvSMTPStartTLS: "false", EnvSMSBatchSize: "10", EnvStripeBaseURL: "http://127.0.0.1:9"},
			want: func(c *Config) {
				c.WorkerConcurrency, c.SMTPHost, c.SMTPPort, c.SMTPStartTLS, c.SMSBatchSize, c.StripeBaseURL = 4, "mail.example", 2525, false, 10, "http://127.0.0.1:9"
			},
		},
		{
			name: "schedule overrides are kept as written",
			env:  map[string]string{EnvSchedules: "MarkOverdueInvoices=*/15 * * * * *;SyncRouterSessions=*/10 * * * * *"},
			want: func(c *Config) { c.Schedules = "MarkOverdueInvoices=*/15 * * * * *;SyncRouterSessions=*/10 * * * * *" },
		},
		{
			name: "webhook settings",
			env:  map[string]string{EnvWebhookAllowPrivate: "true", EnvWebhookAttempts: "3", EnvWebhookRetryBase: "2s", EnvWebhookTimeout: "3s"},
			want: func(c *Config) {
				c.WebhookAllowPrivate, c.WebhookAttempts, c.WebhookRetryBase, c.WebhookTimeout = true, 3, 2*time.Second, 3*time.Second
			},
		},
		{name: "workers accepts 0", env: map[string]string{EnvWorkers: "0"}, want: func(c *Config) { c.Workers = false }},
		{name: "surrounding spaces in numbers", env: map[string]string{EnvDepthLimit: " 12 "}, want: func(c *Config) { c.DepthLimit = 12 }},
		{
			name: "every parse error reported",
			env: map[string]string{
				EnvTokenTTL: "1 day", EnvWorkers: "maybe", EnvComplexityLimit: "lots", EnvLogLevel: "loud",
			},
			wantErr: []string{
				`ISPGRAPH_TOKEN_TTL="1 day": not a duration`,
				`ISPGRAPH_WORKERS="maybe": not a boolean`,
				`ISPGRAPH_COMPLEXITY_LIMIT="lots": not an integer`,
				`ISPGRAPH_LOG_LEVEL="loud": not a log level`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(env(tt.env))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("want an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			want := Default()
			tt.want(&want)
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Default()
	if c.ListenAddr() != "127.0.0.1:8080" || c.DataDir != "./data" || c.LogFormat != "text" || c.LogLevel != slog.LevelInfo ||
		c.TokenTTL != 24*time.Hour || !c.Workers || c.JobNamespace != "ispgraph" ||
		c.ShutdownTimeout != 15*time.Second || c.ComplexityLimit != 30000 || c.DepthLimit != 10 ||
		c.MaxPageSize != 500 || c.DefaultPageSize != 50 {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if p := (Config{DatabaseURL: "postgres://db/x", RedisURL: "redis://r"}); p.ListenAddr() != ":8080" || p.IntrospectionMode() != "authenticated" || c.IntrospectionMode() != "all" {
		t.Errorf("production listens on %q with introspection %q; the embedded default allows %q", p.ListenAddr(), p.IntrospectionMode(), c.IntrospectionMode())
	}
	if !c.Embedded() {
		t.Error("defaults must select the embedded mode")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults must validate: %v", err)
	}
}

func TestRegisterFlags(t *testing.T) {
	c, err := FromEnv(env(map[string]string{EnvAddr: ":9000", EnvDepthLimit: "8", EnvLogLevel: "warn", EnvWorkers: "false"}))
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-depth-limit", "12", "-log-level", "debug", "-token-ttl", "2h"}); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9000" {
		t.Errorf("Addr = %q: an unset flag must keep the environment's value", c.Addr)
	}
	if c.Workers {
		t.Error("Workers = true: an unset flag must keep the environment's value")
	}
	if c.DepthLimit != 12 || c.LogLevel != slog.LevelDebug || c.TokenTTL != 2*time.Hour {
		t.Errorf("flags did not override: %+v", c)
	}
	if f := fs.Lookup("addr"); f == nil || f.DefValue != ":9000" {
		t.Errorf("-addr default = %v, want the environment's :9000 in -help", f)
	}
	for _, name := range []string{"secret-key", "demo-password"} {
		if fs.Lookup(name) != nil {
			t.Errorf("-%s must not exist: command lines are visible to other users", name)
		}
	}
}

func TestEmbedded(t *testing.T) {
	tests := []struct {
		db, redis string
		want      bool
	}{
		{"", "", true},
		{"postgres://db/x", "", false},
		{"", "redis://r", false},
		{"postgres://db/x", "redis://r", false},
	}
	for _, tt := range tests {
		if got := (Config{DatabaseURL: tt.db, RedisURL: tt.redis}).Embedded(); got != tt.want {
			t.Errorf("Embedded(%q, %q) = %v, want %v", tt.db, tt.redis, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // empty: valid
		notIn   []string // must not appear in the error
	}{
		{name: "embedded default", env: nil},
		{name: "embedded with key", env: map[string]string{EnvSecretKey: keyHex}},
		{name: "production", env: prodEnv()},
		{name: "production hex key", env: with(prodEnv(), EnvSecretKey, keyHex)},
		{name: "raw url-safe base64 key", env: with(prodEnv(), EnvSecretKey, base64.RawURLEncoding.EncodeToString([]byte(key32)))},
		{name: "postgresql scheme and rediss", env: with(prodEnv(), EnvDatabaseURL, "postgresql://db/x", EnvRedisURL, "rediss://r:6380")},
		{
			name:    "database without redis",
			env:     with(prodEnv(), EnvRedisURL, ""),
			wantErr: []string{"DATABASE_URL is set but REDIS_URL is not: set both for a production server, or neither for the embedded default"},
		},
		{
			name:    "redis without database",
			env:     with(prodEnv(), EnvDatabaseURL, ""),
			wantErr: []string{"REDIS_URL is set but DATABASE_URL is not"},
		},
		{
			name:    "production needs a key",
			env:     with(prodEnv(), EnvSecretKey, ""),
			wantErr: []string{"ISPGRAPH_SECRET_KEY is required"},
		},
		{
			name:    "short key",
			env:     with(prodEnv(), EnvSecretKey, base64.StdEncoding.EncodeToString([]byte(key32)[:16])),
			wantErr: []string{"ISPGRAPH_SECRET_KEY: decodes to 16 bytes, want 32"},
		},
		{
			name:    "key that is not an encoding",
			env:     with(prodEnv(), EnvSecretKey, "correct horse battery staple!"),
			wantErr: []string{"ISPGRAPH_SECRET_KEY: neither hex nor base64"},
			notIn:   []string{"horse"},
		},
		{
			name:    "wrong database scheme hides the password",
			env:     with(prodEnv(), EnvDatabaseURL, "mysql://root:hunter2@db/x"),
			wantErr: []string{`DATABASE_URL: scheme "mysql": want postgres:// or postgresql://`},
			notIn:   []string{"hunter2"},
		},
		{
			name:    "unparseable database url hides the password",
			env:     with(prodEnv(), EnvDatabaseURL, "postgres://u:hun/ter2@db/x"),
			wantErr: []string{"DATABASE_URL: not a valid URL"},
			notIn:   []string{"hun/ter2"},
		},
		{
			name:    "wrong redis scheme",
			env:     with(prodEnv(), EnvRedisURL, "http://r"),
			wantErr: []string{`REDIS_URL: scheme "http"`},
		},
		{
			name:    "replica without a primary",
			env:     map[string]string{EnvReplicaURL: "postgres://replica/x"},
			wantErr: []string{"DATABASE_REPLICA_URL is set but DATABASE_URL is not"},
		},
		{
			name:    "replica scheme and lag",
			env:     with(prodEnv(), EnvReplicaURL, "mysql://r/x", EnvReplicaMaxLag, "0s"),
			wantErr: []string{`DATABASE_REPLICA_URL: scheme "mysql"`, "ISPGRAPH_REPLICA_MAX_LAG=0s: must be positive"},
		},
		{
			name: "every other problem at once",
			env: map[string]string{
				EnvAddr: "8080", EnvLogFormat: "xml", EnvTokenTTL: "-1h", EnvShutdownTimeout: "0s",
				EnvComplexityLimit: "0", EnvDepthLimit: "-1", EnvMaxPageSize: "100", EnvDefaultPageSize: "101",
				EnvJobNamespace: "my jobs", EnvOutboxReopenAfter: "-1m",
			},
			wantErr: []string{
				`ISPGRAPH_ADDR="8080": want host:port`,
				`ISPGRAPH_LOG_FORMAT="xml": want text or json`,
				`ISPGRAPH_TOKEN_TTL=-1h0m0s: must be positive`,
				`ISPGRAPH_SHUTDOWN_TIMEOUT=0s: must be positive`,
				`ISPGRAPH_COMPLEXITY_LIMIT=0: must be positive`,
				`ISPGRAPH_DEPTH_LIMIT=-1: must be positive`,
				`ISPGRAPH_DEFAULT_PAGE_SIZE=101: must be between 1 and ISPGRAPH_MAX_PAGE_SIZE (100)`,
				`ISPGRAPH_JOB_NAMESPACE="my jobs"`,
				`ISPGRAPH_OUTBOX_REOPEN_AFTER=-1m0s: must be positive, or 0`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(env(tt.env))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			err = c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			for _, n := range tt.notIn {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q leaks %q", err, n)
				}
			}
		})
	}
}

func TestSecretKeyBytes(t *testing.T) {
	for _, enc := range []string{keyHex, strings.ToUpper(keyHex), keyB64, " " + keyB64 + "\n", base64.RawStdEncoding.EncodeToString([]byte(key32)), base64.URLEncoding.EncodeToString([]byte(key32))} {
		got, err := Config{SecretKey: enc}.SecretKeyBytes()
		if err != nil || string(got) != key32 {
			t.Errorf("SecretKeyBytes(%q) = %x, %v", enc, got, err)
		}
	}
	if _, err := (Config{}).SecretKeyBytes(); err == nil {
		t.Error("an empty key must not decode")
	}
}

func TestRedacted(t *testing.T) {
	tests := []struct {
		name      string
		db, redis string
		wantDB    string
		wantRedis string
	}{
		{
			name: "user info passwords",
			db:   "postgres://ispgraph:hunter2@db:5432/ispgraph?sslmode=require", redis: "redis://:s3cret@redis:6379/0",
			wantDB: "postgres://ispgraph:xxxxx@db:5432/ispgraph?sslmode=require", wantRedis: "redis://:xxxxx@redis:6379/0",
		},
		{
			name: "no password stays as is",
			db:   "postgres://ispgraph@db/ispgraph", redis: "redis://redis:6379",
			wantDB: "postgres://ispgraph@db/ispgraph", wantRedis: "redis://redis:6379",
		},
		{
			name:   "password query parameter",
			db:     "postgres://db/ispgraph?password=hunter2&sslmode=disable",
			wantDB: "postgres://db/ispgraph?password=xxxxx&sslmode=disable",
		},
		{
			name:   "unparseable url hidden whole",
			db:     "postgres://u:hun/ter2@db/x",
			wantDB: "xxxxx",
		},
		{
			name:   "key=value dsn",
			db:     "host=db user=ispgraph password=hunter2 dbname=ispgraph",
			wantDB: "host=db user=ispgraph password=xxxxx dbname=ispgraph",
		},
		{
			name:   "key=value dsn with quoted password",
			db:     `host=db password='hun ter\'2' sslmode=disable`,
			wantDB: "host=db password=xxxxx sslmode=disable",
		},
		{
			name:   "unclosed quote hidden whole",
			db:     `host=db password='hunter2`,
			wantDB: "xxxxx",
		},
		{
			name:   "not key=value hidden whole",
			db:     `host = db password = hunter2`,
			wantDB: "xxxxx",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.DatabaseURL, c.RedisURL, c.ReplicaURL = tt.db, tt.redis, tt.db
			c.SecretKey, c.DemoPassword = keyB64, "demo-pass"
			r := c.Redacted()
			if r["database_url"] != tt.wantDB || r["redis_url"] != tt.wantRedis {
				t.Errorf("database_url = %q, redis_url = %q\nwant %q, %q", r["database_url"], r["redis_url"], tt.wantDB, tt.wantRedis)
			}
			if r["replica_url"] != tt.wantDB {
				t.Errorf("replica_url = %q, want %q", r["replica_url"], tt.wantDB)
			}
			for k, v := range r {
				for _, secret := range []string{"hunter2", "hun ter", "s3cret", keyB64, "demo-pass"} {
					if strings.Contains(v, secret) {
						t.Errorf("%s = %q leaks %q", k, v, secret)
					}
				}
			}
			if r["secret_key"] != "xxxxx" || r["demo_password"] != "xxxxx" {
				t.Errorf("secrets not redacted: %v", r)
			}
		})
	}
}

func TestRedactedCoversEveryField(t *testing.T) {
	r := Default().Redacted()
	if got, want := len(r), reflect.TypeFor[Config]().NumField()+1; got != want {
		t.Errorf("Redacted has %d keys, want one per field plus embedded (%d): a new field needs a line", got, want)
	}
	if r["secret_key"] != "" || r["log_level"] != "INFO" || r["token_ttl"] != "24h0m0s" || r["embedded"] != "true" {
		t.Errorf("unexpected redaction of defaults: %v", r)
	}
}

func TestEveryFlagHasAGroup(t *testing.T) {
	var c Config
	every := flag.NewFlagSet("", flag.ContinueOnError)
	c.registerAll(every)
	n := 0
	every.VisitAll(func(f *flag.Flag) {
		n++
		if flagGroups[f.Name] == 0 {
			t.Errorf("-%s is in no group (flagGroups)", f.Name)
		}
	})
	if n != len(flagGroups) {
		t.Errorf("%d flags, %d in flagGroups: remove the ones that no longer exist", n, len(flagGroups))
	}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	c.RegisterFlagsFor(fs, Database|Logging)
	if fs.Lookup("database-url") == nil || fs.Lookup("redis-url") != nil || fs.Lookup("smtp-host") != nil || fs.Lookup("addr") != nil {
		t.Error("RegisterFlagsFor(Database|Logging) registered the wrong flags")
	}
}
