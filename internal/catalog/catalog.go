// Package catalog owns the cached reads of a tenant's catalogue: the first
// page of its service packages and of its payment gateways (their masked
// summary only: the encrypted configuration never leaves the database row).
// The resolvers serve these pages from here when a query asks for the
// common shape (no filter, default order, only the nodes' own fields); any
// other shape goes to the database as before.
package catalog

import (
	"context"
	"strconv"

	"entgo.io/contrib/entgql"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Service serves the cached pages. A nil Cache serves them uncached.
type Service struct {
	Client *ent.Client
	Cache  *cache.Cache
	// PageSize is the page warmed by Warm (the API's default page size).
	PageSize int
}

// bare returns a context with the viewer of ctx and nothing else: without a
// GraphQL field context, entgql's Paginate loads whole rows and always
// counts, so one cached page serves every selection of those fields.
func bare(ctx context.Context) (context.Context, context.CancelFunc) {
	b := viewer.NewContext(context.Background(), viewer.FromContext(ctx))
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(b, d)
	}
	return context.WithCancel(b)
}

// Packages returns the first `first` packages of the viewer's tenant in
// default (id) order, with the total count.
func (s *Service) Packages(ctx context.Context, first int) (*ent.PackageConnection, error) {
	tenantID := viewer.FromContext(ctx).TenantID
	return cache.Get(ctx, s.Cache, cache.ClassPackages, tenantID, "first:"+strconv.Itoa(first),
		func(ctx context.Context) (*ent.PackageConnection, error) {
			bctx, cancel := bare(ctx)
			defer cancel()
			return s.Client.ServicePackage.Query().Paginate(bctx, nil, &first, nil, nil)
		})
}

// PaymentGateways returns the first `first` payment gateways of the viewer's
// tenant in default (id) order, with the total count.
func (s *Service) PaymentGateways(ctx context.Context, first int) (*ent.PaymentGatewayConnection, error) {
	tenantID := viewer.FromContext(ctx).TenantID
	return cache.Get(ctx, s.Cache, cache.ClassGateways, tenantID, "first:"+strconv.Itoa(first),
		func(ctx context.Context) (*ent.PaymentGatewayConnection, error) {
			bctx, cancel := bare(ctx)
			defer cancel()
			return s.Client.PaymentGateway.Query().Paginate(bctx, nil, &first, nil, nil)
		})
}

// Warm loads the default first pages of tenantID into the cache and returns
// how many entries it loaded.
func (s *Service) Warm(ctx context.Context, tenantID int) (int, error) {
	ctx = viewer.ForTenant(ctx, tenantID)
	if _, err := s.Packages(ctx, s.PageSize); err != nil {
		return 0, err
	}
	if _, err := s.PaymentGateways(ctx, s.PageSize); err != nil {
		return 1, err
	}
	return 2, nil
}

// Cacheable reports whether a connection query may be served from the
// cached first page: no cursor, no `last`, no order, no filter, and nothing
// selected inside a node but the node's own scalar fields (an edge or object
// field would need the database handle a cached node does not carry).
func Cacheable(ctx context.Context, after, before *entgql.Cursor[int], last *int, unordered, unfiltered bool) bool {
	return after == nil && before == nil && last == nil && unordered && unfiltered && onlyNodeScalars(ctx)
}
