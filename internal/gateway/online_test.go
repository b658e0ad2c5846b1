package gateway_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/gateway/gatewaytest"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/secret"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// onlineFixture is a tenant with a subscriber suspended for an overdue
// invoice of 10.00 (2.50 already paid) and a configured Stripe gateway.
type onlineFixture struct {
	ctx  context.Context
	user *ent.NetworkUser
	inv  *ent.Invoice
	gw   *ent.PaymentGateway
}

func newOnlineTenant(t *testing.T, c *ent.Client, gws *gateway.Service, slug string) onlineFixture {
	t.Helper()
	return newProviderTenant(t, c, gws, slug, paymentgateway.ProviderSTRIPE,
		map[string]any{"secret_key": "sk_test_online", "webhook_secret": "whsec_" + slug})
}

// newProviderTenant is newOnlineTenant with a gateway of provider configured with conf.
func newProviderTenant(t *testing.T, c *ent.Client, gws *gateway.Service, slug string, provider paymentgateway.Provider, conf map[string]any) onlineFixture {
	t.Helper()
	ten := c.Tenant.Create().SetName(slug).SetSlug(slug).SetDomain(slug + ".example").SetCurrency("BDT").
		SaveX(tenancy.Bypass(context.Background()))
	ctx := viewer.ForTenant(context.Background(), ten.ID)
	r := c.Router.Create().SetName("core").SetHost("127.0.0.1").SetUsername("api").SaveX(ctx)
	u := c.NetworkUser.Create().SetRouterID(r.ID).SetUsername("alice").SetFullName("Alice").SetEmail("alice@" + slug + ".example").
		SetStatus(networkuser.StatusSUSPENDED).SetSuspensionReason(billing.OverdueReason).SaveX(ctx)
	now := time.Now()
	total := money.MustParse("10.00")
	inv := c.Invoice.Create().SetNetworkUserID(u.ID).SetNumber("INV-" + slug).SetAmount(total).SetTax(0).SetTotal(total).
		SetStatus(invoice.StatusOVERDUE).SetPeriodStart(now.AddDate(0, -1, 0)).SetPeriodEnd(now).
		SetIssuedAt(now.AddDate(0, 0, -20)).SetDueDate(now.AddDate(0, 0, -5)).SaveX(ctx)
	if _, err := (&billing.Service{Client: c}).RecordPayment(ctx, billing.PaymentInput{InvoiceID: inv.ID,
		Amount: money.MustParse("2.50"), Method: payment.MethodCASH, IdempotencyKey: "cash-" + slug}); err != nil {
		t.Fatal(err)
	}
	sealed, summary, err := gws.Seal(conf)
	if err != nil {
		t.Fatal(err)
	}
	gw := c.PaymentGateway.Create().SetProvider(provider).SetName(string(provider)).
		SetConfigEncrypted(sealed).SetConfigSummary(summary).SaveX(ctx)
	return onlineFixture{ctx: ctx, user: u, inv: c.Invoice.GetX(ctx, inv.ID), gw: gw}
}

func customer(f onlineFixture, networkUserID int) context.Context {
	v := viewer.FromContext(f.ctx)
	return viewer.NewContext(context.Background(), &viewer.Viewer{Kind: viewer.Customer, TenantID: v.TenantID,
		NetworkUserID: networkUserID, Permissions: authz.CustomerPermissions()})
}

