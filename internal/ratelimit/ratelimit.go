// Package ratelimit owns request limits kept in Redis: a sliding one-minute
// window per key (a sorted set of hit times), so every API process shares one
// count and no burst fits across a window boundary. What happens when Redis
// does not answer is the caller's choice (login fails closed, API calls fail
// open); this package only reports the error.
package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter counts hits per key in Redis.
type Limiter struct {
	Redis  *redis.Client
	Prefix string // prepended to every key, e.g. a test's prefix
	Window time.Duration
	Now    func() time.Time
}

// Result is the state of one key after a hit.
type Result struct {
	Allowed bool
	Count   int64 // hits in the window, this one included
	Limit   int
	// RetryAfter is how long until the oldest hit leaves the window.
	RetryAfter time.Duration
}

func (l *Limiter) window() time.Duration {
	if l.Window > 0 {
		return l.Window
	}
	return time.Minute
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Hit counts one hit on key and reports whether the hits in the last window,
// this one included, are within limit. Refused hits count too, so a client
// that keeps hammering stays refused. An error means Redis did not answer;
// Allowed is then false and the caller decides.
func (l *Limiter) Hit(ctx context.Context, key string, limit int) (Result, error) {
	w := l.window()
	now := l.now()
	k := l.Prefix + "ratelimit:" + key
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	member := strconv.FormatInt(now.UnixNano(), 10) + "-" + hex.EncodeToString(nonce)
	pipe := l.Redis.TxPipeline()
	pipe.ZRemRangeByScore(ctx, k, "-inf", strconv.FormatInt(now.Add(-w).UnixNano(), 10))
	pipe.ZAdd(ctx, k, redis.Z{Score: float64(now.UnixNano()), Member: member})
	card := pipe.ZCard(ctx, k)
	oldest := pipe.ZRangeWithScores(ctx, k, 0, 0)
	pipe.PExpire(ctx, k, w+time.Second)
	if _, err := pipe.Exec(ctx); err != nil {
		return Result{Limit: limit}, fmt.Errorf("ratelimit: %w", err)
	}
	n := card.Val()
	res := Result{Allowed: n <= int64(limit), Count: n, Limit: limit}
	if o := oldest.Val(); len(o) > 0 {
		res.RetryAfter = time.Unix(0, int64(o[0].Score)).Add(w).Sub(now)
	}
	return res, nil
}
