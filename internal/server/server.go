// Package server owns ispgraph's HTTP surface: the GraphQL endpoint and its
// extensions, the playground, health, readiness and metrics, and the middleware
// chain that puts the request id, request info and viewer in the context.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/resolvers"
	"github.com/ispgraph/ispgraph/workers"
)

// Options are what the server needs from its wiring.
type Options struct {
	Client  *ent.Client
	Auth    *auth.Service
	Billing *billing.Service
	// Jobs, when set, answers jobQueues/deadJobs and serves gocraft's web UI under /jobs/.
	Jobs            *workers.Monitor
	Logger          *slog.Logger
	Metrics         *observability.Metrics
	ReadyChecks     map[string]func(context.Context) error
	ComplexityLimit int
	DefaultPageSize int
	MaxPageSize     int
}

// publicFields are the root fields callers may use without a credential.
var publicFields = map[string]bool{
	"login":         true,
	"__schema":      true,
	"__type":        true,
	"__typename":    true,
	"customerLogin": true,
}

// GraphQL builds the GraphQL handler with its transports and extensions.
func GraphQL(o Options) *handler.Server {
	res := &resolvers.Resolver{
		Client:          o.Client,
		Auth:            o.Auth,
		Billing:         o.Billing,
		Jobs:            o.Jobs,
		DefaultPageSize: o.DefaultPageSize,
		MaxPageSize:     o.MaxPageSize,
	}
	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: res}))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	if o.ComplexityLimit > 0 {
		srv.Use(extension.FixedComplexityLimit(o.ComplexityLimit))
	}
	srv.Use(entgql.Transactioner{TxOpener: o.Client})
	srv.SetErrorPresenter(Presenter(o.Logger, o.Metrics))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		o.Logger.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p),
			"request_id", observability.RequestIDFrom(ctx), "stack", string(debug.Stack()))
		return apperr.E(apperr.Internal, "internal error")
	})
	srv.AroundRootFields(requireViewer)
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		start := time.Now()
		oc := graphql.GetOperationContext(ctx)
		name := oc.OperationName
		if name == "" {
			name = "anonymous"
		}
		h := next(ctx)
		return func(ctx context.Context) *graphql.Response {
			resp := h(ctx)
			if o.Metrics != nil {
				o.Metrics.GraphQLDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
			}
			return resp
		}
	})
	return srv
}

// requireViewer answers every non-public root field without a viewer with
// UNAUTHENTICATED. The data layer denies such calls anyway; this gives the
// caller a clear message instead.
func requireViewer(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	fc := graphql.GetRootFieldContext(ctx)
	if fc == nil || publicFields[fc.Field.Name] || viewer.FromContext(ctx).HasTenant() {
		return next(ctx)
	}
	err := auth.AuthError(ctx)
	if err == nil {
		err = apperr.E(apperr.Unauthenticated, "log in first: send Authorization: Bearer <token>")
	}
	graphql.AddError(ctx, err)
	return graphql.Null
}

// Handler returns the whole HTTP surface.
func Handler(o Options) http.Handler {
	gql := GraphQL(o)
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.Handler) {
		mux.Handle(pattern, observability.AccessLog(o.Logger, o.Metrics, name, h))
	}
	route("/graphql", "/graphql", reqinfo.Middleware(o.Auth.Middleware(gql)))
	route("GET /{$}", "/", playground.Handler("ispgraph", "/graphql"))
	route("GET /reports/{file}", "/reports", reportCSV(o.Auth, o.Client))
	if o.Jobs != nil {
		route("/jobs/", "/jobs", jobsUI(o.Auth, workers.WebUI(o.Jobs.Namespace, o.Jobs.Redis, "/jobs")))
	}
	route("GET /healthz", "/healthz", observability.Health())
	route("GET /readyz", "/readyz", observability.Ready(o.Logger, o.ReadyChecks))
	if o.Metrics != nil {
		route("GET /metrics", "/metrics", o.Metrics.Handler())
	}
	return observability.RequestID(mux)
}
