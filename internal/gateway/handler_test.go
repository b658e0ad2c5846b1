package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/gatewayevent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	_ "github.com/ispgraph/ispgraph/ent/runtime"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// tenantFixture is one tenant with a subscriber suspended for an overdue
// invoice, a Stripe gateway and a pending gateway payment for that invoice.
type tenantFixture struct {
	ctx     context.Context
	user    *ent.NetworkUser
	inv     *ent.Invoice
	gw      *ent.PaymentGateway
	payment *ent.Payment
}

func newTenant(t *testing.T, c *ent.Client, gws *gateway.Service, slug, secret string) tenantFixture {
	t.Helper()
	ten := c.Tenant.Create().SetName(slug).SetSlug(slug).SetDomain(slug + ".example").SetCurrency("USD").
		SaveX(tenancy.Bypass(context.Background()))
	ctx := viewer.ForTenant(context.Background(), ten.ID)
	r := c.Router.Create().SetName("core").SetHost("127.0.0.1").SetUsername("api").SaveX(ctx)
	u := c.NetworkUser.Create().SetRouterID(r.ID).SetUsername("alice").SetFullName("Alice").SetEmail("alice@" + slug + ".example").
		SetPhone("+8801700000001").SetStatus(networkuser.StatusSUSPENDED).SetSuspensionReason(billing.OverdueReason).SaveX(ctx)
	now := time.Now()
	amt := money.MustParse("10.00")
	inv := c.Invoice.Create().SetNetworkUserID(u.ID).SetNumber("INV-" + slug).SetAmount(amt).SetTax(0).SetTotal(amt).
		SetStatus(invoice.StatusOVERDUE).SetPeriodStart(now.AddDate(0, -1, 0)).SetPeriodEnd(now).
		SetIssuedAt(now.AddDate(0, 0, -20)).SetDueDate(now.AddDate(0, 0, -5)).SaveX(ctx)
	sealed, summary, err := gws.Seal(map[string]any{"secret_key": "sk_test_x", "webhook_secret": secret})
	if err != nil {
		t.Fatal(err)
	}
	gw := c.PaymentGateway.Create().SetProvider(paymentgateway.ProviderSTRIPE).SetName("Stripe").
		SetConfigEncrypted(sealed).SetConfigSummary(summary).SaveX(ctx)
	gwID, txid := gw.ID, "pi_"+slug
	p, err := (&billing.Service{Client: c}).RecordPayment(ctx, billing.PaymentInput{InvoiceID: inv.ID, Amount: amt,
		Method: payment.MethodGATEWAY, IdempotencyKey: "k-" + slug, TransactionID: &txid, PaymentGatewayID: &gwID})
	if err != nil {
		t.Fatal(err)
	}
	return tenantFixture{ctx: ctx, user: u, inv: inv, gw: gw, payment: p}
}

