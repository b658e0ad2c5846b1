package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/server"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// wsClient speaks graphql-transport-ws to /graphql.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	ctx  context.Context
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS opens a connection and sends connection_init with payload; it
// returns the client and the first message the server answers.
func dialWS(t *testing.T, base string, payload map[string]any) (*wsClient, wsMessage, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	c := &wsClient{t: t, conn: conn, ctx: ctx}
	c.send(wsMessage{Type: "connection_init", Payload: mustJSON(payload)})
	m, err := c.read()
	return c, m, err
}

func (c *wsClient) send(m wsMessage) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	if err := c.conn.Write(c.ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("ws write: %v", err)
	}
}

// read returns the next message that is not a ping or pong.
func (c *wsClient) read() (wsMessage, error) {
	for {
		_, b, err := c.conn.Read(c.ctx)
		if err != nil {
			return wsMessage{}, err
		}
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return m, err
		}
		if m.Type == "ping" || m.Type == "pong" {
			continue
		}
		return m, nil
	}
}

func (c *wsClient) subscribe(id, query string) {
	c.send(wsMessage{ID: id, Type: "subscribe", Payload: mustJSON(map[string]any{"query": query})})
}

// next reads the next message and returns its id and data, failing on
// anything but a "next" without errors.
func (c *wsClient) next() (string, string) {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("ws read: %v", err)
	}
	var p struct {
		Data   json.RawMessage
		Errors []any
	}
	json.Unmarshal(m.Payload, &p)
	if m.Type != "next" || len(p.Errors) > 0 {
		c.t.Fatalf("expected an event, got %s %s", m.Type, m.Payload)
	}
	return m.ID, string(p.Data)
}

// waitSubscribers waits until the instance holds n live subscriptions (the
// protocol has no acknowledgement of a subscribe).
func waitSubscribers(t *testing.T, m *Main, n int) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if m.Events.Subscribers() == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("instance holds %d subscriptions, want %d", m.Events.Subscribers(), n)
}

