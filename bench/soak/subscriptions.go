package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Subscriptions across instances: staff of the demo tenant (whose client
// talks to `serve`) subscribe to paymentUpdated through `serve-2`, and so do
// staff of the other tenant; the payments step then records its payments.
// Every payment the demo tenant made in the window must reach its subscriber
// on the other instance, and none may reach the other tenant's (nor the other
// tenant's reach the demo's). Events travel as Redis pub/sub between the
// processes (docs/query-surface.md, "Subscriptions").

const paymentSubscription = `subscription { paymentUpdated { id } }`

// wsSub is one graphql-transport-ws connection with one paymentUpdated
// subscription; it records the payment numbers it received and when.
type wsSub struct {
	tenant string
	conn   *websocket.Conn
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	received map[string]time.Time // payment id → first event
	events   int
	err      error // a protocol error or an error payload
}

// subsResults is what the subscriptions window saw, for its check.
type subsResults struct {
	ran        bool
	err        error
	from       time.Time
	own, other *wsSub               // the demo tenant's subscriber, the other tenant's
	want       map[string]time.Time // demo payments created in the window: id → createdAt
	otherWant  map[string]time.Time // the other tenant's payments in the window
	waited     time.Duration
}

type wsFrame struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialSub connects to base's /graphql with token, subscribes to
// paymentUpdated and reads events in the background until closed.
func dialSub(ctx context.Context, base, tenant, token string) (*wsSub, error) {
	cctx, cancel := context.WithCancel(ctx)
	conn, _, err := websocket.Dial(cctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscriber of %s: dial %s: %w", tenant, base, err)
	}
	s := &wsSub{tenant: tenant, conn: conn, cancel: cancel, done: make(chan struct{}), received: map[string]time.Time{}}
	write := func(f wsFrame) error {
		b, _ := json.Marshal(f)
		return conn.Write(cctx, websocket.MessageText, b)
	}
	init, _ := json.Marshal(map[string]any{"Authorization": "Bearer " + token})
	if err := write(wsFrame{Type: "connection_init", Payload: init}); err != nil {
		s.close()
		return nil, fmt.Errorf("subscriber of %s: connection_init: %w", tenant, err)
	}
	for {
		f, err := s.read(cctx)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("subscriber of %s: waiting for connection_ack: %w", tenant, err)
		}
		if f.Type == "connection_ack" {
			break
		}
		if f.Type != "ping" && f.Type != "pong" {
			s.close()
			return nil, fmt.Errorf("subscriber of %s: got %s %s before connection_ack", tenant, f.Type, f.Payload)
		}
	}
	q, _ := json.Marshal(map[string]any{"query": paymentSubscription})
	if err := write(wsFrame{ID: "payments", Type: "subscribe", Payload: q}); err != nil {
		s.close()
		return nil, fmt.Errorf("subscriber of %s: subscribe: %w", tenant, err)
	}
	go s.loop(cctx, write)
	return s, nil
}

func (s *wsSub) read(ctx context.Context) (wsFrame, error) {
	_, b, err := s.conn.Read(ctx)
	if err != nil {
		return wsFrame{}, err
	}
	var f wsFrame
	err = json.Unmarshal(b, &f)
	return f, err
}

func (s *wsSub) loop(ctx context.Context, write func(wsFrame) error) {
	defer close(s.done)
	for {
		f, err := s.read(ctx)
		at := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				s.fail(fmt.Errorf("read: %w", err))
			}
			return
		}
		switch f.Type {
		case "ping":
			_ = write(wsFrame{Type: "pong"})
		case "next":
			var p struct {
				Data struct {
					PaymentUpdated struct{ ID string }
				}
				Errors []gqlError
			}
			if err := json.Unmarshal(f.Payload, &p); err != nil || len(p.Errors) > 0 {
				s.fail(fmt.Errorf("event %s", f.Payload))
				continue
			}
			s.mu.Lock()
			s.events++
			if _, seen := s.received[p.Data.PaymentUpdated.ID]; !seen {
				s.received[p.Data.PaymentUpdated.ID] = at
			}
			s.mu.Unlock()
		case "error", "complete":
			s.fail(fmt.Errorf("subscription ended: %s %s", f.Type, f.Payload))
		}
	}
}

func (s *wsSub) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("subscriber of %s: %w", s.tenant, err)
	}
	s.mu.Unlock()
}

func (s *wsSub) close() {
	s.cancel()
	s.conn.CloseNow()
}

// got returns a copy of what the subscriber received so far.
func (s *wsSub) got() (map[string]time.Time, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Time, len(s.received))
	for k, v := range s.received {
		out[k] = v
	}
	return out, s.events, s.err
}