func stripeEvent(id, kind, pi string, amount int64) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"data":{"object":{"id":%q,"object":"payment_intent","amount":%d,"amount_received":%d,"currency":"usd","status":"succeeded"}}}`,
		id, kind, pi, amount, amount))
}

func TestStripeWebhook(t *testing.T) {
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
	mikrotik.Install(c) // activation carries the subscriber to its router
	gws := service(t, newKey)
	a := newTenant(t, c, gws, "a", "whsec_a")
	b := newTenant(t, c, gws, "b", "whsec_b")
	ids, err := gid.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	h := &gateway.Webhooks{Client: c, IDs: ids, Gateways: gws, Billing: &billing.Service{Client: c},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	mux := http.NewServeMux()
	mux.Handle(gateway.Pattern, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	send := func(provider string, gw *ent.PaymentGateway, secret string, at time.Time, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/"+provider+"/"+ids.Encode(gw.ID), strings.NewReader(string(body)))
		req.Header.Set("Stripe-Signature", gateway.SignStripe(secret, at, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	status := func(f tenantFixture) (payment.Status, invoice.Status, networkuser.Status) {
		return c.Payment.GetX(f.ctx, f.payment.ID).Status, c.Invoice.GetX(f.ctx, f.inv.ID).Status, c.NetworkUser.GetX(f.ctx, f.user.ID).Status
	}
	now := time.Now()
	succeeded := stripeEvent("evt_1", "payment_intent.succeeded", "pi_a", 1000)

	// Unverifiable calls change nothing.
	if code := send("stripe", a.gw, "whsec_wrong", now, succeeded); code != http.StatusBadRequest {
		t.Fatalf("bad signature: %d", code)
	}
	if code := send("stripe", a.gw, "whsec_a", now.Add(-10*time.Minute), succeeded); code != http.StatusBadRequest {
		t.Fatalf("stale timestamp: %d", code)
	}
	if code := send("bkash", a.gw, "whsec_a", now, succeeded); code != http.StatusNotFound {
		t.Fatalf("wrong provider in the path: %d", code)
	}
	// Tenant B's gateway, B's secret, A's payment: B cannot reach it.
	if code := send("stripe", b.gw, "whsec_b", now, stripeEvent("evt_x", "payment_intent.succeeded", "pi_a", 1000)); code != http.StatusNotFound {
		t.Fatalf("another tenant's payment through B's gateway: %d", code)
	}
	if p, i, u := status(a); p != payment.StatusPENDING || i != invoice.StatusOVERDUE || u != networkuser.StatusSUSPENDED {
		t.Fatalf("after refused calls: %s %s %s", p, i, u)
	}

	// An informational failure first (out of order), then the success.
	if code := send("stripe", a.gw, "whsec_a", now, stripeEvent("evt_0", "payment_intent.payment_failed", "pi_a", 0)); code != http.StatusOK {
		t.Fatalf("payment_failed: %d", code)
	}
	if code := send("stripe", a.gw, "whsec_a", now, succeeded); code != http.StatusOK {
		t.Fatalf("succeeded: %d", code)
	}
	if p, i, u := status(a); p != payment.StatusCOMPLETED || i != invoice.StatusPAID || u != networkuser.StatusACTIVE {
		t.Fatalf("after the success: %s %s %s", p, i, u)
	}
	provisions := c.OutboxJob.Query().Where(outboxjob.JobName(jobs.RouterProvision)).CountX(a.ctx)
	if provisions == 0 {
		t.Fatal("reactivation enqueued no router provisioning")
	}
	// Replay, then a late cancellation: nothing changes.
	for _, body := range [][]byte{succeeded, stripeEvent("evt_2", "payment_intent.canceled", "pi_a", 0)} {
		if code := send("stripe", a.gw, "whsec_a", now, body); code != http.StatusOK {
			t.Fatalf("replay/late event: %d", code)
		}
	}
	if p, i, _ := status(a); p != payment.StatusCOMPLETED || i != invoice.StatusPAID {
		t.Fatalf("after replay: %s %s", p, i)
	}
	if got := c.Invoice.GetX(a.ctx, a.inv.ID).AmountPaid.String(); got != "10.00" {
		t.Fatalf("amount paid %s after a replay", got)
	}
	if n := c.OutboxJob.Query().Where(outboxjob.JobName(jobs.RouterProvision)).CountX(a.ctx); n != provisions {
		t.Fatalf("replay enqueued provisioning again: %d → %d", provisions, n)
	}
	if n := c.GatewayEvent.Query().Where(gatewayevent.PaymentGatewayID(a.gw.ID)).CountX(a.ctx); n != 3 {
		t.Fatalf("%d events stored for A, want 3 (failed, succeeded, canceled)", n)
	}
	// Events are tenant-scoped: B sees none of A's.
	if n := c.GatewayEvent.Query().CountX(b.ctx); n != 0 {
		t.Fatalf("tenant B sees %d events", n)
	}
	if p, i, u := status(b); p != payment.StatusPENDING || i != invoice.StatusOVERDUE || u != networkuser.StatusSUSPENDED {
		t.Fatalf("tenant B changed: %s %s %s", p, i, u)
	}
	// Money in another currency than the tenant's (USD) does not pay B's
	// invoice, however large the number.
	eur := []byte(strings.Replace(string(stripeEvent("evt_b1", "payment_intent.succeeded", "pi_b", 5000)), `"usd"`, `"eur"`, 1))
	if code := send("stripe", b.gw, "whsec_b", now, eur); code != http.StatusOK {
		t.Fatalf("success in EUR: %d", code)
	}
	if got := c.Payment.GetX(b.ctx, b.payment.ID); got.Status != payment.StatusFAILED || !strings.Contains(*got.FailureReason, "EUR, the payment is in USD") {
		t.Fatalf("a success in EUR for a USD payment: %s %v", got.Status, got.FailureReason)
	}
}
