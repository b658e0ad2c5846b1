package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent/billingreport"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/report"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// TestCurrencyMinorUnits runs a JPY tenant (no minor unit) and a KWD tenant
// (three digits) through the API side by side in one process: package
// price, invoice with tax, payment and balance each formatted and parsed
// with the tenant's own digits, too many digits refused, and a bench tenant
// (BDT, two digits) unaffected. Once invoices exist the currency is fixed.
func TestCurrencyMinorUnits(t *testing.T) {
	key := "isop_" + strings.Repeat("ef56", 16)
	h := sha256.Sum256([]byte(key))
	m, base, _, _ := securityEnv(t, map[string]string{"ISPGRAPH_OPERATOR_KEYS": "ops:" + hex.EncodeToString(h[:])})
	t1Admin := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	const createTenant = `mutation($in: CreateTenantInput!) { createTenant(input: $in) { tenant { currency currencyMinorUnit } } }`
	type flow struct {
		slug, currency                   string
		digits                           int
		price, tooPrecise                string
		taxBp                            int
		wantTax, wantTotal, pay, wantBal string
	}
	flows := []flow{
		{slug: "yen", currency: "JPY", digits: 0, price: "1234", tooPrecise: "10.5", taxBp: 1000,
			wantTax: "123", wantTotal: "1357", pay: "1000", wantBal: "357"},
		{slug: "dinar", currency: "KWD", digits: 3, price: "12.345", tooPrecise: "1.2345", taxBp: 500,
			wantTax: "0.617", wantTotal: "12.962", pay: "10.5", wantBal: "2.462"},
	}
	tokens := map[string]string{}
	for _, f := range flows {
		var c struct {
			CreateTenant struct {
				Tenant struct {
					Currency          string
					CurrencyMinorUnit int
				}
			}
		}
		data(t, post(t, base, key, createTenant, map[string]any{"in": map[string]any{
			"name": f.slug, "slug": f.slug, "domain": f.slug + ".example", "currency": f.currency,
			"adminName": "Admin", "adminEmail": "admin@" + f.slug + ".example", "adminPassword": f.slug + "-pass-01"}}), &c)
		if c.CreateTenant.Tenant.Currency != f.currency || c.CreateTenant.Tenant.CurrencyMinorUnit != f.digits {
			t.Fatalf("%s: created %+v", f.slug, c)
		}
		tokens[f.slug] = login(t, base, f.slug, "admin@"+f.slug+".example", f.slug+"-pass-01")
		data(t, post(t, base, tokens[f.slug], `mutation($in: TenantSettingsInput!) { updateTenantSettings(input: $in) { currency } }`,
			map[string]any{"in": map[string]any{"taxes": []map[string]any{{"name": "VAT", "rateBp": f.taxBp, "inclusive": false}}}}), new(any))
	}

	const createPackage = `mutation($p: Money!) { createPackage(input: {name: "Fiber", bandwidthUpKbps: 1000, bandwidthDownKbps: 1000, price: $p, billingCycle: MONTHLY}) { id price } }`
	// Interleaved, so both currencies are live in the process at once.
	pkgs := map[string]string{}
	for _, f := range flows {
		tok := tokens[f.slug]
		if r := post(t, base, tok, createPackage, map[string]any{"p": f.tooPrecise}); r.code() != "BAD_USER_INPUT" {
			t.Fatalf("%s: price %s: %s %+v", f.slug, f.tooPrecise, r.Data, r.Errors)
		}
		var p struct{ CreatePackage struct{ ID, Price string } }
		data(t, post(t, base, tok, createPackage, map[string]any{"p": f.price}), &p)
		if p.CreatePackage.Price != f.price {
			t.Fatalf("%s: package price %q, want %q", f.slug, p.CreatePackage.Price, f.price)
		}
		pkgs[f.slug] = p.CreatePackage.ID
	}
	invs, nus := map[string]string{}, map[string]string{}
	for _, f := range flows {
		tok := tokens[f.slug]
		var nu struct{ CreateNetworkUser struct{ ID string } }
		data(t, post(t, base, tok, `mutation($p: ID!) { createNetworkUser(input: {username: "sub-1", servicePassword: "pw-1", packageID: $p}) { id } }`,
			map[string]any{"p": pkgs[f.slug]}), &nu)
		nus[f.slug] = nu.CreateNetworkUser.ID
		var gen struct {
			GenerateInvoice struct{ ID, Amount, Tax, Total, AmountPaid string }
		}
		data(t, post(t, base, tok, `mutation($id: ID!) { generateInvoice(networkUserID: $id) { id amount tax total amountPaid } }`,
			map[string]any{"id": nus[f.slug]}), &gen)
		g := gen.GenerateInvoice
		zero := "0"
		if f.digits > 0 {
			zero += "." + strings.Repeat("0", f.digits)
		}
		if g.Amount != f.price || g.Tax != f.wantTax || g.Total != f.wantTotal || g.AmountPaid != zero {
			t.Fatalf("%s: invoice %+v, want amount %s tax %s total %s paid %s", f.slug, g, f.price, f.wantTax, f.wantTotal, zero)
		}
		invs[f.slug] = g.ID
	}
	for _, f := range flows {
		tok := tokens[f.slug]
		if r := post(t, base, tok, recordPayment, map[string]any{"inv": invs[f.slug], "amount": f.tooPrecise, "key": "too-precise"}); r.code() != "BAD_USER_INPUT" {
			t.Fatalf("%s: payment %s: %s %+v", f.slug, f.tooPrecise, r.Data, r.Errors)
		}
		data(t, post(t, base, tok, recordPayment, map[string]any{"inv": invs[f.slug], "amount": f.pay, "key": "pay-1"}), new(any))
		var nu struct{ Node struct{ Balance string } }
		data(t, post(t, base, tok, `query($id: ID!) { node(id: $id) { ... on NetworkUser { balance } } }`, map[string]any{"id": nus[f.slug]}), &nu)
		if nu.Node.Balance != f.wantBal {
			t.Fatalf("%s: balance %q, want %q", f.slug, nu.Node.Balance, f.wantBal)
		}
		// Invoices exist: the currency can no longer change.
		r := post(t, base, tok, `mutation { updateTenantSettings(input: {currency: "USD"}) { currency } }`, nil)
		if r.code() != "CONFLICT" {
			t.Fatalf("%s: currency change with invoices: %s %+v", f.slug, r.Data, r.Errors)
		}
	}

	// The bench tenant (BDT) keeps two digits in the same process.
	var pk struct {
		Packages struct {
			Edges []struct{ Node struct{ Price string } }
		}
	}
	data(t, post(t, base, t1Admin, `{ packages(first: 1) { edges { node { price } } } }`, nil), &pk)
	if p := pk.Packages.Edges[0].Node.Price; len(p) < 4 || p[len(p)-3] != '.' {
		t.Fatalf("t1 package price %q: want two fraction digits", p)
	}

	// Reports (and their CSV) use the tenant's digits.
	bg := context.Background()
	for _, f := range flows {
		ten := m.DB.Client.Tenant.Query().Where(tenant.Slug(f.slug)).OnlyX(tenancy.Bypass(bg))
		ctx := viewer.ForTenant(bg, ten.ID)
		rows, err := report.Compute(ctx, m.DB.Client, ten.ID, billingreport.TypeCOLLECTIONS, nil, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0]["amount"] != f.pay+map[string]string{"JPY": "", "KWD": "00"}[f.currency] {
			t.Fatalf("%s: collections report %v", f.slug, rows)
		}
	}
}

