package auth_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/crypto/bcrypt"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/authtoken"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	_ "github.com/ispgraph/ispgraph/ent/runtime"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/ent/user"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// clock is a settable time source for Service.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a fresh database with the ent schema and an auth service on it.
type fixture struct {
	db     *sql.DB
	client *ent.Client
	clock  *clock
	svc    *auth.Service
}

const ttl = 2 * time.Hour

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := sql.Open("pgx", testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	client := ent.NewClient(ent.Driver(entsql.OpenDB(dialect.Postgres, db)))
	if err := client.Schema.Create(context.Background()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	return &fixture{
		db:     db,
		client: client,
		clock:  c,
		svc:    &auth.Service{Client: client, TokenTTL: ttl, Now: c.Now},
	}
}

type tenantOpts struct {
	slug, domain, subdomain string
	status                  tenant.Status
}

func (f *fixture) mustTenant(t testing.TB, o tenantOpts) *ent.Tenant {
	t.Helper()
	if o.domain == "" {
		o.domain = o.slug + ".example"
	}
	if o.status == "" {
		o.status = tenant.StatusACTIVE
	}
	c := f.client.Tenant.Create().SetName(strings.ToUpper(o.slug)).SetSlug(o.slug).SetDomain(o.domain).SetStatus(o.status)
	if o.subdomain != "" {
		c.SetSubdomain(o.subdomain)
	}
	tn, err := c.Save(tenancy.Bypass(context.Background())) // tenants are operators' business
	if err != nil {
		t.Fatalf("create tenant %s: %v", o.slug, err)
	}
	return tn
}

func (f *fixture) setTenantStatus(t testing.TB, tn *ent.Tenant, s tenant.Status) {
	t.Helper()
	if err := f.client.Tenant.UpdateOne(tn).SetStatus(s).Exec(tenancy.Bypass(context.Background())); err != nil {
		t.Fatal(err)
	}
}

// mustUser creates a staff user with the given default role (created if need be).
func (f *fixture) mustUser(t testing.TB, tn *ent.Tenant, email, password, roleName string) *ent.User {
	t.Helper()
	ctx := context.Background()
	roles, err := f.svc.EnsureDefaultRoles(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.client.User.Create().
		SetTenantID(tn.ID).
		SetName(email).
		SetEmail(auth.NormalizeEmail(email)).
		SetPasswordHash(hash).
		SetRoleID(roles[roleName].ID).
		Save(viewer.ForTenant(ctx, tn.ID))
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

func (f *fixture) login(t testing.TB, tn *ent.Tenant, email, password string) string {
	t.Helper()
	tok, _, err := f.svc.Login(context.Background(), auth.LoginInput{Tenant: tn.Slug, Email: email, Password: password})
	if err != nil {
		t.Fatalf("login %s@%s: %v", email, tn.Slug, err)
	}
	return tok
}

// wantCode fails unless err carries code and, when msg is not empty, contains msg.
func wantCode(t *testing.T, what string, err error, code apperr.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, code)
	}
	if got := apperr.CodeOf(err); got != code {
		t.Fatalf("%s: error %q has code %s, want %s", what, err, got, code)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("%s: error %q does not say %q", what, err, msg)
	}
}

func TestLoginThenAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	admin := f.mustUser(t, demo, "admin@demo.example", "s3cret-admin", authz.RoleAdmin)
	clerk := f.mustUser(t, demo, "clerk@demo.example", "s3cret-clerk", authz.RoleAccountant)

	tok, exp, err := f.svc.Login(ctx, auth.LoginInput{
		Tenant: "demo", Email: "  Admin@DEMO.example ", Password: "s3cret-admin", Address: "203.0.113.7",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Errorf("token %q lacks prefix %q", tok, auth.TokenPrefix)
	}
	if want := f.clock.Now().Add(ttl); !exp.Equal(want) {
		t.Errorf("expiresAt = %v, want now+TTL = %v", exp, want)
	}

	v, err := f.svc.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != viewer.Staff || v.TenantID != demo.ID || v.UserID != admin.ID || v.TokenID == 0 || v.Role != authz.RoleAdmin {
		t.Errorf("viewer = %+v, want staff admin %d of tenant %d", v, admin.ID, demo.ID)
	}
	if !slices.Equal(v.Permissions, authz.All()) {
		t.Errorf("admin permissions = %v, want all", v.Permissions)
	}

	row, err := f.client.AuthToken.Get(viewer.NewContext(ctx, v), v.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Kind != authtoken.KindSTAFF || row.UserID == nil || *row.UserID != admin.ID ||
		row.Address != "203.0.113.7" || !row.ExpiresAt.Equal(exp) || row.TenantID != demo.ID {
		t.Errorf("stored token = %+v", row)
	}
	u, err := f.client.User.Get(viewer.NewContext(ctx, v), admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.LastLoginAt == nil || !u.LastLoginAt.Equal(f.clock.Now()) {
		t.Errorf("last_login_at = %v, want %v", u.LastLoginAt, f.clock.Now())
	}

	// Another role gets that role's permissions, no more.
	cv, err := f.svc.Authenticate(ctx, f.login(t, demo, "clerk@demo.example", "s3cret-clerk"))
	if err != nil {
		t.Fatal(err)
	}
	var accountant authz.RoleSpec
	for _, r := range authz.DefaultRoles() {
		if r.Name == authz.RoleAccountant {
			accountant = r
		}
	}
	if cv.UserID != clerk.ID || cv.Role != authz.RoleAccountant || !slices.Equal(cv.Permissions, accountant.Permissions) {
		t.Errorf("accountant viewer = %+v", cv)
	}
	if cv.Can(authz.StaffManage) {
		t.Error("accountant may manage staff")
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	f.mustUser(t, demo, "admin@demo.example", "right-password", authz.RoleAdmin)

	attempt := func(email, pw string) (error, time.Duration) {
		start := time.Now()
		_, _, err := f.svc.Login(ctx, auth.LoginInput{Tenant: "demo", Email: email, Password: pw})
		return err, time.Since(start)
	}
	fastest := func(email, pw string) (error, time.Duration) {
		var err error
		best := time.Hour
		for range 3 {
			e, d := attempt(email, pw)
			err, best = e, min(best, d)
		}
		return err, best
	}
	wrongPw, dWrong := fastest("admin@demo.example", "wrong-password")
	noUser, dMissing := fastest("nobody@demo.example", "wrong-password")
	wantCode(t, "wrong password", wrongPw, apperr.Unauthenticated, "invalid email or password")
	wantCode(t, "unknown email", noUser, apperr.Unauthenticated, "invalid email or password")
	if wrongPw.Error() != noUser.Error() {
		t.Errorf("messages differ: %q vs %q", wrongPw, noUser)
	}
	// The unknown e-mail must also pay for a password hash; without the dummy
	// verification it would be an order of magnitude faster.
	if dMissing < dWrong/3 {
		t.Errorf("unknown email took %v, wrong password %v: the difference reveals which e-mails exist", dMissing, dWrong)
	}

	_, _, err := f.svc.Login(ctx, auth.LoginInput{Tenant: "demo", Email: "admin@demo.example"})
	wantCode(t, "empty password", err, apperr.BadUserInput, "")
	_, _, err = f.svc.Login(ctx, auth.LoginInput{Tenant: "demo", Email: "admin@demo.example",
		Password: strings.Repeat("x", auth.MaxPasswordLen+1)})
	wantCode(t, "huge password", err, apperr.Unauthenticated, "invalid email or password")
	_, _, err = f.svc.Login(ctx, auth.LoginInput{Tenant: "nope", Email: "admin@demo.example", Password: "right-password"})
	wantCode(t, "unknown tenant", err, apperr.NotFound, `tenant "nope" not found`)
}

func TestDisabledUser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	u := f.mustUser(t, demo, "ops@demo.example", "pw-ops", authz.RoleOperator)
	tok := f.login(t, demo, "ops@demo.example", "pw-ops")

	if err := f.client.User.UpdateOne(u).SetActive(false).Exec(viewer.ForTenant(ctx, demo.ID)); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Authenticate(ctx, tok)
	wantCode(t, "token of disabled user", err, apperr.Forbidden, "disabled")
	_, _, err = f.svc.Login(ctx, auth.LoginInput{Tenant: "demo", Email: "ops@demo.example", Password: "pw-ops"})
	wantCode(t, "login of disabled user", err, apperr.Forbidden, "disabled")
	// Without the password, a disabled account looks like any failed login.
	_, _, err = f.svc.Login(ctx, auth.LoginInput{Tenant: "demo", Email: "ops@demo.example", Password: "guess"})
	wantCode(t, "wrong password of disabled user", err, apperr.Unauthenticated, "invalid email or password")
}

func TestExpiredToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	f.mustUser(t, demo, "admin@demo.example", "pw", authz.RoleAdmin)
	tok := f.login(t, demo, "admin@demo.example", "pw")

	f.clock.Advance(ttl - time.Second)
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatalf("token refused a second before it expires: %v", err)
	}
	f.clock.Advance(time.Second)
	_, err := f.svc.Authenticate(ctx, tok)
	wantCode(t, "expired token", err, apperr.Unauthenticated, "your session has expired: log in again")
}

func TestLogoutRevokes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	f.mustUser(t, demo, "admin@demo.example", "pw", authz.RoleAdmin)
	tok := f.login(t, demo, "admin@demo.example", "pw")
	other := f.login(t, demo, "admin@demo.example", "pw") // a second session

	v, err := f.svc.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Logout(viewer.NewContext(ctx, v)); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, tok)
	wantCode(t, "revoked token", err, apperr.Unauthenticated, "log in again")
	if err := f.svc.Logout(viewer.NewContext(ctx, v)); err != nil {
		t.Errorf("second logout: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, other); err != nil {
		t.Errorf("logout ended another session too: %v", err)
	}
	wantCode(t, "logout without viewer", f.svc.Logout(ctx), apperr.Unauthenticated, "")
}

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.mustTenant(t, tenantOpts{slug: "alpha"})
	b := f.mustTenant(t, tenantOpts{slug: "bravo"})
	ua := f.mustUser(t, a, "admin@shared.example", "alpha-pw", authz.RoleAdmin)
	ub := f.mustUser(t, b, "admin@shared.example", "bravo-pw", authz.RoleAdmin)

	// The same e-mail in two tenants: each password opens only its own tenant.
	_, _, err := f.svc.Login(ctx, auth.LoginInput{Tenant: "alpha", Email: "admin@shared.example", Password: "bravo-pw"})
	wantCode(t, "bravo's password on alpha", err, apperr.Unauthenticated, "invalid email or password")

	tokA := f.login(t, a, "admin@shared.example", "alpha-pw")
	tokB := f.login(t, b, "admin@shared.example", "bravo-pw")
	va, err := f.svc.Authenticate(ctx, tokA)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := f.svc.Authenticate(ctx, tokB)
	if err != nil {
		t.Fatal(err)
	}
	if va.TenantID != a.ID || va.UserID != ua.ID || vb.TenantID != b.ID || vb.UserID != ub.ID {
		t.Fatalf("viewers crossed tenants: a=%+v b=%+v", va, vb)
	}
	// A's viewer sees only A's users.
	users, err := f.client.User.Query().All(viewer.NewContext(ctx, va))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.TenantID != a.ID {
			t.Errorf("alpha's viewer sees user %d of tenant %d", u.ID, u.TenantID)
		}
	}
	// A forged viewer of tenant B holding A's token id cannot revoke A's token.
	forged := &viewer.Viewer{Kind: viewer.Staff, TenantID: b.ID, UserID: ub.ID, TokenID: va.TokenID}
	if err := f.svc.Logout(viewer.NewContext(ctx, forged)); err != nil {
		t.Fatal(err)
	}
	if v, err := f.svc.Authenticate(ctx, tokA); err != nil || v.TenantID != a.ID {
		t.Errorf("alpha's token after bravo's logout attempt: %+v, %v", v, err)
	}
}

