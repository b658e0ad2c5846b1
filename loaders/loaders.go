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
	"sync"
	"time"

	"entgo.io/contrib/entgql"
	entgo "entgo.io/ent"
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
	AmountDue *Loader[money.Money]
	// LatestInvoice is a subscriber's most recently issued invoice (nil when none).
	LatestInvoice *Loader[*ent.Invoice]
	// InvoiceCounts are a subscriber's invoices by state.
	InvoiceCounts *Loader[billing.InvoiceCounts]
	// PaymentsTotal is the sum of an invoice's completed payments.
	PaymentsTotal *Loader[money.Money]
	// CurrentSession is a subscriber's newest active session (nil when offline).
	CurrentSession *Loader[*ent.NetworkSession]
	// RouterOnline says whether a router answered its last check recently.
	RouterOnline *Loader[bool]
	// PackageSubscribers is the number of subscribers on a package.
	PackageSubscribers *Loader[int]

	siblings *siblings
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
	if d.Billing == nil {
		d.Billing = &billing.Service{Client: d.Client}
	}
	b := &batches{d: d}
	sib := &siblings{groups: map[string]map[int]*group{}}
	return &Loaders{
		AmountDue:          newLoader(sib, typeNetworkUser, b.amountDue),
		LatestInvoice:      newLoader(sib, typeNetworkUser, b.latestInvoice),
		InvoiceCounts:      newLoader(sib, typeNetworkUser, b.invoiceCounts),
		PaymentsTotal:      newLoader(sib, typeInvoice, b.paymentsTotal),
		CurrentSession:     newLoader(sib, typeNetworkUser, b.currentSession),
		RouterOnline:       newLoader(sib, typeRouter, b.routerOnline),
		PackageSubscribers: newLoader(sib, typePackage, b.packageSubscribers),
		siblings:           sib,
	}
}

// batchFunc loads the values of keys in one statement; keys without a value
// are absent from the map and load as the zero value.
type batchFunc[V any] func(ctx context.Context, keys []int) (map[int]V, error)

// Loader loads one value per key. Keys of entities this request loaded
// through ent are batched with their siblings (every entity the same ent
// query returned), once, however the resolvers' goroutines are scheduled:
// the statement count of a request does not depend on timing. Other keys go
// through a graph-gophers dataloader, which batches what arrives within Wait.
type Loader[V any] struct {
	dl    *dataloader.Loader[int, V]
	batch batchFunc[V]
	sib   *siblings
	typ   string

	mu   sync.Mutex
	done map[*group]*result[V]
}

type result[V any] struct {
	once sync.Once
	vals map[int]V
	err  error
}

func newLoader[V any](sib *siblings, typ string, fn batchFunc[V]) *Loader[V] {
	l := &Loader[V]{batch: fn, sib: sib, typ: typ, done: map[*group]*result[V]{}}
	l.dl = dataloader.NewBatchedLoader(func(ctx context.Context, keys []int) []*dataloader.Result[V] {
		found, err := fn(ctx, keys)
		return fill(keys, found, err)
	}, dataloader.WithWait[int, V](Wait))
	return l
}

// Load returns the value of key.
func (l *Loader[V]) Load(ctx context.Context, key int) (V, error) {
	g := l.sib.group(l.typ, key)
	if g == nil {
		return l.dl.Load(ctx, key)()
	}
	l.mu.Lock()
	r, ok := l.done[g]
	if !ok {
		r = &result[V]{}
		l.done[g] = r
	}
	l.mu.Unlock()
	r.once.Do(func() { r.vals, r.err = l.batch(ctx, g.keys) })
	return r.vals[key], r.err
}

// The entity types whose query results form sibling groups.
const (
	typeNetworkUser = "NetworkUser"
	typeInvoice     = "Invoice"
	typeRouter      = "Router"
	typePackage     = "ServicePackage"
)

// siblings remembers, per entity type, which ent query result each id came in.
type siblings struct {
	mu     sync.Mutex
	groups map[string]map[int]*group
}

type group struct{ keys []int }

func (s *siblings) add(typ string, ids []int) {
	if len(ids) == 0 {
		return
	}
	g := &group{keys: ids}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.groups[typ]
	if m == nil {
		m = map[int]*group{}
		s.groups[typ] = m
	}
	for _, id := range ids {
		// The first group an id came in stays its group: a batch function's
		// own query (routerOnline reads routers) must not regroup the keys
		// whose batch it is running.
		if _, ok := m[id]; !ok {
			m[id] = g
		}
	}
}

func (s *siblings) group(typ string, id int) *group {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[typ][id]
}

