package observability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads the current value of a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatalf("write metric: %v", err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric is neither a counter nor a gauge: %v", &m)
	return 0
}

// seriesCount returns how many series a family named name has in reg.
func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		format string
		want   string
	}{
		{"json", `"msg":"hello"`},
		{"text", `msg=hello`},
		{"", `msg=hello`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			l := NewLogger(&buf, tt.format, slog.LevelInfo)
			l.Debug("hidden")
			l.Info("hello")
			if got := buf.String(); !strings.Contains(got, tt.want) || strings.Contains(got, "hidden") {
				t.Errorf("output %q: want %q and no debug line", got, tt.want)
			}
		})
	}
}

func TestMetricsHandler(t *testing.T) {
	m := NewMetrics()
	m.HTTPRequests.WithLabelValues("/graphql", "200").Inc()
	m.HTTPDuration.WithLabelValues("/graphql").Observe(0.1)
	m.GraphQLDuration.WithLabelValues("Subscribers").Observe(0.05)
	m.GraphQLErrors.WithLabelValues("NOT_FOUND").Inc()
	m.SQLStatementsPerRequest.Observe(3)
	m.SQLStatements.Add(3)
	m.CacheRequests.WithLabelValues("memory", "short", "hit").Inc()
	m.CacheRedisErrors.Inc()
	m.JobsProcessed.WithLabelValues("send_sms", "ok").Inc()
	m.OutboxPending.Set(7)

	// Two handlers on one registry must not collide on promhttp's own metrics.
	_ = m.Handler()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`ispgraph_http_requests_total{code="200",route="/graphql"} 1`,
		`ispgraph_http_request_duration_seconds_count{route="/graphql"} 1`,
		`ispgraph_graphql_operation_duration_seconds_count{operation="Subscribers"} 1`,
		`ispgraph_graphql_errors_total{code="NOT_FOUND"} 1`,
		`ispgraph_sql_statements_per_request_count 1`,
		`ispgraph_sql_statements_total 3`,
		`ispgraph_cache_requests_total{class="short",layer="memory",result="hit"} 1`,
		`ispgraph_cache_redis_errors_total 1`,
		`ispgraph_jobs_processed_total{job="send_sms",result="ok"} 1`,
		`ispgraph_outbox_pending 7`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}

	// Each Metrics has its own registry: no global state shared between instances.
	if other := NewMetrics(); value(t, other.OutboxPending) != 0 {
		t.Error("a new Metrics must start from zero")
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name   string
		header string
		keep   bool
		absent bool
	}{
		{name: "sane id kept", header: "abc-DEF_123", keep: true},
		{name: "64 chars kept", header: strings.Repeat("a", 64), keep: true},
		{name: "65 chars replaced", header: strings.Repeat("a", 65)},
		{name: "bad characters replaced", header: "abc def"},
		{name: "log injection replaced", header: "x\nlevel=ERROR"},
		{name: "non-ascii replaced", header: "héllo"},
		{name: "missing generated", absent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = RequestIDFrom(r.Context())
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if !tt.absent {
				req.Header.Set(RequestIDHeader, tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if got := rec.Header().Get(RequestIDHeader); got != seen {
				t.Errorf("echoed %q, context had %q", got, seen)
			}
			if tt.keep {
				if seen != tt.header {
					t.Errorf("id = %q, want the client's %q", seen, tt.header)
				}
				return
			}
			if seen == tt.header || !validRequestID(seen) || len(seen) != 32 {
				t.Errorf("id = %q, want a fresh 32-char hex id", seen)
			}
		})
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newRequestID()
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestWithRequestID(t *testing.T) {
	if got := RequestIDFrom(context.Background()); got != "" {
		t.Errorf("empty context gave %q", got)
	}
	if got := RequestIDFrom(WithRequestID(context.Background(), "r1")); got != "r1" {
		t.Errorf("got %q, want r1", got)
	}
}

// logLines decodes JSON log output into one map per line.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(buf)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("decode log: %v", err)
		}
		out = append(out, m)
	}
}

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name      string
		route     string
		path      string
		handler   http.HandlerFunc
		wantCode  int
		wantLevel string
	}{
		{
			name: "ok", route: "/graphql", path: "/graphql",
			handler:  func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") },
			wantCode: 200, wantLevel: "INFO",
		},
		{
			name: "explicit status", route: "/graphql", path: "/graphql",
			handler:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) },
			wantCode: 418, wantLevel: "INFO",
		},
		{
			name: "nothing written", route: "/graphql", path: "/graphql",
			handler:  func(w http.ResponseWriter, r *http.Request) {},
			wantCode: 200, wantLevel: "INFO",
		},
		{
			name: "health check at debug", route: "/healthz", path: "/healthz",
			handler:  Health().ServeHTTP,
			wantCode: 200, wantLevel: "DEBUG",
		},
		{
			name: "readiness at debug", route: "/readyz", path: "/readyz",
			handler:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) },
			wantCode: 503, wantLevel: "DEBUG",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := NewLogger(&buf, "json", slog.LevelDebug)
			m := NewMetrics()
			h := RequestID(AccessLog(logger, m, tt.route, tt.handler))
			req := httptest.NewRequest(http.MethodPost, tt.path, nil)
			req.Header.Set(RequestIDHeader, "req-1")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantCode {
				t.Fatalf("response status = %d, want %d", rec.Code, tt.wantCode)
			}
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1", len(lines))
			}
			l := lines[0]
			if l["level"] != tt.wantLevel || l["method"] != "POST" || l["path"] != tt.path ||
				l["route"] != tt.route || l["status"] != float64(tt.wantCode) || l["request_id"] != "req-1" {
				t.Errorf("log line = %v", l)
			}
			if _, ok := l["duration"]; !ok {
				t.Error("log line lacks duration")
			}
			code := strconv.Itoa(tt.wantCode)
			if got := value(t, m.HTTPRequests.WithLabelValues(tt.route, code)); got != 1 {
				t.Errorf("http_requests_total{route=%q,code=%s} = %v, want 1", tt.route, code, got)
			}
			if got := seriesCount(t, m.Registry, "ispgraph_http_request_duration_seconds"); got != 1 {
				t.Errorf("duration series = %d, want 1", got)
			}
		})
	}
}

