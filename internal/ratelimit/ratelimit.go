// Package ratelimit owns request limits kept in Redis. It runs the generic
// cell rate algorithm (GCRA): each key holds one number, the theoretical
// arrival time, updated by a Lua script on Redis's own clock, so every API
// process shares one state and no burst fits across a window boundary. A
// refused hit changes nothing, so a refused caller is let in again exactly
// when RetryAfter says, however often it asked meanwhile. A hit can travel
// in one round trip with other commands (Queue). What happens when Redis
// does not answer is the caller's choice (login fails closed, API calls fail
// open); this package only reports the error.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcra is the algorithm, run by Redis. KEYS[1] holds the theoretical arrival
// time (TAT) in seconds since 2017-01-01 00:00 UTC on Redis's clock (the
// epoch of go-redis/redis_rate, which kept these keys before, so state
// written by it reads the same). ARGV[1] is the limit, which is also the
// burst, and ARGV[2] the period in seconds: one hit every period/limit once
// the burst is spent. It returns {allowed 0|1, remaining, retry after,
// reset after}, the durations in seconds as strings (a Lua number would
// reach the client truncated to an integer). A refused hit writes nothing.
var gcra = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local interval = period / limit
local clock = redis.call('TIME')
local now = (tonumber(clock[1]) - 1483228800) + tonumber(clock[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
-- No hit leaves the arrival time more than a period ahead; a value beyond
-- that is not this algorithm's and would lock the key out.
if tat > now + period then tat = now + period end
local next_tat = tat + interval
local diff = now - (next_tat - period)
if diff < 0 then
  return {0, 0, tostring(-diff), tostring(tat - now)}
end
local reset_after = next_tat - now
redis.call('SET', KEYS[1], string.format('%.6f', next_tat), 'EX', math.ceil(reset_after))
return {1, math.floor(diff / interval + 1e-9), '0', tostring(reset_after)}
`)

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
	limit = max(limit, 1)
	vals, err := gcra.Run(ctx, l.Redis, []string{l.Key(key)}, limit, l.period().Seconds()).Slice()
	return result(limit, vals, err)
}

// Queue adds a hit on key to pipe, for a caller that sends other commands in
// the same round trip; pipe must run on the limiter's Redis. The function it
// returns reads the hit's result once pipe has run, as Hit would return it.
// Redis that does not know the script yet (it restarted since) refuses the
// queued call unrun; the hit is then sent alone, which loads the script.
func (l *Limiter) Queue(ctx context.Context, pipe redis.Pipeliner, key string, limit int) func() (Result, error) {
	limit = max(limit, 1)
	cmd := gcra.EvalSha(ctx, pipe, []string{l.Key(key)}, limit, l.period().Seconds())
	return func() (Result, error) {
		vals, err := cmd.Slice()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return l.Hit(ctx, key, limit)
		}
		return result(limit, vals, err)
	}
}

// result reads the script's answer.
func result(limit int, vals []any, err error) (Result, error) {
	res := Result{Limit: limit}
	if err != nil {
		return res, fmt.Errorf("ratelimit: %w", err)
	}
	if len(vals) != 4 {
		return res, fmt.Errorf("ratelimit: script answered %d values, want 4", len(vals))
	}
	allowed, _ := vals[0].(int64)
	remaining, _ := vals[1].(int64)
	retry, err1 := seconds(vals[2])
	reset, err2 := seconds(vals[3])
	if err1 != nil || err2 != nil {
		return res, fmt.Errorf("ratelimit: script answered %v", vals)
	}
	res.Allowed, res.Remaining, res.ResetAfter = allowed == 1, int(remaining), reset
	if !res.Allowed {
		res.RetryAfter = retry
	}
	return res, nil
}

// seconds reads a duration the script sent as a decimal string of seconds.
func seconds(v any) (time.Duration, error) {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(f * float64(time.Second)), nil
}

// Seconds rounds d up to whole seconds, as HTTP headers carry it: a client
// that waits that long is never early.
func Seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