// TestOnlinePayment starts a payment as the portal customer against a
// Stripe double speaking the Checkout Sessions API, then confirms it the way
// the return page does: open leaves it PENDING, paid completes it, settles
// the invoice and reactivates the subscriber on the router (outbox).
func TestOnlinePayment(t *testing.T) {
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, testenv.PostgresURL(t), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	c := db.Client
	mikrotik.Install(c)
	stripe := gatewaytest.NewStripe("sk_test_online")
	srv := httptest.NewServer(stripe)
	defer srv.Close()
	box, err := secret.New(newKey)
	if err != nil {
		t.Fatal(err)
	}
	gws, err := gateway.New(box, srv.Client(), gateway.BaseURLs{Stripe: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	bill := &billing.Service{Client: c}
	online, err := gateway.NewOnline(c, gws, bill)
	if err != nil {
		t.Fatal(err)
	}
	a := newOnlineTenant(t, c, gws, "online-a")
	b := newOnlineTenant(t, c, gws, "online-b")
	other := c.NetworkUser.Create().SetUsername("bob").SaveX(a.ctx)
	const ret = "https://portal.online-a.example/pay"

	// Refused before anything is stored: another tenant's invoice or
	// gateway, another subscriber's invoice, a bad return URL, a provider
	// that refuses.
	refused := []struct {
		name string
		ctx  context.Context
		inv  int
		gw   int
		ret  string
		code apperr.Code
	}{
		{"tenant B's invoice", customer(b, b.user.ID), a.inv.ID, b.gw.ID, ret, apperr.NotFound},
		{"tenant B's staff", b.ctx, a.inv.ID, a.gw.ID, ret, apperr.NotFound},
		{"tenant B's gateway", customer(a, a.user.ID), a.inv.ID, b.gw.ID, ret, apperr.NotFound},
		{"another subscriber's invoice", customer(a, other.ID), a.inv.ID, a.gw.ID, ret, apperr.NotFound},
		{"javascript return URL", customer(a, a.user.ID), a.inv.ID, a.gw.ID, "javascript:alert(1)", apperr.BadUserInput},
	}
	for _, r := range refused {
		if _, _, err := online.StartInvoicePayment(r.ctx, r.inv, r.gw, r.ret); apperr.CodeOf(err) != r.code {
			t.Fatalf("%s: %v, want %s", r.name, err, r.code)
		}
	}
	stripe.Refuse("Invalid currency: xyz")
	if _, _, err := online.StartInvoicePayment(customer(a, a.user.ID), a.inv.ID, a.gw.ID, ret); apperr.CodeOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "Invalid currency") {
		t.Fatalf("Stripe refused: %v", err)
	}
	stripe.Refuse("")
	if n := c.Payment.Query().Where(payment.MethodEQ(payment.MethodGATEWAY)).CountX(a.ctx); n != 0 {
		t.Fatalf("%d gateway payments after refusals", n)
	}
	if len(stripe.Sessions()) != 0 {
		t.Fatalf("sessions opened by refused calls: %+v", stripe.Sessions())
	}

	// The customer starts paying what is left: 7.50.
	p, url, err := online.StartInvoicePayment(customer(a, a.user.ID), a.inv.ID, a.gw.ID, ret)
	if err != nil {
		t.Fatal(err)
	}
	ss := stripe.Sessions()
	if len(ss) != 1 || url != ss[0].URL || p.Status != payment.StatusPENDING || p.Amount.String() != "7.50" ||
		p.TransactionID == nil || *p.TransactionID != ss[0].ID || ss[0].Amount != 750 || ss[0].Currency != "bdt" ||
		ss[0].ClientReference != p.Number || !strings.HasPrefix(ss[0].SuccessURL, ret+"?status=success&session_id={CHECKOUT_SESSION_ID}") {
		t.Fatalf("started payment %+v at %s; sessions %+v", p, url, ss)
	}
	// A safety-net verification is scheduled for after the session expires.
	job := c.OutboxJob.Query().Where(outboxjob.JobName(jobs.ProcessPayment)).OnlyX(a.ctx)
	if job.AvailableAt.Before(time.Now().Add(gateway.CheckoutTTL)) {
		t.Fatalf("verification job due at %s, before the session expires", job.AvailableAt)
	}

	// Back on the return page before paying: still pending.
	if got, err := online.ConfirmPayment(customer(a, a.user.ID), p.ID); err != nil || got.Status != payment.StatusPENDING {
		t.Fatalf("confirm while open: %+v %v", got, err)
	}
	// Another customer and another tenant cannot confirm it.
	for _, cx := range []context.Context{customer(a, other.ID), customer(b, b.user.ID), b.ctx} {
		if _, err := online.ConfirmPayment(cx, p.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("confirm by a stranger: %v", err)
		}
	}
	stripe.Pay(ss[0].ID)
	got, err := online.ConfirmPayment(customer(a, a.user.ID), p.ID)
	if err != nil || got.Status != payment.StatusCOMPLETED {
		t.Fatalf("confirm after paying: %+v %v", got, err)
	}
	if ref, _ := got.GatewayPayload["provider_ref"].(string); !strings.HasPrefix(ref, "pi_") {
		t.Fatalf("no PaymentIntent kept for refunds: %v", got.GatewayPayload)
	}
	inv := c.Invoice.GetX(a.ctx, a.inv.ID)
	u := c.NetworkUser.GetX(a.ctx, a.user.ID)
	if inv.Status != invoice.StatusPAID || inv.AmountPaid.String() != "10.00" || u.Status != networkuser.StatusACTIVE {
		t.Fatalf("after the payment: invoice %s %s, subscriber %s", inv.Status, inv.AmountPaid, u.Status)
	}
	if n := c.OutboxJob.Query().Where(outboxjob.JobName(jobs.RouterProvision)).CountX(a.ctx); n == 0 {
		t.Fatal("reactivation enqueued no router provisioning")
	}
	// Confirming again asks nobody and changes nothing; a paid invoice takes
	// no new online payment.
	asked := len(stripe.Requests())
	if got, err := online.ConfirmPayment(customer(a, a.user.ID), p.ID); err != nil || got.Status != payment.StatusCOMPLETED || len(stripe.Requests()) != asked {
		t.Fatalf("second confirm: %+v %v (%d requests, was %d)", got, err, len(stripe.Requests()), asked)
	}
	if _, _, err := online.StartInvoicePayment(customer(a, a.user.ID), a.inv.ID, a.gw.ID, ret); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("paying a paid invoice: %v", err)
	}

	// Staff start one for tenant B's customer; it expires unpaid and the
	// confirmation fails it.
	pb, _, err := online.StartInvoicePayment(b.ctx, b.inv.ID, b.gw.ID, "https://portal.online-b.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	stripe.Expire(*pb.TransactionID)
	if got, err := online.ConfirmPayment(b.ctx, pb.ID); err != nil || got.Status != payment.StatusFAILED || !strings.Contains(*got.FailureReason, "expired") {
		t.Fatalf("confirm an expired session: %+v %v", got, err)
	}
	if u := c.NetworkUser.GetX(b.ctx, b.user.ID); u.Status != networkuser.StatusSUSPENDED {
		t.Fatalf("tenant B's subscriber after an expired session: %s", u.Status)
	}
}

// TestOneSessionPerInvoice: a second start of the same invoice through the
// same gateway hands out the open session again; a start that cannot reuse
// it (another return page, too little time left) expires it at Stripe and
// fails its payment first; a session paid meanwhile completes its payment
// instead; and two simultaneous starts open one session.
func TestOneSessionPerInvoice(t *testing.T) {
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, testenv.PostgresURL(t), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	c := db.Client
	mikrotik.Install(c)
	stripe := gatewaytest.NewStripe("sk_test_online")
	srv := httptest.NewServer(stripe)
	defer srv.Close()
	box, err := secret.New(newKey)
	if err != nil {
		t.Fatal(err)
	}
	gws, err := gateway.New(box, srv.Client(), gateway.BaseURLs{Stripe: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	online, err := gateway.NewOnline(c, gws, &billing.Service{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	online.Now = func() time.Time { return now }
	a := newOnlineTenant(t, c, gws, "once-a")
	const ret = "https://portal.once-a.example/pay"
	cust := customer(a, a.user.ID)

	p1, url1, err := online.StartInvoicePayment(cust, a.inv.ID, a.gw.ID, ret)
	if err != nil {
		t.Fatal(err)
	}
	// A second click: the same payment and page, no new session.
	p2, url2, err := online.StartInvoicePayment(cust, a.inv.ID, a.gw.ID, ret)
	if err != nil || p2.ID != p1.ID || url2 != url1 || len(stripe.Sessions()) != 1 {
		t.Fatalf("second start: %v %v %s (first %d %s); sessions %+v", err, p2, url2, p1.ID, url1, stripe.Sessions())
	}

	// Another return page: the open session is expired at Stripe before a
	// new one is opened.
	p3, url3, err := online.StartInvoicePayment(cust, a.inv.ID, a.gw.ID, ret+"?again=1")
	if err != nil || p3.ID == p1.ID || url3 == url1 {
		t.Fatalf("start with another return page: %v %+v", err, p3)
	}
	if s, _ := stripe.Session(*p1.TransactionID); s.Status != "expired" {
		t.Fatalf("the replaced session is %s at Stripe", s.Status)
	}
	if got := c.Payment.GetX(a.ctx, p1.ID); got.Status != payment.StatusFAILED || !strings.Contains(*got.FailureReason, "replaced") {
		t.Fatalf("the replaced payment: %s %v", got.Status, got.FailureReason)
	}

	// Less than the margin left on the session: replaced as well.
	now = now.Add(gateway.CheckoutTTL - time.Minute)
	p4, _, err := online.StartInvoicePayment(cust, a.inv.ID, a.gw.ID, ret+"?again=1")
	if err != nil || p4.ID == p3.ID {
		t.Fatalf("start near the session's expiry: %v %+v", err, p4)
	}
	if s, _ := stripe.Session(*p3.TransactionID); s.Status != "expired" {
		t.Fatalf("the session near expiry is %s at Stripe", s.Status)
	}

	// Paid meanwhile, before any webhook: starting again completes it and,
	// the invoice being paid, sends the customer to the return page.
	stripe.Pay(*p4.TransactionID)
	n := len(stripe.Sessions())
	if got, page, err := online.StartInvoicePayment(cust, a.inv.ID, a.gw.ID, ret); err != nil || got.ID != p4.ID || page != ret {
		t.Fatalf("start after paying the open session: %v %+v %s", err, got, page)
	}
	if _, _, err := online.StartInvoicePayment(cust, a.inv.ID, a.gw.ID, ret); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("start on the paid invoice: %v", err)
	}
	if got := c.Payment.GetX(a.ctx, p4.ID); got.Status != payment.StatusCOMPLETED || len(stripe.Sessions()) != n {
		t.Fatalf("the paid session's payment: %s; sessions %d, was %d", got.Status, len(stripe.Sessions()), n)
	}
	if inv := c.Invoice.GetX(a.ctx, a.inv.ID); inv.Status != invoice.StatusPAID {
		t.Fatalf("invoice %s", inv.Status)
	}
	if k := c.Payment.Query().Where(payment.InvoiceID(a.inv.ID), payment.StatusEQ(payment.StatusCOMPLETED), payment.MethodEQ(payment.MethodGATEWAY)).CountX(a.ctx); k != 1 {
		t.Fatalf("%d completed gateway payments", k)
	}

	// Two simultaneous starts for one invoice: one session.
	b := newOnlineTenant(t, c, gws, "once-b")
	n = len(stripe.Sessions())
	type started struct {
		p   *ent.Payment
		url string
		err error
	}
	done := make(chan started, 2)
	for range 2 {
		go func() {
			p, url, err := online.StartInvoicePayment(customer(b, b.user.ID), b.inv.ID, b.gw.ID, ret)
			done <- started{p, url, err}
		}()
	}
	x, y := <-done, <-done
	if x.err != nil || y.err != nil || x.p.ID != y.p.ID || x.url != y.url {
		t.Fatalf("simultaneous starts: %+v / %+v", x, y)
	}
	if len(stripe.Sessions()) != n+1 {
		t.Fatalf("simultaneous starts opened %d sessions", len(stripe.Sessions())-n)
	}
	if k := c.Payment.Query().Where(payment.InvoiceID(b.inv.ID), payment.StatusEQ(payment.StatusPENDING)).CountX(b.ctx); k != 1 {
		t.Fatalf("%d pending payments after simultaneous starts", k)
	}
}