func TestAccessLogNilMetrics(t *testing.T) {
	h := AccessLog(slog.New(slog.DiscardHandler), nil, "/x", http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("status = %d", rec.Code)
	}
}

// hijackRecorder is a ResponseRecorder that can be hijacked, like a real server's writer.
type hijackRecorder struct {
	*httptest.ResponseRecorder
}

func (h hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c1, c2 := net.Pipe()
	_ = c2.Close()
	return c1, bufio.NewReadWriter(bufio.NewReader(c1), bufio.NewWriter(c1)), nil
}

func TestAccessLogKeepsFlushAndHijack(t *testing.T) {
	var buf bytes.Buffer
	logger := NewLogger(&buf, "json", slog.LevelInfo)
	h := AccessLog(logger, nil, "/graphql", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("wrapped writer lost http.Flusher")
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Fatalf("hijack: %v", err)
		}
		_ = conn.Close()
	}))
	h.ServeHTTP(hijackRecorder{httptest.NewRecorder()}, httptest.NewRequest(http.MethodGet, "/graphql", nil))
	if l := logLines(t, &buf); len(l) != 1 || l[0]["status"] != float64(http.StatusSwitchingProtocols) {
		t.Errorf("hijacked request log = %v, want status 101", l)
	}
}

func TestHealth(t *testing.T) {
	rec := httptest.NewRecorder()
	Health().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
		t.Errorf("got %d %q", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type = %q", ct)
	}
}

func TestReady(t *testing.T) {
	const secret = "dial tcp: postgres://ispgraph:hunter2@db:5432/ispgraph: connection refused"
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name     string
		checks   map[string]func(context.Context) error
		wantCode int
		wantBody string
		wantLog  []string
	}{
		{
			name:     "all ok",
			checks:   map[string]func(context.Context) error{"database": ok, "redis": ok},
			wantCode: 200,
			wantBody: `{"status":"ok","checks":{"database":"ok","redis":"ok"}}`,
		},
		{
			name: "failure hides the error",
			checks: map[string]func(context.Context) error{
				"database": func(context.Context) error { return errors.New(secret) },
				"redis":    ok,
			},
			wantCode: 503,
			wantBody: `{"status":"unavailable","checks":{"database":"unavailable","redis":"ok"}}`,
			wantLog:  []string{"readiness check failed", "hunter2"},
		},
		{
			name: "check that ignores its context times out",
			checks: map[string]func(context.Context) error{
				"database": ok,
				"redis":    func(context.Context) error { time.Sleep(ReadyCheckTimeout + time.Second); return nil },
			},
			wantCode: 503,
			wantBody: `{"status":"unavailable","checks":{"database":"ok","redis":"unavailable"}}`,
			wantLog:  []string{"deadline exceeded"},
		},
		{
			name:     "no checks",
			checks:   nil,
			wantCode: 200,
			wantBody: `{"status":"ok"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			h := Ready(NewLogger(&logs, "text", slog.LevelInfo), tt.checks)
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if d := time.Since(start); d > ReadyCheckTimeout+500*time.Millisecond {
				t.Errorf("readyz took %v, want at most about %v", d, ReadyCheckTimeout)
			}
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.wantBody {
				t.Errorf("body = %s, want %s", got, tt.wantBody)
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Error("response leaks the raw error")
			}
			for _, want := range tt.wantLog {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log %q lacks %q", logs.String(), want)
				}
			}
		})
	}
}
