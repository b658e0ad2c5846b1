package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The soak runs two `serve` instances and two `ispgraph worker`s against one
// Postgres and one Redis, as a deployment that outgrew one machine does
// (docs/deploy.md). Staff clients are spread over both servers; the
// "instances" step checks what must hold across instances.

// instanceResults is what the instances step measured, for its checks.
type instanceResults struct {
	ran bool
	// cache: a change made through one server, read through the other at once.
	cacheSeen bool
	cacheErr  error
	// rate limit: hits through both servers on one key limited to rateLimit.
	rateOK, rateLimited int
	rateErr             error
	// schedules: runs of scheduleJob (all workers) in window, and the periods in it.
	scheduleRuns, schedulePeriods int
	window                        time.Duration
	// outbox: report jobs requested, and report job attempts all workers finished.
	reportsRequested, reportRuns int
	runsErr                      error
}

const (
	rateLimit       = 10
	rateHits        = 14
	scheduleJob     = "SyncRouterSessions"
	schedulePeriod  = 10 * time.Second // ISPGRAPH_SCHEDULES in main.go
	reportJob       = "GenerateBillingReport"
	instancesWindow = 32 * time.Second
)

// startServeAs starts `ispgraph serve` named name on addr with in-process
// workers off, and waits until /readyz answers.
func (e *env) startServeAs(ctx context.Context, name, addr string) (*proc, error) {
	p, err := e.start(name, []string{"ISPGRAPH_ADDR=" + addr, "ISPGRAPH_WORKERS=false"}, "serve")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			return p, fmt.Errorf("ispgraph serve (%s) exited: %v (log: %s)", name, err, p.log.Name())
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
	}
	return p, fmt.Errorf("ispgraph serve (%s) did not become ready in 90s (log: %s)", name, p.log.Name())
}

// startSecondWorker starts the second `ispgraph worker` (worker-2.log),
// which runs until the end.
func (e *env) startSecondWorker() error {
	p, err := e.start("worker-2", []string{"ISPGRAPH_WORKER_ADDR=" + e.worker2Addr}, "worker")
	if err != nil {
		return err
	}
	e.worker2 = p
	return nil
}

// jobRuns sums ispgraph_jobs_processed_total of job over both workers'
// /metrics.
func (e *env) jobRuns(ctx context.Context, job string) (int, error) {
	total := 0
	for _, addr := range []string{e.workerAddr, e.worker2Addr} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("worker metrics on %s: %w", addr, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if !strings.HasPrefix(l, "ispgraph_jobs_processed_total{") || !strings.Contains(l, `job="`+job+`"`) {
				continue
			}
			f := strings.Fields(l)
			n, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				total += int(n)
			}
		}
		resp.Body.Close()
	}
	return total, nil
}

