package auth

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/apikey"
	"github.com/ispgraph/ispgraph/ent/authtoken"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/user"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Verified credentials are kept in this process so that a request with a
// known bearer token or API key runs no SQL statement. An entry holds the
// viewer the credential was verified as and the generations (cache.Stamp) of
// everything that could revoke it: the principal (staff user, subscriber or
// API key), the tenant and, for staff, the tenant's roles. Every change that
// revokes (logout, password change or reset, disabling a user or changing
// its role, revoking a key, a portal password changed or removed, a role's
// permissions edited, a tenant suspended) bumps one of those generations in
// its own transaction (Hook and the cache's class hook), and every request
// compares the stamp it stored with the current one: one Redis MGET, so a
// revocation on any instance refuses the credential on every instance at
// once; the request's API rate-limit hit travels in the same round trip.
// Without Redis the stamp is read from Postgres (one statement): the bump is
// committed with the revocation, so that is as current.

// Defaults of the verified-credential cache.
const (
	// DefaultSessionCacheSize bounds the verified credentials kept per
	// process (about 1 KB each, most of it the permission list).
	DefaultSessionCacheSize = 10_000
	// DefaultSessionCacheTTL is how long a verification is trusted before
	// the credential is verified against the database again even though no
	// generation moved: the bound on staleness if a bump's publication to
	// Redis was lost (an instance cut off from Redis while others reach it).
	DefaultSessionCacheTTL = time.Minute
)

// Principal kinds of cache.PrincipalPart.
const (
	principalStaff    = "staff"
	principalCustomer = "customer"
	principalAPIKey   = "apikey"
)

// session is one verified credential.
type session struct {
	stamp      *cache.Stamp
	gen        string        // the stamp's value when verified
	viewer     viewer.Viewer // nil Permissions never: verify sets them
	expiresAt  time.Time     // the credential's own expiry
	verifiedAt time.Time
	elem       *list.Element
	key        [32]byte
}

// sessionCache is a bounded LRU of sessions by the SHA-256 of the credential.
type sessionCache struct {
	mu    sync.Mutex
	max   int
	items map[[32]byte]*session
	order *list.List // front: most recently used
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{max: max, items: make(map[[32]byte]*session), order: list.New()}
}

func (c *sessionCache) get(key [32]byte) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.items[key]
	if e != nil {
		c.order.MoveToFront(e.elem)
	}
	return e
}

func (c *sessionCache) put(e *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.items[e.key]; old != nil {
		c.order.Remove(old.elem)
	}
	e.elem = c.order.PushFront(e)
	c.items[e.key] = e
	for len(c.items) > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*session).key)
	}
}

func (c *sessionCache) remove(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.items[key]; e != nil {
		c.order.Remove(e.elem)
		delete(c.items, key)
	}
}