func TestSuspendedTenant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	f.mustUser(t, demo, "admin@demo.example", "pw", authz.RoleAdmin)
	tok := f.login(t, demo, "admin@demo.example", "pw")

	f.setTenantStatus(t, demo, tenant.StatusSUSPENDED)
	_, _, err := f.svc.Login(ctx, auth.LoginInput{Tenant: "demo", Email: "admin@demo.example", Password: "pw"})
	wantCode(t, "login to suspended tenant", err, apperr.Forbidden, `tenant "demo" is suspended: contact your provider`)
	_, err = f.svc.Authenticate(ctx, tok)
	wantCode(t, "token of suspended tenant", err, apperr.Forbidden, `tenant "demo" is suspended: contact your provider`)

	f.setTenantStatus(t, demo, tenant.StatusINACTIVE)
	_, err = f.svc.Authenticate(ctx, tok)
	wantCode(t, "token of inactive tenant", err, apperr.Forbidden, `tenant "demo" is inactive`)

	f.setTenantStatus(t, demo, tenant.StatusACTIVE)
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Errorf("token after reactivation: %v", err)
	}
}

func TestResolveTenantByHost(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	byDomain := f.mustTenant(t, tenantOpts{slug: "fastnet", domain: "portal.fastnet.example"})
	bySub := f.mustTenant(t, tenantOpts{slug: "acme", domain: "acme-isp.example", subdomain: "acme"})
	// A tenant whose domain's first label is another tenant's subdomain: the
	// domain match wins.
	clash := f.mustTenant(t, tenantOpts{slug: "other", domain: "acme.other.example"})

	for host, want := range map[string]*ent.Tenant{
		"portal.fastnet.example":      byDomain,
		"Portal.FastNet.example:8443": byDomain,
		"portal.fastnet.example.":     byDomain,
		"acme.ispgraph.example":       bySub,
		"acme.ispgraph.example:443":   bySub,
		"acme-isp.example":            bySub,
		"acme.other.example":          clash,
		"  acme.localhost:8080  ":     bySub,
		"ACME.ispgraph.example:80":    bySub,
	} {
		got, err := f.svc.ResolveTenant(ctx, "", host)
		switch {
		case want == nil && err == nil:
			t.Errorf("host %q resolved to %s, want an error", host, got.Slug)
		case want != nil && err != nil:
			t.Errorf("host %q: %v", host, err)
		case want != nil && got.ID != want.ID:
			t.Errorf("host %q resolved to %s, want %s", host, got.Slug, want.Slug)
		}
	}
	for _, host := range []string{"unknown.example", "[::1]:8080", "127.0.0.1:8080", "localhost"} {
		_, err := f.svc.ResolveTenant(ctx, "", host)
		wantCode(t, "host "+host, err, apperr.BadUserInput, "no tenant is served at")
	}
	_, err := f.svc.ResolveTenant(ctx, "", "")
	wantCode(t, "no slug, no host", err, apperr.BadUserInput, "tenant is required")

	// A slug wins over the host.
	if got, err := f.svc.ResolveTenant(ctx, "fastnet", "acme.ispgraph.example"); err != nil || got.ID != byDomain.ID {
		t.Errorf("slug with another tenant's host: %v, %v", got, err)
	}

	// Login through the Host header alone.
	f.mustUser(t, bySub, "noc@acme.example", "pw", authz.RoleOperator)
	tok, _, err := f.svc.Login(ctx, auth.LoginInput{Host: "acme.ispgraph.example", Email: "noc@acme.example", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.svc.Authenticate(ctx, tok); err != nil || v.TenantID != bySub.ID {
		t.Errorf("login by host: %+v, %v", v, err)
	}

	f.setTenantStatus(t, byDomain, tenant.StatusSUSPENDED)
	_, err = f.svc.ResolveTenant(ctx, "", "portal.fastnet.example")
	wantCode(t, "suspended by host", err, apperr.Forbidden, `tenant "fastnet" is suspended`)
}

func TestTokenNotStoredInPlainText(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	f.mustUser(t, demo, "admin@demo.example", "pw", authz.RoleAdmin)
	tok := f.login(t, demo, "admin@demo.example", "pw")
	secret := strings.TrimPrefix(tok, auth.TokenPrefix)

	rows, err := f.db.QueryContext(ctx, `SELECT t::text, encode(t.token_hash, 'hex') FROM auth_tokens t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	sum := sha256.Sum256([]byte(tok))
	n, found := 0, false
	for rows.Next() {
		var row, hash string
		if err := rows.Scan(&row, &hash); err != nil {
			t.Fatal(err)
		}
		n++
		if strings.Contains(row, secret) || strings.Contains(strings.ToLower(row), strings.ToLower(secret)) {
			t.Errorf("auth_tokens row holds the token in plain text: %s", row)
		}
		found = found || hash == hex.EncodeToString(sum[:])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 || !found {
		t.Errorf("%d token rows, SHA-256 of the token found: %v", n, found)
	}
}

func TestCustomerToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	nu, err := f.client.NetworkUser.Create().SetTenantID(demo.ID).SetUsername("cust1").Save(viewer.ForTenant(ctx, demo.ID))
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := f.svc.IssueCustomerToken(ctx, demo.ID, nu.ID, "198.51.100.4")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(f.clock.Now().Add(ttl)) {
		t.Errorf("expiresAt = %v", exp)
	}
	v, err := f.svc.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != viewer.Customer || v.TenantID != demo.ID || v.NetworkUserID != nu.ID || v.UserID != 0 ||
		!slices.Equal(v.Permissions, authz.CustomerPermissions()) {
		t.Errorf("customer viewer = %+v", v)
	}
	if v.Can(authz.NetworkUsersRead) {
		t.Error("customer holds a staff permission")
	}
	if err := f.svc.Logout(viewer.NewContext(ctx, v)); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, tok)
	wantCode(t, "customer token after logout", err, apperr.Unauthenticated, "")
}

func TestLegacyBcryptUpgraded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	u := f.mustUser(t, demo, "old@demo.example", "placeholder", authz.RoleStaff)
	b, err := bcrypt.GenerateFromPassword([]byte("laravel-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tctx := viewer.ForTenant(ctx, demo.ID)
	if err := f.client.User.UpdateOne(u).SetPasswordHash("$2y$" + string(b[4:])).Exec(tctx); err != nil {
		t.Fatal(err)
	}
	f.login(t, demo, "old@demo.example", "laravel-pw")
	u, err = f.client.User.Query().Where(user.ID(u.ID)).Only(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$") || auth.NeedsRehash(u.PasswordHash) {
		t.Errorf("hash after login = %q, want a current argon2id hash", u.PasswordHash)
	}
	f.login(t, demo, "old@demo.example", "laravel-pw")
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	f.mustUser(t, demo, "admin@demo.example", "pw", authz.RoleAdmin)
	tok := f.login(t, demo, "admin@demo.example", "pw")

	type seen struct {
		v    *viewer.Viewer
		err  error
		info auth.RequestInfo
	}
	var got seen
	h := f.svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = seen{viewer.FromContext(r.Context()), auth.AuthError(r.Context()), auth.RequestInfoFrom(r.Context())}
		w.WriteHeader(http.StatusNoContent)
	}))
	do := func(header string) seen {
		t.Helper()
		got = seen{}
		r := httptest.NewRequest(http.MethodPost, "http://demo.example:8080/graphql", nil)
		r.RemoteAddr = "192.0.2.10:51234"
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			t.Fatalf("Authorization %q: status %d, the request must reach the handler", header, w.Code)
		}
		return got
	}

	s := do("")
	if s.v != nil || s.err != nil {
		t.Errorf("no header: viewer %+v, error %v", s.v, s.err)
	}
	if s.info.Host != "demo.example:8080" || s.info.Address != "192.0.2.10" {
		t.Errorf("request info = %+v", s.info)
	}
	_, err := auth.Require(context.Background())
	wantCode(t, "Require without header", err, apperr.Unauthenticated, "not logged in")

	for _, hv := range []string{"Bearer " + tok, "bearer  " + tok + " "} {
		if s := do(hv); s.v == nil || s.v.TenantID != demo.ID || s.err != nil {
			t.Errorf("%q: viewer %+v, error %v", hv, s.v, s.err)
		}
	}

	// A well-formed token that was never issued: change the last character
	// to another that still decodes strictly (its two low bits are padding).
	forged := tok[:len(tok)-1] + "A"
	if forged == tok {
		forged = tok[:len(tok)-1] + "E"
	}
	for hv, msg := range map[string]string{
		"Bearer isg_garbage":                 "invalid bearer token",
		"Bearer " + forged:                   "invalid bearer token",
		"Basic YWRtaW46cHc=":                 "Authorization: Bearer <token>",
		"Bearer":                             "invalid bearer token",
		"Bearer " + strings.Repeat("x", 999): "invalid bearer token",
	} {
		s := do(hv)
		if s.v != nil {
			t.Errorf("%q: got viewer %+v", hv, s.v)
		}
		wantCode(t, hv, s.err, apperr.Unauthenticated, msg)
	}

	f.clock.Advance(ttl)
	s = do("Bearer " + tok)
	wantCode(t, "expired via middleware", s.err, apperr.Unauthenticated, "your session has expired")
}

func TestRequirePermission(t *testing.T) {
	ctx := context.Background()
	v := &viewer.Viewer{Kind: viewer.Staff, TenantID: 1, Permissions: []string{authz.BillingRead}}
	if got, err := auth.RequirePermission(viewer.NewContext(ctx, v), authz.BillingRead); err != nil || got != v {
		t.Errorf("held permission: %v, %v", got, err)
	}
	_, err := auth.RequirePermission(viewer.NewContext(ctx, v), authz.BillingWrite)
	wantCode(t, "missing permission", err, apperr.Forbidden, authz.BillingWrite)
	_, err = auth.RequirePermission(ctx, authz.BillingRead)
	wantCode(t, "no viewer", err, apperr.Unauthenticated, "")
}

// TestDeletedSubscriberLosesThePortal: a DELETED subscriber cannot log in to
// the customer portal (refused like a wrong password) and a token issued
// before the deletion stops working.
func TestDeletedSubscriberLosesThePortal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	demo := f.mustTenant(t, tenantOpts{slug: "demo"})
	h, err := auth.HashPassword("portal-pw-1")
	if err != nil {
		t.Fatal(err)
	}
	tctx := viewer.ForTenant(ctx, demo.ID)
	nu := f.client.NetworkUser.Create().SetTenantID(demo.ID).SetUsername("gone1").SetPortalPasswordHash(h).SaveX(tctx)
	in := auth.CustomerLoginInput{Tenant: "demo", Username: "gone1", Password: "portal-pw-1", Address: "198.51.100.5"}
	tok, _, err := f.svc.CustomerLogin(ctx, in)
	if err != nil {
		t.Fatalf("login before the deletion: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatalf("token before the deletion: %v", err)
	}
	f.client.NetworkUser.UpdateOne(nu).SetStatus(networkuser.StatusDELETED).ExecX(tctx)
	_, _, err = f.svc.CustomerLogin(ctx, in)
	wantCode(t, "login of a deleted subscriber", err, apperr.Unauthenticated, "invalid username or password")
	_, err = f.svc.Authenticate(ctx, tok)
	wantCode(t, "token of a deleted subscriber", err, apperr.Unauthenticated, "")
}
