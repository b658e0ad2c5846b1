// Package server owns ispgraph's HTTP surface: the GraphQL endpoint and its
// extensions, the playground, health, readiness and metrics, and the middleware
// chain that puts the request id, request info and viewer in the context.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"time"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/graph"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/catalog"
	"github.com/ispgraph/ispgraph/internal/dashboard"
	"github.com/ispgraph/ispgraph/internal/events"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/playground"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/secret"
	"github.com/ispgraph/ispgraph/internal/sqlstats"
	"github.com/ispgraph/ispgraph/internal/tenants"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/internal/webhook"
	"github.com/ispgraph/ispgraph/loaders"
	"github.com/ispgraph/ispgraph/resolvers"
)

// Options are what the server needs from its wiring.
type Options struct {
	Client *ent.Client
	Auth   *auth.Service
	// Tenants creates and manages tenants (platform operators) and staff.
	Tenants  *tenants.Service
	Billing  *billing.Service
	Mikrotik *mikrotik.Service
	// Jobs, when set, answers jobQueues/deadJobs; with JobsUI it also serves
	// gocraft's web UI under /jobs/ to platform operators.
	Jobs *jobs.Monitor
	// JobsUI is the web UI's own Redis pool (gocraft's UI takes two
	// connections at once) and JobsUIKey the key its session cookies are
	// signed with.
	JobsUI      *redigo.Pool
	JobsUIKey   []byte
	Logger      *slog.Logger
	Metrics     *observability.Metrics
	ReadyChecks map[string]func(context.Context) error
	Secrets     *secret.Box
	// IDs encodes and decodes the API's opaque ids; required.
	IDs      *gid.Codec
	Gateways *gateway.Service
	Online   *gateway.Online
	// Webhooks, when set, takes providers' calls at gateway.Pattern
	// (/webhooks/{provider}/{gateway}) and bKash's browser callback at
	// gateway.BKashCallbackPattern; they carry no bearer token.
	Webhooks *gateway.Webhooks
	// PartnerWebhooks registers partner endpoints and redelivers to them.
	PartnerWebhooks *webhook.Service
	Audit           *audit.Recorder
	ComplexityLimit int
	// Introspection is who may introspect the schema: IntrospectionAll,
	// IntrospectionAuthenticated or IntrospectionOff (also when empty).
	Introspection string
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
	// MaxBodyBytes is the largest POST body read; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	DepthLimit   int
	// FastReads answers the read queries graph.WithFastReads supports with
	// its planned executor (below every extension, so both paths are
	// limited, costed, routed and presented alike).
	FastReads bool
	// FastReadsJoin has the planned executor load the subscribers' package
	// and invoices in the statement that loads the subscribers
	// (graph.FastReadsOptions; Postgres only).
	FastReadsJoin   bool
	DefaultPageSize int
	MaxPageSize     int
	// Dashboards computes the dashboards; nil builds one on Client and Billing.
	Dashboards *dashboard.Service
	Catalog    *catalog.Service
	// Cache keeps connections' totalCount (nil: counted every time).
	Cache   *cache.Cache
	Warmers []cache.Warmer
	// PersistedQueries stores automatic persisted queries shared by every
	// process; when nil, Redis (below) or this process's memory does.
	PersistedQueries graphql.Cache[string]
	// CORSOrigins may call the API from a browser (see CORS); none by default.
	CORSOrigins []string
	// Events streams live changes to subscriptions (graphql-ws on /graphql).
	Events *events.Bus
	// MaxSubscriptions is how many subscriptions one connection may hold at
	// once; 0 means DefaultMaxSubscriptions.
	MaxSubscriptions int
}

// DefaultMaxSubscriptions is the default limit of subscriptions per
// graphql-ws connection.
const DefaultMaxSubscriptions = 10

