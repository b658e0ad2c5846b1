package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/sqlstats"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// BenchmarkAuthenticatedRequest runs the authentication middleware of one
// request (Authorization header to viewer in the context) for a staff token
// and a partner API key, against the real Postgres and Redis:
//
//   - verify: every request verified against the database, as before the
//     verified-credential cache (SessionCacheSize -1);
//   - cached: the credential warm in this process, Redis up;
//   - redis-down: warm, but the generations read from Postgres.
//
// It reports SQL statements per request (sqlstats, as the server counts
// them) beside ns/op and allocations:
//
//	go test -run XXX -bench AuthenticatedRequest -benchmem ./internal/auth
func BenchmarkAuthenticatedRequest(b *testing.B) {
	for _, cred := range []string{"staff", "apikey"} {
		for _, mode := range []string{"verify", "cached", "redis-down"} {
			b.Run(cred+"/"+mode, func(b *testing.B) {
				c := newCluster(b)
				proxy := testenv.NewProxy(b, c.redis.Addr)
				in := c.instance(b, proxy.Addr())
				if mode == "verify" {
					in.svc.SessionCacheSize = -1
				}
				secret := c.staffToken(b, in, "admin@demo.example", "pw-admin")
				if cred == "apikey" {
					admin := c.asAdmin(b, in)
					_, key, err := in.svc.CreateAPIKey(admin, auth.NewAPIKeyInput{Name: "bench", Scopes: []string{authz.BillingRead}})
					if err != nil {
						b.Fatal(err)
					}
					secret = key
				}
				var seen *viewer.Viewer
				h := in.svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					seen = viewer.FromContext(r.Context())
				}))
				req := httptest.NewRequest(http.MethodPost, "http://demo.example/graphql", nil)
				req.Header.Set("Authorization", "Bearer "+secret)
				w := httptest.NewRecorder()
				var total int
				serve := func() {
					ctx, st := sqlstats.NewContext(context.Background())
					seen = nil
					h.ServeHTTP(w, req.WithContext(ctx))
					if seen == nil {
						b.Fatal("the request got no viewer")
					}
					total += st.Count()
				}
				for range 3 {
					serve() // cold: learn and verify the credential
				}
				if mode == "redis-down" {
					proxy.Stop()
					serve() // notices the outage
				}
				total = 0
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					serve()
				}
				b.StopTimer()
				b.ReportMetric(float64(total)/float64(b.N), "stmts/op")
			})
		}
	}
}
