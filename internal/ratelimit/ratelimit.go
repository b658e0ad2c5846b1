// Package ratelimit owns request limits kept in Redis. It runs the generic
// cell rate algorithm (GCRA) of go-redis/redis_rate: each key holds one
// number, the theoretical arrival time, updated by a Lua script on Redis's
// own clock, so every API process shares one state and no burst fits across a
// window boundary. A refused hit changes nothing, so a refused caller is let
// in again exactly when RetryAfter says, however often it asked meanwhile.
// What happens when Redis does not answer is the caller's choice (login fails
// closed, API calls fail open); this package only reports the error.
package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// libraryPrefix is the key prefix redis_rate puts before every key.
const libraryPrefix = "rate:"

// Limiter limits hits per key, shared through Redis.
type Limiter struct {
	Redis  *redis.Client
	Prefix string // prepended to every key, e.g. the job namespace or a test's prefix
	// Period is the span a limit is counted over (default one minute): a
	// limit of n allows a burst of n, then one hit every Period/n.
	Period time.Duration
}

// Result is the state of one key after a hit.
type Result struct {
	Allowed bool
	Limit   int
	// Remaining is how many more hits would be allowed right now.
	Remaining int
	// RetryAfter is how long until the next hit is allowed; 0 when this one was.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to its full limit.
	ResetAfter time.Duration
}

func (l *Limiter) period() time.Duration {
	if l.Period > 0 {
		return l.Period
	}
	return time.Minute
}

// Key is the Redis key that holds the state of key.
func (l *Limiter) Key(key string) string {
	return l.Prefix + "ratelimit:" + key
}

// Hit counts one hit on key against limit hits per period (a limit below 1
// counts as 1). A refused hit is not counted. An error means Redis did not
// answer; Allowed is then false and the caller decides.
func (l *Limiter) Hit(ctx context.Context, key string, limit int) (Result, error) {
	if limit < 1 {
		limit = 1
	}
	rl := redis_rate.NewLimiter(prefixed{Client: l.Redis, prefix: l.Prefix + "ratelimit:"})
	r, err := rl.Allow(ctx, key, redis_rate.Limit{Rate: limit, Burst: limit, Period: l.period()})
	if err != nil {
		return Result{Limit: limit}, fmt.Errorf("ratelimit: %w", err)
	}
	res := Result{Allowed: r.Allowed > 0, Limit: limit, Remaining: r.Remaining, ResetAfter: r.ResetAfter}
	if !res.Allowed && r.RetryAfter > 0 {
		res.RetryAfter = r.RetryAfter
	}
	return res, nil
}

// Seconds rounds d up to whole seconds, as HTTP headers carry it: a client
// that waits that long is never early.
func Seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// prefixed hands redis_rate a client whose keys live under our prefix
// instead of the library's fixed "rate:", so tests and namespaces own them.
type prefixed struct {
	*redis.Client
	prefix string
}

func (p prefixed) keys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = p.prefix + strings.TrimPrefix(k, libraryPrefix)
	}
	return out
}

func (p prefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.Client.Eval(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.Client.EvalSha(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.Client.EvalRO(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.Client.EvalShaRO(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return p.Client.Del(ctx, p.keys(keys)...)
}
