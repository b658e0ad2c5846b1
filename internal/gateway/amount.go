package gateway

import (
	"strings"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/money"
)

// Amounts are integers of the tenant currency's ISO 4217 minor unit
// (internal/money); each provider documents its own spelling of them. The
// functions below are the one place an amount is converted for a provider or
// read back from one, and a provider that cannot take an amount in a currency
// is refused here with CONFLICT before any call.

// pow10 returns 10^n for the few digits currencies have.
func pow10(n int) int64 {
	p := int64(1)
	for ; n > 0; n-- {
		p *= 10
	}
	return p
}

// isoDigits returns the fraction digits of an ISO 4217 currency, refusing a
// code that is not one.
func isoDigits(provider, currency string) (int, error) {
	d, ok := money.MinorUnit(currency)
	if !ok {
		return 0, apperr.E(apperr.Conflict, "%s cannot take amounts in %q: it is not an ISO 4217 currency", provider, currency)
	}
	return d, nil
}

// stripeZeroDecimal are the currencies Stripe takes in whole units
// (stripe.com/docs/currencies#zero-decimal). MGA has two ISO digits but is
// zero-decimal at Stripe.
var stripeZeroDecimal = map[string]bool{
	"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true, "KRW": true, "MGA": true,
	"PYG": true, "RWF": true, "UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true,
}

// stripeDigits returns the fraction digits of Stripe's integer amounts in a
// currency: 0 for its zero-decimal currencies, 3 for the three-decimal ones
// (BHD, JOD, KWD, OMR, TND) and 2 otherwise, including ISK, which Stripe
// keeps two-decimal in multiples of 100 (stripe.com/docs/currencies#special-cases).
func stripeDigits(currency string, iso int) int {
	switch {
	case stripeZeroDecimal[currency]:
		return 0
	case iso == 3:
		return 3
	default:
		return 2
	}
}

// stripeAmount returns amount as Stripe's integer "amount" or "unit_amount"
// in currency. Stripe needs the last digit of a three-decimal amount to be
// 0, and a zero-decimal currency with ISO digits (MGA) in whole units:
// anything else is refused rather than rounded.
func stripeAmount(amount money.Money, currency string) (int64, error) {
	cur := strings.ToUpper(currency)
	iso, err := isoDigits("Stripe", cur)
	if err != nil {
		return 0, err
	}
	sd := stripeDigits(cur, iso)
	n := int64(amount)
	if sd >= iso {
		n *= pow10(sd - iso)
	} else {
		f := pow10(iso - sd)
		if n%f != 0 {
			return 0, apperr.E(apperr.Conflict, "Stripe takes %s in whole units: %s %s cannot be charged or refunded through it", cur, amount.Format(iso), cur)
		}
		n /= f
	}
	if sd == 3 && n%10 != 0 {
		return 0, apperr.E(apperr.Conflict, "Stripe takes %s amounts with a last digit of 0: %s %s cannot be charged or refunded through it", cur, amount.Format(iso), cur)
	}
	return n, nil
}

// fromStripeAmount reads an integer amount Stripe reports in currency as
// Money of the currency's ISO minor unit.
func fromStripeAmount(n int64, currency string) money.Money {
	cur := strings.ToUpper(currency)
	iso, ok := money.MinorUnit(cur)
	if !ok {
		return money.Money(n)
	}
	sd := stripeDigits(cur, iso)
	if sd >= iso {
		return money.Money(n / pow10(sd-iso))
	}
	return money.Money(n * pow10(iso-sd))
}

// decimalAmount spells amount in currency as a decimal string of at most
// maxDigits fraction digits, as SSLCommerz (decimal(10,2)) and bKash take
// them: "1500" yen, "7.50" taka, "12.34" dinars. An amount that needs more
// digits than the provider takes ("12.345" dinars) is refused.
func decimalAmount(provider string, amount money.Money, currency string, maxDigits int) (string, error) {
	cur := strings.ToUpper(currency)
	iso, err := isoDigits(provider, cur)
	if err != nil {
		return "", err
	}
	if iso <= maxDigits {
		return amount.Format(iso), nil
	}
	f := pow10(iso - maxDigits)
	if int64(amount)%f != 0 {
		return "", apperr.E(apperr.Conflict, "%s takes amounts with at most %d decimals: %s %s cannot be charged or refunded through it", provider, maxDigits, amount.Format(iso), cur)
	}
	return (amount / money.Money(f)).Format(maxDigits), nil
}

// parseDecimal reads a decimal amount a provider reports in currency
// ("500", "500.5", "1500.00" yen) as Money of the currency's minor unit:
// zeros beyond the currency's digits are dropped, any other extra digit is
// refused.
func parseDecimal(s, currency string) (money.Money, error) {
	s = strings.TrimSpace(s)
	if whole, frac, ok := strings.Cut(s, "."); ok {
		digits := money.DigitsOf(currency)
		for len(frac) > digits && frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		s = whole
		if frac != "" {
			s += "." + frac
		}
	}
	return money.ParseIn(s, currency)
}

// bkashCurrency refuses a currency other than BDT: bKash moves taka only.
func bkashCurrency(currency string) error {
	if !strings.EqualFold(currency, "BDT") {
		return apperr.E(apperr.Conflict, "bKash takes payments in BDT only, not %s: choose another gateway", strings.ToUpper(currency))
	}
	return nil
}
