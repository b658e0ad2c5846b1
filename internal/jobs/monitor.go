package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"
)

// QueueStats are the counts of one job.
type QueueStats struct {
	Name       string
	Queued     int
	InProgress int
	Retries    int // failed, waiting for their next attempt
	Dead       int // out of attempts
	Spec       Spec
}

// DeadJob is a job that used up its attempts.
type DeadJob struct {
	ID       string
	Name     string
	DiedAt   time.Time
	Fails    int
	Error    string
	TenantID int
	OutboxID int // the outbox row it was relayed from (0: none)
}

// Monitor reads queue statistics and revives dead jobs. It uses its own small
// Redis pool (NewMonitorPool: one connection, short timeouts), never the
// workers', and runs one reading at a time: any number of concurrent callers
// (a GraphQL operation asking jobQueues under many aliases) share one reading
// per second, and none of them can take a connection the workers need.
type Monitor struct {
	Namespace string      // the deployment's job namespace
	Redis     *redis.Pool // NewMonitorPool

	sem   chan struct{}
	cache map[int]cachedStats
}

type cachedStats struct {
	at    time.Time
	stats []QueueStats
}

// MonitorTimeout bounds one monitoring call, waiting for the monitor's turn included.
const MonitorTimeout = 5 * time.Second

// statsFresh is how long one reading answers every caller.
const statsFresh = time.Second

// maxScan bounds how many entries of one list or set a reading looks at.
const maxScan = 10000

// NewMonitorPool returns the monitor's Redis pool for a redis:// URL: one
// connection, 2 s to connect, 5 s per command.
func NewMonitorPool(url string) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     1,
		MaxActive:   1,
		Wait:        true,
		IdleTimeout: time.Minute,
		Dial: func() (redis.Conn, error) {
			return redis.DialURL(url,
				redis.DialConnectTimeout(2*time.Second),
				redis.DialReadTimeout(5*time.Second),
				redis.DialWriteTimeout(2*time.Second))
		},
	}
}

// turn waits for the monitor's one reading slot within ctx.
func (m *Monitor) turn(ctx context.Context) (func(), error) {
	if m.sem == nil {
		return nil, fmt.Errorf("job monitor: built without NewMonitor")
	}
	select {
	case m.sem <- struct{}{}:
		return func() { <-m.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("job monitor: busy: %w", ctx.Err())
	}
}

// NewMonitor returns a Monitor of the deployment's job namespace over pool
// (NewMonitorPool).
func NewMonitor(namespace string, pool *redis.Pool) *Monitor {
	return &Monitor{Namespace: namespace, Redis: pool, sem: make(chan struct{}, 1), cache: map[int]cachedStats{}}
}

// conn takes the monitor's connection within ctx.
func (m *Monitor) conn(ctx context.Context) (redis.Conn, error) {
	c, err := m.Redis.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("job monitor: %w", err)
	}
	return c, nil
}

func key(ns, k string) string {
	if ns != "" && !strings.HasSuffix(ns, ":") {
		ns += ":"
	}
	return ns + k
}

