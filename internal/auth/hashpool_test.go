package auth_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
)

// waitFor yields until cond holds (it is a count the test is driving to).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 5_000_000 {
			t.Fatalf("never: %s", what)
		}
		runtime.Gosched()
	}
}

// grants records the keys a pool serves, in order.
type grants struct {
	mu   sync.Mutex
	keys []string
}

func (g *grants) add(k string) { g.mu.Lock(); g.keys = append(g.keys, k); g.mu.Unlock() }
func (g *grants) list() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.keys)
}

// TestHashPoolServesTenantsInTurn: with one hash at a time, a tenant that
// queues behind another tenant's flood waits for one of its hashes, not all.
func TestHashPoolServesTenantsInTurn(t *testing.T) {
	p := auth.NewHashPool(10, 0)
	var g grants
	p.OnGrant(g.add)
	ctx := context.Background()
	hold, err := p.Acquire(ctx, "holder", 10)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	enqueue := func(key string) {
		n := p.Waiting()
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := p.Acquire(ctx, key, 10)
			if err != nil {
				t.Error(err)
				return
			}
			release()
		}()
		waitFor(t, key+" queued", func() bool { return p.Waiting() == n+1 })
	}
	for range 6 {
		enqueue("flood")
	}
	enqueue("b")
	enqueue("c")
	hold()
	wg.Wait()
	want := []string{"holder", "flood", "b", "c", "flood", "flood", "flood", "flood", "flood"}
	if got := g.list(); !slices.Equal(got, want) {
		t.Fatalf("served %v, want %v", got, want)
	}
}

// TestHashPoolBoundsMemory: the weights in use never exceed the capacity,
// a weight above it runs alone, and a key's queue is bounded.
func TestHashPoolBoundsMemory(t *testing.T) {
	p := auth.NewHashPool(40, 3)
	ctx := context.Background()
	r1, _ := p.Acquire(ctx, "a", 19)
	r2, _ := p.Acquire(ctx, "b", 19)
	var g grants
	p.OnGrant(g.add)
	done := make(chan struct{})
	go func() {
		release, err := p.Acquire(ctx, "legacy", 64) // an older 64 MiB hash: the whole pool
		if err != nil {
			t.Error(err)
		}
		g.add("legacy done")
		release()
		close(done)
	}()
	waitFor(t, "legacy queued", func() bool { return p.Waiting() == 1 })
	r1()
	if got := g.list(); len(got) != 0 {
		t.Fatalf("served %v while 19 of 40 were in use by b", got)
	}
	r2()
	<-done
	if got := g.list(); !slices.Equal(got, []string{"legacy", "legacy done"}) {
		t.Fatalf("served %v", got)
	}

	hold, _ := p.Acquire(ctx, "x", 40)
	for i := range 3 {
		go func() {
			if release, err := p.Acquire(ctx, "flood", 19); err == nil {
				release()
			}
		}()
		waitFor(t, fmt.Sprint("waiter ", i), func() bool { return p.Waiting() == i+1 })
	}
	if _, err := p.Acquire(ctx, "flood", 19); apperr.CodeOf(err) != apperr.RateLimited {
		t.Fatalf("a fourth waiter of one key: %v, want RATE_LIMITED", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 1)
	go func() { _, err := p.Acquire(cctx, "other", 19); errs <- err }()
	waitFor(t, "other queued", func() bool { return p.Waiting() == 4 })
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if p.Waiting() != 3 {
		t.Fatalf("%d waiting after a cancel, want 3", p.Waiting())
	}
	hold()
}

// TestLoginFloodDoesNotStarveAnotherTenant: one tenant's flood of logins with
// unknown e-mails and another tenant's real login share the hashing pool; the
// real login's hash runs after at most one of the flood's.
func TestLoginFloodDoesNotStarveAnotherTenant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	busy := f.mustTenant(t, tenantOpts{slug: "busy"})
	quiet := f.mustTenant(t, tenantOpts{slug: "quiet"})
	f.mustUser(t, quiet, "admin@quiet.example", "pw-quiet", authz.RoleAdmin)
	weight := int64(auth.DefaultArgon2Params().Memory)
	pool := auth.NewHashPool(weight, 0) // one hash at a time
	f.svc.Hashing = pool
	var g grants
	pool.OnGrant(g.add)

	hold, err := pool.Acquire(ctx, "test", weight)
	if err != nil {
		t.Fatal(err)
	}
	const flood = 8
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := f.svc.Login(ctx, auth.LoginInput{Tenant: "busy", Email: fmt.Sprintf("nobody%d@busy.example", i), Password: "guess"})
			if apperr.CodeOf(err) != apperr.Unauthenticated {
				t.Errorf("flood login: %v", err)
			}
		}()
	}
	waitFor(t, "the flood queued", func() bool { return pool.Waiting() == flood })
	quietDone := make(chan error, 1)
	go func() {
		_, _, err := f.svc.Login(ctx, auth.LoginInput{Tenant: "quiet", Email: "admin@quiet.example", Password: "pw-quiet"})
		quietDone <- err
	}()
	waitFor(t, "the quiet tenant queued", func() bool { return pool.Waiting() == flood+1 })
	hold()
	if err := <-quietDone; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := g.list()
	i := slices.Index(got, auth.TurnOf(quiet.ID))
	if i < 0 || slices.Index(got, auth.TurnOf(busy.ID)) < 1 {
		t.Fatalf("served %v", got)
	}
	// "test", then one of the flood's, then the quiet tenant's.
	if i > 2 {
		t.Fatalf("the quiet tenant's login was served %d-th, after %d of the flood's hashes: %v", i, i-1, got)
	}
}
