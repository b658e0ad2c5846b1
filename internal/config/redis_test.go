package config_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/config"
)

// lines records go-redis's internal log.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) Printf(_ context.Context, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fmt.Sprintf(format, v...))
}

func (l *lines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.got {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// TestRedisOptionsQuiet builds a client, then a second one from a copy of the
// first's Options() (as the cache does), first from go-redis's own parsed
// options (the control, which logs the maintenance-notification failure),
// then from RedisOptions, which must log nothing about it.
func TestRedisOptionsQuiet(t *testing.T) {
	log := &lines{}
	redis.SetLogger(log)
	const url = "redis://127.0.0.1:6379/15"

	plain, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	twice(plain)
	if log.count("maintnotifications") == 0 {
		t.Skip("this go-redis logs nothing about maintenance notifications with its defaults: nothing to silence")
	}

	before := log.count("maintnotifications")
	o, err := config.RedisOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	twice(o)
	if got := log.count("maintnotifications") - before; got != 0 {
		t.Fatalf("a client from RedisOptions logged %d maintnotifications lines: %q", got, log.got)
	}
	if _, err := config.RedisOptions("http://x"); err == nil {
		t.Fatal("a non-Redis URL was accepted")
	}
}

// twice builds a client from o and another from a copy of its options.
func twice(o *redis.Options) {
	first := redis.NewClient(o)
	defer first.Close()
	copied := *first.Options()
	redis.NewClient(&copied).Close()
}

// TestRedisOptionsBuffers checks the connection buffers QuietRedis sets, that
// REDIS_URL's own wins, and that values and pipelines far larger than the
// buffers still go through intact on the real Redis.
func TestRedisOptionsBuffers(t *testing.T) {
	o, err := config.RedisOptions("redis://127.0.0.1:6379/15")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]int{"read": o.ReadBufferSize, "write": o.WriteBufferSize,
		"pipeline read": o.PipelineReadBufferSize, "pipeline write": o.PipelineWriteBufferSize} {
		if got != config.RedisBufferSize {
			t.Errorf("%s buffer %d, want %d", name, got, config.RedisBufferSize)
		}
	}
	own, err := config.RedisOptions("redis://127.0.0.1:6379/15?pipeline_read_buffer_size=65536")
	if err != nil {
		t.Fatal(err)
	}
	if own.PipelineReadBufferSize != 65536 || own.ReadBufferSize != config.RedisBufferSize {
		t.Errorf("URL's buffer: pipeline read %d, read %d", own.PipelineReadBufferSize, own.ReadBufferSize)
	}

	c := redis.NewClient(o)
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Skipf("no Redis at 127.0.0.1:6379: %v", err)
	}
	big := strings.Repeat("0123456789abcdef", 40<<10/16) // 40 KiB, ten buffers
	key := fmt.Sprintf("ispgraph:test:buffers:%d", time.Now().UnixNano())
	defer c.Del(ctx, key)
	if err := c.Set(ctx, key, big, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, key).Result(); err != nil || got != big {
		t.Fatalf("GET of a 40 KiB value: %d bytes, %v", len(got), err)
	}
	pipe := c.Pipeline()
	gets := make([]*redis.StringCmd, 20)
	for i := range gets {
		gets[i] = pipe.Get(ctx, key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, g := range gets {
		if g.Val() != big {
			t.Fatalf("pipelined GET %d: %d bytes", i, len(g.Val()))
		}
	}
}