// GraphQL builds the GraphQL handler with its transports and extensions.
func GraphQL(o Options) *handler.Server {
	if o.Dashboards == nil {
		o.Dashboards = &dashboard.Service{Client: o.Client, Billing: o.Billing}
	}
	res := &resolvers.Resolver{
		Client:          o.Client,
		Auth:            o.Auth,
		Billing:         o.Billing,
		Secrets:         o.Secrets,
		Gateways:        o.Gateways,
		Online:          o.Online,
		Webhooks:        o.PartnerWebhooks,
		Mikrotik:        o.Mikrotik,
		Dashboards:      o.Dashboards,
		Catalog:         o.Catalog,
		Cache:           o.Cache,
		Tenants:         o.Tenants,
		Warmers:         o.Warmers,
		Jobs:            o.Jobs,
		Events:          o.Events,
		DefaultPageSize: o.DefaultPageSize,
		MaxPageSize:     o.MaxPageSize,
	}
	cfg := graph.Config{Resolvers: res, Directives: resolvers.Directives()}
	complexityRoot(&cfg.Complexity, o.DefaultPageSize)
	es := graph.NewExecutableSchema(cfg)
	readPerms, err := resolvers.ReadPermissions(es.Schema())
	if err != nil {
		// The schema and authz's read table are compiled in: a gap is a
		// build defect (TestEveryTypeHasAReadRule), and serving would fail open.
		panic(err)
	}
	if o.FastReads {
		es = graph.WithFastReads(es, graph.FastReadsOptions{JoinEdges: o.FastReadsJoin})
	}
	srv := handler.New(es)
	if o.Events != nil {
		srv.AddTransport(subscriptions(o))
	}
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(postTransport{MaxBody: o.MaxBodyBytes})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(introspection{Mode: o.Introspection})
	apq := o.PersistedQueries
	if apq == nil {
		apq = lru.New[string](1000)
	}
	srv.Use(persistedQueries{APQ: extension.AutomaticPersistedQuery{Cache: apq}, MaxBytes: DefaultMaxPersistedQueryBytes})
	srv.Use(documentLimit{Tokens: DefaultMaxTokens, Aliases: DefaultMaxAliases,
		Fragments: DefaultMaxFragments, Directives: DefaultMaxDirectives})
	srv.Use(stringGuard{})
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
	if o.Audit != nil {
		// Outside the transaction: audit rows are written after it ends.
		srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
			dctx, flush := o.Audit.Deferred(ctx)
			resp := next(dctx)
			if willRetry(ctx) {
				// This attempt is rolled back and run again: only the
				// attempt whose answer the client gets is audited.
				return resp
			}
			flush(ctx)
			return resp
		})
	}
	srv.Use(entgql.Transactioner{TxOpener: o.Client,
		SkipTxFunc: entgql.SkipIfHasFields("importRouterSecrets", "verifyHotspotOtp")})
	srv.SetErrorPresenter(Presenter(o.Logger, o.Metrics))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		o.Logger.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p),
			"request_id", observability.RequestIDFrom(ctx), "stack", string(debug.Stack()))
		return apperr.E(apperr.Internal, "internal error")
	})
	// One field middleware, not two: it runs for every field of every
	// answer (each scalar too), and each layer costs a closure and a context
	// lookup per field (the benchmark's allocation profiles). Mutation
	// fields are audited; readPerms lets them through. The fast path
	// (graph.WithFastReads) runs it once per (type, field) of a query
	// instead of once per value: its decision must stay a function of the
	// viewer, the type and the field (node's concrete type aside, which
	// the fast path resolves through it).
	audit := auditMutations(o.Audit)
	srv.AroundFields(func(ctx context.Context, next graphql.Resolver) (any, error) {
		if fc := graphql.GetFieldContext(ctx); fc != nil && fc.Object == "Mutation" {
			return audit(ctx, next)
		}
		return readPerms(ctx, next)
	})
	// Lists, dashboards and reports may be read from a replica (a no-op
	// without DATABASE_REPLICA_URL).
	srv.AroundOperations(routeReads)
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
				label := o.Metrics.OperationLabel(name, viewer.FromContext(ctx).HasTenant())
				o.Metrics.GraphQLDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
			}
			return resp
		}
	})
	srv.AroundResponses(debugExtensions)
	return srv
}

// skipAudit are mutations the auth service audits itself, with more detail
// (the account tried, why a login failed).
var skipAudit = map[string]bool{"login": true, "customerLogin": true}

