package workers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/webhookdelivery"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/secret"
	"github.com/ispgraph/ispgraph/internal/webhook"
)

// testWebhooks is the webhook service of the workers' tests: private
// addresses allowed (the receivers are httptest servers), three attempts a
// second apart.
func testWebhooks(t testing.TB, c *ent.Client) *webhook.Service {
	box, err := secret.New(secretKey)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := gid.New(secretKey)
	if err != nil {
		t.Fatal(err)
	}
	p := webhook.Policy{AllowPrivate: true}
	return &webhook.Service{Client: c, Secrets: box, IDs: ids, Policy: p, HTTP: p.HTTPClient(5 * time.Second),
		Attempts: 3, RetryBase: time.Second}
}

// TestWebhookRetriesThenFails: an endpoint that always answers 500 gets the
// delivery's three attempts, each recorded, a backoff apart, under one event
// id; the delivery ends FAILED and every outbox row of it is DONE.
func TestWebhookRetriesThenFails(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get(webhook.HeaderID))
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	o := e.options()
	hooks := o.Webhooks
	e.client.Use(hooks.Hook())
	if _, _, err := hooks.CreateEndpoint(e.ctx, webhook.EndpointInput{URL: &srv.URL, Events: []string{webhook.SubscriberSuspended}}); err != nil {
		t.Fatal(err)
	}
	e.start(o)
	b := &billing.Service{Client: e.client}
	if _, err := b.SuspendNetworkUser(e.ctx, e.userID, "webhook test"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Second)
	var d *ent.WebhookDelivery
	for {
		d = e.client.WebhookDelivery.Query().WithAttempts().OnlyX(e.ctx)
		if d.Status != webhookdelivery.StatusPENDING || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d.Status != webhookdelivery.StatusFAILED || d.AttemptCount != 3 || len(d.Edges.Attempts) != 3 {
		t.Fatalf("delivery %s after %d attempts (%d recorded)", d.Status, d.AttemptCount, len(d.Edges.Attempts))
	}
	for _, a := range d.Edges.Attempts {
		if a.StatusCode == nil || *a.StatusCode != 500 || a.Error == nil {
			t.Errorf("attempt: %+v", a)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != d.EventID || got[1] != d.EventID || got[2] != d.EventID {
		t.Fatalf("the receiver got %v, want %s three times", got, d.EventID)
	}
	// One outbox row per attempt: the first written with the suspension,
	// each later one by the attempt before it, after its backoff.
	rows := e.client.OutboxJob.Query().Where(outboxjob.JobName("DeliverWebhook")).Order(ent.Asc(outboxjob.FieldID)).AllX(e.ctx)
	if len(rows) != 3 {
		t.Fatalf("%d DeliverWebhook outbox rows, want 3", len(rows))
	}
	for i, r := range rows {
		if want := fmt.Sprintf("webhook:%d:%d", d.ID, i); r.DedupKey == nil || *r.DedupKey != want {
			t.Errorf("outbox row %d: dedup key %v, want %s", i, r.DedupKey, want)
		}
	}
	if n := e.client.OutboxJob.Query().Where(outboxjob.JobName("DeliverWebhook"), outboxjob.StatusNEQ(outboxjob.StatusDONE)).CountX(e.ctx); n != 0 {
		// The last row is marked DONE right after its handler returns.
		time.Sleep(time.Second)
		if n = e.client.OutboxJob.Query().Where(outboxjob.JobName("DeliverWebhook"), outboxjob.StatusNEQ(outboxjob.StatusDONE)).CountX(e.ctx); n != 0 {
			t.Errorf("%d DeliverWebhook outbox rows not DONE", n)
		}
	}
}

// TestPruneWebhookDeliveries: the daily schedule's service call removes
// settled deliveries past the retention with their attempts, and keeps
// recent and pending ones.
func TestPruneWebhookDeliveries(t *testing.T) {
	e := newEnv(t)
	hooks := testWebhooks(t, e.client)
	url := "http://127.0.0.1:1/hooks"
	ep, _, err := hooks.CreateEndpoint(e.ctx, webhook.EndpointInput{URL: &url, Events: []string{webhook.PaymentCompleted}})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-webhook.Retention - time.Hour)
	mk := func(id string, status webhookdelivery.Status, at time.Time) *ent.WebhookDelivery {
		d := e.client.WebhookDelivery.Create().SetEndpointID(ep.ID).SetEventID(id).SetEventType(webhook.PaymentCompleted).
			SetPayload("{}").SetStatus(status).SetCreatedAt(at).SaveX(e.ctx)
		e.client.WebhookAttempt.Create().SetDeliveryID(d.ID).SetAttemptedAt(at).SetStatusCode(200).ExecX(e.ctx)
		return d
	}
	mk("evt_old_delivered", webhookdelivery.StatusDELIVERED, old)
	mk("evt_old_failed", webhookdelivery.StatusFAILED, old)
	pending := mk("evt_old_pending", webhookdelivery.StatusPENDING, old)
	recent := mk("evt_recent", webhookdelivery.StatusDELIVERED, time.Now())
	n, err := hooks.Prune(e.ctx, time.Now().Add(-webhook.Retention))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2", n, err)
	}
	left := e.client.WebhookDelivery.Query().Order(ent.Asc(webhookdelivery.FieldID)).IDsX(e.ctx)
	if len(left) != 2 || left[0] != pending.ID || left[1] != recent.ID {
		t.Fatalf("left %v, want the pending and the recent delivery", left)
	}
	if a := e.client.WebhookAttempt.Query().CountX(e.ctx); a != 2 {
		t.Fatalf("%d attempts left, want 2", a)
	}
}
