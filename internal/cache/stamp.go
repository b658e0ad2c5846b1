package cache

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/ent/cachegeneration"
	"github.com/ispgraph/ispgraph/internal/tenancy"
)

// Part names one generation a holder of cached state depends on: a class of
// one tenant (ClassPart) or one principal (PrincipalPart).
type Part struct {
	Tenant int
	Class  Class
	// own: no companion generation of AllTenants. Principals are always
	// named by the change that affects them, so nothing bumps theirs for
	// every tenant at once.
	own bool
}

// ClassPart is the generation of class for tenantID, which a change of
// unknown tenant (AllTenants) also moves.
func ClassPart(tenantID int, class Class) Part { return Part{Tenant: tenantID, Class: class} }

// PrincipalPart is the generation of one credential holder: kind names the
// table ("staff", "customer", "apikey") and id its row. Ids are unique
// across tenants, so these generations are kept under PlatformTenant.
func PrincipalPart(kind string, id int) Part {
	return Part{Tenant: PlatformTenant, Class: Class("principal:" + kind + ":" + strconv.Itoa(id)), own: true}
}

// Stamp is a set of generations read together: a value cached outside the
// chain (package auth keeps verified bearer tokens this way) stores the
// stamp it was computed under and is valid while Read returns the same
// string. Build it once per cached value with Cache.Stamp.
type Stamp struct {
	parts []Part
	keys  []string // Redis keys, in parts order, with the AllTenants companions
}

// Stamp returns the stamp of parts.
func (c *Cache) Stamp(parts ...Part) *Stamp {
	s := &Stamp{parts: parts}
	for _, p := range parts {
		s.keys = append(s.keys, c.genKey(p.Tenant, p.Class))
		if !p.own {
			s.keys = append(s.keys, c.genKey(AllTenants, p.Class))
		}
	}
	return s
}

// Read returns the current generations of s as one string that changes
// whenever any of them is bumped. While Redis is trusted it costs one MGET
// (a generation Redis has not heard of is read from the database once and
// published, as for Get); without Redis it costs one database statement,
// which is as current as Redis, since every bump is committed with the
// change that caused it. Read a stamp before reading what it guards: a
// change committed in between then moves the stamp past the stored one.
func (c *Cache) Read(ctx context.Context, s *Stamp) (string, error) {
	if c.redisUsable() {
		vals, err := c.rdb.MGet(ctx, s.keys...).Result()
		return c.fromRedis(ctx, s, vals, err)
	}
	return c.dbStamp(ctx, s)
}

// ReadWith is Read with more commands in the same round trip to Redis:
// while Redis is trusted, queue adds them to the pipeline that carries the
// MGET, and the caller reads their results from the commands it queued once
// ReadWith returns. When Redis is not trusted queue is not called, and the
// caller sends its commands itself. Only commands for the cache's Redis
// belong in the pipeline (SharesRedis).
func (c *Cache) ReadWith(ctx context.Context, s *Stamp, queue func(redis.Pipeliner)) (string, error) {
	if !c.redisUsable() {
		return c.dbStamp(ctx, s)
	}
	pipe := c.rdb.Pipeline()
	mget := pipe.MGet(ctx, s.keys...)
	queue(pipe)
	_, _ = pipe.Exec(ctx) // every command keeps its own error
	vals, err := mget.Result()
	return c.fromRedis(ctx, s, vals, err)
}

// SharesRedis reports whether rdb talks to the Redis database the cache
// uses, so that its commands may ride in ReadWith's pipeline.
func (c *Cache) SharesRedis(rdb *redis.Client) bool {
	if c.rdb == nil || rdb == nil {
		return false
	}
	a, b := c.rdb.Options(), rdb.Options()
	return a.Network == b.Network && a.Addr == b.Addr && a.DB == b.DB && a.Username == b.Username
}

// fromRedis turns the MGET of s's keys into the stamp.
func (c *Cache) fromRedis(ctx context.Context, s *Stamp, vals []any, err error) (string, error) {
	if err != nil {
		c.redisFailed(ctx, err)
		return c.dbStamp(ctx, s)
	}
	if out, ok := joinGenerations(vals); ok {
		return out, nil
	}
	// Some generation is not in Redis yet (first use, expired, Redis
	// restarted): take each from the slow path, which publishes it. The
	// layout is the MGET's: every generation, dot-separated.
	var b strings.Builder
	for i, p := range s.parts {
		if i > 0 {
			b.WriteByte('.')
		}
		var (
			g   string
			err error
		)
		if p.own {
			g, err = c.ownGeneration(ctx, p)
		} else {
			g, err = c.generation(ctx, p.Tenant, p.Class)
		}
		if err != nil {
			return "", err
		}
		b.WriteString(g)
	}
	return b.String(), nil
}

// joinGenerations joins the values of an MGET; ok is false when one is missing.
func joinGenerations(vals []any) (string, bool) {
	n := 0
	for _, v := range vals {
		s, ok := v.(string)
		if !ok || s == "" {
			return "", false
		}
		n += len(s) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for i, v := range vals {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(v.(string))
	}
	return b.String(), true
}

// ownGeneration returns a principal's generation from Redis, publishing the
// database's when Redis has none.
func (c *Cache) ownGeneration(ctx context.Context, p Part) (string, error) {
	key := c.genKey(p.Tenant, p.Class)
	g, err, _ := c.group.Do("gen:"+key, func() (any, error) {
		if v, err := c.rdb.Get(ctx, key).Result(); err == nil {
			return v, nil
		}
		rows, err := c.db.CacheGeneration.Query().
			Where(cachegeneration.TenantID(p.Tenant), cachegeneration.Class(string(p.Class))).
			All(tenancy.Bypass(ctx)) // generations of every tenant live in one table
		if err != nil {
			return "", fmt.Errorf("cache: read generation: %w", err)
		}
		var gen int64
		if len(rows) == 1 {
			gen = rows[0].Generation
		}
		got, err := maxScript.Run(ctx, c.rdb, []string{key}, gen, int(generationKeyTTL.Seconds())).Int64()
		if err != nil {
			c.redisFailed(ctx, err)
			return strconv.FormatInt(gen, 10), nil
		}
		return strconv.FormatInt(got, 10), nil
	})
	if err != nil {
		return "", err
	}
	return g.(string), nil
}

// dbStamp reads every generation of s from the database in one statement,
// in the same layout as the Redis path (a missing row is generation 0).
func (c *Cache) dbStamp(ctx context.Context, s *Stamp) (string, error) {
	tenants := []int{AllTenants}
	classes := make([]string, 0, len(s.parts))
	for _, p := range s.parts {
		tenants = append(tenants, p.Tenant)
		classes = append(classes, string(p.Class))
	}
	rows, err := c.db.CacheGeneration.Query().
		Where(cachegeneration.TenantIDIn(tenants...), cachegeneration.ClassIn(classes...)).
		All(tenancy.Bypass(ctx)) // generations of every tenant live in one table
	if err != nil {
		return "", fmt.Errorf("cache: read generations: %w", err)
	}
	gen := func(tenant int, class Class) string {
		for _, r := range rows {
			if r.TenantID == tenant && r.Class == string(class) {
				return strconv.FormatInt(r.Generation, 10)
			}
		}
		return "0"
	}
	var b strings.Builder
	for _, p := range s.parts {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(gen(p.Tenant, p.Class))
		if !p.own {
			b.WriteByte('.')
			b.WriteString(gen(AllTenants, p.Class))
		}
	}
	return b.String(), nil
}
