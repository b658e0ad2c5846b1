package bench

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Worker sends one request per call and reports its failure.
type Worker func(ctx context.Context) error

// NewWorker makes the worker of client id; rng is that client's own random
// source (workers may keep state, such as an export's cursor).
type NewWorker func(id int, rng *rand.Rand) Worker

// Load bounds one measurement.
type Load struct {
	// Clients is the number of concurrent clients, each sending its next
	// request as soon as the previous one is answered (a closed loop).
	Clients int
	// Warmup runs before measuring and is not counted.
	Warmup time.Duration
	// Duration is how long requests are measured.
	Duration time.Duration
	// MaxRequests stops the measurement early once reached (0: no limit).
	MaxRequests int
	// Seed makes the clients' random choices repeatable.
	Seed uint64
	// BeforeMeasure, when set, runs between the warm-up and the measurement
	// (to read the server's counters).
	BeforeMeasure func()
}

// Result is what one measurement saw.
type Result struct {
	Clients  int
	Requests int
	Errors   int
	// FirstError is the first failure's message, for the report.
	FirstError string
	Elapsed    time.Duration
	// Latencies of the successful requests, sorted.
	Latencies []time.Duration
}

// RPS is successful requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Elapsed.Seconds()
}

// Percentile returns the latency under which fraction p (0..1) of the
// successful requests completed (nearest rank).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(p*float64(len(r.Latencies))+0.999999) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// Run drives the workers for l.Warmup, then measures them for l.Duration.
// Every loop is bounded by the time and by ctx; a request in flight when the
// time is up is finished and counted.
func Run(ctx context.Context, l Load, newWorker NewWorker) Result {
	workers := make([]Worker, l.Clients)
	for i := range workers {
		workers[i] = newWorker(i, rand.New(rand.NewPCG(l.Seed, uint64(i))))
	}
	if l.Warmup > 0 {
		drive(ctx, workers, l.Warmup, 0)
	}
	if l.BeforeMeasure != nil {
		l.BeforeMeasure()
	}
	return drive(ctx, workers, l.Duration, l.MaxRequests)
}

func drive(ctx context.Context, workers []Worker, d time.Duration, maxRequests int) Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		res = Result{Clients: len(workers)}
		wg  sync.WaitGroup
	)
	started := time.Now()
	for _, w := range workers {
		wg.Go(func() {
			var lat []time.Duration
			var errs int
			var firstErr string
			for ctx.Err() == nil {
				t0 := time.Now()
				// The request itself is not cut off by the deadline: it
				// would count a slow answer as an error.
				err := w(context.WithoutCancel(ctx))
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					lat = append(lat, time.Since(t0))
				}
				if maxRequests > 0 {
					mu.Lock()
					res.Requests++
					done := res.Requests >= maxRequests
					mu.Unlock()
					if done {
						cancel()
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if maxRequests == 0 {
				res.Requests += len(lat) + errs
			}
			res.Errors += errs
			res.Latencies = append(res.Latencies, lat...)
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(started)
	slices.Sort(res.Latencies)
	return res
}
