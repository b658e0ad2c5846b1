// Package progress owns the progress bar that long-running commands (seed, cache warm)
// draw on their output: a redrawn line on a terminal, sparse plain lines in logs.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// ttyInterval bounds terminal redraws to about ten a second.
	ttyInterval = 100 * time.Millisecond
	// plainInterval is the longest a non-terminal writer goes without a line while work runs.
	plainInterval = 5 * time.Second
	// barWidth is the number of cells between the brackets.
	barWidth = 30
)

// Bar reports the progress of a counted amount of work; Add and Set are safe for concurrent use.
type Bar struct {
	w     io.Writer
	label string
	total int64
	tty   bool
	now   func() time.Time
	start time.Time

	current atomic.Int64
	// nextDraw (unix nanoseconds) and lastTenth (the last 10% step printed on a
	// non-terminal writer) let concurrent Add calls skip the lock between draws.
	nextDraw  atomic.Int64
	lastTenth atomic.Int64

	mu        sync.Mutex // guards the fields below and every write to w
	lastWidth int        // length of the last terminal line, to blank a shorter redraw
	finished  bool
}

// New returns a bar writing to w; a total of zero or less means the amount of work is unknown.
func New(w io.Writer, label string, total int64) *Bar {
	return newBar(w, label, total, isTerminal(w), time.Now)
}

func newBar(w io.Writer, label string, total int64, tty bool, now func() time.Time) *Bar {
	b := &Bar{w: w, label: label, total: total, tty: tty, now: now, start: now()}
	b.nextDraw.Store(b.start.Add(b.interval()).UnixNano())
	return b
}

func (b *Bar) interval() time.Duration {
	if b.tty {
		return ttyInterval
	}
	return plainInterval
}

// tenth returns the 10% step cur has reached, or -1 when there is none to print:
// the total is unknown, or the work is complete and Finish prints that line.
func (b *Bar) tenth(cur int64) int64 {
	if b.total <= 0 || cur >= b.total {
		return -1
	}
	return cur * 10 / b.total
}

// due reports whether cur at now warrants a line.
func (b *Bar) due(cur int64, now time.Time) bool {
	if now.UnixNano() >= b.nextDraw.Load() {
		return true
	}
	return !b.tty && b.tenth(cur) > b.lastTenth.Load()
}

// isTerminal reports whether w is a character device, without depending on x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}

// Add records n more units of completed work.
func (b *Bar) Add(n int64) {
	b.maybeDraw(b.current.Add(n))
}

// Set records the absolute amount of completed work.
func (b *Bar) Set(n int64) {
	b.current.Store(n)
	b.maybeDraw(n)
}

// Finish draws the final line and ends it with a newline; later calls do nothing.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	line := render(b.label, b.current.Load(), b.total, b.now().Sub(b.start), true)
	if b.tty {
		b.writeTTY(line)
		_, _ = io.WriteString(b.w, "\n")
		return
	}
	_, _ = io.WriteString(b.w, line+"\n")
}

func (b *Bar) maybeDraw(cur int64) {
	now := b.now()
	if !b.due(cur, now) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Another goroutine may have drawn while this one waited; draw the newest count.
	cur = b.current.Load()
	if b.finished || !b.due(cur, now) {
		return
	}
	b.nextDraw.Store(now.Add(b.interval()).UnixNano())
	if t := b.tenth(cur); t > b.lastTenth.Load() {
		b.lastTenth.Store(t)
	}
	line := render(b.label, cur, b.total, now.Sub(b.start), false)
	if b.tty {
		b.writeTTY(line)
		return
	}
	_, _ = io.WriteString(b.w, line+"\n")
}

// writeTTY redraws the current line; write errors are ignored because progress is cosmetic.
func (b *Bar) writeTTY(line string) {
	pad := ""
	if n := b.lastWidth - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	b.lastWidth = len(line)
	_, _ = io.WriteString(b.w, "\r"+line+pad)
}

// render formats one progress line, e.g. `seed [=====>    ] 45% 4500/10000 1234/s eta 3s`.
func render(label string, cur, total int64, elapsed time.Duration, done bool) string {
	var sb strings.Builder
	sb.WriteString(label)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(cur) / elapsed.Seconds()
	}
	if total > 0 {
		frac := float64(cur) / float64(total)
		frac = min(max(frac, 0), 1)
		filled := int(frac * barWidth)
		sb.WriteString(" [")
		switch {
		case filled >= barWidth:
			sb.WriteString(strings.Repeat("=", barWidth))
		default:
			sb.WriteString(strings.Repeat("=", filled))
			sb.WriteString(">")
			sb.WriteString(strings.Repeat(" ", barWidth-filled-1))
		}
		fmt.Fprintf(&sb, "] %d%% %d/%d", int(frac*100), cur, total)
	} else {
		fmt.Fprintf(&sb, " %d", cur)
	}
	fmt.Fprintf(&sb, " %s/s", formatRate(rate))
	switch {
	case done:
		fmt.Fprintf(&sb, " in %s", roundDuration(elapsed))
	case total > 0 && cur >= total:
		sb.WriteString(" eta 0s")
	case total > 0 && rate > 0:
		eta := time.Duration(float64(total-cur) / rate * float64(time.Second))
		fmt.Fprintf(&sb, " eta %s", roundDuration(eta))
	case total > 0:
		sb.WriteString(" eta ?")
	}
	return sb.String()
}

func formatRate(r float64) string {
	if r < 10 {
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.0f", r)
}

// roundDuration keeps sub-second durations readable instead of showing "0s".
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
