package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/transaction"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/internal/webhook"
)

// partner is a partner's webhook receiver: it checks every request's
// signature and timestamp with the secrets it was given and keeps what came.
type partner struct {
	mu      sync.Mutex
	secrets []string
	got     []partnerCall
	// failOnce answers the first request of these event types with 500.
	failOnce map[string]bool
}

type partnerCall struct {
	ID, Type string
	Header   http.Header
	Event    webhook.Event
	// Verified is which of the partner's secrets verified the signature
	// ("" when none did).
	Verified []string
	Answered int
}

func (p *partner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	c := partnerCall{ID: r.Header.Get(webhook.HeaderID), Header: r.Header.Clone()}
	_ = json.Unmarshal(body, &c.Event)
	c.Type = c.Event.Type
	for _, s := range p.secrets {
		if webhook.Verify(r.Header.Get(webhook.HeaderSignature), body, s, time.Now(), 5*time.Minute) == nil {
			c.Verified = append(c.Verified, s)
		}
	}
	c.Answered = http.StatusOK
	if len(c.Verified) == 0 {
		c.Answered = http.StatusUnauthorized
	} else if p.failOnce[c.Type] {
		delete(p.failOnce, c.Type)
		c.Answered = http.StatusInternalServerError
	}
	p.got = append(p.got, c)
	w.WriteHeader(c.Answered)
}

func (p *partner) calls() []partnerCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]partnerCall(nil), p.got...)
}

// about returns the 2xx-answered calls about subscriber nuID, by event type.
func (p *partner) about(nuID string) map[string][]partnerCall {
	out := map[string][]partnerCall{}
	for _, c := range p.calls() {
		raw, _ := json.Marshal(c.Event.Data)
		if c.Answered == http.StatusOK && strings.Contains(string(raw), `"`+nuID+`"`) {
			out[c.Type] = append(out[c.Type], c)
		}
	}
	return out
}

