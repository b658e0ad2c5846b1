package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestJobsEmbedded runs the in-process workers of the embedded default
// (SQLite, miniredis): a report requested over GraphQL is computed by a job
// and downloaded as CSV; the queue is visible to staff only.
func TestJobsEmbedded(t *testing.T) {
	opKey := "isop_" + strings.Repeat("cd34", 16)
	h := sha256.Sum256([]byte(opKey))
	_, base := startServer(t, map[string]string{"ISPGRAPH_DATA_DIR": t.TempDir(), "ISPGRAPH_DEMO_PASSWORD": "demo-secret-1",
		"ISPGRAPH_OPERATOR_KEYS": "ops:" + hex.EncodeToString(h[:])})
	token := login(t, base, "demo", "admin@demo.example", "demo-secret-1")

	r := post(t, base, token, `mutation { requestBillingReport(input: {type: COLLECTIONS}) { id status csvURL } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("requestBillingReport: %+v", r.Errors)
	}
	var d struct {
		RequestBillingReport struct {
			ID, Status string
			CsvURL     *string
		}
	}
	json.Unmarshal(r.Data, &d)
	if d.RequestBillingReport.Status != "QUEUED" || d.RequestBillingReport.CsvURL != nil {
		t.Fatalf("new report: %+v", d.RequestBillingReport)
	}
	var csvURL string
	deadline := time.Now().Add(30 * time.Second)
	for csvURL == "" {
		if time.Now().After(deadline) {
			t.Fatal("the report never finished")
		}
		time.Sleep(100 * time.Millisecond)
		r := post(t, base, token, `query($id: ID!) { node(id: $id) { ... on BillingReport { status csvURL error } } }`, map[string]any{"id": d.RequestBillingReport.ID})
		var n struct {
			Node struct {
				Status string
				CsvURL *string
				Error  *string
			}
		}
		json.Unmarshal(r.Data, &n)
		if n.Node.Status == "FAILED" {
			t.Fatalf("report failed: %v", *n.Node.Error)
		}
		if n.Node.CsvURL != nil {
			csvURL = *n.Node.CsvURL
		}
	}
	code, body := httpGet(t, base+csvURL, token)
	if code != 200 || !strings.HasPrefix(body, "method,gateway,payments,amount\n") || strings.Count(body, "\n") < 2 {
		t.Fatalf("CSV %d:\n%s", code, body)
	}
	if code, _ := httpGet(t, base+csvURL, ""); code != http.StatusUnauthorized {
		t.Errorf("CSV without a token: %d", code)
	}

	r = post(t, base, token, `{ jobQueues { name queued inProgress scheduledRetries dead attempts timeoutSeconds } }`, nil)
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"name":"ProcessPayment"`) || !strings.Contains(string(r.Data), `"timeoutSeconds":120`) {
		t.Fatalf("jobQueues: %s %+v", r.Data, r.Errors)
	}

	// gocraft's web UI: platform operators only, and no credential in a URL.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, cookie, bearer string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(b)
	}
	signIn := func(form url.Values, bearer string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/jobs/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if code, _, _ := get("/jobs/queues", "", ""); code != http.StatusUnauthorized {
		t.Errorf("web UI without a session: %d", code)
	}
	// The tenant admin's bearer token opens nothing: not in a URL, not in a header.
	if code, loc, _ := get("/jobs/?token="+token, "", ""); code != http.StatusSeeOther || loc != "/jobs/login" {
		t.Errorf("web UI with ?token=: %d %q", code, loc)
	}
	if code, _, body := get("/jobs/queues", "", token); code != http.StatusUnauthorized || strings.Contains(body, "GenerateBillingReport") {
		t.Errorf("web UI with a tenant admin's bearer token: %d", code)
	}
	if resp := signIn(url.Values{"operator_key": {token}}, ""); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("sign-in with a tenant admin's token: %d %v", resp.StatusCode, resp.Cookies())
	}
	if resp := signIn(nil, token); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in with a tenant admin's bearer header: %d", resp.StatusCode)
	}
	resp := signIn(url.Values{"operator_key": {opKey}}, "")
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("operator sign-in: %d %v", resp.StatusCode, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/jobs/" || strings.Contains(ck.Value, opKey) {
		t.Errorf("session cookie %+v", ck)
	}
	session := ck.Name + "=" + ck.Value
	if code, _, body := get("/jobs/", session, ""); code != 200 || !strings.Contains(body, `src="/jobs/work.js"`) {
		t.Errorf("web UI page %d: %.200s", code, body)
	}
	if code, _, body := get("/jobs/queues", session, ""); code != 200 || !strings.Contains(body, "GenerateBillingReport") {
		t.Errorf("web UI queues %d: %s", code, body)
	}
	if code, _, body := get("/jobs/payments/queues", session, ""); code != 200 || strings.Contains(body, "GenerateBillingReport") {
		t.Errorf("payment queue UI %d: %s", code, body)
	}
	forged := ck.Name + "=" + strings.Replace(ck.Value, ".", "x.", 1)
	if code, _, _ := get("/jobs/queues", forged, ""); code != http.StatusUnauthorized {
		t.Errorf("web UI with a forged session: %d", code)
	}
}

