package observability

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every ispgraph metric name.
const namespace = "ispgraph"

// Metrics holds the registry a process exposes on /metrics and the collectors other packages observe.
type Metrics struct {
	// Registry holds every collector below plus the Go and process collectors.
	Registry *prometheus.Registry

	// HTTPRequests counts HTTP requests by route and status code.
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration observes HTTP request latency in seconds by route.
	HTTPDuration *prometheus.HistogramVec
	// GraphQLDuration observes GraphQL operation latency in seconds by operation name.
	GraphQLDuration *prometheus.HistogramVec
	// GraphQLErrors counts GraphQL errors by error code.
	GraphQLErrors *prometheus.CounterVec
	// SQLStatementsPerRequest observes how many SQL statements one request ran.
	SQLStatementsPerRequest prometheus.Histogram
	// SQLStatements counts every SQL statement run.
	SQLStatements prometheus.Counter
	// CacheRequests counts cache lookups by layer (memory, redis), TTL class and result (hit, miss).
	CacheRequests *prometheus.CounterVec
	// CacheRedisErrors counts Redis cache errors (treated as misses).
	CacheRedisErrors prometheus.Counter
	// JobsProcessed counts finished job attempts by job name and result (ok, failed).
	JobsProcessed *prometheus.CounterVec
	// JobsFailed counts failed job attempts by job name.
	JobsFailed *prometheus.CounterVec
	// JobsRetried counts failed attempts that will be retried, by job name.
	JobsRetried *prometheus.CounterVec
	// JobsDead counts jobs that used up their attempts (moved to the dead set), by job name.
	JobsDead *prometheus.CounterVec
	// JobDuration observes how long one job attempt ran, by job name.
	JobDuration *prometheus.HistogramVec
	// JobQueueDepth is the number of jobs by job name and state (queued, in_progress, retry, dead).
	JobQueueDepth *prometheus.GaugeVec
	// OutboxPending is the number of outbox rows not yet relayed to the queue.
	OutboxPending prometheus.Gauge

	opMu  sync.Mutex
	opSet map[string]bool
}

// MaxOperationLabels is how many distinct operation names one process uses
// as values of the operation label; every other name is OtherOperation.
const MaxOperationLabels = 200

// OtherOperation is the operation label of every operation not admitted.
const OtherOperation = "other"

// OperationLabel returns the operation label for name: name itself when it
// is already a label, or when admit is true (the caller is authenticated)
// and fewer than MaxOperationLabels names are; otherwise OtherOperation.
// Anonymous clients choose names freely, so they cannot add series.
func (m *Metrics) OperationLabel(name string, admit bool) string {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	switch {
	case m.opSet[name]:
		return name
	case admit && len(m.opSet) < MaxOperationLabels && len(name) <= 100:
		if m.opSet == nil {
			m.opSet = map[string]bool{}
		}
		m.opSet[name] = true
		return name
	}
	return OtherOperation
}

// NewMetrics returns a fresh registry with every ispgraph collector registered on it.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		GraphQLDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "graphql_operation_duration_seconds",
			Help:    "GraphQL operation latency by operation name.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
		GraphQLErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "graphql_errors_total",
			Help: "GraphQL errors by error code.",
		}, []string{"code"}),
		SQLStatementsPerRequest: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "sql_statements_per_request",
			Help: "SQL statements run by one request; a rising tail points at an N+1.",
			// Small integers matter: a request is budgeted a handful of statements.
			Buckets: []float64{0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100},
		}),
		SQLStatements: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "sql_statements_total",
			Help: "SQL statements run.",
		}),
		CacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_requests_total",
			Help: "Cache lookups by layer, TTL class and result.",
		}, []string{"layer", "class", "result"}),
		CacheRedisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_redis_errors_total",
			Help: "Redis cache errors, each served as a miss.",
		}),
		JobsProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_processed_total",
			Help: "Background job attempts finished, by job name and result (ok, failed).",
		}, []string{"job", "result"}),
		JobsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_failed_total",
			Help: "Background job attempts that returned an error, by job name.",
		}, []string{"job"}),
		JobsRetried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_retried_total",
			Help: "Failed background job attempts scheduled for another attempt, by job name.",
		}, []string{"job"}),
		JobsDead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_dead_total",
			Help: "Background jobs that used up their attempts, by job name.",
		}, []string{"job"}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_duration_seconds",
			Help:    "Duration of one background job attempt, by job name.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"job"}),
		JobQueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "job_queue_depth",
			Help: "Background jobs by job name and state (queued, in_progress, retry, dead), sampled by the workers.",
		}, []string{"job", "state"}),
		OutboxPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "outbox_pending",
			Help: "Outbox rows not yet relayed to the job queue.",
		}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests,
		m.HTTPDuration,
		m.GraphQLDuration,
		m.GraphQLErrors,
		m.SQLStatementsPerRequest,
		m.SQLStatements,
		m.CacheRequests,
		m.CacheRedisErrors,
		m.JobsProcessed,
		m.JobsFailed,
		m.JobsRetried,
		m.JobsDead,
		m.JobDuration,
		m.JobQueueDepth,
		m.OutboxPending,
	)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		Registry:          m.Registry,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// RequireBearer serves h only to requests with Authorization: Bearer token;
// an empty token serves everyone (metrics on a private network).
func RequireBearer(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "send Authorization: Bearer <ISPGRAPH_METRICS_TOKEN>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