// auditMutations records every mutation field: who, what, which entity, the
// names (never the values) of the arguments and input fields it set, and how
// it ended. Refused mutations are recorded too.
func auditMutations(rec *audit.Recorder) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		if rec == nil || fc == nil || fc.Object != "Mutation" || skipAudit[fc.Field.Name] {
			return next(ctx)
		}
		res, err := next(ctx)
		e := audit.Entry{Action: "mutation." + fc.Field.Name, Outcome: "ok"}
		if err != nil {
			code, _, _ := classify(ctx, err)
			e.Outcome = string(code)
		}
		e.Fields = argumentNames(ctx, fc)
		if id, ok := fc.Args["id"].(int); ok {
			e.EntityID = &id
		}
		e.EntityType, e.EntityID = entityOf(fc, res, e.EntityID)
		rec.Record(ctx, audit.Actor(ctx, e))
		return res, err
	}
}

// argumentNames returns the argument names of the field and, for input
// objects, the names of the fields given, as "input.name".
func argumentNames(ctx context.Context, fc *graphql.FieldContext) []string {
	var vars map[string]any
	if graphql.HasOperationContext(ctx) {
		vars = graphql.GetOperationContext(ctx).Variables
	}
	var out []string
	for name, v := range fc.Field.ArgumentMap(vars) {
		m, ok := v.(map[string]any)
		if !ok {
			out = append(out, name)
			continue
		}
		for k := range m {
			out = append(out, name+"."+k)
		}
	}
	slices.Sort(out)
	return out
}

// entityOf names the entity a mutation returned: its GraphQL type and id.
func entityOf(fc *graphql.FieldContext, res any, id *int) (string, *int) {
	typ := fc.Field.Definition.Type.Name()
	rv := reflect.ValueOf(res)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() == reflect.Struct {
		if f := rv.Elem().FieldByName("ID"); f.IsValid() && f.Kind() == reflect.Int {
			n := int(f.Int())
			return typ, &n
		}
	}
	return typ, id
}

// Handler returns the whole HTTP surface.
func Handler(o Options) http.Handler {
	if o.IDs == nil {
		// Without it no id could be written or read: a wiring defect.
		panic("server: Options.IDs is required")
	}
	gql := GraphQL(o)
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.Handler) {
		mux.Handle(pattern, observability.AccessLog(o.Logger, o.Metrics, name, h))
	}
	deps := loaders.Deps{Client: o.Client, Billing: o.Billing}
	route("/graphql", "/graphql", CORS(o.CORSOrigins, mutationOverGET(reqinfo.Middleware(o.Auth.Middleware(loaders.Middleware(deps, monitor(o.Logger, o.Metrics, gql)))))))
	pg := playground.Handler()
	route("GET /{$}", "/", pg)
	route("GET "+playground.AssetPrefix, playground.AssetPrefix, pg)
	route("GET /reports/{file}", "/reports", reportCSV(o.Auth, o.Client))
	if o.Jobs != nil && o.JobsUI != nil {
		route("/jobs/", "/jobs", jobsUI(o.Auth, o.JobsUIKey, o.Logger,
			jobs.WebUI(jobs.Namespace(o.Jobs.Namespace, jobs.General), o.JobsUI, "/jobs"),
			jobs.WebUI(jobs.Namespace(o.Jobs.Namespace, jobs.Payments), o.JobsUI, "/jobs/payments")))
	}
	if o.Webhooks != nil {
		route(gateway.Pattern, "/webhooks", reqinfo.Middleware(o.Webhooks))
		route(gateway.BKashCallbackPattern, "/webhooks", reqinfo.Middleware(http.HandlerFunc(o.Webhooks.ServeBKashCallback)))
	}
	route("GET /healthz", "/healthz", observability.Health())
	route("GET /readyz", "/readyz", observability.Ready(o.Logger, o.ReadyChecks))
	if o.Metrics != nil {
		route("GET /metrics", "/metrics", observability.RequireBearer(o.MetricsToken, o.Metrics.Handler()))
	}
	return observability.RequestID(withIDs(o.IDs, mux))
}

// withIDs puts the id codec in every request's context, where gqlgen's ID
// scalar finds it.
func withIDs(c *gid.Codec, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(gid.NewContext(r.Context(), c)))
	})
}
