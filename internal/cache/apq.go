package cache

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// persistedQueryTTL is how long an automatic persisted query stays known.
const persistedQueryTTL = 24 * time.Hour

// PersistedQueries is the store of gqlgen's automatic persisted queries in
// the shared Redis, so a query registered through one process is known to
// every process. While Redis is unavailable it knows nothing, and clients
// send the full query again, as the protocol provides.
type PersistedQueries struct{ c *Cache }

// PersistedQueries returns the store; nil when the cache has no Redis.
func (c *Cache) PersistedQueries() *PersistedQueries {
	if c == nil || c.rdb == nil {
		return nil
	}
	return &PersistedQueries{c: c}
}

func (p *PersistedQueries) key(hash string) string { return p.c.prefix + "apq:" + hash }

// Get returns the query registered under hash.
func (p *PersistedQueries) Get(ctx context.Context, hash string) (string, bool) {
	if !p.c.redisUsable() {
		return "", false
	}
	q, err := p.c.rdb.Get(ctx, p.key(hash)).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			p.c.redisFailed(ctx, err)
		}
		return "", false
	}
	return q, true
}

// Add registers query under hash.
func (p *PersistedQueries) Add(ctx context.Context, hash, query string) {
	if !p.c.redisUsable() {
		return
	}
	if err := p.c.rdb.Set(ctx, p.key(hash), query, persistedQueryTTL).Err(); err != nil {
		p.c.redisFailed(ctx, err)
	}
}
