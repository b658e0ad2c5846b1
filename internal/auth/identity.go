package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/apikey"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/ratelimit"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// DefaultLoginLimit is how many login attempts one account may make from one
// address per minute (the original system's figure).
const DefaultLoginLimit = 5

// DefaultAPILimit is how many API calls one credential may make per minute
// unless its tenant or API key says otherwise.
const DefaultAPILimit = 60

// MaxAPILimit caps the per-minute API limit of a tenant or a key (the
// server's own, ISPGRAPH_API_RATE_LIMIT, is the operator's choice): a key set
// higher is refused, a larger stored value is read as this.
// One credential at 10 000 calls a minute (about 170 a second) is already more
// than one API process serves.
const MaxAPILimit = 10000

// TenantRateLimitSetting is the key in Tenant.settings that overrides
// DefaultAPILimit for every credential of the tenant.
const TenantRateLimitSetting = "api_rate_limit_per_minute"

// APIKeyPrefix starts every partner API key.
const APIKeyPrefix = "isk_"

func (s *Service) loginLimit() int {
	if s.LoginLimit > 0 {
		return s.LoginLimit
	}
	return DefaultLoginLimit
}

// AddressLoginFactor times the login limit is how many attempts one client
// address may make per minute, over every tenant and account: an office
// behind one NAT address still signs in, a single client spraying accounts
// is stopped before it costs a password hash each.
const AddressLoginFactor = 10

// checkAddressRate counts a login attempt from address, before the tenant is
// resolved or any password hashed.
func (s *Service) checkAddressRate(ctx context.Context, kind, address string) error {
	return s.hitLoginLimit(ctx, kind, "address\x00"+address, s.loginLimit()*AddressLoginFactor)
}

// checkLoginRate counts a login attempt on account of the resolved tenant and
// refuses it past the limit. The key is what the attempt resolved to (the
// tenant's id, the account trimmed and lower-cased), so no other spelling of
// the tenant (slug, Host header, case) or the account starts a fresh count.
func (s *Service) checkLoginRate(ctx context.Context, kind string, tenantID int, account string) error {
	account = strings.ToLower(strings.TrimSpace(account))
	return s.hitLoginLimit(ctx, kind, fmt.Sprintf("account\x00%d\x00%s", tenantID, account), s.loginLimit())
}

// hitLoginLimit counts one attempt on key. Without an answer from Redis it
// refuses (fails closed): an attacker must not get unlimited guesses by
// taking Redis down.
func (s *Service) hitLoginLimit(ctx context.Context, kind, key string, limit int) error {
	if s.Limiter == nil {
		return nil
	}
	h := sha256.Sum256([]byte(key))
	res, err := s.Limiter.Hit(ctx, "login:"+kind+":"+hex.EncodeToString(h[:12]), limit)
	if err != nil {
		s.logger().ErrorContext(ctx, "login rate limiter unavailable: refusing login (fails closed)", slog.Any("error", err))
		return apperr.E(apperr.RateLimited, "sign-in is temporarily unavailable: try again in a minute")
	}
	if !res.Allowed {
		s.logger().WarnContext(ctx, "login rate limited", slog.String("kind", kind), slog.Int("limit", limit))
		return apperr.E(apperr.RateLimited, "too many sign-in attempts: wait %d seconds and try again",
			max(ratelimit.Seconds(res.RetryAfter), 1))
	}
	return nil
}

// resolveForLogin resolves the login's tenant. An unknown tenant costs the
// same password hash a known one does, so timing does not tell them apart.
func (s *Service) resolveForLogin(ctx context.Context, tenant, host, password string) (*ent.Tenant, error) {
	t, err := s.ResolveTenant(ctx, tenant, host)
	if err != nil {
		if herr := s.spendHash(ctx, 0, password); herr != nil {
			return nil, herr
		}
	}
	return t, err
}

// audit records e with the actor from ctx filled in where e leaves it empty.
func (s *Service) audit(ctx context.Context, e audit.Entry) {
	if s.Audit == nil {
		return
	}
	if e.ActorKind == "" {
		e = audit.Actor(ctx, e)
	}
	s.Audit.Record(ctx, e)
}