// TestPartnerWebhooks runs partner webhooks through the running server and
// its workers: a tenant registers an endpoint (a bad URL is refused), each
// event kind is caused by its real business path (invoice generated, the
// overdue routine, a payment recorded, a refund, staff suspending and
// activating), every delivery reaches the partner signed, one after a 500
// and a retry under the same id; a redelivery carries the same id again; a
// rotated secret signs alongside the previous one. Tenant B and a customer
// reach none of it.
func TestPartnerWebhooks(t *testing.T) {
	m, base, _, pool := securityEnv(t, map[string]string{
		"ISPGRAPH_WEBHOOK_ALLOW_PRIVATE": "true",
		"ISPGRAPH_WEBHOOK_RETRY_BASE":    "1s",
		"ISPGRAPH_WEBHOOK_ATTEMPTS":      "3",
	})
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	tokenB := login(t, base, "t2", "admin@t2.example", "bench-pass-1")
	bg := context.Background()
	t1 := m.DB.Client.Tenant.Query().Where(tenant.Slug("t1")).OnlyX(tenancy.Bypass(bg))
	ctx := viewer.ForTenant(bg, t1.ID)

	var et struct{ WebhookEventTypes []string }
	data(t, post(t, base, token, `{ webhookEventTypes }`, nil), &et)
	if strings.Join(et.WebhookEventTypes, ",") != strings.Join(webhook.EventTypes, ",") {
		t.Fatalf("webhookEventTypes: %v", et.WebhookEventTypes)
	}

	p := &partner{}
	srv := httptest.NewServer(p)
	defer srv.Close()

	create := `mutation($u: String!, $e: [String!]!) { createWebhookEndpoint(input: {url: $u, description: "ERP", events: $e}) {
	  secret webhookEndpoint { id url events enabled } } }`
	for _, bad := range []map[string]any{
		{"u": "ftp://127.0.0.1/x", "e": []string{"payment.completed"}},
		{"u": "not a url", "e": []string{"payment.completed"}},
		{"u": srv.URL, "e": []string{"payment.teleported"}},
		{"u": srv.URL, "e": []string{}},
	} {
		if r := post(t, base, token, create, bad); r.code() != "BAD_USER_INPUT" {
			t.Fatalf("createWebhookEndpoint(%v): %s %+v", bad, r.Data, r.Errors)
		}
	}
	var ce struct {
		CreateWebhookEndpoint struct {
			Secret          string
			WebhookEndpoint struct {
				ID, URL string
				Events  []string
				Enabled bool
			}
		}
	}
	data(t, post(t, base, token, create, map[string]any{"u": srv.URL + "/hooks", "e": webhook.EventTypes}), &ce)
	secret, epID := ce.CreateWebhookEndpoint.Secret, ce.CreateWebhookEndpoint.WebhookEndpoint.ID
	if !strings.HasPrefix(secret, "whsec_") || len(ce.CreateWebhookEndpoint.WebhookEndpoint.Events) != 6 || !ce.CreateWebhookEndpoint.WebhookEndpoint.Enabled {
		t.Fatalf("created: %+v", ce)
	}
	p.mu.Lock()
	p.secrets = []string{secret}
	p.failOnce = map[string]bool{webhook.InvoiceCreated: true} // answered 500 once, then retried
	p.mu.Unlock()
	raw, _ := m.IDs.Decode(epID)
	if ep := m.DB.Client.WebhookEndpoint.GetX(ctx, raw); ep.SecretSealed == secret || strings.Contains(ep.SecretSealed, secret) {
		t.Fatal("the secret is stored in clear")
	}

	// A subscriber of its own, so the events can be told from the seed's.
	var pk struct {
		Packages struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	data(t, post(t, base, token, `{ packages(first: 1, orderBy: {field: NAME}) { edges { node { id } } } }`, nil), &pk)
	var nu struct{ CreateNetworkUser struct{ ID string } }
	data(t, post(t, base, token, `mutation($p: ID!) { createNetworkUser(input: {username: "hooked-1", servicePassword: "pw-1", packageID: $p}) { id } }`,
		map[string]any{"p": pk.Packages.Edges[0].Node.ID}), &nu)
	nuID := nu.CreateNetworkUser.ID

	// invoice.created: staff generate an invoice.
	var gen struct{ GenerateInvoice struct{ ID, Total string } }
	data(t, post(t, base, token, `mutation($id: ID!) { generateInvoice(networkUserID: $id) { id total } }`, map[string]any{"id": nuID}), &gen)
	invID := gen.GenerateInvoice.ID
	rawInv, _ := m.IDs.Decode(invID)

	// invoice.overdue and subscriber.suspended: the overdue routine (the
	// MarkOverdueInvoices job's service call).
	m.DB.Client.Invoice.UpdateOneID(rawInv).SetDueDate(time.Now().AddDate(0, 0, -2)).ExecX(ctx)
	if _, err := m.Billing.ProcessOverdue(ctx); err != nil {
		t.Fatal(err)
	}
	// payment.completed and subscriber.activated: paid in full at the counter.
	var rp struct{ RecordPayment struct{ ID string } }
	data(t, post(t, base, token, `mutation($inv: ID!, $a: Money!) { recordPayment(input: {invoiceID: $inv, amount: $a, method: CASH, idempotencyKey: "hook-pay-1"}) { id } }`,
		map[string]any{"inv": invID, "a": gen.GenerateInvoice.Total}), &rp)
	payID := rp.RecordPayment.ID
	// payment.refunded (the invoice, past due, is overdue again).
	mustData(t, base, token, `mutation($id: ID!) { refundPayment(id: $id, reason: "double charge") { id } }`, map[string]any{"id": payID})
	// Staff suspend and activate.
	mustData(t, base, token, `mutation($id: ID!) { suspendNetworkUser(id: $id, reason: "asked to pause") { id } }`, map[string]any{"id": nuID})
	mustData(t, base, token, `mutation($id: ID!) { activateNetworkUser(id: $id, reason: "back") { id } }`, map[string]any{"id": nuID})
	// A rejected change causes nothing: already active.
	if r := post(t, base, token, `mutation($id: ID!) { activateNetworkUser(id: $id) { id } }`, map[string]any{"id": nuID}); r.code() != "CONFLICT" {
		t.Fatalf("activate twice: %+v", r.Errors)
	}

	want := map[string]int{
		webhook.InvoiceCreated: 1, webhook.InvoiceOverdue: 2, webhook.SubscriberSuspended: 2,
		webhook.PaymentCompleted: 1, webhook.SubscriberActivated: 2, webhook.PaymentRefunded: 1,
	}
	complete := func() bool {
		got := p.about(nuID)
		for k, n := range want {
			if len(got[k]) < n {
				return false
			}
		}
		return true
	}
	waitFor(t, "every event at the partner", complete)
	got := p.about(nuID)
	for k, n := range want {
		if len(got[k]) != n {
			t.Errorf("%s delivered %d times, want %d", k, len(got[k]), n)
		}
	}
	// The payloads: ids and amounts as the API shows them, headers and body agree.
	pay := got[webhook.PaymentCompleted][0]
	pd, _ := pay.Event.Data["payment"].(map[string]any)
	if pay.ID != pay.Event.ID || !strings.HasPrefix(pay.ID, "evt_") || pay.Event.Tenant != "t1" ||
		pd["id"] != payID || pd["invoiceID"] != invID || pd["amount"] != gen.GenerateInvoice.Total || pd["status"] != "COMPLETED" ||
		pay.Header.Get("Content-Type") != "application/json" || pay.Header.Get(webhook.HeaderTimestamp) == "" {
		t.Fatalf("payment.completed: %+v", pay)
	}

	// The retried delivery: one 500, then a 2xx, under one id.
	created := got[webhook.InvoiceCreated][0]
	var same []partnerCall
	for _, c := range p.calls() {
		if c.ID == created.ID {
			same = append(same, c)
		}
	}
	if len(same) != 2 || same[0].Answered != 500 || same[1].Answered != 200 {
		t.Fatalf("invoice.created on the wire: %+v", same)
	}
	type attempt struct {
		StatusCode *int
		Error      *string
		Redelivery bool
	}
	type delivery struct {
		ID, EventID, EventType, Status string
		AttemptCount                   int
		Attempts                       []attempt
	}
	var dl struct {
		WebhookDeliveries struct {
			TotalCount int
			Edges      []struct{ Node delivery }
		}
	}
	listQ := `query($e: ID!) { webhookDeliveries(first: 50, where: {hasEndpointWith: {id: $e}}, orderBy: {field: CREATED_AT}) { totalCount edges { node {
	  id eventID eventType status attemptCount attempts { statusCode error redelivery durationMs attemptedAt } } } } }`
	// The worker records an attempt after the partner's answer, so the row
	// may lag the wire for a moment: read until it is no longer PENDING.
	var createdDelivery delivery
	waitFor(t, "the retried delivery recorded", func() bool {
		data(t, post(t, base, token, listQ, map[string]any{"e": epID}), &dl)
		for _, e := range dl.WebhookDeliveries.Edges {
			if e.Node.EventID == created.ID {
				createdDelivery = e.Node
			}
		}
		return createdDelivery.Status != "PENDING"
	})
	if createdDelivery.Status != "DELIVERED" || createdDelivery.AttemptCount != 2 || len(createdDelivery.Attempts) != 2 ||
		*createdDelivery.Attempts[0].StatusCode != 500 || createdDelivery.Attempts[0].Error == nil ||
		*createdDelivery.Attempts[1].StatusCode != 200 || createdDelivery.Attempts[1].Error != nil {
		t.Fatalf("the retried delivery: %+v", createdDelivery)
	}

	// Tenant B and a customer see and change none of it.
	var lb struct {
		WebhookEndpoints  struct{ TotalCount int }
		WebhookDeliveries struct{ TotalCount int }
	}
	data(t, post(t, base, tokenB, `{ webhookEndpoints { totalCount } webhookDeliveries { totalCount } }`, nil), &lb)
	if lb.WebhookEndpoints.TotalCount != 0 || lb.WebhookDeliveries.TotalCount != 0 {
		t.Fatalf("tenant B lists %+v", lb)
	}
	for _, q := range []string{
		`mutation($id: ID!) { redeliverWebhook(deliveryID: $id) { id } }`,
	} {
		if r := post(t, base, tokenB, q, map[string]any{"id": createdDelivery.ID}); r.code() != "NOT_FOUND" {
			t.Fatalf("tenant B: %s: %s %+v", q, r.Data, r.Errors)
		}
	}
	for _, q := range []string{
		`mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { id } }`,
		`mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`,
		`mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }`,
		`query($id: ID!) { node(id: $id) { id } }`,
	} {
		if r := post(t, base, tokenB, q, map[string]any{"id": epID}); r.code() != "NOT_FOUND" {
			t.Fatalf("tenant B: %s: %s %+v", q, r.Data, r.Errors)
		}
	}
	mustData(t, base, token, `mutation($id: ID!) { setPortalPassword(networkUserID: $id, password: "portal-pass-42") { id } }`, map[string]any{"id": nuID})
	cust := customerLogin(t, base, "t1", "hooked-1", "portal-pass-42")
	if r := post(t, base, cust, `{ webhookEndpoints { totalCount } }`, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("a customer lists webhook endpoints: %s %+v", r.Data, r.Errors)
	}
	if r := post(t, base, cust, `mutation($id: ID!) { redeliverWebhook(deliveryID: $id) { id } }`, map[string]any{"id": createdDelivery.ID}); r.code() != "FORBIDDEN" {
		t.Fatalf("a customer redelivers: %s %+v", r.Data, r.Errors)
	}

	// Rotation: the new secret shown once; both secrets sign for a while.
	var rot struct{ RotateWebhookSecret struct{ Secret string } }
	data(t, post(t, base, token, `mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, map[string]any{"id": epID}), &rot)
	newSecret := rot.RotateWebhookSecret.Secret
	if newSecret == secret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("rotated secret %q", newSecret)
	}
	p.mu.Lock()
	p.secrets = []string{secret, newSecret}
	p.mu.Unlock()

	// While an attempt holds the delivery (a job mid-request), a redelivery
	// is refused at once instead of waiting for it.
	rawDel, _ := m.IDs.Decode(createdDelivery.ID)
	tx, err := pool.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(bg, `SELECT id FROM webhook_deliveries WHERE id = $1 FOR UPDATE`, rawDel); err != nil {
		t.Fatal(err)
	}
	r := post(t, base, token, `mutation($id: ID!) { redeliverWebhook(deliveryID: $id) { status } }`, map[string]any{"id": createdDelivery.ID})
	tx.Rollback(bg)
	if r.code() != "CONFLICT" {
		t.Fatalf("redeliver while an attempt holds the delivery: %s %+v", r.Data, r.Errors)
	}

	// Redelivery: the same id and body again, recorded as an attempt.
	before := len(p.calls())
	var rd struct{ RedeliverWebhook struct{ Status string } }
	data(t, post(t, base, token, `mutation($id: ID!) { redeliverWebhook(deliveryID: $id) { status } }`, map[string]any{"id": createdDelivery.ID}), &rd)
	if rd.RedeliverWebhook.Status != "PENDING" {
		t.Fatalf("redeliver answered %+v", rd)
	}
	waitFor(t, "the redelivery", func() bool { return len(p.calls()) > before })
	again := p.calls()[before]
	if again.ID != created.ID || again.Event.CreatedAt != created.Event.CreatedAt || len(again.Verified) != 2 || again.Answered != 200 {
		t.Fatalf("redelivered: %+v (first: %+v)", again, created)
	}
	var one struct {
		Node delivery
	}
	waitFor(t, "the redelivery recorded", func() bool {
		data(t, post(t, base, token, `query($id: ID!) { node(id: $id) { ... on WebhookDelivery { id eventID status attemptCount attempts { statusCode redelivery } } } }`,
			map[string]any{"id": createdDelivery.ID}), &one)
		return one.Node.AttemptCount == 3
	})
	if one.Node.Status != "DELIVERED" || len(one.Node.Attempts) != 3 || !one.Node.Attempts[2].Redelivery {
		t.Fatalf("after the redelivery: %+v", one.Node)
	}

	// The job run again for an attempt already made posts nothing.
	calls := len(p.calls())
	if err := m.Webhooks.Deliver(bg, jobs.DeliverWebhookArgs{TenantID: t1.ID, DeliveryID: rawDel, After: 1}); err != nil {
		t.Fatal(err)
	}
	if len(p.calls()) != calls {
		t.Fatal("a job for an attempt already made posted again")
	}
	// A change that rolls back records no event.
	n0 := m.DB.Client.WebhookDelivery.Query().CountX(ctx)
	rawNU, _ := m.IDs.Decode(nuID)
	errRollback := errors.New("rolled back")
	if err := transaction.Run(ctx, m.DB.Client, func(ctx context.Context, c *ent.Client) error {
		if _, err := m.Billing.SuspendNetworkUser(ctx, rawNU, "rolled back"); err != nil {
			return err
		}
		if c.WebhookDelivery.Query().CountX(ctx) == n0 {
			t.Error("the suspension recorded no delivery in its transaction")
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	if m.DB.Client.WebhookDelivery.Query().CountX(ctx) != n0 {
		t.Fatal("a rolled-back suspension left a delivery")
	}

	// A disabled endpoint gets no new deliveries; deleting removes it.
	mustData(t, base, token, `mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { id } }`, map[string]any{"id": epID})
	n := m.DB.Client.WebhookDelivery.Query().CountX(ctx)
	mustData(t, base, token, `mutation($id: ID!) { suspendNetworkUser(id: $id, reason: "again") { id } }`, map[string]any{"id": nuID})
	if m.DB.Client.WebhookDelivery.Query().CountX(ctx) != n {
		t.Fatal("a disabled endpoint got a delivery")
	}
	mustData(t, base, token, `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }`, map[string]any{"id": epID})
	if m.DB.Client.WebhookDelivery.Query().CountX(ctx) != 0 || m.DB.Client.WebhookAttempt.Query().CountX(ctx) != 0 {
		t.Fatal("deliveries left after the endpoint was deleted")
	}
}
