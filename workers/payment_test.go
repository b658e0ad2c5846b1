package workers_test

import (
	"encoding/json"
	"fmt"
	"github.com/ispgraph/ispgraph/internal/billing"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/secret"
	"github.com/ispgraph/ispgraph/workers"
)

var secretKey = []byte("0123456789abcdef0123456789abcdef")

// providers are httptest servers answering as Stripe's PaymentIntents API and
// SSLCommerz's validation API document.
type providers struct {
	mu     sync.Mutex
	hits   map[string]int
	stripe *httptest.Server
	ssl    *httptest.Server
	// block, when set, is called before Stripe answers (crash tests).
	block func(id string)
}

func newProviders(t *testing.T) *providers {
	p := &providers{hits: map[string]int{}}
	p.stripe = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/v1/payment_intents/")
		p.mu.Lock()
		p.hits[id]++
		block := p.block
		p.mu.Unlock()
		if block != nil {
			block(id)
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer sk_test_123" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
			return
		}
		switch {
		case !ok || r.Method != http.MethodGet:
			w.WriteHeader(404)
		case strings.HasPrefix(id, "pi_ok"):
			fmt.Fprintf(w, `{"id":%q,"object":"payment_intent","amount":1000,"amount_received":1000,"currency":"usd","status":"succeeded"}`, id)
		case strings.HasPrefix(id, "pi_declined"):
			fmt.Fprintf(w, `{"id":%q,"object":"payment_intent","amount":1000,"amount_received":0,"currency":"usd","status":"requires_payment_method","last_payment_error":{"code":"card_declined","message":"Your card was declined."}}`, id)
		default:
			w.WriteHeader(404)
			fmt.Fprintf(w, `{"error":{"code":"resource_missing","type":"invalid_request_error","message":"No such payment_intent: '%s'"}}`, id)
		}
	}))
	p.ssl = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p.mu.Lock()
		p.hits[q.Get("val_id")]++
		p.mu.Unlock()
		if r.URL.Path != "/validator/api/validationserverAPI.php" || q.Get("store_id") != "acme" || q.Get("store_passwd") != "pw" {
			w.WriteHeader(400)
			return
		}
		switch v := q.Get("val_id"); {
		case strings.HasPrefix(v, "val_ok"):
			fmt.Fprintf(w, `{"status":"VALID","tran_id":"T1","val_id":%q,"amount":"10.00","currency":"USD","bank_tran_id":"B-%s"}`, v, v)
		default:
			fmt.Fprint(w, `{"status":"INVALID_TRANSACTION"}`)
		}
	}))
	t.Cleanup(p.stripe.Close)
	t.Cleanup(p.ssl.Close)
	return p
}

func (p *providers) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[id]
}

