package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

func TestSlidingWindow(t *testing.T) {
	url, prefix := testenv.RedisURL(t)
	opt, err := config.RedisOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	now := time.Date(2026, 1, 1, 10, 0, 59, 0, time.UTC)
	l := &Limiter{Redis: rdb, Prefix: prefix, Now: func() time.Time { return now }}
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		r, err := l.Hit(ctx, "k", 5)
		if err != nil || !r.Allowed || r.Count != int64(i) {
			t.Fatalf("hit %d: %+v %v", i, r, err)
		}
	}
	// across a minute boundary the earlier hits still count
	now = now.Add(2 * time.Second)
	if r, _ := l.Hit(ctx, "k", 5); r.Allowed || r.RetryAfter <= 0 {
		t.Fatalf("6th hit allowed: %+v", r)
	}
	if r, _ := l.Hit(ctx, "other", 5); !r.Allowed {
		t.Fatalf("another key limited: %+v", r)
	}
	now = now.Add(time.Minute)
	if r, _ := l.Hit(ctx, "k", 5); !r.Allowed {
		t.Fatalf("a minute later still limited: %+v", r)
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
