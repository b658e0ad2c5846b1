package auth

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// HashPool bounds the memory that password hashing uses at once in a process
// and shares it out between tenants in turn. Each argon2id computation
// allocates its memory parameter (19 MiB by default), so without a bound a
// burst of logins multiplies the server's memory; and with a plain semaphore
// one tenant's flood of logins (unknown e-mails cost a hash too) would queue
// ahead of every other tenant's.
//
// Waiters are queued per key (a tenant) and the keys are served round-robin:
// when memory frees up, the next key in turn gets its oldest waiter started,
// so a tenant waits for at most one hash of each other waiting tenant,
// however long their queues. A key may have at most MaxWaiting waiters;
// more are refused at once with RATE_LIMITED.
type HashPool struct {
	capacity   int64 // KiB
	maxWaiting int

	mu     sync.Mutex
	used   int64
	queues map[string][]*hashWaiter
	turns  []string // keys with waiters, in the order they are served
	// granted, when set (tests), is called with each key as it is served,
	// under the lock, in serving order.
	granted func(key string)
}

type hashWaiter struct {
	weight int64
	ready  chan struct{}
	served bool
}

// DefaultHashMemory is the hashing memory of a process's DefaultHashing:
// two hashes with DefaultArgon2Params at a time, one per core of a small
// server, so logins use the CPU fully and at most 38 MiB.
var DefaultHashMemory = 2 * int64(DefaultArgon2Params().Memory)

// DefaultHashWaiting is DefaultHashing's MaxWaiting per tenant.
const DefaultHashWaiting = 64

// DefaultHashing is the pool of every Service without its own and of the
// package-level HashPassword and VerifyPassword. Memory belongs to the
// process, so the bound is process-wide.
var DefaultHashing = NewHashPool(DefaultHashMemory, DefaultHashWaiting)

// NewHashPool returns a pool of capacityKiB of hashing memory in which each
// key may have maxWaiting waiters (0: unbounded).
func NewHashPool(capacityKiB int64, maxWaiting int) *HashPool {
	return &HashPool{capacity: max(capacityKiB, 1), maxWaiting: maxWaiting, queues: make(map[string][]*hashWaiter)}
}

func errHashingBusy() error {
	return apperr.E(apperr.RateLimited, "too many sign-ins are being checked at the moment: try again in a few seconds")
}

// Acquire waits until weight KiB of hashing memory is free and it is key's
// turn, and returns the function that gives it back. A weight above the
// pool's capacity takes the whole pool. It fails when ctx ends first, and at
// once when key already has MaxWaiting waiters.
func (p *HashPool) Acquire(ctx context.Context, key string, weight int64) (release func(), err error) {
	weight = min(max(weight, 1), p.capacity)
	p.mu.Lock()
	if len(p.turns) == 0 && p.used+weight <= p.capacity {
		p.used += weight
		if p.granted != nil {
			p.granted(key)
		}
		p.mu.Unlock()
		return p.releaser(weight), nil
	}
	q := p.queues[key]
	if p.maxWaiting > 0 && len(q) >= p.maxWaiting {
		p.mu.Unlock()
		return nil, errHashingBusy()
	}
	w := &hashWaiter{weight: weight, ready: make(chan struct{})}
	if len(q) == 0 {
		p.turns = append(p.turns, key)
	}
	p.queues[key] = append(q, w)
	p.dispatch()
	p.mu.Unlock()

	select {
	case <-w.ready:
		return p.releaser(weight), nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.served { // served while giving up: hand the memory on
		p.used -= weight
	} else {
		p.drop(key, w)
	}
	p.dispatch()
	return nil, ctx.Err()
}

// Waiting returns how many acquisitions are waiting.
func (p *HashPool) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, q := range p.queues {
		n += len(q)
	}
	return n
}

func (p *HashPool) releaser(weight int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.used -= weight
			p.dispatch()
			p.mu.Unlock()
		})
	}
}