// instances checks the deployment's shared state through both servers, and
// counts what both workers ran over a window: a cached page changed through
// A is read through B at once, one API key's rate limit counts hits through
// both, a schedule runs once per period whatever the number of workers, and
// each outbox row (a report request) is relayed to exactly one job run.
func (d *day) instances(ctx context.Context, _ *checkDB) {
	e := d.e
	t := d.tenants[0]
	a, b := newAPI("http://"+e.serveAddr), newAPI("http://"+e.serve2Addr)
	a.token, b.token = t.api.token, t.api.token
	r := &d.inst
	r.ran = true
	d.logf("instances: %s through serve (%s) and serve-2 (%s); workers counted for %s", t.slug, e.serveAddr, e.serve2Addr, instancesWindow)

	start := time.Now()
	runs0, err0 := e.jobRuns(ctx, scheduleJob)
	reports0, err1 := e.jobRuns(ctx, reportJob)

	// Outbox: report requests through both servers; each must run once.
	r.reportsRequested = 6
	for i := range r.reportsRequested {
		via := []*api{a, b}[i%2]
		if err := via.call(ctx, `mutation { requestBillingReport(input: {type: AR_AGING}) { id } }`, nil, nil); err != nil {
			r.runsErr = err
		}
	}

	// Cache: the packages page (cached) read through B, changed through A,
	// read through B again.
	const page = `{ packages(first: 50) { edges { node { id description } } } }`
	var pg struct {
		Packages struct {
			Edges []struct {
				Node struct{ ID, Description string }
			}
		}
	}
	r.cacheErr = b.call(ctx, page, nil, &pg)
	desc := "soak: changed through serve at " + time.Now().Format(time.RFC3339Nano)
	if r.cacheErr == nil {
		r.cacheErr = a.call(ctx, `mutation($id: ID!, $d: String!) { updatePackage(id: $id, input: {description: $d}) { id } }`,
			map[string]any{"id": t.packageID, "d": desc}, nil)
	}
	if r.cacheErr == nil {
		r.cacheErr = b.call(ctx, page, nil, &pg)
		for _, ed := range pg.Packages.Edges {
			r.cacheSeen = r.cacheSeen || ed.Node.ID == t.packageID && ed.Node.Description == desc
		}
	}

	// Rate limit: one key limited to rateLimit a minute, hit through both.
	var key struct{ CreateAPIKey struct{ Secret string } }
	r.rateErr = a.call(ctx, `mutation($n: Int!) { createAPIKey(input: {name: "soak rate limit", scopes: ["packages:read"], rateLimitPerMinute: $n}) { secret } }`,
		map[string]any{"n": rateLimit}, &key)
	if r.rateErr == nil {
		ka, kb := newAPI(a.base), newAPI(b.base)
		ka.token, kb.token = key.CreateAPIKey.Secret, key.CreateAPIKey.Secret
		for i := range rateHits {
			err := []*api{ka, kb}[i%2].raw(ctx, `{ packages(first: 1) { totalCount } }`, nil, nil)
			switch ae, ok := err.(*apiError); {
			case err == nil:
				r.rateOK++
			case ok && ae.code() == "RATE_LIMITED":
				r.rateLimited++
			default:
				r.rateErr = err
			}
		}
	}

	// Wait out the window (and the reports), then count.
	deadline := start.Add(instancesWindow)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
	}
	runs1, err2 := e.jobRuns(ctx, scheduleJob)
	r.window = time.Since(start)
	var reports1 int
	var err3 error
	for i := 0; i < 40; i++ {
		if reports1, err3 = e.jobRuns(ctx, reportJob); err3 != nil || reports1-reports0 >= r.reportsRequested {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a second run of a row would land now
	if n, err := e.jobRuns(ctx, reportJob); err == nil {
		reports1 = n
	}
	for _, err := range []error{err0, err1, err2, err3} {
		if err != nil && r.runsErr == nil {
			r.runsErr = err
		}
	}
	r.scheduleRuns = runs1 - runs0
	r.schedulePeriods = int(r.window/schedulePeriod) + 1
	r.reportRuns = reports1 - reports0
	d.figure("instances: "+scheduleJob+" runs / periods (2 workers)", fmt.Sprintf("%d / %d in %s", r.scheduleRuns, r.schedulePeriods, r.window.Round(time.Second)))
	d.figure("instances: rate-limited key, ok / refused (2 servers)", fmt.Sprintf("%d / %d of %d hits, limit %d", r.rateOK, r.rateLimited, rateHits, rateLimit))
}

func (d *day) checkCacheAcross(_ context.Context, _ *checkDB, c *check) {
	c.what = "a change through one serve is read through the other at once"
	r := d.inst
	switch {
	case !r.ran:
		c.err = fmt.Errorf("the instances step did not run")
	case r.cacheErr != nil:
		c.err = r.cacheErr
	case !r.cacheSeen:
		c.fail("packages page read through serve-2 after a change through serve did not show it")
	default:
		c.detail = "packages page"
	}
}

func (d *day) checkRateLimitShared(_ context.Context, _ *checkDB, c *check) {
	c.what = "one key's rate limit counts hits on every serve"
	r := d.inst
	c.detail = fmt.Sprintf("%d ok, %d refused of %d", r.rateOK, r.rateLimited, rateHits)
	switch {
	case !r.ran:
		c.err = fmt.Errorf("the instances step did not run")
	case r.rateErr != nil:
		c.err = r.rateErr
	case r.rateOK != rateLimit || r.rateLimited != rateHits-rateLimit:
		c.fail("%d hits alternating between two servers on a key limited to %d a minute: %d allowed, %d refused", rateHits, rateLimit, r.rateOK, r.rateLimited)
	}
}

func (d *day) checkSchedulesOnce(_ context.Context, _ *checkDB, c *check) {
	c.what = "a schedule runs once per period, not per worker"
	r := d.inst
	c.detail = fmt.Sprintf("%s %d runs / %d periods", scheduleJob, r.scheduleRuns, r.schedulePeriods)
	switch {
	case !r.ran:
		c.err = fmt.Errorf("the instances step did not run")
	case r.runsErr != nil:
		c.err = r.runsErr
	case r.scheduleRuns == 0:
		c.fail("%s did not run in %s", scheduleJob, r.window.Round(time.Second))
	case r.scheduleRuns > r.schedulePeriods:
		c.fail("%s ran %d times in %s (%d periods of %s) with two workers", scheduleJob, r.scheduleRuns, r.window.Round(time.Second), r.schedulePeriods, schedulePeriod)
	}
}

func (d *day) checkOutboxOnce(_ context.Context, _ *checkDB, c *check) {
	c.what = "each outbox row is relayed to one job run (2 relays)"
	r := d.inst
	c.detail = fmt.Sprintf("%d reports, %d runs", r.reportsRequested, r.reportRuns)
	switch {
	case !r.ran:
		c.err = fmt.Errorf("the instances step did not run")
	case r.runsErr != nil:
		c.err = r.runsErr
	case r.reportRuns != r.reportsRequested:
		c.fail("%d report requests through two servers ran %d times on two workers", r.reportsRequested, r.reportRuns)
	}
}
