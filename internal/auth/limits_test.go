package auth_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/ratelimit"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// deadRedis is a client for an address nothing listens on.
func deadRedis(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

// With Redis down, login is refused (fails closed) and says so in the log.
func TestLoginFailsClosedWithoutRedis(t *testing.T) {
	f := newFixture(t)
	tn := f.mustTenant(t, tenantOpts{slug: "acme"})
	f.mustUser(t, tn, "a@acme.example", "right-pass-1", "admin")
	var logs bytes.Buffer
	f.svc.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f.svc.Limiter = &ratelimit.Limiter{Redis: deadRedis(t)}
	_, _, err := f.svc.Login(context.Background(), auth.LoginInput{Tenant: "acme", Email: "a@acme.example", Password: "right-pass-1"})
	wantCode(t, "login with Redis down", err, apperr.RateLimited, "temporarily unavailable")
	if !strings.Contains(logs.String(), "fails closed") {
		t.Errorf("no log line: %s", logs.String())
	}
}

// With Redis down, API calls go through (fails open) and say so in the log.
func TestAPILimitFailsOpenWithoutRedis(t *testing.T) {
	f := newFixture(t)
	tn := f.mustTenant(t, tenantOpts{slug: "acme"})
	f.mustUser(t, tn, "a@acme.example", "right-pass-1", "admin")
	tok := f.login(t, tn, "a@acme.example", "right-pass-1")
	var logs bytes.Buffer
	f.svc.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f.svc.Limiter = &ratelimit.Limiter{Redis: deadRedis(t)}
	served := 0
	h := f.svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if served != 1 || rec.Code != http.StatusOK {
		t.Fatalf("served %d, status %d", served, rec.Code)
	}
	if !strings.Contains(logs.String(), "fails open") {
		t.Errorf("no log line: %s", logs.String())
	}
}

// TestLoginLimitOnWhatIsResolved spells one tenant and account several ways
// (slug, Host header, case, spaces) from several addresses: the attempts
// count on one key, so after five wrong passwords the right one is refused.
// One address trying many accounts is stopped by the per-address limit.
func TestLoginLimitOnWhatIsResolved(t *testing.T) {
	f := newFixture(t)
	tn := f.mustTenant(t, tenantOpts{slug: "acme"})
	f.mustUser(t, tn, "a@acme.example", "right-pass-1", "admin")
	url, prefix := testenv.RedisURL(t)
	opt, err := config.RedisOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	// Counted per hour instead of per minute: the limiter refills one attempt
	// every period/limit, and the password hashes below take seconds, so a
	// minute's refill would let a few more attempts through than the count.
	f.svc.Limiter = &ratelimit.Limiter{Redis: rdb, Prefix: prefix, Period: time.Hour}
	f.svc.LoginLimit = 5
	ctx := context.Background()
	spellings := []auth.LoginInput{
		{Tenant: "acme", Email: "a@acme.example", Address: "198.51.100.1"},
		{Tenant: " acme ", Email: "A@ACME.example", Address: "198.51.100.2"},
		{Host: "acme.example", Email: " a@acme.example", Address: "198.51.100.3"},
		{Host: "ACME.example:443", Email: "a@Acme.Example ", Address: "198.51.100.4"},
		{Tenant: "acme", Email: "a@acme.example\t", Address: "198.51.100.5"},
	}
	for i, in := range spellings {
		in.Password = "wrong-pass"
		_, _, err := f.svc.Login(ctx, in)
		wantCode(t, fmt.Sprintf("wrong password %d", i+1), err, apperr.Unauthenticated, "")
	}
	_, _, err = f.svc.Login(ctx, auth.LoginInput{Tenant: "acme", Email: "a@acme.example", Password: "right-pass-1", Address: "198.51.100.6"})
	wantCode(t, "sixth attempt, right password", err, apperr.RateLimited, "too many")

	// One address, a new account each time: 5×10 attempts pass the account
	// limits, the next is refused by the address limit.
	for i := range 5 * auth.AddressLoginFactor {
		_, _, err := f.svc.Login(ctx, auth.LoginInput{Tenant: "acme", Email: fmt.Sprintf("u%d@acme.example", i), Password: "x", Address: "203.0.113.9"})
		wantCode(t, fmt.Sprintf("spray %d", i+1), err, apperr.Unauthenticated, "")
	}
	_, _, err = f.svc.Login(ctx, auth.LoginInput{Tenant: "acme", Email: "new@acme.example", Password: "x", Address: "203.0.113.9"})
	wantCode(t, "spray past the address limit", err, apperr.RateLimited, "too many")
}