func (c *sessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// sessions returns the verified-credential cache, or nil when credentials
// must not be cached: no cache (no generations to check), the cache turned
// off by a negative SessionCacheSize, or Hook not installed (revocations
// would bump nothing).
func (s *Service) sessions() *sessionCache {
	if s.Cache == nil || s.SessionCacheSize < 0 || !s.hooked.Load() {
		return nil
	}
	s.sessionsOnce.Do(func() {
		n := s.SessionCacheSize
		if n == 0 {
			n = DefaultSessionCacheSize
		}
		s.sessionCache = newSessionCache(n)
	})
	return s.sessionCache
}

func (s *Service) sessionTTL() time.Duration {
	if s.SessionCacheTTL > 0 {
		return s.SessionCacheTTL
	}
	return DefaultSessionCacheTTL
}

// verified is what a credential's verification against the database gives.
type verified struct {
	viewer    *viewer.Viewer
	expiresAt time.Time
}

// authenticateCached returns the viewer of the credential whose SHA-256 is
// hash: from this process's cache when the stamp stored with it is still
// current, else by verify (against the database), caching the result.
// identify finds, on first sight, which principal and tenant the credential
// belongs to (the parts of its stamp), refusing it early when it is unknown,
// revoked or expired. The stamp is always read before verify reads the
// database, so a revocation committed in between leaves a stale stamp
// behind, never a stale viewer under a current stamp.
func (s *Service) authenticateCached(ctx context.Context, hash []byte,
	identify func(context.Context) ([]cache.Part, error),
	verify func(context.Context) (verified, error)) (*viewer.Viewer, error) {
	sc := s.sessions()
	if sc == nil {
		r, err := verify(ctx)
		return r.viewer, err
	}
	key := [32]byte(hash)
	now := s.now()
	var (
		stamp *cache.Stamp
		gen   string
		err   error
	)
	if e := sc.get(key); e != nil {
		if !now.Before(e.expiresAt) {
			// Expired: the database path says so in its own words.
			sc.remove(key)
			r, err := verify(ctx)
			return r.viewer, err
		}
		stamp = e.stamp
		if s.pipelinesAPIHits(ctx) {
			// One round trip: the stamp and the request's rate-limit hit.
			// Without a trusted Redis nothing is queued and allowAPICall
			// sends the hit itself.
			gen, err = s.Cache.ReadWith(ctx, stamp, func(pipe redis.Pipeliner) { s.queueAPIHit(ctx, pipe, &e.viewer) })
		} else {
			gen, err = s.Cache.Read(ctx, stamp)
		}
		if err == nil && gen == e.gen && now.Sub(e.verifiedAt) < s.sessionTTL() {
			v := e.viewer
			return &v, nil
		}
	} else {
		parts, err := identify(ctx)
		if err != nil {
			return nil, err
		}
		stamp = s.Cache.Stamp(parts...)
		gen, err = s.Cache.Read(ctx, stamp)
	}
	r, verr := verify(ctx)
	if verr != nil {
		sc.remove(key)
		return nil, verr
	}
	if err == nil {
		v := *r.viewer
		v.Permissions = slices.Clip(v.Permissions) // shared by every copy: appending must not write into it
		sc.put(&session{stamp: stamp, gen: gen, viewer: v, expiresAt: r.expiresAt, verifiedAt: now, key: key})
	}
	return r.viewer, nil
}

// Hook returns the ent hook that makes revocations reach every instance:
// each change that can end a credential bumps its principal's generation in
// the change's transaction (published to Redis after the commit). Install it
// once, with client.Use; until it is installed, this service caches no
// verified credential (each request reads the database).
func (s *Service) Hook() ent.Hook {
	s.hooked.Store(true)
	return s.Cache.HookFor(revocations)
}

// revocations names the principals whose credentials mutation m can end. It
// runs before m, under m's context, so it sees the rows m is about to change.
func revocations(ctx context.Context, m ent.Mutation) ([]cache.Part, error) {
	if m.Op().Is(ent.OpCreate) {
		return nil, nil // a new row ends no credential
	}
	switch m.Type() {
	case ent.TypeUser:
		// Any change but the login bookkeeping: active, role, password,
		// e-mail (the viewer's label), deletion.
		if !changesBeyond(m, user.FieldLastLoginAt, user.FieldUpdatedAt) {
			return nil, nil
		}
		return principalsOf(ctx, m, principalStaff)
	case ent.TypeAPIKey:
		if !changesBeyond(m, apikey.FieldLastUsedAt, apikey.FieldUpdatedAt) {
			return nil, nil
		}
		return principalsOf(ctx, m, principalAPIKey)
	case ent.TypeNetworkUser:
		// The portal password, the status (a DELETED subscriber loses
		// the portal; suspended and expired ones keep it, and only pay
		// one re-verification) and deletion.
		if !isDelete(m) && !touches(m, networkuser.FieldPortalPasswordHash) &&
			!touches(m, networkuser.FieldStatus) {
			return nil, nil
		}
		return principalsOf(ctx, m, principalCustomer)
	case ent.TypeAuthToken:
		return tokenPrincipals(ctx, m)
	}
	return nil, nil
}

func isDelete(m ent.Mutation) bool { return m.Op().Is(ent.OpDelete | ent.OpDeleteOne) }

// changesBeyond reports whether m deletes, or changes a field other than
// ignore, or an edge.
func changesBeyond(m ent.Mutation, ignore ...string) bool {
	if isDelete(m) {
		return true
	}
	for _, f := range m.Fields() {
		if !slices.Contains(ignore, f) {
			return true
		}
	}
	for _, f := range m.AddedFields() {
		if !slices.Contains(ignore, f) {
			return true
		}
	}
	for _, f := range m.ClearedFields() {
		if !slices.Contains(ignore, f) {
			return true
		}
	}
	return len(m.AddedEdges()) > 0 || len(m.RemovedEdges()) > 0 || len(m.ClearedEdges()) > 0
}

// touches reports whether m sets or clears field.
func touches(m ent.Mutation, field string) bool {
	if _, ok := m.Field(field); ok {
		return true
	}
	return m.FieldCleared(field)
}

// mutationIDs returns the ids of the rows m changes (for a single-row
// mutation without a query).
func mutationIDs(ctx context.Context, m ent.Mutation) ([]int, error) {
	im, ok := m.(interface {
		IDs(context.Context) ([]int, error)
	})
	if !ok {
		return nil, fmt.Errorf("auth: mutation of %s cannot list its rows", m.Type())
	}
	return im.IDs(ctx)
}

// principalsOf is one principal part of kind per row m changes.
func principalsOf(ctx context.Context, m ent.Mutation, kind string) ([]cache.Part, error) {
	ids, err := mutationIDs(ctx, m)
	if err != nil {
		return nil, err
	}
	parts := make([]cache.Part, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, cache.PrincipalPart(kind, id))
	}
	return parts, nil
}

// tokenPrincipals names the holders of the tokens m changes: revoking one
// token (logout) or all of a user's ends them through the holder's
// generation.
func tokenPrincipals(ctx context.Context, m ent.Mutation) ([]cache.Part, error) {
	ids, err := mutationIDs(ctx, m)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	mc, ok := m.(interface{ Client() *ent.Client })
	if !ok {
		return nil, fmt.Errorf("auth: mutation of %s has no client", m.Type())
	}
	toks, err := mc.Client().AuthToken.Query().
		Where(authtoken.IDIn(ids...)).
		Select(authtoken.FieldUserID, authtoken.FieldNetworkUserID).
		All(ctx)
	if err != nil {
		return nil, err
	}
	var parts []cache.Part
	for _, t := range toks {
		var p cache.Part
		switch {
		case t.UserID != nil:
			p = cache.PrincipalPart(principalStaff, *t.UserID)
		case t.NetworkUserID != nil:
			p = cache.PrincipalPart(principalCustomer, *t.NetworkUserID)
		default:
			continue
		}
		if !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	return parts, nil
}
