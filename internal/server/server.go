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
	"github.com/redis/go-redis/v9"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/dashboard"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/sqlstats"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/loaders"
	"github.com/ispgraph/ispgraph/resolvers"
)

// Options are what the server needs from its wiring.
type Options struct {
	Client          *ent.Client
	Auth            *auth.Service
	Billing         *billing.Service
	Mikrotik        *mikrotik.Service
	Logger          *slog.Logger
	Metrics         *observability.Metrics
	ReadyChecks     map[string]func(context.Context) error
	ComplexityLimit int
	DepthLimit      int
	DefaultPageSize int
	MaxPageSize     int
	// Dashboards computes the dashboards; nil builds one on Client and Billing.
	Dashboards *dashboard.Service
	// Redis stores automatic persisted queries; nil keeps them in memory.
	Redis *redis.Client
	// APQPrefix prefixes persisted-query keys in Redis (default "ispgraph:apq:").
	APQPrefix string
}

// publicFields are the root fields callers may use without a credential.
var publicFields = map[string]bool{
	"login":         true,
	"__schema":      true,
	"__type":        true,
	"__typename":    true,
	"customerLogin": true,
	// Hotspot sign-up: the tenant comes from the Host header or an argument.
	"requestHotspotOtp": true,
	"verifyHotspotOtp":  true,
}

// GraphQL builds the GraphQL handler with its transports and extensions.
func GraphQL(o Options) *handler.Server {
	if o.Dashboards == nil {
		o.Dashboards = &dashboard.Service{Client: o.Client, Billing: o.Billing}
	}
	res := &resolvers.Resolver{
		Client:          o.Client,
		Auth:            o.Auth,
		Billing:         o.Billing,
		Mikrotik:        o.Mikrotik,
		Dashboards:      o.Dashboards,
		DefaultPageSize: o.DefaultPageSize,
		MaxPageSize:     o.MaxPageSize,
	}
	cfg := graph.Config{Resolvers: res}
	complexityRoot(&cfg.Complexity, o.DefaultPageSize)
	srv := handler.New(graph.NewExecutableSchema(cfg))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	if o.Redis != nil {
		prefix := o.APQPrefix
		if prefix == "" {
			prefix = "ispgraph:apq:"
		}
		srv.Use(extension.AutomaticPersistedQuery{Cache: apqCache{rdb: o.Redis, prefix: prefix, ttl: 24 * time.Hour}})
	} else {
		srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	}
	srv.Use(pageLimit{Max: o.MaxPageSize})
	if o.DepthLimit > 0 {
		srv.Use(depthLimit{Limit: o.DepthLimit})
	}
	if o.ComplexityLimit > 0 {
		srv.Use(&complexityLimit{Limit: o.ComplexityLimit})
	}
	// Every mutation runs in one transaction, except two that must not hold
	// one: importRouterSecrets talks to a router first (no lock held while it
	// may time out) and verifyHotspotOtp must keep the count of a wrong code
	// it rejects; both open their own transactions.
	srv.Use(entgql.Transactioner{TxOpener: o.Client,
		SkipTxFunc: entgql.SkipIfHasFields("importRouterSecrets", "verifyHotspotOtp")})
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
		if name == "" && oc.Operation != nil {
			name = oc.Operation.Name
		}
		if name == "" {
			name = "anonymous"
		}
		if st := sqlstats.FromContext(ctx); st != nil {
			st.SetOperation(name)
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
	srv.AroundResponses(debugExtensions)
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
	deps := loaders.Deps{Client: o.Client, Billing: o.Billing}
	route("/graphql", "/graphql", reqinfo.Middleware(o.Auth.Middleware(loaders.Middleware(deps, monitor(o.Logger, o.Metrics, gql)))))
	route("GET /{$}", "/", playground.Handler("ispgraph", "/graphql"))
	route("GET /healthz", "/healthz", observability.Health())
	route("GET /readyz", "/readyz", observability.Ready(o.Logger, o.ReadyChecks))
	if o.Metrics != nil {
		route("GET /metrics", "/metrics", o.Metrics.Handler())
	}
	return observability.RequestID(mux)
}
