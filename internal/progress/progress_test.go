package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock for deterministic output.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name    string
		cur     int64
		total   int64
		elapsed time.Duration
		done    bool
		want    string
	}{
		{
			name: "partial", cur: 4500, total: 10000, elapsed: 3 * time.Second,
			want: "seed [=============>                ] 45% 4500/10000 1500/s eta 4s",
		},
		{
			name: "nothing yet", cur: 0, total: 10, elapsed: 0,
			want: "seed [>                             ] 0% 0/10 0.0/s eta ?",
		},
		{
			name: "complete", cur: 10, total: 10, elapsed: 2 * time.Second,
			want: "seed [==============================] 100% 10/10 5.0/s eta 0s",
		},
		{
			name: "overshoot clamps the bar", cur: 12, total: 10, elapsed: 2 * time.Second,
			want: "seed [==============================] 100% 12/10 6.0/s eta 0s",
		},
		{
			name: "done shows elapsed", cur: 10000, total: 10000, elapsed: 8 * time.Second, done: true,
			want: "seed [==============================] 100% 10000/10000 1250/s in 8s",
		},
		{
			name: "unknown total", cur: 300, total: 0, elapsed: 3 * time.Second,
			want: "seed 300 100/s",
		},
		{
			name: "sub-second done", cur: 5, total: 0, elapsed: 250 * time.Millisecond, done: true,
			want: "seed 5 20/s in 250ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render("seed", tt.cur, tt.total, tt.elapsed, tt.done)
			if got != tt.want {
				t.Errorf("render()\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestNewDetectsNonTerminal(t *testing.T) {
	b := New(&bytes.Buffer{}, "x", 1)
	if b.tty {
		t.Fatal("a bytes.Buffer must not be treated as a terminal")
	}
}

func TestPlainPrintsEveryTenthAndFinal(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	b := newBar(&buf, "warm", 100, false, clk.now)
	for range 100 {
		clk.advance(10 * time.Millisecond)
		b.Add(1)
	}
	b.Finish()
	b.Finish() // idempotent

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("got %d lines, want 9 steps + final:\n%s", len(lines), buf.String())
	}
	if strings.Contains(buf.String(), "\r") {
		t.Error("plain output must not contain carriage returns")
	}
	if !strings.HasPrefix(lines[0], "warm [") || !strings.Contains(lines[0], "10% 10/100") {
		t.Errorf("first line = %q, want the 10%% step", lines[0])
	}
	if !strings.Contains(lines[8], "90% 90/100") {
		t.Errorf("ninth line = %q, want the 90%% step", lines[8])
	}
	if want := "warm [==============================] 100% 100/100 100/s in 1s"; lines[9] != want {
		t.Errorf("final line = %q, want %q", lines[9], want)
	}
}

func TestPlainPrintsAfterInterval(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	b := newBar(&buf, "seed", 1000, false, clk.now)
	b.Add(1)
	if buf.Len() != 0 {
		t.Fatalf("printed before 10%% or 5s: %q", buf.String())
	}
	clk.advance(plainInterval)
	b.Add(1)
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Fatalf("after 5s got %d lines, want 1: %q", got, buf.String())
	}
	clk.advance(time.Second)
	b.Add(1)
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Fatalf("printed again within 5s: %q", buf.String())
	}
}

func TestPlainUnknownTotal(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	b := newBar(&buf, "rows", 0, false, clk.now)
	for range 9 {
		clk.advance(time.Second)
		b.Add(100)
	}
	b.Finish()
	want := "rows 500 100/s\nrows 900 100/s in 9s\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestSet(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	b := newBar(&buf, "s", 10, false, clk.now)
	clk.advance(time.Second)
	b.Set(5)
	b.Set(3) // going back prints nothing new
	b.Finish()
	want := "s [===============>              ] 50% 5/10 5.0/s eta 1s\ns [=========>                    ] 30% 3/10 3.0/s in 1s\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestTTYRedrawsAtMostTenTimesASecond(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	b := newBar(&buf, "warm", 1000, true, clk.now)
	for range 1000 {
		clk.advance(time.Millisecond) // 1000 adds over one second
		b.Add(1)
	}
	b.Finish()
	out := buf.String()
	if redraws := strings.Count(out, "\r"); redraws != 11 {
		t.Errorf("got %d redraws, want 10 in one second + the final one:\n%q", redraws, out)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("terminal output must end with exactly one newline: %q", out)
	}
	// The final line is padded with spaces to blank the longer "eta" line it replaces.
	last := strings.TrimRight(out[strings.LastIndex(out, "\r")+1:], " \n")
	if want := "warm [==============================] 100% 1000/1000 1000/s in 1s"; last != want {
		t.Errorf("final redraw = %q, want %q", last, want)
	}
	if b.Add(1); strings.Count(buf.String(), "\r") != 11 {
		t.Error("Add after Finish must not draw")
	}
}

func TestTTYBlanksShorterRedraw(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	b := newBar(&buf, "n", 0, true, clk.now)
	clk.advance(time.Second)
	b.Set(100000)
	clk.advance(time.Second)
	b.Set(1)
	lines := strings.Split(buf.String(), "\r")[1:]
	if len(lines) != 2 || len(lines[1]) != len(lines[0]) {
		t.Errorf("second redraw must be padded to the first's width: %q", lines)
	}
}

func TestConcurrentAdd(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "par", 8000)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				b.Add(1)
			}
		})
	}
	wg.Wait()
	b.Finish()
	if got := b.current.Load(); got != 8000 {
		t.Fatalf("count = %d, want 8000", got)
	}
	if !strings.Contains(buf.String(), "100% 8000/8000") {
		t.Errorf("final line missing: %q", buf.String())
	}
}
