// Package cache owns ispgraph's read cache: a gocache chain of ristretto (this
// process's memory) over Redis (shared by every process), typed values, TTL
// classes, and invalidation that is correct across processes and Redis outages.
//
// Every key carries the tenant and a generation number kept in Postgres
// (table cache_generations, one row per tenant and class). A mutation that
// changes cached data bumps the generation in its own transaction (Hook);
// after the commit the new number is written to Redis, where every process
// reads it on each lookup. An entry under an old generation is never read
// again, in memory or in Redis: nothing is deleted, tags are not used, and the
// Redis store's Clear (FLUSHALL) is never called.
//
// Redis down is not an outage: lookups then read the generation from Postgres
// (one small statement) and use the memory layer only; one log line and the
// cache_redis_errors_total metric say so; a probe every half second notices
// Redis again, re-publishes every generation from Postgres (so changes made
// during the outage take effect) and only then trusts Redis again.
package cache

import (
	"context"
	"crypto/rand"
	stdsql "database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/dgraph-io/ristretto/v2"
	lib "github.com/eko/gocache/lib/v4/cache"
	"github.com/eko/gocache/lib/v4/store"
	redisstore "github.com/eko/gocache/store/redis/v4"
	ristrettostore "github.com/eko/gocache/store/ristretto/v4"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/cachegeneration"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/tenancy"
)

// Class is a TTL class: what kind of data an entry holds, how long it lives
// and which changes invalidate it.
type Class string

// The TTL classes of the original system.
const (
	ClassDashboard    Class = "dashboard"     // staff dashboard statistics
	ClassPackages     Class = "packages"      // package listings
	ClassGateways     Class = "gateways"      // payment gateway settings (masked summary only, never secrets)
	ClassRoles        Class = "roles"         // role permissions
	ClassRouterStatus Class = "router_status" // router status
	ClassTenant       Class = "tenant"        // tenant data, tenant lookup by slug/domain
	ClassCounts       Class = "counts"        // connections' totalCount (shares the dashboard's generation)
)

// sharedGeneration maps a class to the class whose generation it uses: the
// same changes make both stale, so no mutation pays a second bump for it.
var sharedGeneration = map[Class]Class{ClassCounts: ClassDashboard}

// generationClass is the class whose generation invalidates class.
func generationClass(class Class) Class {
	if g, ok := sharedGeneration[class]; ok {
		return g
	}
	return class
}

// Classes lists every class.
var Classes = []Class{ClassDashboard, ClassPackages, ClassGateways, ClassRoles, ClassRouterStatus, ClassTenant, ClassCounts}

// DefaultTTLs are the original system's TTLs.
func DefaultTTLs() map[Class]time.Duration {
	return map[Class]time.Duration{
		ClassDashboard:    5 * time.Minute,
		ClassPackages:     15 * time.Minute,
		ClassGateways:     30 * time.Minute,
		ClassRoles:        60 * time.Minute,
		ClassRouterStatus: 2 * time.Minute,
		ClassTenant:       10 * time.Minute,
		ClassCounts:       5 * time.Minute,
	}
}

// ParseTTLs reads overrides such as "packages=10m,dashboard=1m" over DefaultTTLs.
func ParseTTLs(s string) (map[Class]time.Duration, error) {
	ttls := DefaultTTLs()
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		cl := Class(strings.TrimSpace(name))
		if _, known := ttls[cl]; !ok || !known {
			return nil, fmt.Errorf("cache TTL %q: want class=duration with class one of %v", part, Classes)
		}
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("cache TTL %q: want a positive duration such as 15m", part)
		}
		ttls[cl] = d
	}
	return ttls, nil
}

// PlatformTenant is the tenant number of platform-wide entries: lookups that
// find a tenant (by slug or domain) cannot carry the tenant they look for.
const PlatformTenant = 0

// AllTenants is the tenant number of the generation bumped by a change whose
// tenant is unknown (a bulk update run outside any tenant): every key of the
// class carries it too, so such a change invalidates the class everywhere.
const AllTenants = -1

// Defaults of Options.
const (
	DefaultPrefix       = "ispgraph:cache:"
	DefaultRedisTimeout = 250 * time.Millisecond
	DefaultMemoryBytes  = 64 << 20
	probeInterval       = 500 * time.Millisecond
	loadTimeout         = 30 * time.Second
	generationKeyTTL    = 7 * 24 * time.Hour
)

