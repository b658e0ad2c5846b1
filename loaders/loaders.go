// Package loaders owns the per-request dataloaders: every GraphQL field that
// is not a plain ent edge (aggregates, "latest", live state) is resolved
// through one of them, so a list of N parents costs one statement per field,
// not N. A middleware builds a fresh set per request; resolvers call
// loaders.For(ctx).X.Load(ctx, id).
//
// Batch functions return one result per key, in key order, and query through
// ent, so the tenant of the request's viewer filters every statement.
package loaders

import (
	"context"
	"net/http"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"
	"github.com/graph-gophers/dataloader/v7"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networksession"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/money"
)

// Wait is how long a loader collects keys before it runs its batch. gqlgen
// resolves the fields of a list's elements concurrently; a few milliseconds
// gather them all into one batch at a small latency cost.
const Wait = 2 * time.Millisecond

// RouterFreshness is how recent a router's last successful check must be for
// it to count as online.
const RouterFreshness = 10 * time.Minute

// Loaders are the dataloaders of one request.
type Loaders struct {
	// AmountDue is the unpaid part of a subscriber's open invoices.
	AmountDue *dataloader.Loader[int, money.Money]
	// LatestInvoice is a subscriber's most recently issued invoice (nil when none).
	LatestInvoice *dataloader.Loader[int, *ent.Invoice]
	// InvoiceCounts are a subscriber's invoices by state.
	InvoiceCounts *dataloader.Loader[int, billing.InvoiceCounts]
	// PaymentsTotal is the sum of an invoice's completed payments.
	PaymentsTotal *dataloader.Loader[int, money.Money]
	// CurrentSession is a subscriber's newest active session (nil when offline).
	CurrentSession *dataloader.Loader[int, *ent.NetworkSession]
	// RouterOnline says whether a router answered its last check recently.
	RouterOnline *dataloader.Loader[int, bool]
	// PackageSubscribers is the number of subscribers on a package.
	PackageSubscribers *dataloader.Loader[int, int]
}

// Deps are what the batch functions need.
type Deps struct {
	// Client is the root client; a mutation's transactional client in the
	// context takes precedence.
	Client  *ent.Client
	Billing *billing.Service
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// New returns a fresh set of loaders. Build one per request: loaders cache
// results for their lifetime.
func New(d Deps) *Loaders {
	if d.Now == nil {
		d.Now = time.Now
	}
	b := &batches{d: d}
	return &Loaders{
		AmountDue:          newLoader(b.amountDue),
		LatestInvoice:      newLoader(b.latestInvoice),
		InvoiceCounts:      newLoader(b.invoiceCounts),
		PaymentsTotal:      newLoader(b.paymentsTotal),
		CurrentSession:     newLoader(b.currentSession),
		RouterOnline:       newLoader(b.routerOnline),
		PackageSubscribers: newLoader(b.packageSubscribers),
	}
}

func newLoader[V any](fn dataloader.BatchFunc[int, V]) *dataloader.Loader[int, V] {
	return dataloader.NewBatchedLoader(fn, dataloader.WithWait[int, V](Wait))
}

type ctxKey struct{}

// NewContext returns ctx carrying l.
func NewContext(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// For returns the loaders of the request in ctx. Outside a request (a job, a
// test calling a resolver directly) it returns a fresh set bound to nothing
// but ctx's client, so callers never need a nil check.
func For(ctx context.Context) *Loaders {
	if l, ok := ctx.Value(ctxKey{}).(*Loaders); ok {
		return l
	}
	return New(Deps{Client: ent.FromContext(ctx), Billing: &billing.Service{Client: ent.FromContext(ctx)}})
}

// Middleware gives every request its own loaders.
func Middleware(d Deps, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), New(d))))
	})
}

type batches struct{ d Deps }

// client is the mutation's transactional client when there is one.
func (b *batches) client(ctx context.Context) *ent.Client {
	if c := ent.FromContext(ctx); c != nil {
		return c
	}
	return b.d.Client
}

