package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/sqlstats"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// The thresholds past which a request is logged as a warning (the original
// system's PerformanceMonitoringService): slow, or so many statements that a
// resolver probably issues one per row.
const (
	SlowRequest      = 500 * time.Millisecond
	StatementWarning = 20
)

// DebugHeader, sent as "1" by a staff caller, adds the request's statement
// count and times to the response's extensions.
const DebugHeader = "X-Debug"

// monitor counts the SQL statements the GraphQL execution of each request
// runs (the bearer token lookup before it is not counted), observes them in
// Prometheus and warns about slow or statement-heavy requests.
func monitor(logger *slog.Logger, m *observability.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, st := sqlstats.NewContext(r.Context())
		next.ServeHTTP(w, r.WithContext(ctx))
		d, n := time.Since(st.Started()), st.Count()
		if m != nil {
			m.SQLStatementsPerRequest.Observe(float64(n))
		}
		level := slog.LevelDebug
		msg := "graphql request"
		switch {
		case d > SlowRequest && n > StatementWarning:
			level, msg = slog.LevelWarn, "slow graphql request with many SQL statements"
		case d > SlowRequest:
			level, msg = slog.LevelWarn, "slow graphql request"
		case n > StatementWarning:
			level, msg = slog.LevelWarn, "graphql request with many SQL statements"
		}
		logger.LogAttrs(context.WithoutCancel(ctx), level, msg,
			slog.String("operation", st.Operation()),
			slog.Int("statements", n),
			slog.Duration("sql_time", st.Duration()),
			slog.Duration("duration", d),
			slog.String("request_id", observability.RequestIDFrom(ctx)),
		)
	})
}

// debugExtensions puts the statement count and times in the response's
// extensions when a staff caller sends DebugHeader: 1.
func debugExtensions(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return resp
	}
	oc := graphql.GetOperationContext(ctx)
	st := sqlstats.FromContext(ctx)
	v := viewer.FromContext(ctx)
	if oc == nil || st == nil || v == nil || (v.Kind != viewer.Staff && v.Kind != viewer.Operator) || oc.Headers.Get(DebugHeader) != "1" {
		return resp
	}
	if resp.Extensions == nil {
		resp.Extensions = map[string]any{}
	}
	resp.Extensions["debug"] = map[string]any{
		"sqlStatements": st.Count(),
		"sqlTimeMs":     float64(st.Duration().Microseconds()) / 1000,
		"durationMs":    float64(time.Since(st.Started()).Microseconds()) / 1000,
	}
	return resp
}
