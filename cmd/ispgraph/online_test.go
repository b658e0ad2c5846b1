package main

import (
	"bytes"
	"context"
	"fmt"
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
	// A second click opens no second session: the same payment and page.
	var again struct {
		StartInvoicePayment struct {
			RedirectURL string
			Payment     struct{ ID string }
		}
	}
	data(t, post(t, base, cust, start, vars), &again)
	if again.StartInvoicePayment.Payment.ID != payID || again.StartInvoicePayment.RedirectURL != sessions[0].URL || len(stripe.Sessions()) != 1 {
		t.Fatalf("second startInvoicePayment: %+v; %d sessions at Stripe", again, len(stripe.Sessions()))
	}
	// The bKash callback route is served (a Stripe gateway's id is unknown to it).
	if resp, err := http.Get(base + "/webhooks/bkash/" + gwID + "?paymentID=TR1&status=success"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bKash callback route with a Stripe gateway: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
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
	waitFor(t, "both startInvoicePayment calls audited as the customer", func() bool {
		return m.DB.Client.AuditLog.Query().Where(auditlog.Action("mutation.startInvoicePayment"), auditlog.ActorKind("customer")).CountX(ctx) == 2
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

// TestCustomerPortalSelfService: a portal customer changes their password
// (their other sessions end), renews by buying another package and paying it
// on Stripe (a PREPAID subscriber is then served to the month's end), and
// reads their usage; tenant B's staff and packages stay out of reach.
func TestCustomerPortalSelfService(t *testing.T) {
	stripe := gatewaytest.NewStripe("sk_test_e2e_0123456789")
	srv := httptest.NewServer(stripe)
	defer srv.Close()
	m, base, _, _ := securityEnv(t, map[string]string{"ISPGRAPH_STRIPE_BASE_URL": srv.URL})
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	tokenB := login(t, base, "t2", "admin@t2.example", "bench-pass-1")
	bg := context.Background()
	t1 := m.DB.Client.Tenant.Query().Where(tenant.Slug("t1")).OnlyX(tenancy.Bypass(bg))
	ctx := viewer.ForTenant(bg, t1.ID)

	var pk struct{ CreatePackage struct{ ID string } }
	data(t, post(t, base, token, `mutation { createPackage(input: {name: "Portal 50M", bandwidthUpKbps: 20000, bandwidthDownKbps: 50000, price: "900.00", billingCycle: MONTHLY}) { id } }`, nil), &pk)
	var pkB struct {
		Packages struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	data(t, post(t, base, tokenB, `{ packages(first: 1) { edges { node { id } } } }`, nil), &pkB)
	var nu struct{ CreateNetworkUser struct{ ID string } }
	data(t, post(t, base, token, `mutation { createNetworkUser(input: {username: "portal-1", servicePassword: "pw-1", billingType: PREPAID}) { id } }`, nil), &nu)
	nuID := nu.CreateNetworkUser.ID
	var gw struct{ CreatePaymentGateway struct{ ID string } }
	data(t, post(t, base, token, `mutation { createPaymentGateway(input: {provider: STRIPE, name: "Stripe"}) { id } }`, nil), &gw)
	mustData(t, base, token, `mutation($id: ID!, $c: Map!) { setPaymentGatewayConfiguration(id: $id, configuration: $c) { id } }`,
		map[string]any{"id": gw.CreatePaymentGateway.ID, "c": map[string]any{"secret_key": "sk_test_e2e_0123456789", "webhook_secret": "whsec_e2e"}})
	mustData(t, base, token, `mutation($id: ID!) { setPortalPassword(networkUserID: $id, password: "portal-pass-42") { id } }`, map[string]any{"id": nuID})

	// Two sessions; a password change from one ends the other.
	cust := customerLogin(t, base, "t1", "portal-1", "portal-pass-42")
	other := customerLogin(t, base, "t1", "portal-1", "portal-pass-42")
	change := `mutation($c: String!) { changePassword(input: {currentPassword: $c, newPassword: "portal-pass-new-7"}) }`
	if r := post(t, base, cust, change, map[string]any{"c": "wrong-password-1"}); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("wrong current password: %s %+v", r.Data, r.Errors)
	}
	mustData(t, base, cust, change, map[string]any{"c": "portal-pass-42"})
	if r := post(t, base, other, `{ viewer { kind } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("the other session after the change: %s %+v", r.Data, r.Errors)
	}
	mustData(t, base, cust, `{ viewer { kind } }`, nil)
	cust = customerLogin(t, base, "t1", "portal-1", "portal-pass-new-7")

	// Renew with another package: refused for staff, for another tenant's
	// package; then the invoice of the month for the new package.
	renew := `mutation($p: ID, $gw: ID!) { renewPackage(packageID: $p, gatewayID: $gw, returnURL: "https://portal.t1.example/pay") {
	  redirectURL payment { id amount status invoice { id total package { id } } } } }`
	if r := post(t, base, tokenB, renew, map[string]any{"p": pk.CreatePackage.ID, "gw": gw.CreatePaymentGateway.ID}); r.code() != "FORBIDDEN" {
		t.Fatalf("tenant B's staff renewing: %s %+v", r.Data, r.Errors)
	}
	if r := post(t, base, cust, renew, map[string]any{"p": pkB.Packages.Edges[0].Node.ID, "gw": gw.CreatePaymentGateway.ID}); r.code() != "NOT_FOUND" {
		t.Fatalf("buying tenant B's package: %s %+v", r.Data, r.Errors)
	}
	var rn struct {
		RenewPackage struct {
			RedirectURL string
			Payment     struct {
				ID, Amount, Status string
				Invoice            struct {
					ID, Total string
					Package   struct{ ID string }
				}
			}
		}
	}
	data(t, post(t, base, cust, renew, map[string]any{"p": pk.CreatePackage.ID, "gw": gw.CreatePaymentGateway.ID}), &rn)
	p := rn.RenewPackage.Payment
	if p.Status != "PENDING" || p.Amount != p.Invoice.Total || p.Invoice.Package.ID != pk.CreatePackage.ID || len(stripe.Sessions()) != 1 {
		t.Fatalf("renewPackage: %+v", rn)
	}
	session := stripe.Sessions()[0].ID
	stripe.Pay(session)
	event := stripe.Event("evt_renew_1", "checkout.session.completed", session)
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/stripe/"+gw.CreatePaymentGateway.ID, bytes.NewReader(event))
	req.Header.Set("Stripe-Signature", gateway.SignStripe("whsec_e2e", time.Now(), event))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	rawNU, _ := m.IDs.Decode(nuID)
	rawInv, _ := m.IDs.Decode(p.Invoice.ID)
	sub := m.DB.Client.NetworkUser.GetX(ctx, rawNU)
	inv := m.DB.Client.Invoice.GetX(ctx, rawInv)
	if inv.Status != invoice.StatusPAID || sub.ExpiresAt == nil || !sub.ExpiresAt.Equal(inv.PeriodEnd) {
		t.Fatalf("after paying the renewal: invoice %s, subscriber expires %v (period end %s)", inv.Status, sub.ExpiresAt, inv.PeriodEnd)
	}
	// Renewing again bills the next month.
	data(t, post(t, base, cust, renew, map[string]any{"p": nil, "gw": gw.CreatePaymentGateway.ID}), &rn)
	if next := m.DB.Client.Invoice.GetX(ctx, mustID(t, m, rn.RenewPackage.Payment.Invoice.ID)); !next.PeriodStart.After(inv.PeriodEnd) {
		t.Fatalf("second renewal billed %s, want the month after %s", next.PeriodStart, inv.PeriodEnd)
	}

	// Usage counts the sessions seen in the last 30 days.
	rt := m.DB.Client.Router.Create().SetName("usage").SetHost("127.0.0.1").SetUsername("api").SaveX(ctx)
	now := time.Now()
	for i, s := range []struct {
		user    int
		in, out int64
		seen    time.Time
	}{{rawNU, 1000, 5000, now}, {rawNU, 200, 700, now.AddDate(0, 0, -3)}, {rawNU, 9, 9, now.AddDate(0, 0, -40)}} {
		m.DB.Client.NetworkSession.Create().SetRouterID(rt.ID).SetNetworkUserID(s.user).SetKind("PPPOE").SetUsername("portal-1").SetRouterSessionID(fmt.Sprintf("*%d", i)).
			SetBytesIn(s.in).SetBytesOut(s.out).SetUptimeSeconds(60).SetStartedAt(s.seen.Add(-time.Hour)).SetLastSeenAt(s.seen).SaveX(ctx)
	}
	var u struct {
		CustomerDashboard struct {
			Usage struct {
				Sessions                         int
				BytesIn, BytesOut, UptimeSeconds string
			}
		}
	}
	data(t, post(t, base, cust, `{ customerDashboard { usage { sessions bytesIn bytesOut uptimeSeconds } } }`, nil), &u)
	if got := u.CustomerDashboard.Usage; got.Sessions != 2 || got.BytesIn != "1200" || got.BytesOut != "5700" || got.UptimeSeconds != "120" {
		t.Fatalf("usage: %+v", got)
	}
}

func mustID(t *testing.T, m *Main, id string) int {
	t.Helper()
	n, err := m.IDs.Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
