package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/internal/gateway"
)

// webhook is one call the soak made to the webhook route as Stripe.
type webhook struct {
	tenant, kind string
	body         []byte
	code         int
	answer       string
}

// onlinePayments: suspended customers log in to the portal and pay on
// Stripe Checkout; Stripe's webhooks (a late decline of an earlier attempt,
// the PaymentIntent's success before the session's completion, and a
// duplicate) complete the payments, and the subscribers are enabled on the
// router again. Afterwards every event is replayed: nothing may change.
func (d *day) onlinePayments(ctx context.Context, db *checkDB) {
	d.logf("online: suspended customers pay in the portal on Stripe Checkout; Stripe's webhooks reconnect them")
	type payer struct {
		t       *tenantRun
		s       *subscriber
		session string
	}
	var payers []payer
	for _, t := range d.tenants {
		subs, err := t.subscribers(ctx)
		if err != nil {
			d.note("%s: read subscribers: %v", t.slug, err)
			continue
		}
		for _, i := range []int{roleOnline1, roleOnline2} {
			s := t.subs[i]
			inv, ok := openInvoice(subs[s.id])
			if !ok {
				d.note("%s: %s has no open invoice to pay online", t.slug, s.username)
				continue
			}
			session, err := d.startOnline(ctx, t, s, inv)
			if err != nil {
				d.note("%s: %s paying online: %v", t.slug, s.username, err)
				continue
			}
			payers = append(payers, payer{t: t, s: s, session: session})
		}
	}
	// The customers pay on Stripe's page; then Stripe calls.
	var sent []webhook
	hooks := map[string][][]byte{}
	firstHook := time.Now()
	for i, p := range payers {
		if _, ok := d.stripe.checkout.Pay(p.session); !ok {
			d.note("%s: Stripe has no open session %s", p.t.slug, p.session)
			continue
		}
		id := func(kind string) string { return fmt.Sprintf("evt_soak_%s_%d_%s", p.t.slug, i, kind) }
		var bodies [][]byte
		if i%2 == 1 {
			// Out of order: the PaymentIntent's success first, and a
			// decline of an earlier attempt arriving after it.
			bodies = append(bodies,
				d.stripe.checkout.IntentEvent(id("pi_ok"), "payment_intent.succeeded", p.session),
				d.stripe.checkout.IntentEvent(id("pi_failed"), "payment_intent.payment_failed", p.session))
		}
		bodies = append(bodies, d.stripe.checkout.Event(id("cs_done"), "checkout.session.completed", p.session))
		hooks[p.t.slug] = append(hooks[p.t.slug], bodies...)
		for _, b := range bodies {
			sent = append(sent, d.sendWebhook(ctx, p.t, b))
		}
		// Stripe delivers the completion twice.
		sent = append(sent, d.sendWebhook(ctx, p.t, bodies[len(bodies)-1]))
	}
	for _, w := range sent {
		if w.code != http.StatusOK {
			d.online = append(d.online, fmt.Sprintf("%s %s answered %d %s", w.tenant, w.kind, w.code, w.answer))
		}
	}
	_, ok := d.waitFor(ctx, "online payers ACTIVE again and enabled on the router", 45*time.Second, func() (bool, string) {
		for _, p := range payers {
			subs, err := p.t.subscribers(ctx)
			if err != nil {
				return false, err.Error()
			}
			if st := subs[p.s.id].Status; st != "ACTIVE" {
				return false, p.s.username + " is " + st
			}
		}
		return d.routerInStep(ctx, db)
	})
	d.figure("online: first Stripe webhook → enabled on the router (all online payers)", fmt.Sprintf("%.1fs", time.Since(firstHook).Seconds()))
	if !ok {
		d.online = append(d.online, "online payers not reconnected within 45s")
	}

	// Replays change nothing: every event answers duplicate, and the
	// ledger, payments and router stay as they are.
	before, err := db.onlineDigest(ctx)
	if err != nil {
		d.online = append(d.online, "digest: "+err.Error())
		return
	}
	replays := 0
	for _, t := range d.tenants {
		for _, b := range hooks[t.slug] {
			w := d.sendWebhook(ctx, t, b)
			replays++
			if w.code != http.StatusOK || !strings.HasPrefix(w.answer, `{"outcome":"duplicate`) {
				d.online = append(d.online, fmt.Sprintf("replayed %s %s answered %d %s", t.slug, w.kind, w.code, w.answer))
			}
		}
	}
	after, err := db.onlineDigest(ctx)
	if err != nil {
		d.online = append(d.online, "digest: "+err.Error())
		return
	}
	if after != before {
		d.online = append(d.online, fmt.Sprintf("replays changed the books: %s → %s", before, after))
	}
	d.onlineDetail = fmt.Sprintf("%d payers, %d webhook calls, %d replays answered duplicate", len(payers), len(sent), replays)
}