// Options configure New.
type Options struct {
	// DB is where generations are kept (the system of record).
	DB *ent.Client
	// Redis gives the address and credentials of the shared Redis; New opens
	// its own client with short timeouts and no retries. Nil: memory only,
	// generations read from the database on every lookup.
	Redis *redis.Options
	// Prefix starts every Redis key (default DefaultPrefix).
	Prefix string
	// TTLs per class (default DefaultTTLs).
	TTLs map[Class]time.Duration
	// RedisTimeout bounds every Redis call (default DefaultRedisTimeout).
	RedisTimeout time.Duration
	// MemoryBytes bounds the memory layer (default DefaultMemoryBytes).
	MemoryBytes int64
	Metrics     *observability.Metrics
	Logger      *slog.Logger
}

// Cache is the cache chain of one process. Its methods and Get are safe for
// concurrent use. A nil *Cache is valid and caches nothing.
type Cache struct {
	db      *ent.Client
	rdb     *redis.Client
	prefix  string
	ttls    map[Class]time.Duration
	metrics *observability.Metrics
	log     *slog.Logger

	mem   *ristretto.Cache[string, string]
	chain *lib.ChainCache[string]
	group singleflight.Group

	// degraded is set by any Redis error and cleared only once Redis answers
	// again and every generation has been re-published from the database.
	degraded atomic.Bool
	stop     chan struct{}
	done     sync.WaitGroup
}

// New builds the chain and starts the Redis probe. Call Close when done.
func New(o Options) (*Cache, error) {
	if o.DB == nil {
		return nil, errors.New("cache: Options.DB is required")
	}
	c := &Cache{db: o.DB, prefix: o.Prefix, ttls: DefaultTTLs(), metrics: o.Metrics, log: o.Logger, stop: make(chan struct{})}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	for k, v := range o.TTLs {
		c.ttls[k] = v
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	mem, err := ristretto.NewCache(&ristretto.Config[string, string]{
		NumCounters: 100_000, MaxCost: o.MemoryBytes, BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: memory layer: %w", err)
	}
	c.mem = mem
	id, err := databaseIdentity(o.DB)
	if err != nil {
		return nil, err
	}
	// Keys carry the database's identity: a database restored or recreated
	// under the same Redis gets a new identity and never reads the old
	// entries or generations, whose numbers start again from zero.
	c.prefix += "db" + strconv.FormatInt(id, 36) + ":"
	layers := []lib.SetterCacheInterface[string]{
		&layer{Cache: lib.New[string](ristrettostore.NewRistretto[string, string](mem)), c: c, name: "memory"},
	}
	if o.Redis != nil {
		timeout := o.RedisTimeout
		if timeout <= 0 {
			timeout = DefaultRedisTimeout
		}
		ro := *o.Redis
		ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = timeout, timeout, timeout, timeout
		ro.MaxRetries = -1   // a failed call is a miss: never retry into a down server
		ro.DialerRetries = 1 // go-redis would otherwise dial 5 times, 100 ms apart, per call
		ro.ContextTimeoutEnabled = true
		c.rdb = redis.NewClient(config.QuietRedis(&ro))
		layers = append(layers, &layer{Cache: lib.New[string](redisstore.NewRedis(c.rdb)), c: c, name: "redis", remote: true})
		c.done.Add(1)
		go c.probe()
	}
	c.chain = lib.NewChain[string](layers...)
	return c, nil
}

// identityClass is the reserved cache_generations row that holds the
// database's identity: a random number written once, by the first process to
// open the cache on a new database. No class has this name, so nothing bumps it.
const identityClass = "database-identity"

// databaseIdentity returns the database's identity, creating it when absent.
func databaseIdentity(db *ent.Client) (int64, error) {
	ctx, cancel := context.WithTimeout(tenancy.Bypass(context.Background()), loadTimeout)
	defer cancel()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("cache: database identity: %w", err)
	}
	candidate := int64(binary.BigEndian.Uint64(b[:])>>2) + 1 // positive, below 2^62
	err := db.CacheGeneration.Create().
		SetTenantID(PlatformTenant).SetClass(identityClass).SetGeneration(candidate).
		OnConflict(sql.ConflictColumns(cachegeneration.FieldTenantID, cachegeneration.FieldClass)).
		DoNothing().
		Exec(ctx)
	if err != nil && !errors.Is(err, stdsql.ErrNoRows) {
		return 0, fmt.Errorf("cache: database identity: %w", err)
	}
	row, err := db.CacheGeneration.Query().
		Where(cachegeneration.TenantID(PlatformTenant), cachegeneration.Class(identityClass)).
		Only(ctx)
	if err != nil {
		return 0, fmt.Errorf("cache: database identity: %w", err)
	}
	return row.Generation, nil
}

// Close stops the probe and releases the chain and the Redis client.
func (c *Cache) Close() error {
	if c == nil {
		return nil
	}
	close(c.stop)
	c.done.Wait()
	c.chain.Close()
	c.mem.Close()
	if c.rdb != nil {
		return c.rdb.Close()
	}
	return nil
}

// TTL returns the lifetime of entries of class.
func (c *Cache) TTL(class Class) time.Duration { return c.ttls[class] }

// Get returns the value of name in class for tenantID, calling load on a miss
// (once for all concurrent misses of one key, in this process) and storing its
// result. Every caller gets its own decoded copy, on a hit and on a miss alike,
// so values must survive a JSON round trip. A nil c calls load directly.
// Cache failures never fail Get: at worst load runs.
//
//	dash, err := cache.Get(ctx, c, cache.ClassDashboard, tenantID, "dashboard", svc.Dashboard)
func Get[T any](ctx context.Context, c *Cache, class Class, tenantID int, name string, load func(context.Context) (T, error)) (T, error) {
	if c == nil {
		return load(ctx)
	}
	var zero T
	gen, err := c.generation(ctx, tenantID, generationClass(class))
	if err != nil {
		c.log.WarnContext(ctx, "cache: generation unavailable; loading uncached", slog.String("class", string(class)), slog.Any("error", err))
		return load(ctx)
	}
	key := c.key(class, tenantID, gen, name)
	if s, err := c.chain.Get(ctx, key); err == nil {
		var v T
		if err := json.Unmarshal([]byte(s), &v); err == nil {
			return v, nil
		}
	}
	raw, err, _ := c.group.Do(key, func() (any, error) {
		// A load that finished between our lookup and Do has stored its value.
		if s, err := c.chain.Get(ctx, key); err == nil {
			return []byte(s), nil
		}
		// The load serves every waiter: it must not die with the first caller.
		// It reads the primary, never a replica: a value cached under the
		// current generation must hold every change that generation counts,
		// or a lagging replica would be served from the cache until the next
		// change.
		lctx, cancel := context.WithTimeout(database.Primary(context.WithoutCancel(ctx)), loadTimeout)
		defer cancel()
		v, err := load(lctx)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("cache: encode %s: %w", class, err)
		}
		if err := c.chain.Set(ctx, key, string(b), store.WithExpiration(c.ttls[class]), store.WithCost(int64(len(b))), store.WithSynchronousSet()); err != nil {
			c.log.DebugContext(ctx, "cache: set", slog.Any("error", err))
		}
		return b, nil
	})
	if err != nil {
		return zero, err
	}
	var v T
	if err := json.Unmarshal(raw.([]byte), &v); err != nil {
		return zero, fmt.Errorf("cache: decode %s: %w", class, err)
	}
	return v, nil
}

