// Package auth owns authentication: password hashing, opaque bearer tokens
// (stored only as hashes), resolving which tenant a login is for, staff login
// and logout, turning a bearer token into a viewer, and the HTTP middleware
// that does so for every request. What a viewer may do is package authz's.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/authtoken"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/role"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/ent/user"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/ratelimit"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/transaction"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// DefaultTokenTTL is how long a token lives when Service.TokenTTL is zero.
const DefaultTokenTTL = 12 * time.Hour

// maxAddressLen bounds the client address stored with a token.
const maxAddressLen = 255

// Service authenticates staff and customers of every tenant. The zero values of
// TokenTTL, Now and Logger mean DefaultTokenTTL, time.Now and slog.Default().
//
// Limiter limits login attempts (nil: no limit, for tests that do not
// exercise it; the server always sets one) and Audit records logins and
// failed logins (nil: not recorded).
type Service struct {
	Client     *ent.Client
	Cache      *cache.Cache // nil caches nothing
	TokenTTL   time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	Limiter    *ratelimit.Limiter
	LoginLimit int // attempts per account and address per minute; 0: DefaultLoginLimit
	APILimit   int // API calls per credential per minute; 0: DefaultAPILimit
	Audit      *audit.Recorder
	// Operators are the platform operators' keys (see operator.go).
	Operators []OperatorKey
	// Mailer sends staff invitations and password resets (staff.go); nil
	// refuses them with a message naming the setting.
	Mailer *notify.Mailer
	// SetupURL is the page a staff invitation links to; the one-time token
	// is appended as ?token=. Empty: the e-mail carries the token to paste
	// into acceptInvite.
	SetupURL string
	// SessionCacheSize bounds the verified credentials kept in this process
	// (sessions.go; 0: DefaultSessionCacheSize, negative: none kept), and
	// SessionCacheTTL how long one is trusted without being verified again
	// (0: DefaultSessionCacheTTL). Nothing is kept without Cache and Hook.
	SessionCacheSize int
	SessionCacheTTL  time.Duration
	// Hashing bounds and shares out password hashing (nil: the process's
	// DefaultHashing).
	Hashing *HashPool

	hooked       atomic.Bool
	sessionsOnce sync.Once
	sessionCache *sessionCache
}

