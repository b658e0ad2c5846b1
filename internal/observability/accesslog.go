package observability

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// AccessLog logs one line per request (probes of /healthz, /readyz and /metrics at Debug,
// the rest at Info) and observes HTTPRequests and HTTPDuration under route; m may be nil.
// Wrap it in RequestID so the line carries the request id.
func AccessLog(logger *slog.Logger, m *Metrics, route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		status := sw.statusCode()

		if m != nil {
			m.HTTPRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			m.HTTPDuration.WithLabelValues(route).Observe(d.Seconds())
		}
		level := slog.LevelInfo
		if isProbe(route, r.URL.Path) {
			level = slog.LevelDebug
		}
		// The request's context may be cancelled by now; logging must not depend on it.
		ctx := context.WithoutCancel(r.Context())
		logger.LogAttrs(ctx, level, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", d),
			slog.String("request_id", RequestIDFrom(r.Context())),
		)
	})
}

// isProbe reports whether a request is a health check or scrape, which arrive every few
// seconds and would drown the Info log.
func isProbe(route, path string) bool {
	for _, p := range [...]string{route, path} {
		switch p {
		case "/healthz", "/readyz", "/metrics", "healthz", "readyz", "metrics":
			return true
		}
	}
	return false
}

// statusWriter records the status and size of a response. It forwards Flush and Hijack so
// streaming and WebSocket transports keep working behind the access log.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher when the underlying writer can flush.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker for WebSocket upgrades.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, rw, err
}

func (w *statusWriter) statusCode() int {
	switch {
	case w.status != 0:
		return w.status
	case w.hijacked:
		return http.StatusSwitchingProtocols
	default:
		return http.StatusOK
	}
}