// Interceptor records the entities every ent query of the request returns,
// so that a loader asked about one of them loads all its siblings at once.
// Register it once on the client; outside a request (no loaders in the
// context) it does nothing.
//
// It also adds the amount due (billing.SelectAmountDue) to the subscriber
// rows of a query run with a context from WithAmountDue, and the columns of
// a context from WithNetworkUserColumns.
func Interceptor() ent.Interceptor {
	return ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			if nq, ok := q.(*ent.NetworkUserQuery); ok {
				if qc := entgo.QueryFromContext(ctx); qc != nil && (qc.Op == entgo.OpQueryAll || qc.Op == entgo.OpQueryOnly) {
					if ctx.Value(amountDueKey{}) != nil {
						nq.Modify(billing.SelectAmountDue)
					}
					if add, ok := ctx.Value(columnsKey{}).(func(*sql.Selector)); ok {
						nq.Modify(add)
					}
				}
			}
			v, err := next.Query(ctx, q)
			l, ok := ctx.Value(ctxKey{}).(*Loaders)
			if err != nil || !ok {
				return v, err
			}
			switch nodes := v.(type) {
			case []*ent.NetworkUser:
				l.siblings.add(typeNetworkUser, idsOf(nodes, func(n *ent.NetworkUser) int { return n.ID }))
			case []*ent.Invoice:
				l.siblings.add(typeInvoice, idsOf(nodes, func(n *ent.Invoice) int { return n.ID }))
			case []*ent.Router:
				l.siblings.add(typeRouter, idsOf(nodes, func(n *ent.Router) int { return n.ID }))
			case []*ent.ServicePackage:
				l.siblings.add(typePackage, idsOf(nodes, func(n *ent.ServicePackage) int { return n.ID }))
			}
			return v, err
		})
	})
}

func idsOf[T any](nodes []T, id func(T) int) []int {
	out := make([]int, len(nodes))
	for i, n := range nodes {
		out[i] = id(n)
	}
	return out
}

type ctxKey struct{}

type amountDueKey struct{}

// WithAmountDue returns ctx in which a query returning subscribers also
// loads their amount due in the same statement (read with
// billing.AmountDueOf), so balance and amountDue need no statement of their
// own. Resolvers use it for the subscribers they load when those fields are
// selected.
func WithAmountDue(ctx context.Context) context.Context {
	return context.WithValue(ctx, amountDueKey{}, true)
}

type columnsKey struct{}

// WithNetworkUserColumns returns ctx under which the subscriber queries that
// return rows (All, Only; not Count) also run add on their statement, which
// appends columns to it (read back with the rows' Value). The planned
// executor (graph/fastjoin.go) loads a subscriber's edges this way, in the
// statement that loads the subscriber.
func WithNetworkUserColumns(ctx context.Context, add func(*sql.Selector)) context.Context {
	return context.WithValue(ctx, columnsKey{}, add)
}

// NewContext returns ctx carrying l.
func NewContext(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// For returns the loaders of the request in ctx. Outside a request (a job, a
// test calling a resolver directly) it returns a fresh set on ctx's client,
// so callers never need a nil check.
func For(ctx context.Context) *Loaders {
	if l, ok := ctx.Value(ctxKey{}).(*Loaders); ok {
		return l
	}
	return New(Deps{Client: ent.FromContext(ctx)})
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

func (b *batches) amountDue(ctx context.Context, ids []int) (map[int]money.Money, error) {
	return b.d.Billing.AmountsDue(ctx, b.client(ctx), ids)
}

func (b *batches) invoiceCounts(ctx context.Context, ids []int) (map[int]billing.InvoiceCounts, error) {
	return b.d.Billing.CountInvoices(ctx, b.client(ctx), ids, b.d.Now())
}

func (b *batches) paymentsTotal(ctx context.Context, ids []int) (map[int]money.Money, error) {
	return b.d.Billing.PaymentsTotals(ctx, b.client(ctx), ids)
}

// latestInvoice takes each subscriber's newest invoice in one statement: a
// window function numbers each subscriber's invoices, newest first.
func (b *batches) latestInvoice(ctx context.Context, ids []int) (map[int]*ent.Invoice, error) {
	rows, err := b.client(ctx).Invoice.Query().
		Where(invoice.NetworkUserIDIn(ids...)).
		Modify(entgql.LimitPerRow(invoice.FieldNetworkUserID, 1,
			sql.DescExpr(sql.Expr(invoice.FieldIssuedAt)), sql.DescExpr(sql.Expr(invoice.FieldID)))).
		All(ctx)
	found := make(map[int]*ent.Invoice, len(rows))
	for _, r := range rows {
		found[r.NetworkUserID] = r
	}
	return found, err
}

// currentSession takes each subscriber's active sessions (a handful at most)
// and keeps the newest.
func (b *batches) currentSession(ctx context.Context, ids []int) (map[int]*ent.NetworkSession, error) {
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
	return found, err
}

// routerOnline reads the routers' last check afresh: the router row a
// resolver holds may have been loaded earlier in the request, or cached.
func (b *batches) routerOnline(ctx context.Context, ids []int) (map[int]bool, error) {
	rows, err := b.client(ctx).Router.Query().
		Where(router.IDIn(ids...)).
		Select(router.FieldID, router.FieldAPIStatus, router.FieldLastCheckedAt).
		All(ctx)
	since := b.d.Now().Add(-RouterFreshness)
	found := make(map[int]bool, len(rows))
	for _, r := range rows {
		found[r.ID] = r.APIStatus == router.APIStatusONLINE && r.LastCheckedAt != nil && r.LastCheckedAt.After(since)
	}
	return found, err
}

func (b *batches) packageSubscribers(ctx context.Context, ids []int) (map[int]int, error) {
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
	return found, err
}
