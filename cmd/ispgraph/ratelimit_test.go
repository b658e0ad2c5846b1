package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// limitedCall sends one API call with token and returns the status and the
// rate-limit headers.
func limitedCall(t *testing.T, base, token string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{ viewer { kind } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests && !strings.Contains(string(body), "RATE_LIMITED") {
		t.Fatalf("429 without RATE_LIMITED: %s", body)
	}
	return resp.StatusCode, resp.Header
}

func headerInt(t *testing.T, h http.Header, name string) int {
	t.Helper()
	n, err := strconv.Atoi(h.Get(name))
	if err != nil {
		t.Fatalf("header %s = %q", name, h.Get(name))
	}
	return n
}

// TestAPIRateLimit: a 3/min key gets 3 calls with RateLimit-* headers counting
// down, then 429s whose Retry-After does not grow however often it asks
// (refused calls are not counted), and is let in again exactly when
// Retry-After says. Time is moved by shifting the GCRA state in Redis (the
// limiter's own clock), not by sleeping. A limit above the cap is refused.
func TestAPIRateLimit(t *testing.T) {
	m, base, _, pool := securityEnv(t, nil)
	admin := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	var d struct {
		CreateAPIKey struct {
			APIKey struct{ Prefix string }
			Secret string
		}
	}
	json.Unmarshal(mustData(t, base, admin, `mutation { createAPIKey(input: {name: "slow", scopes: ["network_users:read"], rateLimitPerMinute: 3}) { apiKey { prefix } secret } }`, nil), &d)
	key := d.CreateAPIKey.Secret
	var keyID int
	if err := pool.QueryRow(context.Background(), `SELECT id FROM api_keys WHERE prefix = $1`, d.CreateAPIKey.APIKey.Prefix).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	advance := func(seconds int) {
		t.Helper()
		k := m.Auth.Limiter.Key("api:key:" + strconv.Itoa(keyID))
		if err := m.Redis.IncrByFloat(context.Background(), k, -float64(seconds)).Err(); err != nil {
			t.Fatal(err)
		}
	}

	for i := 1; i <= 3; i++ {
		status, h := limitedCall(t, base, key)
		if status != http.StatusOK || headerInt(t, h, "RateLimit-Limit") != 3 || headerInt(t, h, "RateLimit-Remaining") != 3-i {
			t.Fatalf("call %d: %d %v", i, status, h)
		}
		if reset := headerInt(t, h, "RateLimit-Reset"); reset < 1 || reset > 60 {
			t.Fatalf("call %d: RateLimit-Reset %d", i, reset)
		}
		if h.Get("Retry-After") != "" {
			t.Fatalf("call %d allowed with Retry-After %q", i, h.Get("Retry-After"))
		}
	}
	status, h := limitedCall(t, base, key)
	if status != http.StatusTooManyRequests || headerInt(t, h, "RateLimit-Remaining") != 0 {
		t.Fatalf("4th call: %d %v", status, h)
	}
	retry := headerInt(t, h, "Retry-After")
	if retry < 19 || retry > 20 { // one call every 20 s after the burst
		t.Fatalf("Retry-After %d, want the 20 s emission interval", retry)
	}
	refused := 0
	for range 10 {
		status, h := limitedCall(t, base, key)
		if status == http.StatusTooManyRequests {
			refused++
		}
		if r := headerInt(t, h, "Retry-After"); r > retry {
			t.Fatalf("refused calls counted: Retry-After grew from %d to %d", retry, r)
		}
	}
	if refused != 10 {
		t.Fatalf("%d of 10 calls refused, want 10", refused)
	}
	advance(retry - 2)
	if status, h := limitedCall(t, base, key); status != http.StatusTooManyRequests || headerInt(t, h, "Retry-After") > 2 {
		t.Fatalf("2 s before Retry-After: %d %v; want 429 with at most 2 s to wait", status, h)
	}
	advance(2)
	if status, h := limitedCall(t, base, key); status != http.StatusOK || headerInt(t, h, "RateLimit-Remaining") != 0 {
		t.Fatalf("at Retry-After: %d %v; want 200, none remaining", status, h)
	}

	r := post(t, base, admin, `mutation { createAPIKey(input: {name: "greedy", scopes: ["network_users:read"], rateLimitPerMinute: 2000000000}) { secret } }`, nil)
	if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, strconv.Itoa(auth.MaxAPILimit)) {
		t.Fatalf("2 000 000 000/min: %+v", r.Errors)
	}
}

// TestKnownTokenOneRedisRoundTrip: a request with a token the instance has
// already verified costs one round trip to Redis: the revocation stamp and
// the API rate-limit hit travel in one pipeline (docs/benchmarks.md, issue
// 15 fifth pass). Redis is reached through a proxy that counts the reads it
// makes from its clients; the fewest over ten requests is taken, since any
// other traffic in the process can only add to a request's count.
func TestKnownTokenOneRedisRoundTrip(t *testing.T) {
	redisURL, _ := testenv.RedisURL(t)
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	_, base, _, _ := securityEnv(t, map[string]string{"REDIS_URL": u.String(), "ISPGRAPH_WORKERS": "false"})
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	if status, _ := limitedCall(t, base, token); status != http.StatusOK {
		t.Fatalf("first call: %d", status)
	}
	fewest := int64(-1)
	for i := range 10 {
		before := proxy.ClientReads()
		status, h := limitedCall(t, base, token)
		if status != http.StatusOK || headerInt(t, h, "RateLimit-Limit") != 100000 {
			t.Fatalf("call %d: %d %v", i, status, h)
		}
		if n := proxy.ClientReads() - before; fewest < 0 || n < fewest {
			fewest = n
		}
	}
	if fewest != 1 {
		t.Fatalf("a known token's request made at least %d round trips to Redis, want 1", fewest)
	}
}
