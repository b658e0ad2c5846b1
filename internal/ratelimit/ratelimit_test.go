package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

func newRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	url, prefix := testenv.RedisURL(t)
	opt, err := config.RedisOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb, prefix
}

// advance moves the limiter's clock for key forward by d. GCRA keeps one
// number per key, the theoretical arrival time on Redis's clock; moving it
// back by d is exactly what d seconds passing would do, without sleeping.
func advance(t *testing.T, rdb *redis.Client, key string, d time.Duration) {
	t.Helper()
	if err := rdb.IncrByFloat(context.Background(), key, -d.Seconds()).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestGCRA: a burst of the limit is allowed, then refused hits do not count
// (the wait does not grow however often the caller asks), and the caller is
// let in again exactly when RetryAfter says: a second early it is refused
// with at most a second to wait, at the time it is allowed.
func TestGCRA(t *testing.T) {
	rdb, prefix := newRedis(t)
	l := &Limiter{Redis: rdb, Prefix: prefix}
	ctx := context.Background()
	const limit = 2 // one hit every 30 s after the burst
	for i := 1; i <= limit; i++ {
		r, err := l.Hit(ctx, "k", limit)
		if err != nil || !r.Allowed || r.Remaining != limit-i || r.RetryAfter != 0 {
			t.Fatalf("hit %d: %+v %v", i, r, err)
		}
	}
	first, err := l.Hit(ctx, "k", limit)
	if err != nil || first.Allowed || first.Remaining != 0 {
		t.Fatalf("hit %d: %+v %v", limit+1, first, err)
	}
	if first.RetryAfter <= 25*time.Second || first.RetryAfter > 30*time.Second {
		t.Fatalf("RetryAfter %v, want just under the 30 s emission interval", first.RetryAfter)
	}
	if first.ResetAfter <= 55*time.Second || first.ResetAfter > time.Minute {
		t.Fatalf("ResetAfter %v, want just under a minute", first.ResetAfter)
	}
	refused := 0
	for range 20 {
		r, err := l.Hit(ctx, "k", limit)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Allowed {
			refused++
		}
		if r.RetryAfter > first.RetryAfter {
			t.Fatalf("refused hits counted: RetryAfter grew from %v to %v", first.RetryAfter, r.RetryAfter)
		}
	}
	if refused != 20 {
		t.Fatalf("%d of 20 hits refused, want 20", refused)
	}

	advance(t, rdb, l.Key("k"), first.RetryAfter-time.Second)
	early, err := l.Hit(ctx, "k", limit)
	if err != nil || early.Allowed || early.RetryAfter <= 0 || early.RetryAfter > time.Second {
		t.Fatalf("a second before RetryAfter: %+v %v; want refused with at most 1 s to wait", early, err)
	}
	advance(t, rdb, l.Key("k"), time.Second)
	r, err := l.Hit(ctx, "k", limit)
	if err != nil || !r.Allowed || r.Remaining != 0 {
		t.Fatalf("at RetryAfter: %+v %v; want allowed, none remaining", r, err)
	}
	if r, _ := l.Hit(ctx, "k", limit); r.Allowed {
		t.Fatalf("the hit after: %+v; want refused", r)
	}
	if r, _ := l.Hit(ctx, "other", limit); !r.Allowed {
		t.Fatalf("another key limited: %+v", r)
	}
}

// TestSharedAcrossInstances: two processes (two clients) draw on one budget.
func TestSharedAcrossInstances(t *testing.T) {
	rdb, prefix := newRedis(t)
	other := redis.NewClient(rdb.Options())
	t.Cleanup(func() { other.Close() })
	a := &Limiter{Redis: rdb, Prefix: prefix}
	b := &Limiter{Redis: other, Prefix: prefix}
	ctx := context.Background()
	allowed := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		r, err := l.Hit(ctx, "shared", 6)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		}
	}
	if allowed != 6 {
		t.Fatalf("%d of 10 hits allowed across two instances, want 6", allowed)
	}
	if n, err := rdb.Exists(ctx, a.Key("shared")).Result(); err != nil || n != 1 {
		t.Fatalf("state not under the prefix: %d %v", n, err)
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, -time.Second: 0, time.Nanosecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 30 * time.Second: 30} {
		if got := Seconds(d); got != want {
			t.Errorf("Seconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	l := &Limiter{Redis: rdb}
	if r, err := l.Hit(context.Background(), "k", 5); err == nil || r.Allowed {
		t.Fatalf("got %+v, %v; want an error and not allowed", r, err)
	}
}

// TestEmbeddedRedis: the embedded default's in-process Redis (miniredis) runs
// the limiter's Lua script too.
func TestEmbeddedRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	l := &Limiter{Redis: rdb, Prefix: "embedded:"}
	allowed := 0
	for range 5 {
		r, err := l.Hit(context.Background(), "k", 3)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("%d of 5 hits allowed, want 3", allowed)
	}
}

// TestQueue: a hit queued in a pipeline with other commands counts as Hit
// does, on the same budget; after Redis forgot its scripts (a restart), the
// queued hit is refused unrun and sent again alone, counted once.
func TestQueue(t *testing.T) {
	rdb, prefix := newRedis(t)
	l := &Limiter{Redis: rdb, Prefix: prefix}
	ctx := context.Background()
	queued := func() (Result, string) {
		t.Helper()
		pipe := rdb.Pipeline()
		get := pipe.Get(ctx, prefix+"other")
		wait := l.Queue(ctx, pipe, "q", 3)
		_, _ = pipe.Exec(ctx)
		r, err := wait()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := get.Result()
		return r, v
	}
	if err := rdb.Set(ctx, prefix+"other", "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if r, v := queued(); !r.Allowed || r.Remaining != 2 || v != "x" {
		t.Fatalf("first queued hit: %+v, other command %q", r, v)
	}
	if r, err := l.Hit(ctx, "q", 3); err != nil || !r.Allowed || r.Remaining != 1 {
		t.Fatalf("Hit after Queue: %+v %v; want one left", r, err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if r, _ := queued(); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("queued hit after SCRIPT FLUSH: %+v; want allowed, none left", r)
	}
	if r, _ := queued(); r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > 20*time.Second {
		t.Fatalf("fourth hit of 3: %+v; want refused, retry within the 20 s interval", r)
	}
}
