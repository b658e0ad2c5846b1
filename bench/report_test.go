package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var r Result
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := r.Percentile(p); got != want {
			t.Errorf("p%v = %v, want %v", p*100, got, want)
		}
	}
	if (Result{}).Percentile(0.99) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestRunCountsRequestsAndErrors(t *testing.T) {
	res := Run(context.Background(), Load{Clients: 3, Duration: time.Minute, MaxRequests: 30}, func(int, *rand.Rand) Worker {
		n := 0
		return func(context.Context) error {
			n++
			if n == 1 {
				return errors.New("boom")
			}
			return nil
		}
	})
	// Every client's first request fails; a client scheduled late may not run at all.
	if res.Requests < 30 || res.Requests > 32 || res.Errors < 1 || res.Errors > 3 || res.FirstError != "boom" ||
		len(res.Latencies) != res.Requests-res.Errors {
		t.Fatalf("got %d requests, %d errors (%q), %d latencies", res.Requests, res.Errors, res.FirstError, len(res.Latencies))
	}
}

func TestPerRequest(t *testing.T) {
	before := StatementCounters{HistSum: 10, HistCount: 2, HasHist: true, Total: 10, HasTotal: true}
	after := StatementCounters{HistSum: 40, HistCount: 8, HasHist: true, Total: 40, HasTotal: true}
	if v, ok := PerRequest(before, after, 100); !ok || v != 5 {
		t.Fatalf("histogram: %v %v", v, ok)
	}
	after.HistCount, after.HistSum = 2, 10 // the histogram is registered but never observed
	if v, ok := PerRequest(before, after, 10); !ok || v != 3 {
		t.Fatalf("counter: %v %v", v, ok)
	}
	if _, ok := PerRequest(StatementCounters{}, StatementCounters{}, 10); ok {
		t.Fatal("no metrics must be n/a")
	}
}

func TestUpdateDocKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	os.WriteFile(path, []byte("# Benchmarks\n\n## Seeding\n\nseeded in 90 s\n"), 0o644)
	if err := UpdateDoc(path, "run one\n"); err != nil {
		t.Fatal(err)
	}
	if err := UpdateDoc(path, "run two\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	if !strings.Contains(s, "seeded in 90 s") || strings.Contains(s, "run one") || strings.Count(s, "run two") != 1 || strings.Count(s, MarkerStart) != 1 {
		t.Fatalf("document:\n%s", s)
	}
}

func TestTargets(t *testing.T) {
	res := func(rps int, p99 time.Duration) Result {
		return Result{Requests: rps, Elapsed: time.Second, Latencies: []time.Duration{p99}}
	}
	r := &Report{PeakRSS: 90 << 20, Cells: []Cell{
		// (a): 0.6 × the baseline, p99 1.4 ×, 2 ms of CPU per request: passes.
		{Scenario: ScenarioBilling, Clients: 16, ISPGraph: res(60, 140*time.Millisecond), Baseline: res(100, 100*time.Millisecond), CPU: 120 * time.Millisecond},
		// (b): 0.3 ×, p99 2 ×, 1 ms per request: fails all three.
		{Scenario: ScenarioDetail, Clients: 16, ISPGraph: res(30, 200*time.Millisecond), Baseline: res(100, 100*time.Millisecond), CPU: 30 * time.Millisecond},
	}, Probes: []Probe{
		{Scenario: ScenarioBilling, Name: "first: 10", Statements: 4, Requests: 20},
		{Scenario: ScenarioBilling, Name: "first: 100", Statements: 4, Requests: 20},
		{Scenario: ScenarioDetail, Name: "detail", Statements: 5, Requests: 20},
	}}
	want := []bool{true, true, true, false, false, false, true, false, true}
	got := r.Targets()
	if len(got) != len(want) {
		t.Fatalf("%d targets, want %d: %+v", len(got), len(want), got)
	}
	for i, tg := range got {
		if tg.Pass != want[i] {
			t.Errorf("%s (%s): pass %v, want %v", tg.Name, tg.Figure, tg.Pass, want[i])
		}
	}
	r.PeakRSS = 120 << 20
	if rss := r.Targets()[8]; rss.Pass {
		t.Errorf("120 MB passes %q", rss.Name)
	}
	if md := r.Markdown(); !strings.Contains(md, "| 2.00 ms |") || !strings.Contains(md, "| detail | 5.0 | 20 |") {
		t.Fatalf("markdown:\n%s", md)
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks: 3 s; the command name holds a space and a parenthesis.
	line := "4242 (isp graph) (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 2000000 5000 18446744073709551615"
	d, err := parseStatCPU(line)
	if err != nil || d != 3*time.Second {
		t.Fatalf("got %v, %v; want 3s", d, err)
	}
	if _, err := parseStatCPU("4242 (truncated"); err == nil {
		t.Fatal("a line without a closing parenthesis parsed")
	}
}
