package observability

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// ReadyCheckTimeout bounds each readiness check.
const ReadyCheckTimeout = 2 * time.Second

// checkUnavailable replaces a failing check's error in responses: raw errors can carry a DSN.
const checkUnavailable = "unavailable"

// healthBody is the JSON shape of /healthz and /readyz.
type healthBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// Health serves /healthz: the process is up, so always 200 {"status":"ok"}.
func Health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeHealth(w, http.StatusOK, healthBody{Status: "ok"})
	})
}

// Ready serves /readyz: it runs every check concurrently, each with ReadyCheckTimeout, and
// answers 200 when all pass or 503 naming the failed checks; real errors go to logger only.
func Ready(logger *slog.Logger, checks map[string]func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results := make(map[string]string, len(checks))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for name, check := range checks {
			wg.Go(func() {
				err := runCheck(r.Context(), check)
				result := "ok"
				if err != nil {
					result = checkUnavailable
					logger.LogAttrs(r.Context(), slog.LevelWarn, "readiness check failed",
						slog.String("check", name),
						slog.String("error", err.Error()),
						slog.String("request_id", RequestIDFrom(r.Context())),
					)
				}
				mu.Lock()
				results[name] = result
				mu.Unlock()
			})
		}
		wg.Wait()

		body := healthBody{Status: "ok", Checks: results}
		code := http.StatusOK
		for _, res := range results {
			if res != "ok" {
				body.Status = checkUnavailable
				code = http.StatusServiceUnavailable
			}
		}
		writeHealth(w, code, body)
	})
}

// runCheck runs check with a timeout and returns even when check ignores its context.
func runCheck(ctx context.Context, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyCheckTimeout)
	defer cancel()
	done := make(chan error, 1) // buffered: a late check must not block forever
	go func() { done <- check(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func writeHealth(w http.ResponseWriter, code int, body healthBody) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
