package gateway

import (
	"testing"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/money"
)

// TestProviderAmounts converts minor units of 0-, 2- and 3-digit currencies
// to each provider's spelling and back, and refuses what a provider cannot
// take.
func TestProviderAmounts(t *testing.T) {
	stripe := []struct {
		amount   money.Money
		currency string
		want     int64
	}{
		{750, "USD", 750},     // 7.50 dollars: cents
		{1500, "JPY", 1500},   // 1500 yen: zero-decimal
		{1500, "jpy", 1500},   // Stripe spells codes in lower case
		{12340, "KWD", 12340}, // 12.340 dinars: fils, last digit 0
		{90, "ISK", 9000},     // 90 krónur: two-decimal at Stripe
		{250000, "MGA", 2500}, // 2500.00 ariary: zero-decimal at Stripe
	}
	for _, c := range stripe {
		got, err := stripeAmount(c.amount, c.currency)
		if err != nil || got != c.want {
			t.Fatalf("stripeAmount(%d %s) = %d %v, want %d", c.amount, c.currency, got, err, c.want)
		}
		if back := fromStripeAmount(got, c.currency); back != c.amount {
			t.Fatalf("fromStripeAmount(%d %s) = %d, want %d", got, c.currency, back, c.amount)
		}
	}
	for _, c := range []struct {
		amount   money.Money
		currency string
	}{{12345, "KWD"}, {250050, "MGA"}, {100, "XYZ"}} {
		if n, err := stripeAmount(c.amount, c.currency); apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("stripeAmount(%d %s) = %d %v, want CONFLICT", c.amount, c.currency, n, err)
		}
	}

	decimals := []struct {
		amount   money.Money
		currency string
		want     string
	}{
		{750, "BDT", "7.50"},
		{1500, "JPY", "1500"},
		{12340, "KWD", "12.34"},
		{12300, "KWD", "12.30"},
	}
	for _, c := range decimals {
		got, err := decimalAmount("SSLCommerz", c.amount, c.currency, 2)
		if err != nil || got != c.want {
			t.Fatalf("decimalAmount(%d %s) = %q %v, want %q", c.amount, c.currency, got, err, c.want)
		}
		if back, err := parseDecimal(got, c.currency); err != nil || back != c.amount {
			t.Fatalf("parseDecimal(%q %s) = %d %v, want %d", got, c.currency, back, err, c.amount)
		}
	}
	if s, err := decimalAmount("SSLCommerz", 12345, "KWD", 2); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("12.345 KWD with two decimals: %q %v", s, err)
	}
	for s, want := range map[string]money.Money{"500": 50000, "500.5": 50050, "500.50": 50050} {
		if got, err := parseDecimal(s, "BDT"); err != nil || got != want {
			t.Fatalf("parseDecimal(%q BDT) = %d %v", s, got, err)
		}
	}
	if got, err := parseDecimal("1500.00", "JPY"); err != nil || got != 1500 {
		t.Fatalf("parseDecimal(1500.00 JPY) = %d %v", got, err)
	}
	if got, err := parseDecimal("1500.50", "JPY"); err == nil {
		t.Fatalf("parseDecimal(1500.50 JPY) = %d, want an error", got)
	}
	if err := bkashCurrency("bdt"); err != nil {
		t.Fatal(err)
	}
	if err := bkashCurrency("JPY"); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("bKash in JPY: %v", err)
	}
}