// TestCurrencyChangeWithoutInvoices: a tenant with packages but no invoices
// may change to a currency with the same number of digits, not to one that
// would change what its stored prices mean.
func TestCurrencyChangeWithoutInvoices(t *testing.T) {
	key := "isop_" + strings.Repeat("ab78", 16)
	h := sha256.Sum256([]byte(key))
	_, base, _, _ := securityEnv(t, map[string]string{"ISPGRAPH_OPERATOR_KEYS": "ops:" + hex.EncodeToString(h[:])})
	data(t, post(t, base, key, `mutation($in: CreateTenantInput!) { createTenant(input: $in) { tenant { id } } }`, map[string]any{"in": map[string]any{
		"name": "New", "slug": "newco", "domain": "newco.example", "currency": "USD",
		"adminName": "Admin", "adminEmail": "admin@newco.example", "adminPassword": "newco-pass-01"}}), new(any))
	tok := login(t, base, "newco", "admin@newco.example", "newco-pass-01")
	const set = `mutation($c: String!) { updateTenantSettings(input: {currency: $c}) { currency currencyMinorUnit } }`
	// No data yet: any currency, and the scalar follows at once.
	data(t, post(t, base, tok, set, map[string]any{"c": "KWD"}), new(any))
	var p struct{ CreatePackage struct{ Price string } }
	data(t, post(t, base, tok, `mutation { createPackage(input: {name: "P", bandwidthUpKbps: 1, bandwidthDownKbps: 1, price: "1.5"}) { price } }`, nil), &p)
	if p.CreatePackage.Price != "1.500" {
		t.Fatalf("KWD price %q", p.CreatePackage.Price)
	}
	if r := post(t, base, tok, set, map[string]any{"c": "JPY"}); r.code() != "CONFLICT" {
		t.Fatalf("KWD -> JPY with a package: %s %+v", r.Data, r.Errors)
	}
	data(t, post(t, base, tok, set, map[string]any{"c": "BHD"}), new(any))
}
