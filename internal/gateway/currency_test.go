package gateway_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/gateway/gatewaytest"
	"github.com/ispgraph/ispgraph/internal/money"
)

// TestProviderCurrencies sends sessions and refunds in a 0-digit (JPY) and a
// 3-digit (KWD) currency to each provider's double and reads the amounts
// back: Stripe takes integers of its own minor unit, SSLCommerz decimals
// with at most two digits, bKash taka only. What a provider cannot take is
// refused with CONFLICT before any call.
func TestProviderCurrencies(t *testing.T) {
	ctx := context.Background()
	req := func(amount money.Money, currency, ref string) gateway.CheckoutRequest {
		return gateway.CheckoutRequest{Reference: ref, Invoice: "INV-1", Amount: amount, Currency: currency, ReturnURL: "https://portal.example/pay"}
	}

	// Stripe.
	sd := gatewaytest.NewStripe("sk_test_cur")
	ss := httptest.NewServer(sd)
	defer ss.Close()
	stripe := &gateway.Stripe{BaseURL: ss.URL, HTTP: ss.Client()}
	scfg := gateway.Config{"secret_key": "sk_test_cur"}
	if _, err := stripe.StartCheckout(ctx, scfg, req(12345, "KWD", "PAY-2026-000001")); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("12.345 KWD through Stripe: %v", err)
	}
	if len(sd.Requests()) != 0 {
		t.Fatalf("a refused amount reached Stripe: %v", sd.Requests())
	}
	for _, c := range []struct {
		amount   money.Money
		currency string
		want     int64
	}{{1500, "JPY", 1500}, {12340, "KWD", 12340}} {
		co, err := stripe.StartCheckout(ctx, scfg, req(c.amount, c.currency, "PAY-"+c.currency))
		if err != nil {
			t.Fatal(err)
		}
		sess, _ := sd.Session(co.TransactionID)
		if sess.Amount != c.want {
			t.Fatalf("%s session of %d: unit_amount %d, want %d", c.currency, c.amount, sess.Amount, c.want)
		}
		sd.Pay(co.TransactionID)
		res, err := stripe.Verify(ctx, scfg, co.TransactionID)
		if err != nil || !res.Succeeded || res.Amount != c.amount || res.Currency != c.currency {
			t.Fatalf("%s verification: %+v %v", c.currency, res, err)
		}
		if _, err := stripe.Refund(ctx, scfg, gateway.RefundRequest{Reference: res.Reference, Amount: c.amount, Currency: c.currency, IdempotencyKey: "r-" + c.currency}); err != nil {
			t.Fatal(err)
		}
	}
	if rs := sd.Refunds(); len(rs) != 2 || rs[0].Get("amount") != "1500" || rs[1].Get("amount") != "12340" {
		t.Fatalf("Stripe refunds: %v", rs)
	}

	// SSLCommerz.
	sslD := gatewaytest.NewSSLCommerz("store-cur", "pw-cur")
	sl := httptest.NewServer(sslD)
	defer sl.Close()
	ssl := &gateway.SSLCommerz{BaseURL: sl.URL, HTTP: sl.Client()}
	lcfg := gateway.Config{"store_id": "store-cur", "store_password": "pw-cur"}
	if _, err := ssl.StartCheckout(ctx, lcfg, req(12345, "KWD", "PAY-2026-000002")); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("12.345 KWD through SSLCommerz: %v", err)
	}
	for _, c := range []struct {
		amount   money.Money
		currency string
		want     string
	}{{1500, "JPY", "1500"}, {12340, "KWD", "12.34"}} {
		ref := "PAY-2026-" + c.currency
		if _, err := ssl.StartCheckout(ctx, lcfg, req(c.amount, c.currency, ref)); err != nil {
			t.Fatal(err)
		}
		tx, _ := sslD.Transaction(ref)
		if tx.Amount != c.want {
			t.Fatalf("%s session of %d: total_amount %q, want %q", c.currency, c.amount, tx.Amount, c.want)
		}
		sslD.Pay(ref)
		res, err := ssl.Verify(ctx, lcfg, ref)
		if err != nil || !res.Succeeded || res.Amount != c.amount {
			t.Fatalf("%s verification: %+v %v", c.currency, res, err)
		}
		if _, err := ssl.Refund(ctx, lcfg, gateway.RefundRequest{Reference: res.Reference, Amount: c.amount, Currency: c.currency, IdempotencyKey: "r-" + c.currency}); err != nil {
			t.Fatal(err)
		}
	}
	if rs := sslD.Refunds(); len(rs) != 2 || rs[0].Get("refund_amount") != "1500" || rs[1].Get("refund_amount") != "12.34" {
		t.Fatalf("SSLCommerz refunds: %v", rs)
	}

	// bKash: taka only.
	bd := gatewaytest.NewBKash("k", "s", "u", "p")
	bs := httptest.NewServer(bd)
	defer bs.Close()
	bkash := &gateway.BKash{BaseURL: bs.URL + "/v1.2.0-beta", HTTP: bs.Client()}
	bcfg := gateway.Config{"app_key": "k", "app_secret": "s", "username": "u", "password": "p"}
	if _, err := bkash.StartCheckout(ctx, bcfg, req(1500, "JPY", "PAY-2026-000003")); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("JPY through bKash: %v", err)
	}
	if _, err := bkash.Refund(ctx, bcfg, gateway.RefundRequest{TransactionID: "TR1", Reference: "TRX1", Amount: 12340, Currency: "KWD", IdempotencyKey: "r"}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("KWD refund through bKash: %v", err)
	}
	if len(bd.Requests()) != 0 {
		t.Fatalf("refused currencies reached bKash: %v", bd.Requests())
	}
}
