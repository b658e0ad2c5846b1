// Package resolvers holds the gqlgen resolvers. They stay thin: each one parses
// its arguments, calls ent or an internal service, and returns; authorisation
// and tenant isolation live below them, and errors are mapped in one presenter.
package resolvers

import (
	"context"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/graph/model"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/catalog"
	"github.com/ispgraph/ispgraph/internal/dashboard"
	"github.com/ispgraph/ispgraph/internal/events"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/secret"
	"github.com/ispgraph/ispgraph/internal/tenants"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/internal/webhook"
)

// errNoQueue answers queue questions in a process without a job queue.
var errNoQueue = apperr.E(apperr.Internal, "the job queue is not configured in this process")

// Resolver is the root resolver: the services every resolver may call.
type Resolver struct {
	Client     *ent.Client
	Auth       *auth.Service
	Billing    *billing.Service
	Mikrotik   *mikrotik.Service
	Dashboards *dashboard.Service
	Secrets    *secret.Box // seals write-only secrets; nil refuses to store them
	Gateways   *gateway.Service
	Online     *gateway.Online // payments customers start on a provider's page
	// Webhooks registers partner endpoints and redelivers to them.
	Webhooks *webhook.Service
	Catalog  *catalog.Service
	Tenants  *tenants.Service
	// Cache keeps connections' totalCount (the counts class); nil counts every time.
	Cache *cache.Cache
	// Warmers load a tenant's hot reads into the cache (warmCache).
	Warmers []cache.Warmer
	Jobs    *jobs.Monitor
	// Events delivers the live changes subscriptions stream; nil refuses
	// subscriptions.
	Events          *events.Bus
	DefaultPageSize int
	MaxPageSize     int
	// Now returns the current time for time-relative scopes; nil means time.Now.
	Now func() time.Time
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// client returns the transactional client of a mutation when there is one
// (entgql.Transactioner opens it), else the root client.
func (r *Resolver) client(ctx context.Context) *ent.Client {
	if c := ent.FromContext(ctx); c != nil {
		return c
	}
	return r.Client
}

// checkPage refuses page sizes the server will not serve.
func (r *Resolver) checkPage(first, last *int) error {
	for _, n := range []*int{first, last} {
		if n == nil {
			continue
		}
		if *n < 0 {
			return apperr.E(apperr.BadUserInput, "page size must not be negative (got %d)", *n)
		}
		if r.MaxPageSize > 0 && *n > r.MaxPageSize {
			return apperr.E(apperr.BadUserInput, "page size %d is over the maximum of %d: page with first/after", *n, r.MaxPageSize)
		}
	}
	return nil
}

// defaultFirst gives a connection asked for with neither first nor last the
// default page size, so no list is ever unbounded.
func (r *Resolver) defaultFirst(first, last *int) *int {
	if first == nil && last == nil && r.DefaultPageSize > 0 {
		n := r.DefaultPageSize
		return &n
	}
	return first
}

func (r *Resolver) login(ctx context.Context, in model.LoginInput) (*model.AuthPayload, error) {
	info := reqinfo.From(ctx)
	token, expires, err := r.Auth.Login(ctx, auth.LoginInput{
		Tenant:   deref(in.Tenant),
		Email:    in.Email,
		Password: in.Password,
		Host:     info.Host,
		Address:  info.Address,
	})
	if err != nil {
		return nil, err
	}
	return &model.AuthPayload{Token: token, ExpiresAt: expires}, nil
}

func (r *Resolver) viewer(ctx context.Context) (*model.Viewer, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return nil, apperr.E(apperr.Unauthenticated, "log in first: send Authorization: Bearer <token>")
	}
	client := r.client(ctx)
	t, err := client.Tenant.Get(ctx, v.TenantID)
	if err != nil {
		return nil, err
	}
	out := &model.Viewer{Kind: strings.ToUpper(v.Kind.String()), Tenant: t, Permissions: v.Permissions}
	if out.Permissions == nil {
		out.Permissions = []string{}
	}
	if v.UserID > 0 {
		if out.User, err = client.User.Get(ctx, v.UserID); err != nil {
			return nil, err
		}
	}
	if v.Role != "" {
		out.Role = &v.Role
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