// collect runs a garbage collection; the hash functions call it after each
// argon2id computation, before they hand the memory on. A hash leaves its
// whole memory (19 MiB) behind as garbage; left to the pacer, which waits
// for the heap to double, a burst of logins piles several of them up and the
// process's resident memory grows by as many. Collected while the hash still
// holds its share of the pool, the garbage is gone before the next hash
// allocates, which then reuses the same pages, so the pool's capacity bounds
// resident memory as it bounds the hashes. Measured on the server (docs/
// security.md): 16 concurrent logins raise the peak by 45 MB, against 390 MB
// before the pool and 120 MB with the parameters alone. A collection of the
// server's heap costs a few milliseconds of CPU, a hash tens.
func (p *HashPool) collect() { runtime.GC() }

// dispatch serves waiters in turn while the next one's weight fits. The key
// whose turn it is keeps it until its oldest waiter fits, so a heavy waiter
// is not overtaken forever by light ones. Called with p.mu held.
func (p *HashPool) dispatch() {
	for len(p.turns) > 0 {
		key := p.turns[0]
		q := p.queues[key]
		w := q[0]
		if p.used+w.weight > p.capacity {
			return
		}
		p.used += w.weight
		w.served = true
		close(w.ready)
		if p.granted != nil {
			p.granted(key)
		}
		p.turns = p.turns[1:]
		if q = q[1:]; len(q) > 0 {
			p.queues[key] = q
			p.turns = append(p.turns, key)
		} else {
			delete(p.queues, key)
		}
	}
}

// drop removes w, which gave up waiting, from key's queue.
func (p *HashPool) drop(key string, w *hashWaiter) {
	q := p.queues[key]
	for i, x := range q {
		if x == w {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		p.queues[key] = q
		return
	}
	delete(p.queues, key)
	for i, k := range p.turns {
		if k == key {
			p.turns = append(p.turns[:i:i], p.turns[i+1:]...)
			break
		}
	}
}

// unresolvedTurn is the queue of logins whose tenant is unknown: they share
// one turn, so a flood of them delays each real tenant by one hash at most.
const unresolvedTurn = "unresolved"

// turnOf is tenant tenantID's queue in a HashPool (0: unresolved).
func turnOf(tenantID int) string {
	if tenantID <= 0 {
		return unresolvedTurn
	}
	return "tenant:" + strconv.Itoa(tenantID)
}

func (s *Service) hashing() *HashPool {
	if s.Hashing != nil {
		return s.Hashing
	}
	return DefaultHashing
}

// verifyPassword is VerifyPassword in s's pool, in tenantID's turn.
func (s *Service) verifyPassword(ctx context.Context, tenantID int, encoded, pw string) (bool, error) {
	return verifyPassword(ctx, s.hashing(), turnOf(tenantID), encoded, pw)
}

// spendHash verifies pw against dummyHash, so that a login that names no
// account costs what one with a wrong password does. Only a refusal of the
// pool (busy, or the request gone) is returned.
func (s *Service) spendHash(ctx context.Context, tenantID int, pw string) error {
	_, err := s.verifyPassword(ctx, tenantID, dummyHash, pw)
	if hashRefused(err) {
		return err
	}
	return nil
}

// hashPassword is HashPassword in s's pool, in tenantID's turn.
func (s *Service) hashPassword(ctx context.Context, tenantID int, pw string) (string, error) {
	return hashPassword(ctx, s.hashing(), turnOf(tenantID), pw)
}

// hashRefused reports whether err is the pool's refusal rather than a
// verdict on the password or the stored hash.
func hashRefused(err error) bool {
	return err != nil && (apperr.CodeOf(err) == apperr.RateLimited || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded))
}

// tenantOf is the tenant of the viewer in ctx (0: none).
func tenantOf(ctx context.Context) int {
	if v := viewer.FromContext(ctx); v != nil {
		return v.TenantID
	}
	return 0
}
