package config_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

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