// TestMutationWhileRedisDown: with Redis unreachable a mutation still
// succeeds and its job waits in the outbox; a server started against the
// real Redis relays it and the job runs.
func TestMutationWhileRedisDown(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "redis://" + ln.Addr().String()
	ln.Close()
	envFor := func(redis string) map[string]string {
		return map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redis, "ISPGRAPH_JOB_NAMESPACE": prefix,
			"ISPGRAPH_SECRET_KEY": strings.Repeat("ab", 32)}
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// First server: Redis is down.
	m1, base1 := startServer(t, envFor(closed))
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{Tenants: 1, Subscribers: 10, Months: 2, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 3}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Logging in needs the attempt counter in Redis (it fails closed), so the
	// token is issued straight from the database; tokens live in Postgres.
	token, _, err := (&auth.Service{Client: m1.DB.Client}).Login(ctx, auth.LoginInput{
		Tenant: seed.BenchSlug(1), Email: seed.BenchAdminEmail(1), Password: "bench-pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := post(t, base1, token, `mutation { requestBillingReport(input: {type: MONTHLY_REVENUE}) { id status } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("the mutation failed while Redis is down: %+v", r.Errors)
	}
	var d struct{ RequestBillingReport struct{ ID, Status string } }
	json.Unmarshal(r.Data, &d)
	time.Sleep(1500 * time.Millisecond) // the relay tries and fails at least once
	var status string
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT status, attempts FROM outbox`).Scan(&status, &attempts); err != nil {
		t.Fatal(err)
	}
	if status != "PENDING" || attempts == 0 {
		t.Fatalf("outbox row while Redis is down: %s after %d attempts", status, attempts)
	}
	m1.StopWorkers()

	// Second server: Redis is back.
	_, base2 := startServer(t, envFor(redisURL))
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := post(t, base2, token, `query($id: ID!) { node(id: $id) { ... on BillingReport { status } } }`, map[string]any{"id": d.RequestBillingReport.ID})
		if strings.Contains(string(r.Data), `"DONE"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report never ran: %s %+v", r.Data, r.Errors)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The worker marks the outbox row DONE after the report's own commit,
	// so the row may still be ENQUEUED for a moment after the report reads
	// DONE.
	var done int
	for {
		pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE status = 'DONE'`).Scan(&done)
		if done != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if done != 1 {
		t.Fatalf("%d outbox rows done, want 1", done)
	}
}

// TestJobQueuesManyAliases: operations asking jobQueues under hundreds of
// aliases, several at once, all return, and the workers keep working
// meanwhile: monitoring reads over its own one-connection pool, one reading
// at a time, never the workers' pool.
func TestJobQueuesManyAliases(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m, base := startServer(t, map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ISPGRAPH_JOB_NAMESPACE": prefix,
		"ISPGRAPH_SECRET_KEY": strings.Repeat("ab", 32)})
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{Tenants: 1, Subscribers: 5, Months: 1, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 3}, io.Discard); err != nil {
		t.Fatal(err)
	}
	token, _, err := (&auth.Service{Client: m.DB.Client}).Login(ctx, auth.LoginInput{
		Tenant: seed.BenchSlug(1), Email: seed.BenchAdminEmail(1), Password: "bench-pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	var q strings.Builder
	q.WriteString("{")
	// As many aliases as the front door accepts in one operation.
	for i := range 100 {
		fmt.Fprintf(&q, " q%d: jobQueues { name queued inProgress scheduledRetries dead }", i)
	}
	q.WriteString(" }")
	const ops = 4
	errs := make(chan string, ops)
	for range ops {
		go func() {
			r := post(t, base, token, q.String(), nil)
			var data map[string][]struct{ Name string }
			json.Unmarshal(r.Data, &data)
			if len(r.Errors) > 0 || len(data) != 100 || len(data["q99"]) == 0 {
				errs <- fmt.Sprintf("%d aliases answered, errors %+v", len(data), r.Errors)
				return
			}
			errs <- ""
		}()
	}
	// Meanwhile a job runs.
	r := post(t, base, token, `mutation { requestBillingReport(input: {type: AR_AGING}) { id } }`, nil)
	var d struct{ RequestBillingReport struct{ ID string } }
	json.Unmarshal(r.Data, &d)
	for range ops {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := post(t, base, token, `query($id: ID!) { node(id: $id) { ... on BillingReport { status } } }`, map[string]any{"id": d.RequestBillingReport.ID})
		if strings.Contains(string(r.Data), `"DONE"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report never ran while jobQueues was asked: %s %+v", r.Data, r.Errors)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lockedWriter is a bytes.Buffer safe to read while a command writes it.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWorkerHealthAndMetrics runs `ispgraph worker` as the command line does
// and reads its /healthz, /readyz and /metrics: the queue depth is sampled,
// and a job it runs is counted.
func TestWorkerHealthAndMetrics(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ISPGRAPH_JOB_NAMESPACE": prefix,
		"ISPGRAPH_SECRET_KEY": strings.Repeat("ab", 32), "ISPGRAPH_WORKER_ADDR": "127.0.0.1:0"}
	// serve migrates and takes the mutation; its own workers are off.
	env["ISPGRAPH_WORKERS"] = "false"
	m, base := startServer(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedWriter
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"worker"}, func(k string) string { return env[k] }, &out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("worker exit %d", code)
		}
	})
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the worker never started: %s", out.String())
		}
		if _, rest, ok := strings.Cut(out.String(), "health and metrics on "); ok {
			addr, _, _ = strings.Cut(rest, " ")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, addr+path, ""); code != 200 || !strings.Contains(body, `"ok"`) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}

	ctx2 := context.Background()
	pool, err := pgxpool.New(ctx2, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Bench(ctx2, pool, seed.BenchOptions{Tenants: 1, Subscribers: 3, Months: 1, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 3}, io.Discard); err != nil {
		t.Fatal(err)
	}
	token, _, err := (&auth.Service{Client: m.DB.Client}).Login(ctx2, auth.LoginInput{
		Tenant: seed.BenchSlug(1), Email: seed.BenchAdminEmail(1), Password: "bench-pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	if r := post(t, base, token, `mutation { requestBillingReport(input: {type: AR_AGING}) { id } }`, nil); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	want := `ispgraph_jobs_processed_total{job="GenerateBillingReport",result="ok"} 1`
	for {
		_, body := httpGet(t, addr+"/metrics", "")
		if strings.Contains(body, want) && strings.Contains(body, `ispgraph_job_queue_depth{job="ProcessPayment",state="queued"}`) &&
			strings.Contains(body, `ispgraph_job_duration_seconds_count{job="GenerateBillingReport"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed the job:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