// CustomerLoginInput is what a customer portal login carries.
type CustomerLoginInput struct {
	Tenant   string
	Username string
	Password string
	Host     string
	Address  string
}

func errInvalidCustomerCredentials() error {
	return apperr.E(apperr.Unauthenticated, "invalid username or password")
}

// CustomerLogin checks a subscriber's portal credentials and issues a customer
// bearer token. Unknown usernames, subscribers without a portal password and
// wrong passwords fail alike and cost alike.
func (s *Service) CustomerLogin(ctx context.Context, in CustomerLoginInput) (token string, expiresAt time.Time, err error) {
	username := strings.TrimSpace(in.Username)
	if username == "" || in.Password == "" {
		return "", time.Time{}, apperr.E(apperr.BadUserInput, "username and password are required")
	}
	if err := s.checkAddressRate(ctx, "customer", in.Address); err != nil {
		return "", time.Time{}, err
	}
	if len(in.Password) > MaxPasswordLen {
		return "", time.Time{}, errInvalidCustomerCredentials()
	}
	t, err := s.resolveForLogin(ctx, in.Tenant, in.Host, in.Password)
	if err != nil {
		return "", time.Time{}, err
	}
	// Every attempt counts, right password or not.
	if err := s.checkLoginRate(ctx, "customer", t.ID, username); err != nil {
		return "", time.Time{}, err
	}
	log := s.logger().With(slog.String("tenant", t.Slug))
	fail := func(reason string, id *int) (string, time.Time, error) {
		log.InfoContext(ctx, "customer login failed", slog.String("reason", reason))
		s.audit(ctx, audit.Entry{TenantID: t.ID, ActorKind: "customer", ActorID: id, ActorLabel: username,
			Action: "customer_login.failed", EntityType: "NetworkUser", EntityID: id, Outcome: reason})
		return "", time.Time{}, errInvalidCustomerCredentials()
	}
	nu, err := s.Client.NetworkUser.Query().
		Where(networkuser.TenantIDEQ(t.ID), networkuser.UsernameEQ(username)).
		Only(viewer.ForTenant(ctx, t.ID))
	switch {
	case ent.IsNotFound(err):
		if err := s.spendHash(ctx, t.ID, in.Password); err != nil {
			return "", time.Time{}, err
		}
		return fail("unknown username", nil)
	case err != nil:
		return "", time.Time{}, fmt.Errorf("auth: find subscriber: %w", err)
	}
	if nu.PortalPasswordHash == nil || *nu.PortalPasswordHash == "" {
		if err := s.spendHash(ctx, t.ID, in.Password); err != nil {
			return "", time.Time{}, err
		}
		return fail("no portal password", &nu.ID)
	}
	if nu.Status == networkuser.StatusDELETED {
		// Refused like a wrong password, at the same cost: a deleted
		// subscriber's username tells a guesser nothing.
		if err := s.spendHash(ctx, t.ID, in.Password); err != nil {
			return "", time.Time{}, err
		}
		return fail("deleted subscriber", &nu.ID)
	}
	ok, err := s.verifyPassword(ctx, t.ID, *nu.PortalPasswordHash, in.Password)
	if hashRefused(err) {
		return "", time.Time{}, err
	}
	if err != nil || !ok {
		return fail("wrong password", &nu.ID)
	}
	if NeedsRehash(*nu.PortalPasswordHash) {
		// Upgrade bcrypt or older argon2id parameters while the password is at hand.
		if h, herr := s.hashPassword(ctx, t.ID, in.Password); herr == nil {
			if err := s.client(ctx).NetworkUser.UpdateOneID(nu.ID).SetPortalPasswordHash(h).
				Exec(viewer.ForTenant(ctx, t.ID)); err != nil {
				return "", time.Time{}, fmt.Errorf("auth: rehash portal password: %w", err)
			}
		}
	}
	token, expiresAt, err = s.IssueCustomerToken(ctx, t.ID, nu.ID, in.Address)
	if err != nil {
		return "", time.Time{}, err
	}
	log.InfoContext(ctx, "customer login", slog.Int("network_user_id", nu.ID))
	s.audit(ctx, audit.Entry{TenantID: t.ID, ActorKind: "customer", ActorID: &nu.ID, ActorLabel: username,
		Action: "customer_login", EntityType: "NetworkUser", EntityID: &nu.ID, Outcome: "ok"})
	return token, expiresAt, nil
}

