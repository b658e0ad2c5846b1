package workers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/ispgraph/ispgraph/ent"
	_ "github.com/ispgraph/ispgraph/ent/runtime"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/workers"
)

// env is one test's Postgres database, Redis namespace and tenant.
type env struct {
	t         *testing.T
	dbURL     string
	db        *database.DB
	client    *ent.Client
	redisURL  string
	namespace string
	pool      *redis.Pool
	tenantID  int
	ctx       context.Context // the tenant's system context
	userID    int             // a subscriber with e-mail and phone
	log       *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Contains reports whether the log holds sub.
func (s *syncBuffer) Contains(sub string) bool { return strings.Contains(s.String(), sub) }

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, log: &syncBuffer{}}
	e.dbURL = testenv.PostgresURL(t)
	e.redisURL, e.namespace = testenv.RedisURL(t)
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, e.dbURL, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	e.db, e.client = db, db.Client
	e.pool = workers.NewRedisPool(e.redisURL)
	t.Cleanup(func() { e.pool.Close() })
	ten := db.Client.Tenant.Create().SetName("Acme Net").SetSlug("acme").SetDomain("acme.example").
		SetCurrency("USD").SaveX(tenancy.Bypass(ctx))
	e.tenantID = ten.ID
	e.ctx = viewer.ForTenant(ctx, ten.ID)
	e.userID = db.Client.NetworkUser.Create().SetUsername("alice").SetFullName("Alice Doe").
		SetEmail("alice@example.net").SetPhone("+8801700000001").SaveX(e.ctx).ID
	return e
}

func (e *env) logger() *slog.Logger {
	var w io.Writer = e.log
	if testing.Verbose() {
		w = io.MultiWriter(e.log, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// options are the workers' options for this env; tests adjust them.
func (e *env) options() workers.Options {
	return workers.Options{
		Client: e.client, Dialect: e.db.Dialect, Redis: e.pool, Namespace: e.namespace,
		Logger: e.logger(), RelayInterval: 50 * time.Millisecond,
		Backoff:  func(*work.Job) int64 { return 0 },
		Billing:  &billing.Service{Client: e.client},
		Mikrotik: &mikrotik.Service{Client: e.client, Pool: mikrotik.NewPool()},
		Mailer:   &notify.Mailer{},
		Auth:     &auth.Service{Client: e.client},
		// The SMTP relay, SMS provider and payment providers are
		// httptest/textproto peers set by the tests that use them.
		Gateways: testGateways(e.t, gateway.BaseURLs{}),
		Webhooks: testWebhooks(e.t, e.client),
	}
}

// start runs workers until the test ends.
func (e *env) start(o workers.Options) *workers.Workers {
	w, err := workers.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	w.Start()
	e.t.Cleanup(w.Stop)
	return w
}

var invoiceSeq int

// invoice creates a PENDING invoice of total for the env's subscriber.
func (e *env) invoice(total string) *ent.Invoice {
	invoiceSeq++
	now := time.Now()
	amt := money.MustParse(total)
	return e.client.Invoice.Create().SetNetworkUserID(e.userID).
		SetNumber("INV-" + time.Now().Format("150405.000000") + "-" + string(rune('a'+invoiceSeq%26))).
		SetAmount(amt).SetTax(0).SetTotal(amt).
		SetPeriodStart(now.AddDate(0, 0, -invoiceSeq)).SetPeriodEnd(now.AddDate(0, 1, 0)).
		SetIssuedAt(now).SetDueDate(now.AddDate(0, 0, 7)).SaveX(e.ctx)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
