package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/gateway/gatewaytest"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/secret"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// providerEnv is a migrated database and a gateway service whose providers
// are the gatewaytest doubles behind one httptest server.
type providerEnv struct {
	c      *ent.Client
	gws    *gateway.Service
	bill   *billing.Service
	online *gateway.Online
	hooks  *httptest.Server
	ids    *gid.Codec
	ssl    *gatewaytest.SSLCommerz
	bkash  *gatewaytest.BKash
}

func newProviderEnv(t *testing.T) *providerEnv {
	t.Helper()
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, testenv.PostgresURL(t), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	e := &providerEnv{c: db.Client,
		ssl:   gatewaytest.NewSSLCommerz("store1", "store1@ssl"),
		bkash: gatewaytest.NewBKash("app-key-1", "app-secret-1", "merchant-1", "merchant-pw-1")}
	mikrotik.Install(e.c)
	mux := http.NewServeMux()
	mux.Handle("/ssl/", http.StripPrefix("/ssl", e.ssl))
	mux.Handle("/bkash/", e.bkash)
	peers := httptest.NewServer(mux)
	t.Cleanup(peers.Close)
	box, err := secret.New(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if e.gws, err = gateway.New(box, peers.Client(), gateway.BaseURLs{SSLCommerz: peers.URL + "/ssl", BKash: peers.URL + "/bkash/v1.2.0-beta"}); err != nil {
		t.Fatal(err)
	}
	e.bill = &billing.Service{Client: e.c}
	if e.online, err = gateway.NewOnline(e.c, e.gws, e.bill); err != nil {
		t.Fatal(err)
	}
	if e.ids, err = gid.New(bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	wh := http.NewServeMux()
	hooks := &gateway.Webhooks{Client: e.c, IDs: e.ids, Gateways: e.gws, Billing: e.bill, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	wh.Handle(gateway.Pattern, hooks)
	wh.HandleFunc(gateway.BKashCallbackPattern, hooks.ServeBKashCallback)
	e.hooks = httptest.NewServer(wh)
	t.Cleanup(e.hooks.Close)
	return e
}

// ipn posts a form body to the SSLCommerz webhook route of gw.
func (e *providerEnv) ipn(t *testing.T, gw *ent.PaymentGateway, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(e.hooks.URL+"/webhooks/sslcommerz/"+e.ids.Encode(gw.ID), "application/x-www-form-urlencoded", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSSLCommerzOnline: session initiation, IPNs checked through the
// transaction query and the validation API (forged, early, paid, replayed),
// and the refund, against the SSLCommerz double.
func TestSSLCommerzOnline(t *testing.T) {
	e := newProviderEnv(t)
	conf := map[string]any{"store_id": "store1", "store_password": "store1@ssl", "ipn_url": "https://isp.example/webhooks/sslcommerz/x"}
	a := newProviderTenant(t, e.c, e.gws, "ssl-a", paymentgateway.ProviderSSLCOMMERZ, conf)
	b := newProviderTenant(t, e.c, e.gws, "ssl-b", paymentgateway.ProviderSSLCOMMERZ, map[string]any{"store_id": "store1", "store_password": "wrong"})

	// Wrong store credentials: SSLCommerz refuses, nothing is stored.
	if _, _, err := e.online.StartInvoicePayment(customer(b, b.user.ID), b.inv.ID, b.gw.ID, "https://portal.example/pay"); apperr.CodeOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "Store Credential") {
		t.Fatalf("wrong credentials: %v", err)
	}
	p, url, err := e.online.StartInvoicePayment(customer(a, a.user.ID), a.inv.ID, a.gw.ID, "https://portal.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	tx, ok := e.ssl.Transaction(p.Number)
	if !ok || *p.TransactionID != p.Number || tx.Amount != "7.50" || tx.Currency != "BDT" || !strings.HasSuffix(url, tx.SessionKey) || tx.IPNURL != conf["ipn_url"] {
		t.Fatalf("payment %+v at %s; SSLCommerz has %+v", p, url, tx)
	}
	status := func() (payment.Status, invoice.Status, networkuser.Status) {
		return e.c.Payment.GetX(a.ctx, p.ID).Status, e.c.Invoice.GetX(a.ctx, a.inv.ID).Status, e.c.NetworkUser.GetX(a.ctx, a.user.ID).Status
	}

	// A forged IPN (a transaction SSLCommerz does not know, or a made-up
	// val_id) is refused; an IPN before the customer paid is only recorded.
	if code, body := e.ipn(t, a.gw, []byte("status=VALID&tran_id=PAY-2026-999999&val_id=forged&amount=7.50")); code != http.StatusBadRequest {
		t.Fatalf("forged IPN: %d %s", code, body)
	}
	if code, body := e.ipn(t, a.gw, []byte("status=VALID&tran_id="+p.Number+"&val_id=forged&amount=7.50")); code != http.StatusBadRequest {
		t.Fatalf("IPN with a made-up val_id: %d %s", code, body)
	}
	if code, body := e.ipn(t, a.gw, []byte("status=UNATTEMPTED&tran_id="+p.Number)); code != http.StatusOK || !strings.Contains(body, "recorded") {
		t.Fatalf("early IPN: %d %s", code, body)
	}
	if p, i, u := status(); p != payment.StatusPENDING || i != invoice.StatusOVERDUE || u != networkuser.StatusSUSPENDED {
		t.Fatalf("after refused and early IPNs: %s %s %s", p, i, u)
	}
	// The return page before the IPN: the transaction query says VALID.
	ipn := e.ssl.Pay(p.Number)
	got, err := e.online.ConfirmPayment(customer(a, a.user.ID), p.ID)
	if err != nil || got.Status != payment.StatusCOMPLETED {
		t.Fatalf("confirm: %+v %v", got, err)
	}
	// The IPN then arrives, twice: the payment is already completed.
	for _, want := range []string{"completed payment", "duplicate"} {
		if code, body := e.ipn(t, a.gw, ipn); code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("IPN, want %q: %d %s", want, code, body)
		}
	}
	if p, i, u := status(); p != payment.StatusCOMPLETED || i != invoice.StatusPAID || u != networkuser.StatusACTIVE {
		t.Fatalf("after paying: %s %s %s", p, i, u)
	}
	if got := e.c.Invoice.GetX(a.ctx, a.inv.ID).AmountPaid.String(); got != "10.00" {
		t.Fatalf("amount paid %s", got)
	}

	// Refund: to SSLCommerz with the bank transaction id; a refusal is a CONFLICT.
	refunded, err := e.bill.RefundPayment(a.ctx, p.ID, "customer moved away")
	if err != nil {
		t.Fatal(err)
	}
	e.ssl.Refuse("Refund amount exceeds")
	if _, err := e.gws.Refund(a.ctx, a.gw, refunded); apperr.CodeOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "Refund amount exceeds") {
		t.Fatalf("refused refund: %v", err)
	}
	e.ssl.Refuse("")
	ref, err := e.gws.Refund(a.ctx, a.gw, refunded)
	rs := e.ssl.Refunds()
	paid, _ := e.ssl.Transaction(p.Number)
	if err != nil || ref == "" || len(rs) != 1 || paid.BankTranID == "" || rs[0].Get("bank_tran_id") != paid.BankTranID ||
		rs[0].Get("refund_amount") != "7.50" || rs[0].Get("refund_remarks") != "customer moved away" {
		t.Fatalf("refund %q %v; SSLCommerz got %v", ref, err, rs)
	}
}

// TestBKashOnline: grant token, create, execute (through confirmation),
// status, a cancelled payment, and the refund, against the bKash double.
func TestBKashOnline(t *testing.T) {
	e := newProviderEnv(t)
	conf := map[string]any{"app_key": "app-key-1", "app_secret": "app-secret-1", "username": "merchant-1", "password": "merchant-pw-1"}
	a := newProviderTenant(t, e.c, e.gws, "bk-a", paymentgateway.ProviderBKASH, conf)
	b := newProviderTenant(t, e.c, e.gws, "bk-b", paymentgateway.ProviderBKASH, conf)

	p, url, err := e.online.StartInvoicePayment(customer(a, a.user.ID), a.inv.ID, a.gw.ID, "https://portal.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	bps := e.bkash.Payments()
	if len(bps) != 1 || *p.TransactionID != bps[0].PaymentID || bps[0].Amount != "7.50" || bps[0].Invoice != p.Number || !strings.Contains(url, bps[0].PaymentID) {
		t.Fatalf("payment %+v at %s; bKash has %+v", p, url, bps)
	}
	// Back from bKash before approving: execute is refused, the status is
	// Initiated, the payment stays PENDING.
	if got, err := e.online.ConfirmPayment(customer(a, a.user.ID), p.ID); err != nil || got.Status != payment.StatusPENDING {
		t.Fatalf("confirm before approval: %+v %v", got, err)
	}
	e.bkash.Approve(bps[0].PaymentID)
	got, err := e.online.ConfirmPayment(customer(a, a.user.ID), p.ID)
	if err != nil || got.Status != payment.StatusCOMPLETED || got.GatewayPayload["provider_ref"] == nil {
		t.Fatalf("confirm after approval: %+v %v", got, err)
	}
	if i, u := e.c.Invoice.GetX(a.ctx, a.inv.ID), e.c.NetworkUser.GetX(a.ctx, a.user.ID); i.Status != invoice.StatusPAID || u.Status != networkuser.StatusACTIVE {
		t.Fatalf("after paying: %s %s", i.Status, u.Status)
	}
	// A second confirmation asks bKash nothing.
	n := len(e.bkash.Requests())
	if got, err := e.online.ConfirmPayment(customer(a, a.user.ID), p.ID); err != nil || got.Status != payment.StatusCOMPLETED || len(e.bkash.Requests()) != n {
		t.Fatalf("second confirm: %+v %v", got, err)
	}

	// Tenant B's customer cancels in bKash: the payment fails, the subscriber
	// stays suspended.
	pb, _, err := e.online.StartInvoicePayment(customer(b, b.user.ID), b.inv.ID, b.gw.ID, "https://portal.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	e.bkash.Cancel(*pb.TransactionID)
	if got, err := e.online.ConfirmPayment(customer(b, b.user.ID), pb.ID); err != nil || got.Status != payment.StatusFAILED || !strings.Contains(*got.FailureReason, "cancelled") {
		t.Fatalf("confirm a cancelled payment: %+v %v", got, err)
	}
	if u := e.c.NetworkUser.GetX(b.ctx, b.user.ID); u.Status != networkuser.StatusSUSPENDED {
		t.Fatalf("tenant B's subscriber: %s", u.Status)
	}

	// The refund names the paymentID and trxID; a second one is refused.
	refunded, err := e.bill.RefundPayment(a.ctx, p.ID, "duplicate payment")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := e.gws.Refund(a.ctx, a.gw, refunded)
	rs := e.bkash.Refunds()
	if err != nil || !strings.HasPrefix(ref, "RF") || len(rs) != 1 || rs[0]["paymentID"] != *p.TransactionID || rs[0]["amount"] != "7.50" || rs[0]["reason"] != "duplicate payment" {
		t.Fatalf("refund %q %v; bKash got %v", ref, err, rs)
	}
	if _, err := e.gws.Refund(a.ctx, a.gw, refunded); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("second refund: %v", err)
	}
}

// TestBKashCallback: bKash sends the customer's browser to
// /webhooks/bkash/{gateway} with paymentID and status. The parameters are
// never trusted: a success before approval, a cancel after approval, a
// replay and a late cancel change nothing but what bKash itself answers;
// the payment is completed once and the browser is sent (303) to the return
// page recorded at the start. A second start before paying reuses the bKash
// payment.
func TestBKashCallback(t *testing.T) {
	e := newProviderEnv(t)
	conf := map[string]any{"app_key": "app-key-1", "app_secret": "app-secret-1", "username": "merchant-1", "password": "merchant-pw-1"}
	a := newProviderTenant(t, e.c, e.gws, "bkcb-a", paymentgateway.ProviderBKASH, conf)
	b := newProviderTenant(t, e.c, e.gws, "bkcb-b", paymentgateway.ProviderBKASH, conf)
	route := func(gw *ent.PaymentGateway) string { return e.hooks.URL + "/webhooks/bkash/" + e.ids.Encode(gw.ID) }
	for _, f := range []onlineFixture{a, b} {
		conf["callback_url"] = route(f.gw)
		sealed, summary, err := e.gws.Seal(conf)
		if err != nil {
			t.Fatal(err)
		}
		e.c.PaymentGateway.UpdateOne(f.gw).SetConfigEncrypted(sealed).SetConfigSummary(summary).ExecX(f.ctx)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	callback := func(gw *ent.PaymentGateway, paymentID, status string) (int, string) {
		t.Helper()
		resp, err := browser.Get(route(gw) + "?paymentID=" + paymentID + "&status=" + status)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	events := func(f onlineFixture) int { return e.c.GatewayEvent.Query().CountX(f.ctx) }
	const ret = "https://portal.bkcb.example/pay"

	p, _, err := e.online.StartInvoicePayment(customer(a, a.user.ID), a.inv.ID, a.gw.ID, ret)
	if err != nil {
		t.Fatal(err)
	}
	id := *p.TransactionID
	if bps := e.bkash.Payments(); len(bps) != 1 || bps[0].CallbackURL != route(a.gw) {
		t.Fatalf("bKash payments %+v, want the callback route %s", bps, route(a.gw))
	}
	// A second start before paying hands out the same bKash payment.
	if p2, _, err := e.online.StartInvoicePayment(customer(a, a.user.ID), a.inv.ID, a.gw.ID, ret); err != nil || p2.ID != p.ID || len(e.bkash.Payments()) != 1 {
		t.Fatalf("second start: %+v %v; bKash has %d payments", p2, err, len(e.bkash.Payments()))
	}

	// Unknown payments, and tenant A's paymentID on tenant B's route.
	for _, c := range []struct {
		gw *ent.PaymentGateway
		id string
	}{{a.gw, "TR0011nosuch"}, {b.gw, id}, {a.gw, ""}} {
		if code, _ := callback(c.gw, c.id, "success"); code != http.StatusNotFound && code != http.StatusBadRequest {
			t.Fatalf("callback for %q on gateway %d: %d", c.id, c.gw.ID, code)
		}
	}
	// A forged success before the customer approved: execute is refused,
	// bKash says Initiated, the payment stays PENDING.
	if code, loc := callback(a.gw, id, "success"); code != http.StatusSeeOther || loc != ret+"?paymentID="+id+"&status=pending" {
		t.Fatalf("early success: %d %s", code, loc)
	}
	// Approved, but the browser says cancel: bKash's status (Initiated)
	// does not confirm it, nothing is executed or failed.
	e.bkash.Approve(id)
	if code, loc := callback(a.gw, id, "cancel"); code != http.StatusSeeOther || !strings.HasSuffix(loc, "status=pending") {
		t.Fatalf("cancel after approval: %d %s", code, loc)
	}
	if got := e.c.Payment.GetX(a.ctx, p.ID); got.Status != payment.StatusPENDING || events(a) != 0 {
		t.Fatalf("after unconfirmed callbacks: %s, %d events", got.Status, events(a))
	}
	// The real success: executed, completed, the invoice paid and the
	// subscriber reactivated; the browser goes to the return page.
	if code, loc := callback(a.gw, id, "success"); code != http.StatusSeeOther || loc != ret+"?paymentID="+id+"&status=success" {
		t.Fatalf("success: %d %s", code, loc)
	}
	got := e.c.Payment.GetX(a.ctx, p.ID)
	if got.Status != payment.StatusCOMPLETED || got.GatewayPayload["provider_ref"] == nil {
		t.Fatalf("after the success callback: %+v", got)
	}
	if i, u := e.c.Invoice.GetX(a.ctx, a.inv.ID), e.c.NetworkUser.GetX(a.ctx, a.user.ID); i.Status != invoice.StatusPAID || u.Status != networkuser.StatusACTIVE {
		t.Fatalf("after paying: %s %s", i.Status, u.Status)
	}
	// A replay and a late cancel ask bKash nothing and change nothing.
	n, ev := len(e.bkash.Requests()), events(a)
	for _, st := range []string{"success", "cancel", "failure"} {
		if code, loc := callback(a.gw, id, st); code != http.StatusSeeOther || !strings.HasSuffix(loc, "status=success") {
			t.Fatalf("replayed %s: %d %s", st, code, loc)
		}
	}
	if len(e.bkash.Requests()) != n || events(a) != ev || ev != 1 || e.c.Payment.GetX(a.ctx, p.ID).Status != payment.StatusCOMPLETED {
		t.Fatalf("replays: %d bKash requests (was %d), %d events (was %d)", len(e.bkash.Requests()), n, events(a), ev)
	}

	// Tenant B's customer cancels in bKash: the query confirms it, the
	// payment fails without an execute, the subscriber stays suspended.
	pb, _, err := e.online.StartInvoicePayment(customer(b, b.user.ID), b.inv.ID, b.gw.ID, ret)
	if err != nil {
		t.Fatal(err)
	}
	e.bkash.Cancel(*pb.TransactionID)
	n = len(e.bkash.Requests())
	if code, loc := callback(b.gw, *pb.TransactionID, "cancel"); code != http.StatusSeeOther || loc != ret+"?paymentID="+*pb.TransactionID+"&status=cancel" {
		t.Fatalf("cancel: %d %s", code, loc)
	}
	for _, r := range e.bkash.Requests()[n:] {
		if strings.HasSuffix(r, "/execute") {
			t.Fatalf("a cancelled payment was executed: %v", e.bkash.Requests()[n:])
		}
	}
	if got := e.c.Payment.GetX(b.ctx, pb.ID); got.Status != payment.StatusFAILED || !strings.Contains(*got.FailureReason, "cancelled") {
		t.Fatalf("cancelled payment: %s %v", got.Status, got.FailureReason)
	}
	if u := e.c.NetworkUser.GetX(b.ctx, b.user.ID); u.Status != networkuser.StatusSUSPENDED {
		t.Fatalf("tenant B's subscriber: %s", u.Status)
	}
	// A second try that bKash declines: status=failure, confirmed by the
	// query, fails it.
	pf, _, err := e.online.StartInvoicePayment(customer(b, b.user.ID), b.inv.ID, b.gw.ID, ret)
	if err != nil || pf.ID == pb.ID {
		t.Fatalf("second try: %+v %v", pf, err)
	}
	e.bkash.Fail(*pf.TransactionID)
	if code, loc := callback(b.gw, *pf.TransactionID, "failure"); code != http.StatusSeeOther || !strings.HasSuffix(loc, "status=failure") {
		t.Fatalf("failure: %d %s", code, loc)
	}
	if got := e.c.Payment.GetX(b.ctx, pf.ID); got.Status != payment.StatusFAILED || !strings.Contains(*got.FailureReason, "failed") {
		t.Fatalf("declined payment: %s %v", got.Status, got.FailureReason)
	}
}
