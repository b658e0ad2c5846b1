package observability

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLibraryLogs: gocraft/work's ERROR lines become records, other lines
// pass through, go-redis's lines become records, and a message repeating
// while a dependency is down is logged once per interval with the count of
// repeats suppressed.
func TestLibraryLogs(t *testing.T) {
	var logs bytes.Buffer
	if err := RouteLibraryLogs(slog.New(slog.NewTextHandler(&logs, nil)), false); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	libLimiter = &limiter{interval: LibraryLogInterval, now: func() time.Time { return now }, seen: map[string]*limitState{}}

	var out bytes.Buffer
	in := strings.Repeat("ERROR: worker_pool.fetch - dial tcp 127.0.0.1:6379: connection refused\n", 1000) +
		"ispgraph worker: processing jobs\n"
	copyLibraryOutput(strings.NewReader(in), &out)
	if out.String() != "ispgraph worker: processing jobs\n" {
		t.Errorf("passed through: %q", out.String())
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "key=worker_pool.fetch") {
		t.Fatalf("%d records for 1000 repeats:\n%s", n, logs.String())
	}
	now = now.Add(LibraryLogInterval)
	copyLibraryOutput(strings.NewReader("ERROR: worker_pool.fetch - dial tcp: connection refused\n"), &out)
	if !strings.Contains(logs.String(), "repeats_suppressed=999") {
		t.Errorf("no count of suppressed repeats:\n%s", logs.String())
	}

	logs.Reset()
	for range 50 {
		redisLogger{}.Printf(context.Background(), "redis: %s: connection pool: failed to dial: %v", "127.0.0.1:6379", "refused")
	}
	if n := strings.Count(logs.String(), "library=go-redis"); n != 1 {
		t.Errorf("%d go-redis records for 50 repeats:\n%s", n, logs.String())
	}
}
