package cache_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// dashboard stands in for the staff dashboard (built elsewhere): a few
// aggregates of the tenant, three statements.
type dashboard struct {
	ActiveSubscribers int
	Packages          int
	PendingInvoices   int
}

func (e *env) dashboard(ctx context.Context) (dashboard, error) {
	var d dashboard
	var err error
	if d.ActiveSubscribers, err = e.db.Client.NetworkUser.Query().Where(networkuser.StatusEQ(networkuser.StatusACTIVE)).Count(ctx); err != nil {
		return d, err
	}
	if d.Packages, err = e.db.Client.ServicePackage.Query().Count(ctx); err != nil {
		return d, err
	}
	d.PendingInvoices, err = e.db.Client.Invoice.Query().Where(invoice.StatusEQ(invoice.StatusPENDING)).Count(ctx)
	return d, err
}

// BenchmarkDashboard reads the cached stand-in dashboard: with Redis (a
// memory hit after one Redis read of the generation) and with Redis away
// (the generation comes from Postgres). It reports SQL statements per read,
// the p50 and p99 of one read and the memory layer's hit rate.
func BenchmarkDashboard(b *testing.B) {
	for _, mode := range []string{"redis-up", "redis-down"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b)
			proxy := testenv.NewProxy(b, e.redis.Addr)
			m := observability.NewMetrics()
			c := e.open(b, proxy.Addr(), m)
			ctx := viewer.ForTenant(context.Background(), e.tenantID)
			read := func() {
				if _, err := cache.Get(ctx, c, cache.ClassDashboard, e.tenantID, "dashboard", e.dashboard); err != nil {
					b.Fatal(err)
				}
			}
			read() // cold: the loader runs once
			if mode == "redis-down" {
				proxy.Stop()
				read() // notices the outage
			}
			stmts := e.statements.Load()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				read()
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			hit := testutil.ToFloat64(m.CacheRequests.WithLabelValues("memory", "dashboard", "hit"))
			miss := testutil.ToFloat64(m.CacheRequests.WithLabelValues("memory", "dashboard", "miss"))
			b.ReportMetric(float64(e.statements.Load()-stmts)/float64(b.N), "stmts/op")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(100*hit/(hit+miss), "hit-%")
		})
	}
}