// NewAPIKeyInput is what a tenant admin gives a new partner API key.
type NewAPIKeyInput struct {
	Name               string
	Scopes             []string
	ExpiresAt          *time.Time
	RateLimitPerMinute *int
}

// CreateAPIKey creates a partner API key in the viewer's tenant and returns it
// with its secret, which is never stored or shown again. A key may hold only
// catalogue permissions the creator holds itself.
func (s *Service) CreateAPIKey(ctx context.Context, in NewAPIKeyInput) (*ent.APIKey, string, error) {
	v, err := RequirePermission(ctx, authz.APIKeysManage)
	if err != nil {
		return nil, "", err
	}
	scopes, err := authz.Normalize(in.Scopes)
	if err != nil {
		return nil, "", err
	}
	if len(scopes) == 0 {
		return nil, "", apperr.E(apperr.BadUserInput, "an API key needs at least one scope")
	}
	for _, p := range scopes {
		if !v.Can(p) {
			return nil, "", apperr.E(apperr.Forbidden, "you cannot give an API key the %q permission: you do not hold it", p)
		}
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(s.now()) {
		return nil, "", apperr.E(apperr.BadUserInput, "expiresAt must be in the future")
	}
	if in.RateLimitPerMinute != nil && (*in.RateLimitPerMinute < 1 || *in.RateLimitPerMinute > MaxAPILimit) {
		return nil, "", apperr.E(apperr.BadUserInput, "rateLimitPerMinute must be between 1 and %d calls a minute", MaxAPILimit)
	}
	prefix, secret, hash, err := newAPIKey()
	if err != nil {
		return nil, "", err
	}
	c := s.client(ctx).APIKey.Create().
		SetName(strings.TrimSpace(in.Name)).
		SetPrefix(prefix).
		SetSecretHash(hash).
		SetScopes(scopes).
		SetNillableExpiresAt(in.ExpiresAt).
		SetNillableRateLimitPerMinute(in.RateLimitPerMinute)
	if v.UserID > 0 {
		c.SetCreatedByID(v.UserID)
	}
	k, err := c.Save(ctx)
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// RevokeAPIKey revokes a key of the viewer's tenant at once. Revoking twice
// keeps the first revocation time.
func (s *Service) RevokeAPIKey(ctx context.Context, id int) (*ent.APIKey, error) {
	if _, err := RequirePermission(ctx, authz.APIKeysManage); err != nil {
		return nil, err
	}
	c := s.client(ctx)
	k, err := c.APIKey.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.RevokedAt != nil {
		return k, nil
	}
	return c.APIKey.UpdateOne(k).SetRevokedAt(s.now()).Save(ctx)
}

// newAPIKey returns a fresh key: isk_<prefix>_<secret>, the public prefix
// (shown in lists, used to find the key) and the hash stored for it.
func newAPIKey() (prefix, secret string, hash []byte, err error) {
	p := make([]byte, 6)
	b := make([]byte, 32)
	if _, err = rand.Read(p); err == nil {
		_, err = rand.Read(b)
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("auth: api key: %w", err)
	}
	prefix = hex.EncodeToString(p)
	secret = APIKeyPrefix + prefix + "_" + base64.RawURLEncoding.EncodeToString(b)
	return prefix, secret, HashToken(secret), nil
}

// authenticateAPIKey turns a partner API key into a Partner viewer holding the
// key's scopes (still valid catalogue permissions only). A key verified before
// is answered from this process's cache (sessions.go).
func (s *Service) authenticateAPIKey(ctx context.Context, secret string) (*viewer.Viewer, error) {
	rest := strings.TrimPrefix(secret, APIKeyPrefix)
	prefix, _, ok := strings.Cut(rest, "_")
	if !ok || len(prefix) != 12 || len(secret) > 128 {
		return nil, errInvalidToken()
	}
	hash := HashToken(secret)
	return s.authenticateCached(ctx, hash,
		func(ctx context.Context) ([]cache.Part, error) {
			k, err := s.findAPIKey(ctx, prefix, hash)
			if err != nil {
				return nil, err
			}
			return []cache.Part{cache.ClassPart(k.TenantID, cache.ClassTenant), cache.PrincipalPart(principalAPIKey, k.ID)}, nil
		},
		func(ctx context.Context) (verified, error) { return s.verifyAPIKey(ctx, prefix, hash) })
}

// findAPIKey returns the live key of this prefix and secret hash, or the
// refusal of a key that is unknown, revoked or expired.
func (s *Service) findAPIKey(ctx context.Context, prefix string, hash []byte) (*ent.APIKey, error) {
	// The key decides the tenant, so finding it cannot wait for one.
	k, err := s.Client.APIKey.Query().Where(apikey.PrefixEQ(prefix)).Only(tenancy.Bypass(ctx))
	switch {
	case ent.IsNotFound(err):
		return nil, apperr.E(apperr.Unauthenticated, "invalid API key")
	case err != nil:
		return nil, fmt.Errorf("auth: find api key: %w", err)
	}
	if subtle.ConstantTimeCompare(k.SecretHash, hash) != 1 {
		return nil, apperr.E(apperr.Unauthenticated, "invalid API key")
	}
	if k.RevokedAt != nil {
		return nil, apperr.E(apperr.Unauthenticated, "this API key was revoked: ask the provider for a new one")
	}
	if k.ExpiresAt != nil && !s.now().Before(*k.ExpiresAt) {
		return nil, apperr.E(apperr.Unauthenticated, "this API key expired on %s: ask the provider for a new one",
			k.ExpiresAt.UTC().Format(time.DateOnly))
	}
	return k, nil
}

// neverExpires stands for the expiry of a key that has none.
var neverExpires = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// verifyAPIKey checks a key against the database and records its use.
func (s *Service) verifyAPIKey(ctx context.Context, prefix string, hash []byte) (verified, error) {
	k, err := s.findAPIKey(ctx, prefix, hash)
	if err != nil {
		return verified{}, err
	}
	tctx := viewer.ForTenant(ctx, k.TenantID)
	t, err := s.tenant(tctx, k.TenantID)
	if err != nil {
		return verified{}, fmt.Errorf("auth: api key tenant: %w", err)
	}
	if err := checkTenant(t); err != nil {
		return verified{}, err
	}
	// Last used: at most one write a minute per key, and only when the key
	// is verified here (a cached key is not): accurate to about
	// SessionCacheTTL plus a minute.
	now := s.now()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
		if err := s.Client.APIKey.UpdateOne(k).SetLastUsedAt(now).Exec(tctx); err != nil {
			s.logger().WarnContext(ctx, "api key: record last use", slog.Any("error", err))
		}
	}
	perms := make([]string, 0, len(k.Scopes))
	for _, p := range k.Scopes {
		if authz.Valid(p) {
			perms = append(perms, p)
		}
	}
	limit := tenantRateLimit(t)
	if k.RateLimitPerMinute != nil && *k.RateLimitPerMinute > 0 {
		limit = *k.RateLimitPerMinute
	}
	exp := neverExpires
	if k.ExpiresAt != nil {
		exp = *k.ExpiresAt
	}
	return verified{viewer: &viewer.Viewer{Kind: viewer.Partner, TenantID: k.TenantID, APIKeyID: k.ID, Permissions: perms,
		Label: "api key " + k.Prefix, RateLimit: limit, Currency: t.Currency}, expiresAt: exp}, nil
}

// tenantRateLimit returns the tenant's API calls per minute per credential, or 0
// for the server default.
func tenantRateLimit(t *ent.Tenant) int {
	switch n := t.Settings[TenantRateLimitSetting].(type) {
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}
