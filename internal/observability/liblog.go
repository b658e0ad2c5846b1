package observability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// LibraryLogInterval is how often one library message (by its key) is
// logged while it repeats, e.g. every poll of a job pool while Redis is down;
// the repeats in between are counted and reported with the next one.
const LibraryLogInterval = 30 * time.Second

// libLogger is the logger library messages go to (RouteLibraryLogs).
var libLogger atomic.Pointer[slog.Logger]

// limiter passes the first message of each key, then one per interval with
// the number suppressed meanwhile.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	now      func() time.Time
	seen     map[string]*limitState
}

type limitState struct {
	last       time.Time
	suppressed int
}

// allow reports whether a message of key is logged now and how many of its
// repeats were suppressed since the last one logged.
func (l *limiter) allow(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st := l.seen[key]
	if st == nil {
		if len(l.seen) > 1000 { // keys come from a small fixed set; bound it anyway
			l.seen = map[string]*limitState{}
		}
		l.seen[key] = &limitState{last: now}
		return true, 0
	}
	if now.Sub(st.last) < l.interval {
		st.suppressed++
		return false, 0
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return true, n
}

var libLimiter = &limiter{interval: LibraryLogInterval, now: time.Now, seen: map[string]*limitState{}}

// logLibrary logs one library message at level, rate-limited by key.
func logLibrary(level slog.Level, library, key, msg string) {
	ok, suppressed := libLimiter.allow(library + ":" + key)
	if !ok {
		return
	}
	l := libLogger.Load()
	if l == nil {
		l = slog.Default()
	}
	attrs := []slog.Attr{slog.String("library", library), slog.String("key", key)}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("repeats_suppressed", suppressed))
	}
	l.LogAttrs(context.Background(), level, msg, attrs...)
}

// redisLogger sends go-redis's internal log lines to slog.
type redisLogger struct{}

// Printf implements go-redis's internal.Logging.
func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	// The format string is the message's identity; its arguments vary
	// (addresses, errors), so the format is the rate-limit key.
	logLibrary(slog.LevelWarn, "go-redis", format, fmt.Sprintf(format, v...))
}

var routeOnce sync.Once

// RouteLibraryLogs sends the logging of the libraries that write on their
// own — go-redis (its logger) and gocraft/work (plain "ERROR: key - error"
// lines on standard output) — to logger as structured records, each kind at
// most once per LibraryLogInterval while it repeats (a dependency that is down
// makes them repeat on every poll). gocraft/work offers no logging hook, so
// with captureStdout the process's standard output is replaced by a pipe: its
// ERROR lines become records, and every other line is copied to the original
// standard output unchanged. Later calls only change the logger.
func RouteLibraryLogs(logger *slog.Logger, captureStdout bool) error {
	libLogger.Store(logger)
	redis.SetLogger(redisLogger{})
	if !captureStdout {
		return nil
	}
	var err error
	routeOnce.Do(func() {
		var r, w *os.File
		r, w, err = os.Pipe()
		if err != nil {
			err = fmt.Errorf("route library logs: %w", err)
			return
		}
		orig := os.Stdout
		os.Stdout = w
		go copyLibraryOutput(r, orig)
	})
	return err
}

// copyLibraryOutput turns gocraft/work's ERROR lines read from r into records
// and copies every other line to orig.
func copyLibraryOutput(r io.Reader, orig io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "ERROR: "); ok {
			key, msg, _ := strings.Cut(rest, " - ")
			logLibrary(slog.LevelError, "gocraft/work", key, msg)
			continue
		}
		fmt.Fprintln(orig, line)
	}
}
