package auth_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/sqlstats"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// instance is one API process: its own ent client (statements counted per
// context), cache and auth service, sharing Postgres and Redis with the
// others, with the hooks the server installs.
type instance struct {
	client *ent.Client
	cache  *cache.Cache
	svc    *auth.Service
}

// cluster is a database with a tenant, its admin, and API instances over it.
type cluster struct {
	*fixture
	redis  *redis.Options
	prefix string
	demo   *ent.Tenant
	admin  *ent.User
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	f := newFixture(t)
	url, prefix := testenv.RedisURL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{fixture: f, redis: opt, prefix: prefix}
	c.demo = f.mustTenant(t, tenantOpts{slug: "demo"})
	c.admin = f.mustUser(t, c.demo, "admin@demo.example", "pw-admin", authz.RoleAdmin)
	return c
}

// instance starts an instance whose Redis is at redisAddr ("": the test's).
func (c *cluster) instance(t testing.TB, redisAddr string) *instance {
	t.Helper()
	client := ent.NewClient(ent.Driver(sqlstats.Wrap(entsql.OpenDB(dialect.Postgres, c.db), nil, nil)))
	ro := *c.redis
	if redisAddr != "" {
		ro.Addr = redisAddr
	}
	ch, err := cache.New(cache.Options{DB: client, Redis: &ro, Prefix: c.prefix + "cache:",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	client.Use(ch.Hook())
	svc := &auth.Service{Client: client, Cache: ch, TokenTTL: ttl, Now: c.clock.Now}
	client.Use(svc.Hook())
	return &instance{client: client, cache: ch, svc: svc}
}

// authenticate authenticates tok on in and returns the viewer, the error and
// the SQL statements it ran.
func (in *instance) authenticate(tok string) (*viewer.Viewer, error, int) {
	ctx, st := sqlstats.NewContext(context.Background())
	v, err := in.svc.Authenticate(ctx, tok)
	return v, err, st.Count()
}

// warm authenticates tok on in until it runs no statement (at most three
// tries: cold, then warm) and fails the test otherwise.
func (in *instance) warm(t *testing.T, what, tok string) *viewer.Viewer {
	t.Helper()
	for try := 0; try < 3; try++ {
		v, err, n := in.authenticate(tok)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n == 0 {
			return v
		}
	}
	t.Fatalf("%s: a known token still runs SQL on its third request", what)
	return nil
}

// refused fails unless tok is refused on in with code.
func (in *instance) refused(t *testing.T, what, tok string, code apperr.Code) {
	t.Helper()
	v, err, _ := in.authenticate(tok)
	if v != nil {
		t.Fatalf("%s: still accepted as %+v", what, v)
	}
	wantCode(t, what, err, code, "")
}

func (c *cluster) staffToken(t testing.TB, on *instance, email, password string) string {
	t.Helper()
	tok, _, err := on.svc.Login(context.Background(), auth.LoginInput{Tenant: "demo", Email: email, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// asAdmin is a context acting as the tenant's admin on instance in.
func (c *cluster) asAdmin(t testing.TB, in *instance) context.Context {
	t.Helper()
	v, err := in.svc.Authenticate(context.Background(), c.staffToken(t, in, "admin@demo.example", "pw-admin"))
	if err != nil {
		t.Fatal(err)
	}
	return viewer.NewContext(context.Background(), v)
}

// TestWarmCredentialsRunNoSQL: a staff token, a customer token and an API key
// each cost statements the first time an instance sees them, then none.
func TestWarmCredentialsRunNoSQL(t *testing.T) {
	c := newCluster(t)
	a := c.instance(t, "")
	ctx := context.Background()

	staff := c.staffToken(t, a, "admin@demo.example", "pw-admin")
	v, err, cold := a.authenticate(staff)
	if err != nil {
		t.Fatal(err)
	}
	// The token (to learn whose it is), the token again and the user after
	// reading the stamp; the tenant and role come from the cache (first use:
	// from the database).
	if cold < 3 {
		t.Errorf("cold staff token ran %d statements, want at least 3", cold)
	}
	for range 5 {
		w, err, n := a.authenticate(staff)
		if err != nil || n != 0 {
			t.Fatalf("warm staff token: %d statements, error %v; want 0", n, err)
		}
		if w == v || w.UserID != c.admin.ID || w.Role != authz.RoleAdmin || !slices.Equal(w.Permissions, v.Permissions) {
			t.Fatalf("warm viewer %+v (shared: %v), want a copy of %+v", w, w == v, v)
		}
	}

	nu := c.client.NetworkUser.Create().SetTenantID(c.demo.ID).SetUsername("cust1").SaveX(viewer.ForTenant(ctx, c.demo.ID))
	cust, _, err := a.svc.IssueCustomerToken(ctx, c.demo.ID, nu.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if v := a.warm(t, "customer token", cust); v.Kind != viewer.Customer || v.NetworkUserID != nu.ID {
		t.Fatalf("customer viewer %+v", v)
	}

	_, key, err := a.svc.CreateAPIKey(c.asAdmin(t, a), auth.NewAPIKeyInput{Name: "partner", Scopes: []string{authz.BillingRead}})
	if err != nil {
		t.Fatal(err)
	}
	if v := a.warm(t, "API key", key); v.Kind != viewer.Partner || !slices.Equal(v.Permissions, []string{authz.BillingRead}) {
		t.Fatalf("partner viewer %+v", v)
	}

	// The cache is bounded by the verification's age too: past the TTL the
	// credential is verified against the database again.
	c.clock.Advance(auth.DefaultSessionCacheTTL)
	if _, err, n := a.authenticate(staff); err != nil || n == 0 {
		t.Fatalf("after the TTL: %d statements, %v; want a verification", n, err)
	}
	a.warm(t, "staff token after the TTL", staff)

	// A cached credential ends with its own expiry.
	c.clock.Advance(ttl)
	a.refused(t, "expired cached token", staff, apperr.Unauthenticated)
}

// TestRevocationReachesEveryInstance revokes on instance A, in each way a
// credential can end, and checks that instance B, which had the credential
// warm (no SQL), refuses it on the very next request.
func TestRevocationReachesEveryInstance(t *testing.T) {
	c := newCluster(t)
	a, b := c.instance(t, ""), c.instance(t, "")
	ctx := context.Background()
	adminA := c.asAdmin(t, a)

	t.Run("logout", func(t *testing.T) {
		tok := c.staffToken(t, a, "admin@demo.example", "pw-admin")
		other := c.staffToken(t, a, "admin@demo.example", "pw-admin")
		b.warm(t, "token", tok)
		b.warm(t, "other session", other)
		v, _, _ := a.authenticate(tok)
		if err := a.svc.Logout(viewer.NewContext(ctx, v)); err != nil {
			t.Fatal(err)
		}
		b.refused(t, "logged-out token on B", tok, apperr.Unauthenticated)
		b.warm(t, "the user's other session", other)
	})

	t.Run("password change", func(t *testing.T) {
		c.mustUser(t, c.demo, "pw@demo.example", "old-password-1", authz.RoleOperator)
		keep := c.staffToken(t, a, "pw@demo.example", "old-password-1")
		other := c.staffToken(t, a, "pw@demo.example", "old-password-1")
		b.warm(t, "kept session", keep)
		b.warm(t, "other session", other)
		v, _, _ := a.authenticate(keep)
		if err := a.svc.ChangePassword(viewer.NewContext(ctx, v), "old-password-1", "new-password-2"); err != nil {
			t.Fatal(err)
		}
		b.refused(t, "other session after a password change", other, apperr.Unauthenticated)
		b.warm(t, "the session that changed the password", keep)
	})

	t.Run("user disabled", func(t *testing.T) {
		u := c.mustUser(t, c.demo, "gone@demo.example", "pw-gone", authz.RoleOperator)
		tok := c.staffToken(t, a, "gone@demo.example", "pw-gone")
		b.warm(t, "token", tok)
		disabled := false
		if _, err := a.svc.UpdateStaffUser(adminA, u.ID, auth.StaffUserUpdate{Active: &disabled}); err != nil {
			t.Fatal(err)
		}
		b.refused(t, "disabled user's token", tok, apperr.Unauthenticated)
	})

	t.Run("role changed", func(t *testing.T) {
		u := c.mustUser(t, c.demo, "role@demo.example", "pw-role", authz.RoleOperator)
		tok := c.staffToken(t, a, "role@demo.example", "pw-role")
		if v := b.warm(t, "token", tok); v.Role != authz.RoleOperator {
			t.Fatalf("role %q", v.Role)
		}
		roles, err := a.svc.EnsureDefaultRoles(ctx, c.demo.ID)
		if err != nil {
			t.Fatal(err)
		}
		acc := roles[authz.RoleAccountant].ID
		if _, err := a.svc.UpdateStaffUser(adminA, u.ID, auth.StaffUserUpdate{RoleID: &acc}); err != nil {
			t.Fatal(err)
		}
		v, err, _ := b.authenticate(tok)
		if err != nil || v.Role != authz.RoleAccountant {
			t.Fatalf("after the role change B sees %+v, %v", v, err)
		}

		// Editing the role's permissions reaches the holder at once too.
		b.warm(t, "token", tok)
		if err := a.client.Role.UpdateOneID(acc).SetPermissions([]string{authz.BillingRead}).Exec(adminA); err != nil {
			t.Fatal(err)
		}
		v, err, _ = b.authenticate(tok)
		if err != nil || !slices.Equal(v.Permissions, []string{authz.BillingRead}) {
			t.Fatalf("after the permission edit B sees %+v, %v", v, err)
		}
	})

	t.Run("tenant suspended", func(t *testing.T) {
		other := c.mustTenant(t, tenantOpts{slug: "other"})
		c.mustUser(t, other, "admin@other.example", "pw-other", authz.RoleAdmin)
		tok, _, err := a.svc.Login(ctx, auth.LoginInput{Tenant: "other", Email: "admin@other.example", Password: "pw-other"})
		if err != nil {
			t.Fatal(err)
		}
		b.warm(t, "token", tok)
		if err := a.client.Tenant.UpdateOneID(other.ID).SetStatus(tenant.StatusSUSPENDED).Exec(tenancy.Bypass(ctx)); err != nil {
			t.Fatal(err)
		}
		b.refused(t, "suspended tenant's token", tok, apperr.Forbidden)
	})

	t.Run("API key revoked", func(t *testing.T) {
		k, key, err := a.svc.CreateAPIKey(adminA, auth.NewAPIKeyInput{Name: "p", Scopes: []string{authz.BillingRead}})
		if err != nil {
			t.Fatal(err)
		}
		b.warm(t, "key", key)
		if _, err := a.svc.RevokeAPIKey(adminA, k.ID); err != nil {
			t.Fatal(err)
		}
		b.refused(t, "revoked key", key, apperr.Unauthenticated)
	})

	t.Run("portal password changed", func(t *testing.T) {
		nu := c.client.NetworkUser.Create().SetTenantID(c.demo.ID).SetUsername("portal1").SaveX(viewer.ForTenant(ctx, c.demo.ID))
		pw := "portal-pw-1"
		if _, err := a.svc.SetPortalPassword(adminA, nu.ID, &pw); err != nil {
			t.Fatal(err)
		}
		tok, _, err := a.svc.CustomerLogin(ctx, auth.CustomerLoginInput{Tenant: "demo", Username: "portal1", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		b.warm(t, "customer token", tok)
		if _, err := a.svc.SetPortalPassword(adminA, nu.ID, nil); err != nil {
			t.Fatal(err)
		}
		b.refused(t, "customer token after the portal password was removed", tok, apperr.Unauthenticated)
	})

	t.Run("subscriber deleted", func(t *testing.T) {
		// Deletion is a status (the row and its books are kept), so the
		// status change itself must end the cached credential.
		nu := c.client.NetworkUser.Create().SetTenantID(c.demo.ID).SetUsername("portal2").SaveX(viewer.ForTenant(ctx, c.demo.ID))
		pw := "portal-pw-2"
		if _, err := a.svc.SetPortalPassword(adminA, nu.ID, &pw); err != nil {
			t.Fatal(err)
		}
		tok, _, err := a.svc.CustomerLogin(ctx, auth.CustomerLoginInput{Tenant: "demo", Username: "portal2", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		b.warm(t, "customer token", tok)
		a.client.NetworkUser.UpdateOneID(nu.ID).SetStatus(networkuser.StatusDELETED).ExecX(viewer.ForTenant(ctx, c.demo.ID))
		b.refused(t, "customer token after the subscriber was deleted", tok, apperr.Unauthenticated)
	})
}

// TestRedisDownFallsBackToTheDatabase: an instance whose Redis is gone reads
// the generations from Postgres (one statement per request) and still sees a
// revocation made elsewhere at once; when Redis is back it runs no SQL again.
func TestRedisDownFallsBackToTheDatabase(t *testing.T) {
	c := newCluster(t)
	proxy := testenv.NewProxy(t, c.redis.Addr)
	a, b := c.instance(t, ""), c.instance(t, proxy.Addr())
	ctx := context.Background()

	tok := c.staffToken(t, a, "admin@demo.example", "pw-admin")
	other := c.staffToken(t, a, "admin@demo.example", "pw-admin")
	b.warm(t, "token", tok)
	b.warm(t, "other", other)

	proxy.Stop()
	for range 3 {
		if _, err, n := b.authenticate(other); err != nil || n != 1 {
			t.Fatalf("Redis down: %d statements, %v; want 1 (the generations)", n, err)
		}
	}
	if !b.cache.Degraded() {
		t.Fatal("B's cache did not notice Redis was gone")
	}
	v, _, _ := a.authenticate(tok)
	if err := a.svc.Logout(viewer.NewContext(ctx, v)); err != nil {
		t.Fatal(err)
	}
	b.refused(t, "token logged out on A while B has no Redis", tok, apperr.Unauthenticated)

	proxy.Start()
	deadline := time.Now().Add(10 * time.Second)
	for b.cache.Degraded() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if b.cache.Degraded() {
		t.Fatal("B's cache did not take Redis back")
	}
	b.warm(t, "other session after Redis came back", other)
	b.refused(t, "logged-out token after Redis came back", tok, apperr.Unauthenticated)
}

// TestNoHookNoCache: a service whose hook is not installed could not hear of
// revocations, so it verifies every request against the database.
func TestNoHookNoCache(t *testing.T) {
	c := newCluster(t)
	a := c.instance(t, "")
	client := ent.NewClient(ent.Driver(sqlstats.Wrap(entsql.OpenDB(dialect.Postgres, c.db), nil, nil)))
	unhooked := &instance{client: client, cache: a.cache, svc: &auth.Service{Client: client, Cache: a.cache, TokenTTL: ttl, Now: c.clock.Now}}
	tok := c.staffToken(t, a, "admin@demo.example", "pw-admin")
	for range 3 {
		if _, err, n := unhooked.authenticate(tok); err != nil || n == 0 {
			t.Fatalf("without the hook: %d statements, %v; want a database check each time", n, err)
		}
	}
}
