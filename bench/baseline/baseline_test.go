package baseline_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/bench/baseline"
	_ "github.com/ispgraph/ispgraph/ent/runtime"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// TestBaselineAnswers checks that each of the baseline's four answers is
// complete on a small data set, so the benchmark compares like with like.
func TestBaselineAnswers(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	db, err := database.OpenPostgres(ctx, url, database.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var roles []seed.RoleSpec
	for _, r := range authz.DefaultRoles() {
		roles = append(roles, seed.RoleSpec(r))
	}
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{Tenants: 2, Subscribers: 40, Months: 3,
		Password: "baseline-1", HashPassword: auth.HashPassword, Roles: roles, Seed: 3}, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(baseline.Handler(pool))
	defer srv.Close()
	get := func(path, tenant string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set(baseline.TenantHeader, tenant)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s: %v: %s", path, err, raw)
			}
		}
		return resp.StatusCode
	}

	var active int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM network_users n JOIN tenants t ON t.id = n.tenant_id
		WHERE t.slug = 't2' AND n.status = 'ACTIVE'`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	type billing struct {
		TotalCount  int
		HasNextPage bool
		EndCursor   int64
		Edges       []struct {
			ID       int64
			Balance  string
			Package  *struct{ Name, Price string }
			Invoices []struct {
				Number   string
				Payments []struct{ Amount string }
			}
		}
	}
	seen, after := 0, int64(0)
	for range 100 {
		var b billing
		if code := get("/billing?first=7&after="+itoa(after), "t2", &b); code != http.StatusOK {
			t.Fatalf("billing: %d", code)
		}
		if b.TotalCount != active {
			t.Fatalf("totalCount %d, the database has %d active", b.TotalCount, active)
		}
		for _, e := range b.Edges {
			if e.ID <= after || e.Package == nil || e.Balance == "" || len(e.Invoices) == 0 || len(e.Invoices) > 3 {
				t.Fatalf("edge: %+v", e)
			}
			after = e.ID
		}
		seen += len(b.Edges)
		if !b.HasNextPage {
			break
		}
		if b.EndCursor != after {
			t.Fatalf("endCursor %d, last id %d", b.EndCursor, after)
		}
	}
	if seen != active {
		t.Fatalf("paged through %d of %d active subscribers", seen, active)
	}

	var sub struct {
		Username string
		Invoices []struct{ Payments []json.RawMessage }
	}
	if code := get("/subscriber?id="+itoa(after), "t2", &sub); code != http.StatusOK || sub.Username == "" || len(sub.Invoices) != 3 {
		t.Fatalf("subscriber: %d %+v", code, sub)
	}
	if code := get("/subscriber?id="+itoa(after), "t1", &sub); code != http.StatusNotFound {
		t.Fatalf("another tenant's subscriber: %d", code)
	}

	var dash struct {
		Subscribers struct{ Total, Active int }
		Invoices    struct {
			Total       int
			TotalAmount string
		}
		Revenue struct{ ThisYear string }
	}
	if code := get("/dashboard", "t2", &dash); code != http.StatusOK || dash.Subscribers.Total != 40 ||
		dash.Subscribers.Active != active || dash.Invoices.Total != 120 || dash.Invoices.TotalAmount == "" {
		t.Fatalf("dashboard: %d %+v", code, dash)
	}

	var exported int
	since := time.Now().AddDate(0, -2, 0).UTC()
	q := "/export?first=25&since=" + since.Format(time.RFC3339Nano)
	for page := q; ; {
		var e struct {
			HasNextPage bool
			EndCursor   struct {
				UpdatedAt time.Time
				ID        int64
			}
			Edges []json.RawMessage
		}
		if code := get(page, "t2", &e); code != http.StatusOK {
			t.Fatalf("export: %d", code)
		}
		exported += len(e.Edges)
		if !e.HasNextPage {
			break
		}
		page = q + "&after_at=" + e.EndCursor.UpdatedAt.Format(time.RFC3339Nano) + "&after_id=" + itoa(e.EndCursor.ID)
	}
	var want int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM invoices i JOIN tenants t ON t.id = i.tenant_id
		WHERE t.slug = 't2' AND i.updated_at >= $1`, since).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if exported != want || want == 0 {
		t.Fatalf("exported %d invoices, %d changed since %s", exported, want, since)
	}

	if code := get("/dashboard", "nope", &dash); code != http.StatusNotFound {
		t.Fatalf("unknown tenant: %d", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
