package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	partnerhooks "github.com/ispgraph/ispgraph/internal/webhook"
)

// partnerSink is a partner's webhook receiver on 127.0.0.1, one path per
// tenant (/hooks/<slug>): it verifies each request's signature and
// timestamp with the tenant's secret and keeps what came. The first request
// of every fifth event is answered 503, so retries happen on the wire.
type partnerSink struct {
	srv *httptest.Server

	mu      sync.Mutex
	secrets map[string]string // by tenant slug
	calls   []partnerCall
	seen    map[string]bool // event ids seen
}

// partnerCall is one request the partner received.
type partnerCall struct {
	tenant, id, bodyID, typ string
	bodyHash                [32]byte
	verified                bool
	status                  int
}

func startPartner() *partnerSink {
	p := &partnerSink{secrets: map[string]string{}, seen: map[string]bool{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

func (p *partnerSink) url(slug string) string { return p.srv.URL + "/hooks/" + slug }

func (p *partnerSink) setSecret(slug, secret string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.secrets[slug] = secret
}

func (p *partnerSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	slug := strings.TrimPrefix(r.URL.Path, "/hooks/")
	var ev partnerhooks.Event
	_ = json.Unmarshal(body, &ev)
	p.mu.Lock()
	defer p.mu.Unlock()
	c := partnerCall{tenant: slug, id: r.Header.Get(partnerhooks.HeaderID), bodyID: ev.ID, typ: ev.Type, bodyHash: sha256.Sum256(body)}
	c.verified = p.secrets[slug] != "" &&
		partnerhooks.Verify(r.Header.Get(partnerhooks.HeaderSignature), body, p.secrets[slug], time.Now(), 5*time.Minute) == nil
	switch {
	case !c.verified:
		c.status = http.StatusUnauthorized
	case !p.seen[c.id] && len(p.seen)%5 == 4:
		c.status = http.StatusServiceUnavailable
	default:
		c.status = http.StatusOK
	}
	p.seen[c.id] = true
	p.calls = append(p.calls, c)
	w.WriteHeader(c.status)
}

func (p *partnerSink) received() []partnerCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]partnerCall(nil), p.calls...)
}

// registerPartner registers the partner's endpoint for every event of t.
func (d *day) registerPartner(ctx context.Context, t *tenantRun) error {
	var ce struct {
		CreateWebhookEndpoint struct{ Secret string }
	}
	if err := t.api.call(ctx, `mutation($u: String!, $e: [String!]!) { createWebhookEndpoint(input: {url: $u, description: "soak partner", events: $e}) { secret } }`,
		map[string]any{"u": d.partner.url(t.slug), "e": partnerhooks.EventTypes}, &ce); err != nil {
		return fmt.Errorf("register the partner endpoint of %s: %w", t.slug, err)
	}
	d.partner.setSecret(t.slug, ce.CreateWebhookEndpoint.Secret)
	return nil
}

// checkPartner: every delivery row reached the partner, signed, and is
// counted once by its idempotency id; retries on the wire carry the same id
// and the same body.
func (d *day) checkPartner(ctx context.Context, db *checkDB, c *check) {
	c.what = "the partner got every event once by idempotency id, signed; retries repeat id and body"
	rows, err := db.pool.Query(ctx, `SELECT t.slug, d.event_id, d.event_type, d.status, d.attempt_count
		FROM webhook_deliveries d JOIN tenants t ON t.id = d.tenant_id`)
	if err != nil {
		c.err = err
		return
	}
	type row struct {
		tenant, typ, status string
		attempts            int
	}
	want := map[string]row{}
	for rows.Next() {
		var r row
		var id string
		if err := rows.Scan(&r.tenant, &id, &r.typ, &r.status, &r.attempts); err != nil {
			rows.Close()
			c.err = err
			return
		}
		if _, dup := want[id]; dup {
			c.fail("event %s has two delivery rows for one endpoint", id)
		}
		want[id] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		c.err = err
		return
	}
	calls := d.partner.received()
	ok := map[string]int{}
	hash := map[string][32]byte{}
	wire := 0
	for _, k := range calls {
		wire++
		if !k.verified {
			c.fail("a request for %s (%s) to %s did not verify", k.id, k.typ, k.tenant)
			continue
		}
		if k.id != k.bodyID {
			c.fail("header id %s differs from the body's id %s", k.id, k.bodyID)
		}
		if h, seen := hash[k.id]; seen && h != k.bodyHash {
			c.fail("event %s was sent with two different bodies", k.id)
		}
		hash[k.id] = k.bodyHash
		r, known := want[k.id]
		switch {
		case !known:
			c.fail("the partner received event %s (%s) that no delivery row records", k.id, k.typ)
		case r.tenant != k.tenant:
			c.fail("event %s of %s reached the endpoint of %s", k.id, r.tenant, k.tenant)
		case r.typ != k.typ:
			c.fail("event %s is %s in the database and %s on the wire", k.id, r.typ, k.typ)
		}
		if k.status == http.StatusOK {
			ok[k.id]++
		}
	}
	byType := map[string]int{}
	retried := 0
	for id, r := range want {
		byType[r.typ]++
		if r.attempts > 1 {
			retried++
		}
		if r.status != "DELIVERED" {
			c.fail("%s delivery %s of %s is %s after %d attempts", r.typ, id, r.tenant, r.status, r.attempts)
		}
		if ok[id] == 0 {
			c.fail("%s event %s of %s never reached the partner", r.typ, id, r.tenant)
		}
	}
	var types []string
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)
	if len(types) < len(partnerhooks.EventTypes) {
		c.fail("the day caused %d of the %d event types: %v", len(types), len(partnerhooks.EventTypes), types)
	}
	c.detail = fmt.Sprintf("%d events = %d ids, %d on the wire", len(want), len(ok), wire)
	d.figure("partner webhooks: events by type", fmt.Sprint(byType))
	d.figure("partner webhooks: deliveries that needed a retry", fmt.Sprint(retried))
}
