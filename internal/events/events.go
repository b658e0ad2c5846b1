// Package events owns the live changes clients subscribe to (GraphQL
// subscriptions): an ent hook notes, after its transaction commits, that a
// router's API status changed, a network session started or ended, or a
// payment was recorded or changed status, and publishes it on Redis pub/sub
// on the tenant's channel; every process (API or worker) publishes, and every
// API process delivers to its own subscribers. A message carries the kind and
// the entity id only: the subscriber loads the entity itself, through the
// tenant filter, with its own credentials.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Kind is what changed.
type Kind string

// The kinds of change.
const (
	RouterStatus Kind = "router_status" // a router's apiStatus changed
	Session      Kind = "session"       // a network session started or ended
	Payment      Kind = "payment"       // a payment was created or changed status
)

// Event is one change of one entity of a tenant.
type Event struct {
	Kind     Kind `json:"k"`
	TenantID int  `json:"t"`
	ID       int  `json:"id"`
}

// BufferSize is how many events a subscriber may fall behind by; past it,
// newer events for that subscriber are dropped (and counted in the log).
const BufferSize = 64

// Bus publishes events on Redis and fans them out to this process's
// subscribers through one pattern subscription.
type Bus struct {
	Redis *redis.Client
	// Prefix namespaces the channels (the job namespace and a colon), so
	// deployments and tests sharing a Redis do not hear each other.
	Prefix string
	Logger *slog.Logger

	mu     sync.Mutex
	subs   map[int]map[*subscriber]struct{} // by tenant
	ps     *redis.PubSub
	closed bool
}

type subscriber struct {
	kinds map[Kind]bool
	ch    chan Event
}

func (b *Bus) channel(tenantID int) string {
	return b.Prefix + "events:" + strconv.Itoa(tenantID)
}

// Publish sends e to every process. Errors are returned for the caller to
// log: a lost notification must not undo the change that caused it.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	if e.TenantID <= 0 {
		return fmt.Errorf("events: %s %d has no tenant", e.Kind, e.ID)
	}
	msg, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := b.Redis.Publish(ctx, b.channel(e.TenantID), msg).Err(); err != nil {
		return fmt.Errorf("events: publish %s: %w", e.Kind, err)
	}
	return nil
}

// Subscribe returns the events of the given kinds for tenantID until ctx
// ends, when the channel is closed. It returns once Redis has confirmed the
// subscription, so an event published after it returns is delivered.
func (b *Bus) Subscribe(ctx context.Context, tenantID int, kinds ...Kind) (<-chan Event, error) {
	if tenantID <= 0 {
		return nil, errors.New("events: subscription without a tenant")
	}
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	s := &subscriber{kinds: map[Kind]bool{}, ch: make(chan Event, BufferSize)}
	for _, k := range kinds {
		s.kinds[k] = true
	}
	b.mu.Lock()
	if b.subs[tenantID] == nil {
		b.subs[tenantID] = map[*subscriber]struct{}{}
	}
	b.subs[tenantID][s] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		if _, ok := b.subs[tenantID][s]; ok {
			delete(b.subs[tenantID], s)
			if len(b.subs[tenantID]) == 0 {
				delete(b.subs, tenantID)
			}
			close(s.ch)
		}
		b.mu.Unlock()
	}()
	return s.ch, nil
}

// Subscribers counts this process's live subscriptions.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.subs {
		n += len(m)
	}
	return n
}

// start opens the process's one pattern subscription on first use.
func (b *Bus) start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("events: bus closed")
	}
	if b.ps != nil {
		return nil
	}
	ps := b.Redis.PSubscribe(ctx, b.Prefix+"events:*")
	// Wait for Redis to confirm, so nothing published from now on is missed.
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return fmt.Errorf("events: subscribe: %w", err)
	}
	b.ps = ps
	if b.subs == nil {
		b.subs = map[int]map[*subscriber]struct{}{}
	}
	go b.run(ps)
	return nil
}

// run delivers every message to the subscribers of its tenant. go-redis
// reconnects and re-subscribes by itself when Redis goes away; events
// published meanwhile are lost (pub/sub keeps nothing), which subscribers
// learn to expect from the schema's descriptions.
func (b *Bus) run(ps *redis.PubSub) {
	for msg := range ps.Channel() {
		var e Event
		if err := json.Unmarshal([]byte(msg.Payload), &e); err != nil ||
			msg.Channel != b.channel(e.TenantID) || !strings.HasPrefix(msg.Channel, b.Prefix) {
			b.log().Warn("events: malformed message ignored", "channel", msg.Channel)
			continue
		}
		b.mu.Lock()
		for s := range b.subs[e.TenantID] {
			if !s.kinds[e.Kind] {
				continue
			}
			select {
			case s.ch <- e:
			default:
				b.log().Warn("events: subscriber too slow, event dropped", "kind", string(e.Kind), "tenant", e.TenantID)
			}
		}
		b.mu.Unlock()
	}
}

// Close ends the pattern subscription and every subscriber's channel.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for t, m := range b.subs {
		for s := range m {
			close(s.ch)
		}
		delete(b.subs, t)
	}
	if b.ps != nil {
		return b.ps.Close()
	}
	return nil
}

func (b *Bus) log() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.Default()
}

// connLimit counts one connection's live subscriptions.
type connLimit struct {
	mu      sync.Mutex
	n, max  int
	limited bool
}

type connKey struct{}

// WithConnectionLimit marks ctx as one client connection that may hold at
// most max subscriptions at a time.
func WithConnectionLimit(ctx context.Context, max int) context.Context {
	return context.WithValue(ctx, connKey{}, &connLimit{max: max, limited: true})
}

// ErrTooManySubscriptions refuses a subscription past the connection's limit.
var ErrTooManySubscriptions = errors.New("too many subscriptions on this connection")

// Acquire takes one of the connection's subscriptions until release is
// called; past the limit it returns ErrTooManySubscriptions. A context
// without a limit (not a websocket connection) always succeeds.
func Acquire(ctx context.Context) (release func(), err error) {
	l, _ := ctx.Value(connKey{}).(*connLimit)
	if l == nil || !l.limited {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.max {
		return nil, fmt.Errorf("%w (at most %d)", ErrTooManySubscriptions, l.max)
	}
	l.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.n--
			l.mu.Unlock()
		})
	}, nil
}