// TestSubscriptionsAcrossInstances runs two API instances on one Postgres and
// one Redis: subscribers on A receive the router, session and payment events
// caused on B; another tenant's subscriber receives none of them; a
// connection without a valid credential is refused; one connection holds at
// most server.DefaultMaxSubscriptions subscriptions.
func TestSubscriptionsAcrossInstances(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	env := func() map[string]string {
		return map[string]string{
			"DATABASE_URL":           dbURL,
			"REDIS_URL":              redisURL,
			"ISPGRAPH_JOB_NAMESPACE": strings.TrimSuffix(prefix, ":"),
			"ISPGRAPH_SECRET_KEY":    strings.Repeat("ab", 32),
			"ISPGRAPH_WORKERS":       "false",
		}
	}
	a, baseA := startServer(t, env())
	b, baseB := startServer(t, env())
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := seed.Bench(ctx, pool, seed.BenchOptions{
		Tenants: 2, Subscribers: 4, Months: 1, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 11,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	token1 := login(t, baseB, seed.BenchSlug(1), seed.BenchAdminEmail(1), "bench-pass-1")
	token2 := login(t, baseB, seed.BenchSlug(2), seed.BenchAdminEmail(2), "bench-pass-1")

	t.Run("refused without a credential", func(t *testing.T) {
		for _, payload := range []map[string]any{{}, {"Authorization": "Bearer isg_not-a-token"}} {
			_, m, err := dialWS(t, baseA, payload)
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4403 || !strings.Contains(ce.Reason, "UNAUTHENTICATED") {
				t.Fatalf("connection_init %v: got %s %s, %v; want close 4403 UNAUTHENTICATED", payload, m.Type, m.Payload, err)
			}
		}
		if n := a.Events.Subscribers(); n != 0 {
			t.Fatalf("%d subscriptions after refused connections", n)
		}
	})

	const selRouter = `subscription { routerStatusChanged { id name apiStatus online } }`
	const selSession = `subscription { sessionsChanged { id username status router { id } } }`
	const selPayment = `subscription { paymentUpdated { id amount status networkUser { id } } }`
	one, ack, err := dialWS(t, baseA, map[string]any{"Authorization": "Bearer " + token1})
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("tenant 1 connection: %s %v", ack.Type, err)
	}
	two, ack, err := dialWS(t, baseA, map[string]any{"authorization": "Bearer " + token2})
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("tenant 2 connection: %s %v", ack.Type, err)
	}
	for i, q := range []string{selRouter, selSession, selPayment} {
		one.subscribe(fmt.Sprint("1-", i), q)
		two.subscribe(fmt.Sprint("2-", i), q)
	}
	waitSubscribers(t, a, 6)

	// On B: a router that answers, with one session online, checked once.
	fake := routerostest.Start(t)
	fake.Password = ""
	fake.Add("/ppp/active", routerostest.Row{"name": "live-1", "address": "10.9.9.9", "uptime": "1m"})
	var rt struct{ CreateRouter struct{ ID string } }
	data(t, post(t, baseB, token1, `mutation($p: Int!) { createRouter(input: {name: "Live", host: "127.0.0.1", apiPort: $p, username: "ispgraph"}) { id } }`,
		map[string]any{"p": fake.Port()}), &rt)
	routerID, err := b.IDs.Decode(rt.CreateRouter.ID)
	if err != nil {
		t.Fatal(err)
	}
	t1 := b.DB.Client.Tenant.Query().Where(tenant.Slug(seed.BenchSlug(1))).OnlyX(tenancy.Bypass(ctx))
	if _, err := b.Mikrotik.Sync(viewer.ForTenant(ctx, t1.ID), t1.ID, routerID, ""); err != nil {
		t.Fatalf("sync on B: %v", err)
	}
	// And a payment, recorded on B.
	inv, _ := openInvoice(t, baseB, token1)
	var pay paymentResult
	data(t, post(t, baseB, token1, recordPayment, map[string]any{"inv": inv, "amount": "1.00", "key": "sub-1"}), &pay)

	got := map[string]string{}
	for len(got) < 3 {
		id, d := one.next()
		if _, dup := got[id]; dup {
			t.Fatalf("second event on %s: %s (first %s)", id, d, got[id])
		}
		got[id] = d
	}
	if d := got["1-0"]; !strings.Contains(d, rt.CreateRouter.ID) || !strings.Contains(d, `"apiStatus":"ONLINE"`) || !strings.Contains(d, `"online":true`) {
		t.Errorf("routerStatusChanged: %s", d)
	}
	if d := got["1-1"]; !strings.Contains(d, `"username":"live-1"`) || !strings.Contains(d, `"status":"ACTIVE"`) || !strings.Contains(d, rt.CreateRouter.ID) {
		t.Errorf("sessionsChanged: %s", d)
	}
	if d := got["1-2"]; !strings.Contains(d, pay.RecordPayment.ID) || !strings.Contains(d, `"status":"COMPLETED"`) {
		t.Errorf("paymentUpdated: %s", d)
	}

	t.Run("64-bit counters", func(t *testing.T) {
		// 5 GiB: past GraphQL's 32-bit Int, served exactly as an Int64 string.
		tctx := viewer.ForTenant(ctx, t1.ID)
		if err := b.DB.Client.NetworkSession.Update().SetBytesIn(5 << 30).SetUptimeSeconds(1 << 32).Exec(tctx); err != nil {
			t.Fatal(err)
		}
		r := post(t, baseA, token1, `{ networkSessions(first: 1) { edges { node { bytesIn64 bytesOut64 uptimeSeconds64 } } } }`, nil)
		if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `{"bytesIn64":"5368709120","bytesOut64":"0","uptimeSeconds64":"4294967296"}`) {
			t.Fatalf("%s %+v", r.Data, r.Errors)
		}
	})

	// Checked again, still online with the same session: no event. Then
	// the router goes away: OFFLINE, again from B, is the next event.
	if _, err := b.Mikrotik.Sync(viewer.ForTenant(ctx, t1.ID), t1.ID, routerID, ""); err != nil {
		t.Fatalf("second sync on B: %v", err)
	}
	fake.Close()
	b.Mikrotik.Sync(viewer.ForTenant(ctx, t1.ID), t1.ID, routerID, "")
	if id, d := one.next(); id != "1-0" || !strings.Contains(d, `"apiStatus":"OFFLINE"`) {
		t.Errorf("after the router went away: %s %s", id, d)
	}

	// Tenant 2 heard none of it: the first event its connection receives is
	// its own payment, published on B after all of tenant 1's.
	inv2, _ := openInvoice(t, baseB, token2)
	var pay2 paymentResult
	data(t, post(t, baseB, token2, recordPayment, map[string]any{"inv": inv2, "amount": "1.00", "key": "sub-2"}), &pay2)
	if id, d := two.next(); id != "2-2" || !strings.Contains(d, pay2.RecordPayment.ID) {
		t.Errorf("tenant 2's first event: %s %s, want its own payment %s", id, d, pay2.RecordPayment.ID)
	}

	t.Run("subscriptions per connection", func(t *testing.T) {
		c, ack, err := dialWS(t, baseB, map[string]any{"Authorization": "Bearer " + token1})
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("connection: %s %v", ack.Type, err)
		}
		for i := 0; i <= server.DefaultMaxSubscriptions; i++ {
			c.subscribe(fmt.Sprint("s", i), selPayment)
		}
		m, err := c.read()
		// Which of them is refused depends on the order the server runs
		// them in; exactly one is, and the others stay open.
		if err != nil || !strings.Contains(string(m.Payload), "RATE_LIMITED") {
			t.Fatalf("subscription %d: %s %s %v, want RATE_LIMITED", server.DefaultMaxSubscriptions+1, m.Type, m.Payload, err)
		}
		waitSubscribers(t, b, server.DefaultMaxSubscriptions)
	})
}
