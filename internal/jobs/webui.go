package jobs

import (
	"net/http"
	"reflect"
	"strings"
	"unsafe"

	"github.com/gocraft/web"
	"github.com/gocraft/work/webui"
	"github.com/gomodule/redigo/redis"
)

// WebUI returns gocraft/work's web UI (queues, busy workers, retries, dead
// jobs) of one namespace as a handler to mount under prefix (e.g. "/jobs").
// It shows every tenant's jobs: the caller admits platform operators only. gocraft's page fetches its API
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
