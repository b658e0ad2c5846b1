package auth_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/ratelimit"
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
