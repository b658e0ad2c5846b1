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
	fast := Result{Requests: 100, Elapsed: time.Second, Latencies: []time.Duration{10 * time.Millisecond}}
	slow := Result{Requests: 10, Elapsed: time.Second, Latencies: []time.Duration{300 * time.Millisecond}}
	r := &Report{PeakRSS: 150 << 20, Cells: []Cell{
		{Scenario: ScenarioBilling, Clients: 16, ISPGraph: fast, Baseline: fast},
		{Scenario: ScenarioDetail, Clients: 16, ISPGraph: slow, Baseline: fast},
		{Scenario: ScenarioDashboard, Clients: 16, NotAvailable: "no dashboard", Baseline: fast},
	}}
	got := map[string]bool{}
	for _, tg := range r.Targets() {
		got[tg.Name[:3]+tg.Name[len(tg.Name)-3:]] = tg.Pass
	}
	want := map[string]bool{"(a)unt": true, "(a)nts": true, "(b)nts": false, "(c)nts": false, "isp MB": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: pass %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if md := r.Markdown(); !strings.Contains(md, "not available: no dashboard") || !strings.Contains(md, "| pass |") {
		t.Fatalf("markdown:\n%s", md)
	}
}