// key is the value key: class, tenant, generation, name.
func (c *Cache) key(class Class, tenantID int, gen string, name string) string {
	return c.prefix + "v:" + string(class) + ":t" + strconv.Itoa(tenantID) + ":g" + gen + ":" + name
}

// classOf returns the class of a value key, for metric labels.
func (c *Cache) classOf(key string) string {
	rest := strings.TrimPrefix(key, c.prefix+"v:")
	cl, _, _ := strings.Cut(rest, ":")
	return cl
}

func (c *Cache) genKey(tenantID int, class Class) string {
	return c.prefix + "gen:t" + strconv.Itoa(tenantID) + ":" + string(class)
}

// maxScript sets KEYS[1] to ARGV[1] unless it already holds a larger number,
// and returns the value it holds afterwards: generations only grow, whatever
// order concurrent writers arrive in.
var maxScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
local v = tonumber(ARGV[1])
if v > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return v
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return cur
`)

// redisUsable reports whether lookups may trust Redis now.
func (c *Cache) redisUsable() bool { return c.rdb != nil && !c.degraded.Load() }

// generation returns the current generation of class for tenantID, which
// combines the tenant's own with the one bumped by changes of unknown tenant
// (AllTenants): from Redis while Redis is trusted, else from the database.
func (c *Cache) generation(ctx context.Context, tenantID int, class Class) (string, error) {
	if c.redisUsable() {
		keys := []string{c.genKey(tenantID, class), c.genKey(AllTenants, class)}
		vals, err := c.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			c.redisFailed(ctx, err)
			return c.dbGeneration(ctx, tenantID, class)
		}
		if g, ok := parseGenerations(vals); ok {
			return g, nil
		}
		gens := make([]int64, len(keys))
		// Not in Redis (first use, expired, Redis restarted): take the
		// database's and publish it, never lowering what a writer put there.
		// Concurrent readers share one read: the "set if greater" runs after
		// each of them joined, so a commit published before that is seen.
		g, err, _ := c.group.Do("gen:"+strconv.Itoa(tenantID)+":"+string(class), func() (any, error) {
			// A flight that finished between our MGET and Do has published.
			if vals, err := c.rdb.MGet(ctx, keys...).Result(); err == nil {
				if g, ok := parseGenerations(vals); ok {
					return g, nil
				}
			}
			own, all, err := c.dbGenerations(ctx, tenantID, class)
			if err != nil {
				return "", err
			}
			for i, g := range []int64{own, all} {
				got, err := maxScript.Run(ctx, c.rdb, []string{keys[i]}, g, int(generationKeyTTL.Seconds())).Int64()
				if err != nil {
					c.redisFailed(ctx, err)
					return genString(own, all), nil
				}
				gens[i] = got
			}
			return genString(gens[0], gens[1]), nil
		})
		if err != nil {
			return "", err
		}
		return g.(string), nil
	}
	return c.dbGeneration(ctx, tenantID, class)
}

// parseGenerations reads an MGET of the tenant's and the all-tenants
// generation; ok is false when either is missing.
func parseGenerations(vals []any) (string, bool) {
	if len(vals) != 2 {
		return "", false
	}
	var gens [2]int64
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			return "", false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", false
		}
		gens[i] = n
	}
	return genString(gens[0], gens[1]), true
}

func genString(own, all int64) string {
	return strconv.FormatInt(own, 10) + "." + strconv.FormatInt(all, 10)
}

func (c *Cache) dbGeneration(ctx context.Context, tenantID int, class Class) (string, error) {
	own, all, err := c.dbGenerations(ctx, tenantID, class)
	return genString(own, all), err
}

// dbGenerations reads the tenant's and the all-tenants generation of class
// from the database in one statement; no row is generation 0.
func (c *Cache) dbGenerations(ctx context.Context, tenantID int, class Class) (own, all int64, err error) {
	rows, err := c.db.CacheGeneration.Query().
		Where(cachegeneration.TenantIDIn(tenantID, AllTenants), cachegeneration.Class(string(class))).
		All(tenancy.Bypass(database.Primary(ctx))) // generations of every tenant live in one table; a replica's may be behind
	if err != nil {
		return 0, 0, fmt.Errorf("cache: read generation: %w", err)
	}
	for _, r := range rows {
		if r.TenantID == AllTenants {
			all = r.Generation
		} else {
			own = r.Generation
		}
	}
	return own, all, nil
}

// redisFailed records a Redis error and stops trusting Redis until the probe
// has seen it answer and re-published the generations.
func (c *Cache) redisFailed(ctx context.Context, err error) {
	if c.metrics != nil {
		c.metrics.CacheRedisErrors.Inc()
	}
	if c.degraded.CompareAndSwap(false, true) {
		c.log.WarnContext(ctx, "cache: redis unavailable; serving from the database and memory until it answers again", slog.Any("error", err))
	}
}

// probe watches a degraded Redis and brings it back into use.
func (c *Cache) probe() {
	defer c.done.Done()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if !c.degraded.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.rdb.Ping(ctx).Err(); err == nil {
			if n, err := c.Republish(ctx); err != nil {
				c.log.WarnContext(ctx, "cache: redis answers but re-publishing generations failed", slog.Any("error", err))
			} else {
				c.degraded.Store(false)
				c.log.InfoContext(ctx, "cache: redis is back; generations re-published", slog.Int("generations", n))
			}
		}
		cancel()
	}
}

// Republish writes every generation of the database to Redis (never lowering
// one), so that changes committed while Redis was unreachable take effect.
func (c *Cache) Republish(ctx context.Context) (int, error) {
	if c == nil || c.rdb == nil {
		return 0, nil
	}
	rows, err := c.db.CacheGeneration.Query().All(tenancy.Bypass(ctx))
	if err != nil {
		return 0, fmt.Errorf("cache: read generations: %w", err)
	}
	const batch = 500
	for i := 0; i < len(rows); i += batch {
		pipe := c.rdb.Pipeline()
		for _, r := range rows[i:min(i+batch, len(rows))] {
			maxScript.Run(ctx, pipe, []string{c.genKey(r.TenantID, Class(r.Class))}, r.Generation, int(generationKeyTTL.Seconds()))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			// EVALSHA of a script the server does not know yet fails with
			// NOSCRIPT inside a pipeline: load it and try once more.
			if strings.Contains(err.Error(), "NOSCRIPT") {
				if err := maxScript.Load(ctx, c.rdb).Err(); err == nil {
					i -= batch
					continue
				}
			}
			return 0, fmt.Errorf("cache: publish generations: %w", err)
		}
	}
	return len(rows), nil
}

// publish writes bumped generations to Redis after their commit.
func (c *Cache) publish(ctx context.Context, bumps []bump) {
	if c.rdb == nil || c.degraded.Load() {
		return // the probe re-publishes everything when Redis is back
	}
	for _, b := range bumps {
		if err := maxScript.Run(ctx, c.rdb, []string{c.genKey(b.tenant, b.class)}, b.gen, int(generationKeyTTL.Seconds())).Err(); err != nil {
			c.redisFailed(ctx, err)
			return
		}
	}
}

// Degraded reports whether the cache is serving without Redis now.
func (c *Cache) Degraded() bool { return c != nil && c.degraded.Load() }

// layer is one level of the chain with metrics; the Redis level also turns
// every error into a miss and stays silent while Redis is not trusted.
type layer struct {
	*lib.Cache[string]
	c      *Cache
	name   string
	remote bool
}

func (l *layer) count(key, result string) {
	if l.c.metrics != nil {
		l.c.metrics.CacheRequests.WithLabelValues(l.name, l.c.classOf(key), result).Inc()
	}
}

func (l *layer) GetWithTTL(ctx context.Context, key any) (string, time.Duration, error) {
	k, _ := key.(string)
	if l.remote && l.c.degraded.Load() {
		l.count(k, "skipped")
		return "", 0, store.NotFound{}
	}
	v, ttl, err := l.Cache.GetWithTTL(ctx, key)
	switch {
	case err == nil:
		l.count(k, "hit")
		if l.remote {
			ttl = localTTL(ttl, l.c.ttls[Class(l.c.classOf(k))])
		}
	case errors.Is(err, store.NotFound{}) || errors.Is(err, redis.Nil):
		l.count(k, "miss")
	default:
		l.count(k, "error")
		if l.remote {
			l.c.redisFailed(ctx, err)
		}
	}
	return v, ttl, err
}

// localTTL is how long the memory level may keep a value the Redis level
// returned with ttl left, at most classTTL. The chain copies a
// Redis hit into memory with the TTL its GetWithTTL returns, which is
// Redis's TTL command: whole seconds rounded to the nearest (up to half a
// second more than is left), 0 when less than half a second is left, and
// negative for a key without expiry. Ristretto keeps an entry whose TTL is 0
// for ever, so a value read from Redis in its last half second stayed in
// memory past its class's TTL until evicted or invalidated (a dashboard
// served for hours). Never 0, and never past Redis's own expiry.
func localTTL(ttl, classTTL time.Duration) time.Duration {
	ttl -= 500 * time.Millisecond
	if ttl <= 0 {
		return time.Nanosecond // expired as soon as stored
	}
	if classTTL > 0 && ttl > classTTL {
		return classTTL
	}
	return ttl
}

func (l *layer) Get(ctx context.Context, key any) (string, error) {
	v, _, err := l.GetWithTTL(ctx, key)
	return v, err
}

func (l *layer) Set(ctx context.Context, key any, value string, options ...store.Option) error {
	if l.remote && l.c.degraded.Load() {
		return nil
	}
	err := l.Cache.Set(ctx, key, value, options...)
	if err != nil && l.remote {
		l.c.redisFailed(ctx, err)
	}
	return err
}

// Clear would be FLUSHALL on the Redis level: jobs share that Redis, so only
// the memory level is ever cleared.
func (l *layer) Clear(ctx context.Context) error {
	if l.remote {
		return nil
	}
	return l.Cache.Clear(ctx)
}

// Warmer loads one kind of a tenant's hot reads into the cache and returns
// how many entries it loaded.
type Warmer func(ctx context.Context, tenantID int) (int, error)

// Warm runs every warmer for tenantID and returns the entries loaded.
func Warm(ctx context.Context, tenantID int, warmers ...Warmer) (int, error) {
	total := 0
	for _, w := range warmers {
		n, err := w(ctx, tenantID)
		total += n
		if err != nil {
			return total, fmt.Errorf("cache: warm tenant %d: %w", tenantID, err)
		}
	}
	return total, nil
}