// LoginInput is what a staff login carries: the tenant's slug (or, when empty,
// the Host header it arrived on), the credentials, and the client's address.
type LoginInput struct {
	Tenant   string
	Email    string
	Password string
	Host     string
	Address  string
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) ttl() time.Duration {
	if s.TokenTTL > 0 {
		return s.TokenTTL
	}
	return DefaultTokenTTL
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// NormalizeEmail returns the form staff e-mail addresses are stored and
// compared in: trimmed and lower case.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// User-facing failures. Each call builds a fresh error so no caller can alter
// another's.
func errInvalidCredentials() error {
	return apperr.E(apperr.Unauthenticated, "invalid email or password")
}

func errInvalidToken() error {
	return apperr.E(apperr.Unauthenticated, "invalid bearer token: log in again to get a new one")
}

func errAccountDisabled() error {
	return apperr.E(apperr.Forbidden, "your account is disabled: ask your administrator")
}

// ResolveTenant finds the tenant a login is for: by slug when one is given,
// otherwise by the Host header (port stripped), first as a tenant's domain and
// then as a subdomain (the host's first label). A tenant that is not active is
// refused with FORBIDDEN.
func (s *Service) ResolveTenant(ctx context.Context, slug, host string) (*ent.Tenant, error) {
	var (
		t   *ent.Tenant
		err error
	)
	if slug = strings.TrimSpace(slug); slug != "" {
		t, err = s.tenantBy(ctx, "slug", slug)
		if err == nil && t == nil {
			return nil, apperr.E(apperr.NotFound, "tenant %q not found: check the tenant name", slug)
		}
	} else {
		h := hostname(host)
		if h == "" {
			return nil, apperr.E(apperr.BadUserInput,
				"tenant is required: pass the tenant's short name, or sign in at your provider's own address")
		}
		t, err = s.tenantBy(ctx, "domain", h)
		if label := firstLabel(h); err == nil && t == nil && label != "" {
			t, err = s.tenantBy(ctx, "subdomain", label)
		}
		if err == nil && t == nil {
			return nil, apperr.E(apperr.BadUserInput,
				"no tenant is served at %q: pass the tenant's short name", h)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: resolve tenant: %w", err)
	}
	if err := checkTenant(t); err != nil {
		return nil, err
	}
	return t, nil
}

// tenantBy finds the tenant whose slug, domain or subdomain is value, through
// the cache; nil when there is none. "None" is not cached: tenants are also
// created outside ent (the benchmark seeder), where no hook invalidates.
func (s *Service) tenantBy(ctx context.Context, by, value string) (*ent.Tenant, error) {
	t, err := cache.Get(ctx, s.Cache, cache.ClassTenant, cache.PlatformTenant, by+":"+value,
		func(ctx context.Context) (*ent.Tenant, error) {
			// No viewer exists yet: the tenant is what this lookup decides.
			q := s.Client.Tenant.Query()
			switch by {
			case "slug":
				q.Where(tenant.SlugEQ(value))
			case "domain":
				q.Where(tenant.DomainEQ(value))
			default:
				q.Where(tenant.SubdomainEQ(value))
			}
			return q.Only(tenancy.Bypass(ctx))
		})
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return t, err
}

// tenant returns tenant id through the cache.
func (s *Service) tenant(ctx context.Context, id int) (*ent.Tenant, error) {
	return cache.Get(ctx, s.Cache, cache.ClassTenant, id, "tenant",
		func(ctx context.Context) (*ent.Tenant, error) {
			return s.Client.Tenant.Get(viewer.ForTenant(ctx, id), id)
		})
}

// cachedRole is what a request needs of a role.
type cachedRole struct {
	Name        string
	Permissions []string
}

// role returns role id of tenantID through the cache.
func (s *Service) role(ctx context.Context, tenantID, id int) (cachedRole, error) {
	return cache.Get(ctx, s.Cache, cache.ClassRoles, tenantID, "role:"+strconv.Itoa(id),
		func(ctx context.Context) (cachedRole, error) {
			r, err := s.Client.Role.Get(viewer.ForTenant(ctx, tenantID), id)
			if ent.IsNotFound(err) {
				return cachedRole{Permissions: []string{}}, nil // a role gone grants nothing
			}
			if err != nil {
				return cachedRole{}, err
			}
			return cachedRole{Name: r.Name, Permissions: authz.RolePermissions(r.Name, r.Builtin, r.Permissions)}, nil
		})
}

// WarmTenant loads tenantID's tenant data (by id, slug, domain and
// subdomain) and the permissions of each of its roles into the cache, and
// returns how many entries it loaded.
func (s *Service) WarmTenant(ctx context.Context, tenantID int) (int, error) {
	t, err := s.tenant(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	n := 1
	lookups := [][2]string{{"slug", t.Slug}, {"domain", t.Domain}}
	if t.Subdomain != nil {
		lookups = append(lookups, [2]string{"subdomain", *t.Subdomain})
	}
	for _, l := range lookups {
		if _, err := s.tenantBy(ctx, l[0], l[1]); err != nil {
			return n, err
		}
		n++
	}
	ids, err := s.Client.Role.Query().Where(role.TenantIDEQ(tenantID)).IDs(viewer.ForTenant(ctx, tenantID))
	if err != nil {
		return n, fmt.Errorf("auth: list roles: %w", err)
	}
	for _, id := range ids {
		if _, err := s.role(ctx, tenantID, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// checkTenant refuses a tenant that is not active.
func checkTenant(t *ent.Tenant) error {
	switch t.Status {
	case tenant.StatusACTIVE:
		return nil
	case tenant.StatusSUSPENDED:
		return apperr.E(apperr.Forbidden, "tenant %q is suspended: contact your provider", t.Slug)
	default:
		return apperr.E(apperr.Forbidden, "tenant %q is inactive: contact your provider", t.Slug)
	}
}

// hostname returns host without port, brackets or trailing dot, in lower case.
func hostname(host string) string {
	h := strings.TrimSpace(host)
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	return strings.ToLower(h)
}

// firstLabel returns the subdomain label of h ("acme" for acme.isp.example),
// or "" when h is an IP address or a single label.
func firstLabel(h string) string {
	if net.ParseIP(h) != nil {
		return ""
	}
	label, _, ok := strings.Cut(h, ".")
	if !ok {
		return ""
	}
	return label
}

// Login checks a staff member's credentials and issues a bearer token. An
// unknown e-mail and a wrong password fail alike, with the same message and
// the same cost, so a login cannot probe which addresses have accounts.
func (s *Service) Login(ctx context.Context, in LoginInput) (token string, expiresAt time.Time, err error) {
	email := NormalizeEmail(in.Email)
	if email == "" || in.Password == "" {
		return "", time.Time{}, apperr.E(apperr.BadUserInput, "email and password are required")
	}
	// The client address is limited first, before any lookup or hash.
	if err := s.checkAddressRate(ctx, "staff", in.Address); err != nil {
		return "", time.Time{}, err
	}
	if len(in.Password) > MaxPasswordLen {
		return "", time.Time{}, errInvalidCredentials() // no stored password is that long
	}
	t, err := s.resolveForLogin(ctx, in.Tenant, in.Host, in.Password)
	if err != nil {
		return "", time.Time{}, err
	}
	// Every attempt counts, right password or not: the sixth in a minute on
	// one account is refused before the password is looked at.
	if err := s.checkLoginRate(ctx, "staff", t.ID, email); err != nil {
		return "", time.Time{}, err
	}
	log := s.logger().With(slog.String("tenant", t.Slug))
	failed := func(reason string, id *int) {
		s.audit(ctx, audit.Entry{TenantID: t.ID, ActorKind: "staff", ActorID: id, ActorLabel: email,
			Action: "login.failed", EntityType: "User", EntityID: id, Outcome: reason})
	}

	// The tenant is known from here on: the lookup runs under the tenant
	// policy, with the tenant also named explicitly.
	u, err := s.Client.User.Query().
		Where(user.TenantIDEQ(t.ID), user.EmailEQ(email)).
		Only(viewer.ForTenant(ctx, t.ID))
	switch {
	case ent.IsNotFound(err):
		// Spend the time a real check takes, in this tenant's turn.
		if err := s.spendHash(ctx, t.ID, in.Password); err != nil {
			return "", time.Time{}, err
		}
		log.InfoContext(ctx, "login failed", slog.String("reason", "unknown email"))
		failed("unknown email", nil)
		return "", time.Time{}, errInvalidCredentials()
	case err != nil:
		return "", time.Time{}, fmt.Errorf("auth: find user: %w", err)
	}
	ok, err := s.verifyPassword(ctx, t.ID, u.PasswordHash, in.Password)
	if hashRefused(err) {
		return "", time.Time{}, err
	}
	if err != nil {
		// The stored hash is unreadable; say no more than for a wrong password.
		log.ErrorContext(ctx, "login failed: stored password hash unreadable",
			slog.Int("user_id", u.ID), slog.Any("error", err))
		failed("unreadable password hash", &u.ID)
		return "", time.Time{}, errInvalidCredentials()
	}
	if !ok {
		log.InfoContext(ctx, "login failed", slog.String("reason", "wrong password"), slog.Int("user_id", u.ID))
		failed("wrong password", &u.ID)
		return "", time.Time{}, errInvalidCredentials()
	}
	// Only someone who knows the password learns that the account is disabled.
	if !u.Active {
		log.InfoContext(ctx, "login refused", slog.String("reason", "user disabled"), slog.Int("user_id", u.ID))
		failed("user disabled", &u.ID)
		return "", time.Time{}, errAccountDisabled()
	}

	// Upgrade a bcrypt hash or older argon2id parameters while the password
	// is at hand (before the transaction, which must not wait for a hash).
	rehash := ""
	if NeedsRehash(u.PasswordHash) {
		if h, herr := s.hashPassword(ctx, t.ID, in.Password); herr == nil {
			rehash = h
		}
	}
	uctx := viewer.NewContext(ctx, &viewer.Viewer{Kind: viewer.Staff, TenantID: t.ID, UserID: u.ID})
	err = s.inTx(uctx, func(c *ent.Client) error {
		var ierr error
		token, expiresAt, _, ierr = s.issue(uctx, c, t.ID, authtoken.KindSTAFF, &u.ID, nil, in.Address)
		if ierr != nil {
			return ierr
		}
		upd := c.User.UpdateOneID(u.ID).SetLastLoginAt(s.now())
		if rehash != "" {
			upd.SetPasswordHash(rehash)
		}
		if ierr = upd.Exec(uctx); ierr != nil {
			return fmt.Errorf("auth: record login: %w", ierr)
		}
		return nil
	})
	if err != nil {
		return "", time.Time{}, err
	}
	log.InfoContext(ctx, "login", slog.Int("user_id", u.ID))
	s.audit(ctx, audit.Entry{TenantID: t.ID, ActorKind: "staff", ActorID: &u.ID, ActorLabel: email,
		Action: "login", EntityType: "User", EntityID: &u.ID, Outcome: "ok"})
	return token, expiresAt, nil
}

// IssueCustomerToken issues a bearer token for a portal customer (a network
// user) whose credentials the caller has already checked. ctx needs no viewer.
// The token is written in the mutation's transaction when ctx carries one: a
// second connection would wait on that transaction's lock (on SQLite, the
// whole database's) until it timed out.
func (s *Service) IssueCustomerToken(ctx context.Context, tenantID, networkUserID int, address string) (token string, expiresAt time.Time, err error) {
	cctx := viewer.NewContext(ctx, &viewer.Viewer{Kind: viewer.Customer, TenantID: tenantID, NetworkUserID: networkUserID})
	token, expiresAt, _, err = s.issue(cctx, s.client(ctx), tenantID, authtoken.KindCUSTOMER, nil, &networkUserID, address)
	return token, expiresAt, err
}

// issue creates an AuthToken row for a new token and returns the token.
func (s *Service) issue(ctx context.Context, c *ent.Client, tenantID int, kind authtoken.Kind,
	userID, networkUserID *int, address string) (string, time.Time, *ent.AuthToken, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", time.Time{}, nil, err
	}
	if len(address) > maxAddressLen {
		address = address[:maxAddressLen]
	}
	now := s.now()
	expiresAt := now.Add(s.ttl())
	row, err := c.AuthToken.Create().
		SetTenantID(tenantID).
		SetTokenHash(hash).
		SetKind(kind).
		SetNillableUserID(userID).
		SetNillableNetworkUserID(networkUserID).
		SetCreatedAt(now).
		SetExpiresAt(expiresAt).
		SetAddress(address).
		Save(ctx)
	if err != nil {
		return "", time.Time{}, nil, fmt.Errorf("auth: store token: %w", err)
	}
	return token, expiresAt, row, nil
}

// Authenticate turns a bearer token into the viewer it was issued to. It
// refuses, with a message saying what to do, a token that is unknown, revoked
// or expired, of a tenant that is not active, or of a staff user who is
// disabled or gone. A token verified before is answered from this process's
// cache, without SQL, while nothing that could revoke it has changed
// (sessions.go).
func (s *Service) Authenticate(ctx context.Context, bearer string) (*viewer.Viewer, error) {
	if strings.HasPrefix(bearer, APIKeyPrefix) {
		return s.authenticateAPIKey(ctx, bearer)
	}
	if !wellFormedToken(bearer) {
		return nil, errInvalidToken()
	}
	hash := HashToken(bearer)
	return s.authenticateCached(ctx, hash,
		func(ctx context.Context) ([]cache.Part, error) {
			tok, err := s.findToken(ctx, hash)
			if err != nil {
				return nil, err
			}
			parts := []cache.Part{cache.ClassPart(tok.TenantID, cache.ClassTenant)}
			switch {
			case tok.UserID != nil:
				parts = append(parts, cache.ClassPart(tok.TenantID, cache.ClassRoles), cache.PrincipalPart(principalStaff, *tok.UserID))
			case tok.NetworkUserID != nil:
				parts = append(parts, cache.PrincipalPart(principalCustomer, *tok.NetworkUserID))
			}
			return parts, nil
		},
		func(ctx context.Context) (verified, error) { return s.verifyToken(ctx, hash) })
}

// findToken returns the live token whose hash this is, or the refusal of a
// token that is unknown, revoked or expired.
func (s *Service) findToken(ctx context.Context, hash []byte) (*ent.AuthToken, error) {
	// The token decides the tenant, so finding it cannot wait for one.
	tok, err := s.Client.AuthToken.Query().
		Where(authtoken.TokenHashEQ(hash)).
		Only(tenancy.Bypass(ctx))
	switch {
	case ent.IsNotFound(err):
		return nil, errInvalidToken()
	case err != nil:
		return nil, fmt.Errorf("auth: find token: %w", err)
	}
	if tok.RevokedAt != nil {
		return nil, apperr.E(apperr.Unauthenticated, "your session has ended (you logged out, or your password was changed): log in again")
	}
	if !s.now().Before(tok.ExpiresAt) {
		return nil, apperr.E(apperr.Unauthenticated, "your session has expired: log in again")
	}
	return tok, nil
}

// verifyToken checks the token whose hash this is against the database.
func (s *Service) verifyToken(ctx context.Context, hash []byte) (verified, error) {
	tok, err := s.findToken(ctx, hash)
	if err != nil {
		return verified{}, err
	}
	tctx := viewer.ForTenant(ctx, tok.TenantID)
	t, err := s.tenant(tctx, tok.TenantID)
	if err != nil {
		return verified{}, fmt.Errorf("auth: token tenant: %w", err)
	}
	if err := checkTenant(t); err != nil {
		return verified{}, err
	}

	switch tok.Kind {
	case authtoken.KindSTAFF:
		if tok.UserID == nil {
			return verified{}, fmt.Errorf("auth: staff token %d has no user", tok.ID)
		}
		u, err := s.Client.User.Query().
			Where(user.ID(*tok.UserID), user.TenantIDEQ(tok.TenantID)).
			Only(tctx)
		switch {
		case ent.IsNotFound(err):
			return verified{}, errInvalidToken()
		case err != nil:
			return verified{}, fmt.Errorf("auth: token user: %w", err)
		case !u.Active:
			return verified{}, errAccountDisabled()
		}
		v := &viewer.Viewer{Kind: viewer.Staff, TenantID: tok.TenantID, UserID: u.ID, TokenID: tok.ID, Permissions: []string{},
			Label: u.Email, RateLimit: tenantRateLimit(t), Currency: t.Currency}
		if u.RoleID != nil {
			r, err := s.role(tctx, tok.TenantID, *u.RoleID)
			if err != nil {
				return verified{}, fmt.Errorf("auth: token user's role: %w", err)
			}
			v.Role = r.Name
			v.Permissions = r.Permissions
		}
		return verified{viewer: v, expiresAt: tok.ExpiresAt}, nil

	case authtoken.KindCUSTOMER:
		if tok.NetworkUserID == nil {
			return verified{}, fmt.Errorf("auth: customer token %d has no network user", tok.ID)
		}
		// Suspended and expired subscribers keep portal access: that is
		// where they see what they owe and pay it. A deleted one does not.
		ok, err := s.Client.NetworkUser.Query().
			Where(networkuser.ID(*tok.NetworkUserID), networkuser.TenantIDEQ(tok.TenantID),
				networkuser.StatusNEQ(networkuser.StatusDELETED)).
			Exist(tctx)
		switch {
		case err != nil:
			return verified{}, fmt.Errorf("auth: token network user: %w", err)
		case !ok:
			return verified{}, errInvalidToken()
		}
		return verified{viewer: &viewer.Viewer{
			Kind:          viewer.Customer,
			TenantID:      tok.TenantID,
			NetworkUserID: *tok.NetworkUserID,
			TokenID:       tok.ID,
			Permissions:   authz.CustomerPermissions(),
			RateLimit:     tenantRateLimit(t),
			Currency:      t.Currency,
		}, expiresAt: tok.ExpiresAt}, nil
	}
	return verified{}, fmt.Errorf("auth: token %d has unknown kind %q", tok.ID, tok.Kind)
}

// Logout revokes the token the viewer in ctx authenticated with. Logging out
// twice is not an error.
func (s *Service) Logout(ctx context.Context) error {
	v := viewer.FromContext(ctx)
	if v == nil || v.TokenID == 0 {
		return apperr.E(apperr.Unauthenticated, "you are not logged in")
	}
	err := s.client(ctx).AuthToken.Update().
		Where(authtoken.ID(v.TokenID), authtoken.TenantIDEQ(v.TenantID), authtoken.RevokedAtIsNil()).
		SetRevokedAt(s.now()).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("auth: logout: %w", err)
	}
	return nil
}

// EnsureDefaultRoles creates, in tenant tenantID, each default role of
// authz.DefaultRoles that does not exist yet, and returns every default role
// by name. Roles the tenant already has, edited or not, are left alone.
func (s *Service) EnsureDefaultRoles(ctx context.Context, tenantID int) (map[string]*ent.Role, error) {
	tctx := viewer.ForTenant(ctx, tenantID)
	c := s.client(ctx)
	existing, err := c.Role.Query().Where(role.TenantIDEQ(tenantID)).All(tctx)
	if err != nil {
		return nil, fmt.Errorf("auth: list roles: %w", err)
	}
	byName := make(map[string]*ent.Role, len(existing))
	for _, r := range existing {
		byName[r.Name] = r
	}
	out := make(map[string]*ent.Role)
	for _, spec := range authz.DefaultRoles() {
		if r, ok := byName[spec.Name]; ok {
			out[spec.Name] = r
			continue
		}
		r, err := c.Role.Create().
			SetTenantID(tenantID).
			SetName(spec.Name).
			SetDescription(spec.Description).
			SetPermissions(spec.Permissions).
			SetBuiltin(true).
			Save(tctx)
		if err != nil {
			return nil, fmt.Errorf("auth: create role %s: %w", spec.Name, err)
		}
		out[spec.Name] = r
	}
	return out, nil
}

// isAppErr reports whether err is a domain error meant for the client.
func isAppErr(err error) bool {
	var e *apperr.Error
	return errors.As(err, &e)
}

// client returns the transaction of the mutation in ctx when there is one
// (the GraphQL layer opens one per mutation), else the service's client.
func (s *Service) client(ctx context.Context) *ent.Client {
	if c := ent.FromContext(ctx); c != nil {
		return c
	}
	return s.Client
}

// inTx runs fn in the transaction of ctx or a new one (transaction.Run).
func (s *Service) inTx(ctx context.Context, fn func(*ent.Client) error) error {
	return transaction.Run(ctx, s.Client, func(_ context.Context, c *ent.Client) error { return fn(c) })
}