// testGateways is a gateway service sealing under secretKey, as the API
// does, with providers at urls.
func testGateways(t testing.TB, urls gateway.BaseURLs) *gateway.Service {
	box, err := secret.New(secretKey)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(box, nil, urls)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// gateways is the gateway service pointed at the fake providers.
func (p *providers) gateways(t testing.TB) *gateway.Service {
	return testGateways(t, gateway.BaseURLs{Stripe: p.stripe.URL, SSLCommerz: p.ssl.URL})
}

// gateway stores a gateway whose configuration is sealed by the gateway
// service, the one format the API writes.
func (e *env) gateway(provider paymentgateway.Provider, cfg map[string]any) *ent.PaymentGateway {
	sealed, summary, err := testGateways(e.t, gateway.BaseURLs{}).Seal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.client.PaymentGateway.Create().SetProvider(provider).SetName(string(provider)).
		SetConfigEncrypted(sealed).SetConfigSummary(summary).SaveX(e.ctx)
}

var paySeq int

// payment creates a PENDING payment of 10.00 on inv.
func (e *env) payment(inv *ent.Invoice, gw *ent.PaymentGateway, txid string) *ent.Payment {
	paySeq++
	c := e.client.Payment.Create().SetNetworkUserID(e.userID).SetInvoiceID(inv.ID).
		SetNumber(fmt.Sprintf("PAY-%d", paySeq)).SetAmount(money.MustParse("10.00")).
		SetIdempotencyKey(fmt.Sprintf("k-%d", paySeq))
	if gw != nil {
		c.SetMethod(payment.MethodGATEWAY).SetPaymentGatewayID(gw.ID).SetTransactionID(txid)
	} else {
		c.SetMethod(payment.MethodCASH)
	}
	return c.SaveX(e.ctx)
}

func (e *env) enqueuePayment(p *ent.Payment) {
	if err := outbox.Enqueue(e.ctx, e.client, jobs.ProcessPaymentArgs{TenantID: e.tenantID, PaymentID: p.ID}); err != nil {
		e.t.Fatal(err)
	}
}

func TestProcessPayment(t *testing.T) {
	e := newEnv(t)
	prov := newProviders(t)
	stripe := e.gateway(paymentgateway.ProviderSTRIPE, map[string]any{"secret_key": "sk_test_123"})
	ssl := e.gateway(paymentgateway.ProviderSSLCOMMERZ, map[string]any{"store_id": "acme", "store_password": "pw"})

	invOK := e.invoice("20.00") // two payments of 10.00 complete it
	invOpen := e.invoice("10.00")
	pays := map[string]*ent.Payment{
		"stripe ok":       e.payment(invOK, stripe, "pi_ok_1"),
		"sslcommerz ok":   e.payment(invOK, ssl, "val_ok_1"),
		"stripe declined": e.payment(invOpen, stripe, "pi_declined_1"),
		"stripe missing":  e.payment(invOpen, stripe, "pi_unknown"),
		"sslcommerz bad":  e.payment(invOpen, ssl, "val_bad"),
		"no transaction":  e.payment(invOpen, stripe, ""),
	}
	cashInv := e.invoice("10.00")
	pays["cash"] = e.payment(cashInv, nil, "")
	for _, p := range pays {
		e.enqueuePayment(p)
	}
	o := e.options()
	o.Gateways = prov.gateways(t)
	e.start(o)

	eventually(t, 30*time.Second, "every payment processed", func() bool {
		n := e.client.Payment.Query().Where(payment.StatusEQ(payment.StatusPENDING)).CountX(e.ctx)
		return n == 0
	})
	want := map[string]payment.Status{
		"stripe ok": payment.StatusCOMPLETED, "sslcommerz ok": payment.StatusCOMPLETED, "cash": payment.StatusCOMPLETED,
		"stripe declined": payment.StatusFAILED, "stripe missing": payment.StatusFAILED, "sslcommerz bad": payment.StatusFAILED,
		"no transaction": payment.StatusFAILED,
	}
	for name, p := range pays {
		got := e.client.Payment.GetX(e.ctx, p.ID)
		if got.Status != want[name] {
			t.Errorf("%s: status %s, want %s (reason %v)", name, got.Status, want[name], got.FailureReason)
		}
		if got.Status == payment.StatusFAILED && (got.FailureReason == nil || *got.FailureReason == "") {
			t.Errorf("%s: failed without a reason", name)
		}
	}
	if r := *e.client.Payment.GetX(e.ctx, pays["stripe declined"].ID).FailureReason; !strings.Contains(r, "declined") {
		t.Errorf("declined reason: %q", r)
	}
	checkInvoice := func(inv *ent.Invoice, paid string, status invoice.Status) {
		t.Helper()
		got := e.client.Invoice.GetX(e.ctx, inv.ID)
		if got.AmountPaid.String() != paid || got.Status != status {
			t.Errorf("invoice %s: paid %s status %s, want %s %s", got.Number, got.AmountPaid, got.Status, paid, status)
		}
	}
	checkInvoice(invOK, "20.00", invoice.StatusPAID)
	checkInvoice(invOpen, "0.00", invoice.StatusPENDING)
	checkInvoice(cashInv, "10.00", invoice.StatusPAID)

	// Each job run twice has the effect of once: run every job again,
	// directly through the handler.
	h := &workers.PaymentHandler{Client: e.client, Completer: &workers.BillingPayments{Service: &billing.Service{Client: e.client}, Logger: e.logger()},
		Gateways: prov.gateways(t), Logger: e.logger()}
	before := prov.count("pi_ok_1")
	for _, p := range pays {
		args, _ := jobs.ToMap(jobs.ProcessPaymentArgs{TenantID: e.tenantID, PaymentID: p.ID})
		if err := h.Process(&work.Job{Name: jobs.ProcessPayment, ID: "again", Args: args}); err != nil {
			t.Fatal(err)
		}
	}
	checkInvoice(invOK, "20.00", invoice.StatusPAID)
	checkInvoice(cashInv, "10.00", invoice.StatusPAID)
	if prov.count("pi_ok_1") != before {
		t.Error("a completed payment was verified again")
	}
	for name, p := range pays {
		if got := e.client.Payment.GetX(e.ctx, p.ID); got.Status != want[name] {
			t.Errorf("%s after a second run: %s", name, got.Status)
		}
	}
	// The provider's answer is kept on the payment, without secrets.
	payload := e.client.Payment.GetX(e.ctx, pays["sslcommerz ok"].ID).GatewayPayload
	if payload["status"] != "VALID" {
		t.Errorf("payload %v", payload)
	}
	b, _ := json.Marshal(payload)
	if strings.Contains(string(b), "pw") {
		t.Errorf("payload leaks the store password: %s", b)
	}
}
