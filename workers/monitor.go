package workers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/gocraft/web"
	"github.com/gocraft/work"
	"github.com/gocraft/work/webui"
	"github.com/gomodule/redigo/redis"
)

// QueueStats are the counts of one job kind.
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
}

// Monitor reads queue statistics and revives dead jobs.
type Monitor struct {
	Namespace string
	Redis     *redis.Pool
}

// maxScan bounds how many retry/dead entries one statistics call reads.
const maxScan = 10000

func (m *Monitor) key(k string) string {
	ns := m.Namespace
	if ns != "" && !strings.HasSuffix(ns, ":") {
		ns += ":"
	}
	return ns + k
}

// Queues returns the counts of every job kind, in Specs order.
func (m *Monitor) Queues() ([]QueueStats, error) {
	c := work.NewClient(m.Namespace, m.Redis)
	qs, err := c.Queues()
	if err != nil {
		return nil, fmt.Errorf("job queues: %w", err)
	}
	obs, err := c.WorkerObservations()
	if err != nil {
		return nil, fmt.Errorf("job queues: %w", err)
	}
	out := make([]QueueStats, len(Specs))
	idx := map[string]int{}
	for i, s := range Specs {
		out[i] = QueueStats{Name: s.Name, Spec: s}
		idx[s.Name] = i
	}
	for _, q := range qs {
		if i, ok := idx[q.JobName]; ok {
			out[i].Queued = int(q.Count)
		}
	}
	for _, o := range obs {
		if i, ok := idx[o.JobName]; ok && o.IsBusy {
			out[i].InProgress++
		}
	}
	for _, zs := range []struct {
		key string
		add func(*QueueStats)
	}{{"retry", func(q *QueueStats) { q.Retries++ }}, {"dead", func(q *QueueStats) { q.Dead++ }}} {
		jobs, err := m.zjobs(zs.key)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			if i, ok := idx[j.Name]; ok {
				zs.add(&out[i])
			}
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
}

// zjobs reads up to maxScan jobs of a sorted set (retry or dead), newest first.
func (m *Monitor) zjobs(key string) ([]zjob, error) {
	conn := m.Redis.Get()
	defer conn.Close()
	vals, err := redis.Values(conn.Do("ZREVRANGE", m.key(key), 0, maxScan-1, "WITHSCORES"))
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

// DeadJobs returns up to limit dead jobs of one tenant, newest first.
func (m *Monitor) DeadJobs(tenantID, limit int) ([]DeadJob, error) {
	zs, err := m.zjobs("dead")
	if err != nil {
		return nil, err
	}
	var out []DeadJob
	for _, j := range zs {
		if tenantOf(j.Args) != tenantID {
			continue
		}
		out = append(out, DeadJob{ID: j.ID, Name: j.Name, DiedAt: time.Unix(j.DiedAt, 0).UTC(), Fails: j.Fails, Error: j.Err, TenantID: tenantID})
		if len(out) >= limit {
			break
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].DiedAt.After(out[b].DiedAt) })
	return out, nil
}

// RetryDeadJob moves one of the tenant's dead jobs back to its queue. It
// reports false when there is no such dead job for the tenant.
func (m *Monitor) RetryDeadJob(tenantID int, id string) (bool, error) {
	zs, err := m.zjobs("dead")
	if err != nil {
		return false, err
	}
	for _, j := range zs {
		if j.ID == id && tenantOf(j.Args) == tenantID {
			if err := work.NewClient(m.Namespace, m.Redis).RetryDeadJob(j.DiedAt, j.ID); err != nil {
				return false, fmt.Errorf("retry dead job: %w", err)
			}
			return true, nil
		}
	}
	return false, nil
}

func tenantOf(args map[string]any) int {
	f, _ := args["tenant_id"].(float64)
	return int(f)
}

// WebUI returns gocraft/work's web UI (queues, busy workers, retries, dead
// jobs) as a handler to mount under prefix (e.g. "/jobs"). The caller wraps it
// with authentication and a permission check. gocraft's page fetches its API
// at absolute paths, so those are rewritten under prefix.
func WebUI(namespace string, pool *redis.Pool, prefix string) http.Handler {
	srv := webui.NewServer(namespace, pool, "127.0.0.1:0")
	// The server is never started: only its router is used. gocraft keeps
	// the router unexported; this is the one place that reaches for it.
	f := reflect.ValueOf(srv).Elem().FieldByName("router")
	router := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*web.Router)
	prefix = strings.TrimRight(prefix, "/")
	rewrite := strings.NewReplacer(
		`URL:"/`, `URL:"`+prefix+`/`,
		`url:"/`, `url:"`+prefix+`/`,
		`src="/work.js"`, `src="`+prefix+`/work.js"`,
	)
	api := http.StripPrefix(prefix, router)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, prefix)
		if path == "/" || path == "/work.js" {
			rec := &bufferWriter{header: http.Header{}}
			api.ServeHTTP(rec, r)
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.status())
			_, _ = w.Write([]byte(rewrite.Replace(rec.buf.String())))
			return
		}
		api.ServeHTTP(w, r)
	})
}

type bufferWriter struct {
	header http.Header
	code   int
	buf    strings.Builder
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferWriter) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}