// Queues returns the counts of every job in Table order: of one tenant's jobs
// when tenantID > 0, of the whole deployment when tenantID is 0 (platform
// operators only).
func (m *Monitor) Queues(ctx context.Context, tenantID int) ([]QueueStats, error) {
	ctx, cancel := context.WithTimeout(ctx, MonitorTimeout)
	defer cancel()
	done, err := m.turn(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if c, ok := m.cache[tenantID]; ok && time.Since(c.at) < statsFresh {
		return append([]QueueStats(nil), c.stats...), nil
	}
	conn, err := m.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := make([]QueueStats, len(Table))
	idx := map[string]int{}
	for i, s := range Table {
		out[i] = QueueStats{Name: s.Name, Spec: s}
		idx[s.Name] = i
	}
	for i, s := range Table {
		ns := Namespace(m.Namespace, s.Queue)
		if tenantID == 0 {
			n, err := redis.Int(conn.Do("LLEN", key(ns, "jobs:"+s.Name)))
			if err != nil {
				return nil, fmt.Errorf("job queues: %w", err)
			}
			out[i].Queued = n
			continue
		}
		raws, err := redis.ByteSlices(conn.Do("LRANGE", key(ns, "jobs:"+s.Name), 0, maxScan-1))
		if err != nil {
			return nil, fmt.Errorf("job queues: %w", err)
		}
		for _, raw := range raws {
			var j zjob
			if json.Unmarshal(raw, &j) == nil && tenantOf(j.Args) == tenantID {
				out[i].Queued++
			}
		}
	}
	for _, q := range Queues {
		ns := Namespace(m.Namespace, q)
		busy, err := m.busy(conn, ns)
		if err != nil {
			return nil, err
		}
		for _, b := range busy {
			if i, ok := idx[b.Name]; ok && (tenantID == 0 || tenantOf(b.Args) == tenantID) {
				out[i].InProgress++
			}
		}
		for _, zs := range []struct {
			key string
			add func(*QueueStats)
		}{{"retry", func(q *QueueStats) { q.Retries++ }}, {"dead", func(q *QueueStats) { q.Dead++ }}} {
			js, err := zjobs(conn, key(ns, zs.key))
			if err != nil {
				return nil, err
			}
			for _, j := range js {
				if i, ok := idx[j.Name]; ok && (tenantID == 0 || tenantOf(j.Args) == tenantID) {
					zs.add(&out[i])
				}
			}
		}
	}
	m.cache[tenantID] = cachedStats{at: time.Now(), stats: out}
	return append([]QueueStats(nil), out...), nil
}

// busy returns the jobs the live workers of namespace ns are running, read
// on one connection (gocraft's client takes two at once for this).
func (m *Monitor) busy(conn redis.Conn, ns string) ([]zjob, error) {
	pools, err := redis.Strings(conn.Do("SMEMBERS", key(ns, "worker_pools")))
	if err != nil {
		return nil, fmt.Errorf("job queues: %w", err)
	}
	var out []zjob
	for _, p := range pools {
		ids, err := redis.String(conn.Do("HGET", key(ns, "worker_pools:"+p), "worker_ids"))
		if err == redis.ErrNil {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("job queues: %w", err)
		}
		for _, wid := range strings.Split(ids, ",") {
			if wid == "" {
				continue
			}
			obs, err := redis.StringMap(conn.Do("HGETALL", key(ns, "worker:"+wid)))
			if err != nil {
				return nil, fmt.Errorf("job queues: %w", err)
			}
			if obs["job_name"] == "" {
				continue
			}
			j := zjob{Name: obs["job_name"], ID: obs["job_id"]}
			_ = json.Unmarshal([]byte(obs["args"]), &j.Args)
			out = append(out, j)
		}
	}
	return out, nil
}

type zjob struct {
	Name   string         `json:"name"`
	ID     string         `json:"id"`
	Fails  int            `json:"fails"`
	Err    string         `json:"err"`
	Args   map[string]any `json:"args"`
	DiedAt int64          `json:"-"`
	ns     string
}

// zjobs reads up to maxScan jobs of a sorted set (retry or dead), newest first.
func zjobs(conn redis.Conn, k string) ([]zjob, error) {
	vals, err := redis.Values(conn.Do("ZREVRANGE", k, 0, maxScan-1, "WITHSCORES"))
	if err != nil {
		return nil, fmt.Errorf("job queues: %w", err)
	}
	var out []zjob
	for i := 0; i+1 < len(vals); i += 2 {
		raw, _ := redis.Bytes(vals[i], nil)
		score, _ := redis.Int64(vals[i+1], nil)
		var j zjob
		if json.Unmarshal(raw, &j) == nil {
			j.DiedAt = score
			out = append(out, j)
		}
	}
	return out, nil
}

// dead reads the dead jobs of every queue, newest first.
func (m *Monitor) dead(ctx context.Context) ([]zjob, error) {
	conn, err := m.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var all []zjob
	for _, q := range Queues {
		ns := Namespace(m.Namespace, q)
		js, err := zjobs(conn, key(ns, "dead"))
		if err != nil {
			return nil, err
		}
		for i := range js {
			js[i].ns = ns
		}
		all = append(all, js...)
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].DiedAt > all[b].DiedAt })
	return all, nil
}

// DeadJobs returns up to limit dead jobs of one tenant, newest first.
func (m *Monitor) DeadJobs(ctx context.Context, tenantID, limit int) ([]DeadJob, error) {
	ctx, cancel := context.WithTimeout(ctx, MonitorTimeout)
	defer cancel()
	done, err := m.turn(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	zs, err := m.dead(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadJob
	for _, j := range zs {
		if tenantOf(j.Args) != tenantID {
			continue
		}
		out = append(out, deadJob(j))
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}

func deadJob(j zjob) DeadJob {
	return DeadJob{ID: j.ID, Name: j.Name, DiedAt: time.Unix(j.DiedAt, 0).UTC(), Fails: j.Fails, Error: j.Err,
		TenantID: tenantOf(j.Args), OutboxID: intArg(j.Args, "outbox_id")}
}

// RetryDeadJob moves one of the tenant's dead jobs back to its queue and
// returns it; ok is false when the tenant has no dead job with that id.
func (m *Monitor) RetryDeadJob(ctx context.Context, tenantID int, id string) (job DeadJob, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, MonitorTimeout)
	defer cancel()
	done, err := m.turn(ctx)
	if err != nil {
		return DeadJob{}, false, err
	}
	defer done()
	zs, err := m.dead(ctx)
	if err != nil {
		return DeadJob{}, false, err
	}
	for _, j := range zs {
		if j.ID == id && tenantOf(j.Args) == tenantID {
			if err := work.NewClient(j.ns, m.Redis).RetryDeadJob(j.DiedAt, j.ID); err != nil {
				return DeadJob{}, false, fmt.Errorf("retry dead job: %w", err)
			}
			return deadJob(j), true, nil
		}
	}
	return DeadJob{}, false, nil
}

func tenantOf(args map[string]any) int { return intArg(args, "tenant_id") }

func intArg(args map[string]any, k string) int {
	f, _ := args[k].(float64)
	return int(f)
}

// NewWebUIPool returns the jobs web UI's Redis pool for a redis:// URL:
// gocraft's UI takes two connections at once for its worker list, so it gets
// four, with the monitor's short timeouts.
func NewWebUIPool(url string) *redis.Pool {
	p := NewMonitorPool(url)
	p.MaxIdle, p.MaxActive = 2, 4
	return p
}
