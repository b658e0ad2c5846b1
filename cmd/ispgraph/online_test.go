package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent/auditlog"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/gateway/gatewaytest"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// TestCustomerPaysOnlineEndToEnd runs the portal's online payment through
// the running server: a subscriber suspended on a (fake) router for an
// overdue invoice logs in to the portal, starts paying through a Stripe
// gateway (a Checkout Session on the Stripe double), pays on Stripe's page,
// and Stripe's signed webhook completes the payment, settles the invoice and
// reactivates the subscriber, whom the real workers enable on the router.
// A replayed webhook changes nothing; tenant B reaches none of it.
func TestCustomerPaysOnlineEndToEnd(t *testing.T) {
	stripe := gatewaytest.NewStripe("sk_test_e2e_0123456789")
	srv := httptest.NewServer(stripe)
	defer srv.Close()
	m, base, _, _ := securityEnv(t, map[string]string{"ISPGRAPH_STRIPE_BASE_URL": srv.URL})
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	tokenB := login(t, base, "t2", "admin@t2.example", "bench-pass-1")
	bg := context.Background()
	t1 := m.DB.Client.Tenant.Query().Where(tenant.Slug("t1")).OnlyX(tenancy.Bypass(bg))
	ctx := viewer.ForTenant(bg, t1.ID)

	fake := routerostest.Start(t)
	fake.Password = ""
	var rt struct{ CreateRouter struct{ ID string } }
	data(t, post(t, base, token, `mutation($p: Int!) { createRouter(input: {name: "Fake", host: "127.0.0.1", apiPort: $p, username: "ispgraph"}) { id } }`,
		map[string]any{"p": fake.Port()}), &rt)
	var pk struct {
		Packages struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	data(t, post(t, base, token, `{ packages(first: 1, orderBy: {field: NAME}) { edges { node { id } } } }`, nil), &pk)
	var nu struct{ CreateNetworkUser struct{ ID string } }
	data(t, post(t, base, token, `mutation($r: ID!, $p: ID!) { createNetworkUser(input: {username: "payer-1", servicePassword: "pw-1", email: "payer@t1.example", routerID: $r, packageID: $p}) { id } }`,
		map[string]any{"r": rt.CreateRouter.ID, "p": pk.Packages.Edges[0].Node.ID}), &nu)
	nuID := nu.CreateNetworkUser.ID
	waitFor(t, "the subscriber on the router", func() bool { return fake.Find("/ppp/secret", "payer-1") != nil })

	// Billed, overdue, suspended by the overdue routine: disabled on the router.
	var gen struct{ GenerateInvoice struct{ ID, Total string } }
	data(t, post(t, base, token, `mutation($id: ID!) { generateInvoice(networkUserID: $id) { id total } }`, map[string]any{"id": nuID}), &gen)
	invID := gen.GenerateInvoice.ID
	rawInv, _ := m.IDs.Decode(invID)
	m.DB.Client.Invoice.UpdateOneID(rawInv).SetDueDate(time.Now().AddDate(0, 0, -2)).ExecX(ctx)
	if _, err := m.Billing.ProcessOverdue(ctx); err != nil {
		t.Fatal(err)
	}
	if inv := m.DB.Client.Invoice.GetX(ctx, rawInv); inv.Status != invoice.StatusOVERDUE {
		t.Fatalf("invoice after the overdue run: %s", inv.Status)
	}
	waitFor(t, "the subscriber disabled on the router", func() bool { return fake.Find("/ppp/secret", "payer-1")["disabled"] == "true" })

	// The tenant's Stripe gateway.
	var gw struct{ CreatePaymentGateway struct{ ID string } }
	data(t, post(t, base, token, `mutation { createPaymentGateway(input: {provider: STRIPE, name: "Stripe", testMode: true}) { id } }`, nil), &gw)
	gwID := gw.CreatePaymentGateway.ID
	mustData(t, base, token, `mutation($id: ID!, $c: Map!) { setPaymentGatewayConfiguration(id: $id, configuration: $c) { id } }`,
		map[string]any{"id": gwID, "c": map[string]any{"secret_key": "sk_test_e2e_0123456789", "webhook_secret": "whsec_e2e"}})

	// The customer, in the portal.
	mustData(t, base, token, `mutation($id: ID!) { setPortalPassword(networkUserID: $id, password: "portal-pass-42") { id } }`, map[string]any{"id": nuID})
	cust := customerLogin(t, base, "t1", "payer-1", "portal-pass-42")
	start := `mutation($inv: ID!, $gw: ID!) { startInvoicePayment(invoiceID: $inv, gatewayID: $gw, returnURL: "https://portal.t1.example/pay") {
	  redirectURL payment { id status amount } } }`
	vars := map[string]any{"inv": invID, "gw": gwID}
	if r := post(t, base, tokenB, start, vars); r.code() != "NOT_FOUND" {
		t.Fatalf("tenant B started a payment of A's invoice: %s %+v", r.Data, r.Errors)
	}
	var st struct {
		StartInvoicePayment struct {
			RedirectURL string
			Payment     struct{ ID, Status, Amount string }
		}
	}
	data(t, post(t, base, cust, start, vars), &st)
	sessions := stripe.Sessions()
	if len(sessions) != 1 || st.StartInvoicePayment.RedirectURL != sessions[0].URL || st.StartInvoicePayment.Payment.Status != "PENDING" ||
		st.StartInvoicePayment.Payment.Amount != gen.GenerateInvoice.Total {
		t.Fatalf("startInvoicePayment: %+v, sessions at Stripe: %+v", st, sessions)
	}
	payID := st.StartInvoicePayment.Payment.ID
	if r := post(t, base, tokenB, `mutation($id: ID!) { confirmInvoicePayment(paymentID: $id) { status } }`, map[string]any{"id": payID}); r.code() != "NOT_FOUND" {
		t.Fatalf("tenant B confirmed A's payment: %s %+v", r.Data, r.Errors)
	}

	// The customer pays on Stripe's page; Stripe calls the webhook.
	// Stripe's events may come in any order: the PaymentIntent's success
	// (which names the payment by number in its metadata) before the
	// session's completion.
	stripe.Pay(sessions[0].ID)
	hook := func(event []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/stripe/"+gwID, bytes.NewReader(event))
		req.Header.Set("Stripe-Signature", gateway.SignStripe("whsec_e2e", time.Now(), event))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := hook(stripe.IntentEvent("evt_online_1", "payment_intent.succeeded", sessions[0].ID)); code != http.StatusOK || !strings.Contains(body, "completed payment") {
		t.Fatalf("payment_intent.succeeded: %d %s", code, body)
	}
	event := stripe.Event("evt_online_2", "checkout.session.completed", sessions[0].ID)
	if code, body := hook(event); code != http.StatusOK || !strings.Contains(body, "completed payment") {
		t.Fatalf("checkout.session.completed: %d %s", code, body)
	}
	waitFor(t, "the subscriber enabled on the router", func() bool { return fake.Find("/ppp/secret", "payer-1")["disabled"] == "false" })
	provisions := m.DB.Client.OutboxJob.Query().Where(outboxjob.JobName(jobs.RouterProvision)).CountX(ctx)
	if code, body := hook(event); code != http.StatusOK || !strings.Contains(body, "duplicate") {
		t.Fatalf("replayed webhook: %d %s", code, body)
	}

	// Back on the return page, the portal confirms: already decided, so
	// Stripe is not asked again.
	asked := len(stripe.Requests())
	var conf struct{ ConfirmInvoicePayment struct{ Status string } }
	data(t, post(t, base, cust, `mutation($id: ID!) { confirmInvoicePayment(paymentID: $id) { status } }`, map[string]any{"id": payID}), &conf)
	if conf.ConfirmInvoicePayment.Status != "COMPLETED" || len(stripe.Requests()) != asked {
		t.Fatalf("confirm after the webhook: %+v (Stripe asked %d more times)", conf, len(stripe.Requests())-asked)
	}
	var after struct {
		CustomerDashboard struct {
			NetworkUser struct{ Status string }
			AmountDue   string
		}
	}
	data(t, post(t, base, cust, `{ customerDashboard { networkUser { status } amountDue } }`, nil), &after)
	if after.CustomerDashboard.NetworkUser.Status != "ACTIVE" || after.CustomerDashboard.AmountDue != "0.00" {
		t.Fatalf("portal after paying: %+v", after)
	}
	if inv := m.DB.Client.Invoice.GetX(ctx, rawInv); inv.Status != invoice.StatusPAID || inv.AmountPaid.String() != gen.GenerateInvoice.Total {
		t.Fatalf("invoice after paying: %s %s", inv.Status, inv.AmountPaid)
	}
	// The replay queued nothing more for the router.
	if n := m.DB.Client.OutboxJob.Query().Where(outboxjob.JobName(jobs.RouterProvision)).CountX(ctx); n != provisions {
		t.Fatalf("the replay queued router changes: %d → %d", provisions, n)
	}
	waitFor(t, "startInvoicePayment audited as the customer", func() bool {
		return m.DB.Client.AuditLog.Query().Where(auditlog.Action("mutation.startInvoicePayment"), auditlog.ActorKind("customer")).CountX(ctx) == 1
	})
}

// waitFor polls cond every 50 ms for up to 60 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