// startOnline logs in as the customer and starts paying inv on Stripe
// Checkout; it returns the Checkout Session and notes the payment's
// expected end.
func (d *day) startOnline(ctx context.Context, t *tenantRun, s *subscriber, inv invoiceState) (string, error) {
	pw := "portal-" + s.password + "-x"
	if err := t.api.call(ctx, `mutation($id: ID!, $p: String!) { setPortalPassword(networkUserID: $id, password: $p) { id } }`,
		map[string]any{"id": s.id, "p": pw}, nil); err != nil {
		return "", err
	}
	c := newAPI(t.api.base)
	var lg struct{ CustomerLogin struct{ Token string } }
	if err := c.raw(ctx, `mutation($t: String!, $u: String!, $p: String!) { customerLogin(input: {tenant: $t, username: $u, password: $p}) { token } }`,
		map[string]any{"t": t.slug, "u": s.username, "p": pw}, &lg); err != nil {
		return "", err
	}
	c.token = lg.CustomerLogin.Token
	var out struct {
		StartInvoicePayment struct {
			RedirectURL string
			Payment     struct{ ID, Number, Status, TransactionID string }
		}
	}
	if err := c.raw(ctx, `mutation($inv: ID!, $gw: ID!) { startInvoicePayment(invoiceID: $inv, gatewayID: $gw, returnURL: "https://portal.soak.example/pay") {
		redirectURL payment { id number status transactionID } } }`, map[string]any{"inv": inv.ID, "gw": t.gatewayID}, &out); err != nil {
		return "", err
	}
	p := out.StartInvoicePayment.Payment
	if p.Status != "PENDING" || !strings.HasSuffix(out.StartInvoicePayment.RedirectURL, "/"+p.TransactionID) {
		return "", fmt.Errorf("started payment %+v, page %s", p, out.StartInvoicePayment.RedirectURL)
	}
	d.expect = append(d.expect, expectation{tenant: t.slug, key: "online:" + p.Number, status: "COMPLETED", why: "paid online, Stripe webhook"})
	return p.TransactionID, nil
}

// sendWebhook posts a Stripe event, signed with the gateway's endpoint
// secret, to the tenant's webhook route.
func (d *day) sendWebhook(ctx context.Context, t *tenantRun, body []byte) webhook {
	w := webhook{tenant: t.slug, body: body}
	if i := bytes.Index(body, []byte(`"type":"`)); i >= 0 {
		w.kind, _, _ = strings.Cut(string(body[i+8:]), `"`)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.api.base+"/webhooks/stripe/"+t.gatewayID, bytes.NewReader(body))
	if err != nil {
		w.answer = err.Error()
		return w
	}
	req.Header.Set("Stripe-Signature", gateway.SignStripe(d.stripe.webhookSecret, time.Now(), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.answer = err.Error()
		return w
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	w.code, w.answer = resp.StatusCode, strings.TrimSpace(string(b))
	return w
}

// checkOnline: the online payers' webhooks were each answered 200, their
// replays duplicate, and the replays changed nothing.
func (d *day) checkOnline(_ context.Context, _ *checkDB, c *check) {
	c.what = "online payers reconnected by Stripe's webhooks; replayed events change nothing"
	for _, p := range d.online {
		c.fail("%s", p)
	}
	if d.onlineDetail == "" {
		c.fail("the online step did not run to the end")
	}
	c.detail = d.onlineDetail
}
