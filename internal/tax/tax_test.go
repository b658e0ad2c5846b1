package tax

import (
	"testing"

	"github.com/ispgraph/ispgraph/internal/money"
)

func TestApply(t *testing.T) {
	cases := []struct {
		name            string
		price           string
		taxes           []Tax
		net, tax, total string
	}{
		{"none", "1000.00", nil, "1000.00", "0.00", "1000.00"},
		{"one exclusive", "1000.00", []Tax{{"VAT", 1500, false}}, "1000.00", "150.00", "1150.00"},
		{"two exclusive", "1000.00", []Tax{{"VAT", 1500, false}, {"Levy", 200, false}}, "1000.00", "170.00", "1170.00"},
		{"one inclusive", "1150.00", []Tax{{"VAT", 1500, true}}, "1000.00", "150.00", "1150.00"},
		{"inclusive and exclusive", "1150.00", []Tax{{"VAT", 1500, true}, {"Levy", 100, false}}, "1000.00", "160.00", "1160.00"},
		{"inclusive rounding", "999.99", []Tax{{"VAT", 750, true}}, "930.22", "69.77", "999.99"},
	}
	for _, c := range cases {
		r := Apply(money.MustParse(c.price), c.taxes)
		if r.Net.String() != c.net || r.Tax.String() != c.tax || r.Total.String() != c.total {
			t.Errorf("%s: got net %s tax %s total %s, want %s %s %s", c.name, r.Net, r.Tax, r.Total, c.net, c.tax, c.total)
		}
		if r.Net+r.Tax != r.Total {
			t.Errorf("%s: net + tax != total", c.name)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := Validate([]Tax{{"VAT", 1500, true}, {"Levy", 0, false}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]Tax{{{"", 100, false}}, {{"VAT", 100, false}, {"vat", 200, true}}, {{"VAT", -1, false}}, {{"VAT", 10001, false}}} {
		if Validate(bad) == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestEffective(t *testing.T) {
	if got := Effective(nil, 1500); len(got) != 1 || got[0].RateBP != 1500 || got[0].Inclusive {
		t.Fatalf("legacy rate: %+v", got)
	}
	if got := Effective([]Tax{{"A", 1, true}}, 1500); len(got) != 1 || got[0].Name != "A" {
		t.Fatalf("list wins: %+v", got)
	}
	if Effective(nil, 0) != nil {
		t.Fatal("no tax expected")
	}
}