// fill returns one result per key in key order: the value found, or zero.
func fill[V any](keys []int, found map[int]V, err error) []*dataloader.Result[V] {
	out := make([]*dataloader.Result[V], len(keys))
	for i, k := range keys {
		if err != nil {
			out[i] = &dataloader.Result[V]{Error: err}
			continue
		}
		out[i] = &dataloader.Result[V]{Data: found[k]}
	}
	return out
}

func (b *batches) amountDue(ctx context.Context, ids []int) []*dataloader.Result[money.Money] {
	found, err := b.d.Billing.AmountsDue(ctx, b.client(ctx), ids)
	return fill(ids, found, err)
}

func (b *batches) invoiceCounts(ctx context.Context, ids []int) []*dataloader.Result[billing.InvoiceCounts] {
	found, err := b.d.Billing.CountInvoices(ctx, b.client(ctx), ids, b.d.Now())
	return fill(ids, found, err)
}

func (b *batches) paymentsTotal(ctx context.Context, ids []int) []*dataloader.Result[money.Money] {
	found, err := b.d.Billing.PaymentsTotals(ctx, b.client(ctx), ids)
	return fill(ids, found, err)
}

// latestInvoice takes each subscriber's newest invoice in one statement: a
// window function numbers each subscriber's invoices, newest first.
func (b *batches) latestInvoice(ctx context.Context, ids []int) []*dataloader.Result[*ent.Invoice] {
	rows, err := b.client(ctx).Invoice.Query().
		Where(invoice.NetworkUserIDIn(ids...)).
		Modify(entgql.LimitPerRow(invoice.FieldNetworkUserID, 1,
			sql.DescExpr(sql.Expr(invoice.FieldIssuedAt)), sql.DescExpr(sql.Expr(invoice.FieldID)))).
		All(ctx)
	found := make(map[int]*ent.Invoice, len(rows))
	for _, r := range rows {
		found[r.NetworkUserID] = r
	}
	return fill(ids, found, err)
}

// currentSession takes each subscriber's active sessions (a handful at most)
// and keeps the newest.
func (b *batches) currentSession(ctx context.Context, ids []int) []*dataloader.Result[*ent.NetworkSession] {
	rows, err := b.client(ctx).NetworkSession.Query().
		Where(networksession.NetworkUserIDIn(ids...), networksession.StatusEQ(networksession.StatusACTIVE)).
		Order(ent.Desc(networksession.FieldStartedAt), ent.Desc(networksession.FieldID)).
		All(ctx)
	found := make(map[int]*ent.NetworkSession, len(rows))
	for _, r := range rows {
		if r.NetworkUserID == nil {
			continue
		}
		if _, ok := found[*r.NetworkUserID]; !ok {
			found[*r.NetworkUserID] = r
		}
	}
	return fill(ids, found, err)
}

// routerOnline reads the routers' last check afresh: the router row a
// resolver holds may have been loaded earlier in the request, or cached.
func (b *batches) routerOnline(ctx context.Context, ids []int) []*dataloader.Result[bool] {
	rows, err := b.client(ctx).Router.Query().
		Where(router.IDIn(ids...)).
		Select(router.FieldID, router.FieldAPIStatus, router.FieldLastCheckedAt).
		All(ctx)
	since := b.d.Now().Add(-RouterFreshness)
	found := make(map[int]bool, len(rows))
	for _, r := range rows {
		found[r.ID] = r.APIStatus == router.APIStatusONLINE && r.LastCheckedAt != nil && r.LastCheckedAt.After(since)
	}
	return fill(ids, found, err)
}

func (b *batches) packageSubscribers(ctx context.Context, ids []int) []*dataloader.Result[int] {
	var rows []struct {
		PackageID int `json:"package_id"`
		Count     int `json:"count"`
	}
	err := b.client(ctx).NetworkUser.Query().
		Where(networkuser.PackageIDIn(ids...)).
		GroupBy(networkuser.FieldPackageID).
		Aggregate(ent.Count()).
		Scan(ctx, &rows)
	found := make(map[int]int, len(rows))
	for _, r := range rows {
		found[r.PackageID] = r.Count
	}
	return fill(ids, found, err)
}