// subscribeStart opens the two subscribers on serve-2 before the payments
// step.
func (d *day) subscribeStart(ctx context.Context, _ *checkDB) {
	r := &d.subs
	r.ran = true
	base := "http://" + d.e.serve2Addr
	own, other := d.tenants[0], d.tenants[1]
	d.logf("subscriptions: %s and %s subscribe to paymentUpdated through serve-2 (%s); %s pays through %s", own.slug, other.slug, d.e.serve2Addr, own.slug, own.api.base)
	if r.own, r.err = dialSub(ctx, base, own.slug, own.api.token); r.err != nil {
		return
	}
	if r.other, r.err = dialSub(ctx, base, other.slug, other.api.token); r.err != nil {
		return
	}
	// The protocol does not acknowledge a subscribe: give serve-2 a moment
	// to register both before the first payment.
	time.Sleep(time.Second)
	r.from = time.Now()
}

// windowPayments lists, through t's own API, the tenant's payments created
// since from: GraphQL id → createdAt.
func windowPayments(ctx context.Context, t *tenantRun, from time.Time) (map[string]time.Time, error) {
	var out struct {
		Payments struct {
			Edges []struct {
				Node struct {
					ID        string
					CreatedAt time.Time
				}
			}
		}
	}
	if err := t.api.call(ctx, `query($from: Time!) { payments(first: 100, where: {createdAtGTE: $from}) { edges { node { id createdAt } } } }`,
		map[string]any{"from": from.Format(time.RFC3339Nano)}, &out); err != nil {
		return nil, fmt.Errorf("payments of %s: %w", t.slug, err)
	}
	m := map[string]time.Time{}
	for _, e := range out.Payments.Edges {
		m[e.Node.ID] = e.Node.CreatedAt
	}
	return m, nil
}

// subscribeStop waits (up to 30s) until the demo subscriber has received
// every demo payment created since the window opened, then closes both.
func (d *day) subscribeStop(ctx context.Context, _ *checkDB) {
	r := &d.subs
	if r.err != nil || r.own == nil || r.other == nil {
		return
	}
	defer func() {
		r.own.close()
		r.other.close()
	}()
	start := time.Now()
	for {
		want, err := windowPayments(ctx, d.tenants[0], r.from)
		if err != nil {
			r.err = err
			return
		}
		r.want = want
		got, _, _ := r.own.got()
		missing := 0
		for id := range want {
			if _, ok := got[id]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Since(start) > 30*time.Second || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.waited = time.Since(start)
	time.Sleep(time.Second) // a leaked event would land now
	if r.otherWant, r.err = windowPayments(ctx, d.tenants[1], r.from); r.err != nil {
		return
	}
	got, _, _ := r.own.got()
	var lat []time.Duration
	for id, at := range r.want {
		if t, ok := got[id]; ok {
			lat = append(lat, t.Sub(at))
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		d.figure("subscriptions: paymentUpdated serve → serve-2, median / max", fmt.Sprintf("%s / %s over %d payments",
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat)))
	}
}

func (d *day) checkSubscriptionsAcross(_ context.Context, _ *checkDB, c *check) {
	c.what = "payments through serve reach serve-2's subscriber, no other tenant's"
	r := d.subs
	switch {
	case !r.ran:
		c.err = fmt.Errorf("the subscriptions window did not run")
		return
	case r.err != nil:
		c.err = r.err
		return
	case r.own == nil || r.other == nil:
		c.err = fmt.Errorf("no subscribers")
		return
	}
	own, _, ownErr := r.own.got()
	other, _, otherErr := r.other.got()
	for _, err := range []error{ownErr, otherErr} {
		if err != nil {
			c.fail("%v", err)
		}
	}
	received := 0
	for id := range r.want {
		if _, ok := own[id]; ok {
			received++
		} else {
			c.fail("payment %s of %s (made through serve) never reached its subscriber on serve-2", id, d.tenants[0].slug)
		}
	}
	// Payment ids are unique across tenants: an id of one tenant's window
	// received by the other's subscriber is a leak.
	leaked := 0
	for id := range other {
		if _, ok := r.want[id]; ok {
			leaked++
			c.fail("%s's subscriber received %s's payment %s", d.tenants[1].slug, d.tenants[0].slug, id)
		}
	}
	for id := range own {
		if _, ok := r.otherWant[id]; ok {
			leaked++
			c.fail("%s's subscriber received %s's payment %s", d.tenants[0].slug, d.tenants[1].slug, id)
		}
	}
	if len(r.want) == 0 {
		c.fail("no payment of %s was made in the window", d.tenants[0].slug)
	}
	if len(r.otherWant) > 0 && len(other) == 0 {
		// Not a leak, but the negative side proves little if the other
		// subscriber was not listening at all.
		c.fail("%s made %d payments in the window and its own subscriber received none", d.tenants[1].slug, len(r.otherWant))
	}
	c.detail = fmt.Sprintf("%d/%d received, %d leaked", received, len(r.want), leaked)
}
