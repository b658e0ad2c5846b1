// Package tax owns how a tenant's taxes apply to a charge: several named
// rates, each either included in the price or added on top, computed exactly
// in minor units. Billing calls Apply; nothing else computes tax.
package tax

import (
	"fmt"
	"strings"

	"github.com/ispgraph/ispgraph/internal/money"
)

// MaxRateBP bounds one tax rate: 100% in basis points.
const MaxRateBP = 10_000

// Tax is one tax of a tenant.
type Tax struct {
	Name      string `json:"name"`
	RateBP    int    `json:"rate_bp"`   // basis points: 1500 = 15%
	Inclusive bool   `json:"inclusive"` // package prices already include it
}

// Validate checks a tenant's list of taxes: named, unique names, rates in 0..100%.
func Validate(taxes []Tax) error {
	seen := map[string]bool{}
	for _, t := range taxes {
		name := strings.TrimSpace(t.Name)
		switch {
		case name == "":
			return fmt.Errorf("every tax needs a name")
		case seen[strings.ToLower(name)]:
			return fmt.Errorf("tax %q is listed twice", name)
		case t.RateBP < 0 || t.RateBP > MaxRateBP:
			return fmt.Errorf("tax %q: rateBp must be between 0 and %d (100%%), got %d", name, MaxRateBP, t.RateBP)
		}
		seen[strings.ToLower(name)] = true
	}
	return nil
}

// Effective returns the taxes that apply to a tenant: its list when it has
// one, else its single legacy rate (tax_rate_bp) as one exclusive tax.
func Effective(taxes []Tax, legacyRateBP int) []Tax {
	if len(taxes) > 0 {
		return taxes
	}
	if legacyRateBP > 0 {
		return []Tax{{Name: "Tax", RateBP: legacyRateBP}}
	}
	return nil
}

// Result is a price split by Apply.
type Result struct {
	Net   money.Money // the amount before every tax
	Tax   money.Money // the sum of every tax
	Total money.Money // Net + Tax, always exactly
}

// Apply splits price under taxes. Inclusive taxes are inside price: the net
// amount is price × 10000 ÷ (10000 + their rates), rounded half away from
// zero, and they together take the rest of price. Exclusive taxes are each
// computed on the net amount and added. With no inclusive tax, Net is price.
func Apply(price money.Money, taxes []Tax) Result {
	incl := 0
	for _, t := range taxes {
		if t.Inclusive {
			incl += t.RateBP
		}
	}
	net := price
	if incl > 0 {
		net = price.MulRate(MaxRateBP, int64(MaxRateBP+incl))
	}
	r := Result{Net: net, Tax: price - net}
	for _, t := range taxes {
		if !t.Inclusive {
			r.Tax += net.MulRate(int64(t.RateBP), MaxRateBP)
		}
	}
	r.Total = r.Net + r.Tax
	return r
}
