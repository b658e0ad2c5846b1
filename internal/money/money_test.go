package money

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"

	"github.com/ispgraph/ispgraph/internal/viewer"
)

func TestParseAndString(t *testing.T) {
	cases := []struct {
		in   string
		want Money
		out  string
	}{
		{"0", 0, "0.00"},
		{"1250", 125000, "1250.00"},
		{"1250.5", 125050, "1250.50"},
		{"1250.05", 125005, "1250.05"},
		{"-3.05", -305, "-3.05"},
		{"+7.1", 710, "7.10"},
		{" 12.00 ", 1200, "12.00"},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		if got != c.want || got.String() != c.out {
			t.Errorf("Parse(%q) = %d (%s), want %d (%s)", c.in, got, got, c.want, c.out)
		}
	}
	for _, bad := range []string{"", "1.234", "1e3", "1,000", "abc", ".5", "5.", "--1", "99999999999999999999"} {
		if _, err := Parse(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestGQLRoundTrip(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	if err := Money(-125005).MarshalGQLContext(ctx, &buf); err != nil || buf.String() != `"-1250.05"` {
		t.Fatalf("MarshalGQLContext = %s, %v", buf.String(), err)
	}
	var m Money
	if err := m.UnmarshalGQLContext(ctx, "1250.05"); err != nil || m != 125005 {
		t.Fatalf("UnmarshalGQLContext = %d, %v", m, err)
	}
	if err := m.UnmarshalGQLContext(ctx, 3.5); err == nil {
		t.Fatal("float accepted")
	}
}

// TestCurrencyDigits: the viewer's tenant currency decides the fraction
// digits at both ends of the scalar, and two tenants in one process each get
// their own.
func TestCurrencyDigits(t *testing.T) {
	jpy := viewer.NewContext(context.Background(), &viewer.Viewer{Kind: viewer.Staff, TenantID: 1, Currency: "JPY"})
	kwd := viewer.NewContext(context.Background(), &viewer.Viewer{Kind: viewer.Staff, TenantID: 2, Currency: "KWD"})
	usd := viewer.NewContext(context.Background(), &viewer.Viewer{Kind: viewer.Staff, TenantID: 3, Currency: "USD"})
	cases := []struct {
		ctx  context.Context
		in   any
		want Money
		out  string
	}{
		{jpy, "1500", 1500, `"1500"`},
		{jpy, 1500, 1500, `"1500"`},
		{jpy, "-7", -7, `"-7"`},
		{kwd, "12.345", 12345, `"12.345"`},
		{kwd, "12.3", 12300, `"12.300"`},
		{kwd, 12, 12000, `"12.000"`},
		{usd, "12.3", 1230, `"12.30"`},
	}
	for _, c := range cases {
		var m Money
		if err := m.UnmarshalGQLContext(c.ctx, c.in); err != nil || m != c.want {
			t.Errorf("UnmarshalGQLContext(%v) = %d, %v; want %d", c.in, m, err, c.want)
			continue
		}
		var buf bytes.Buffer
		if err := m.MarshalGQLContext(c.ctx, &buf); err != nil || buf.String() != c.out {
			t.Errorf("MarshalGQLContext(%d) = %s, %v; want %s", m, buf.String(), err, c.out)
		}
	}
	for _, bad := range []struct {
		ctx context.Context
		in  any
	}{{jpy, "10.5"}, {jpy, "10.0"}, {kwd, "1.2345"}, {usd, "1.234"}} {
		var m Money
		if err := m.UnmarshalGQLContext(bad.ctx, bad.in); !errors.Is(err, ErrInvalid) {
			t.Errorf("UnmarshalGQLContext(%v) error = %v, want ErrInvalid", bad.in, err)
		}
	}
	if got := Money(1500).In("JPY"); got != "1500" {
		t.Errorf("In(JPY) = %s", got)
	}
	if got := Money(12345).In("BHD"); got != "12.345" {
		t.Errorf("In(BHD) = %s", got)
	}
	if m, err := ParseIn("0.001", "KWD"); err != nil || m != 1 {
		t.Errorf("ParseIn(0.001, KWD) = %d, %v", m, err)
	}
}

func TestMulRate(t *testing.T) {
	cases := []struct {
		m           Money
		rate, denom int64
		want        Money
	}{
		{100000, 1500, 10000, 15000}, // 15% of 1000.00
		{333, 1, 3, 111},
		{1000, 1, 3, 333}, // 3.333.. -> 3.33
		{500, 1, 3, 167},  // 1.666.. -> 1.67
		{5, 1, 2, 3},      // half rounds away from zero
		{-5, 1, 2, -3},    // symmetric for negatives
		{150000, 7, 30, 35000},
	}
	for _, c := range cases {
		if got := c.m.MulRate(c.rate, c.denom); got != c.want {
			t.Errorf("%d.MulRate(%d,%d) = %d, want %d", c.m, c.rate, c.denom, got, c.want)
		}
	}
}

// TestStringExtremes: String, Format and MarshalGQLContext agree with plain
// decimal formatting at the edges of int64, for small negatives and for zero,
// with 2, 0 and 3 fraction digits.
func TestStringExtremes(t *testing.T) {
	cases := map[Money][3]string{ // 2, 0 and 3 digits
		0:                 {"0.00", "0", "0.000"},
		-5:                {"-0.05", "-5", "-0.005"},
		-100:              {"-1.00", "-100", "-0.100"},
		99:                {"0.99", "99", "0.099"},
		math.MaxInt64:     {"92233720368547758.07", "9223372036854775807", "9223372036854775.807"},
		math.MinInt64:     {"-92233720368547758.08", "-9223372036854775808", "-9223372036854775.808"},
		math.MinInt64 + 1: {"-92233720368547758.07", "-9223372036854775807", "-9223372036854775.807"},
	}
	for m, want := range cases {
		var buf bytes.Buffer
		if err := m.MarshalGQLContext(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		if m.String() != want[0] || buf.String() != `"`+want[0]+`"` {
			t.Errorf("%d: String %q, MarshalGQLContext %s, want %q", int64(m), m.String(), buf.String(), want[0])
		}
		if got := m.Format(0); got != want[1] {
			t.Errorf("%d: Format(0) %q, want %q", int64(m), got, want[1])
		}
		if got := m.Format(3); got != want[2] {
			t.Errorf("%d: Format(3) %q, want %q", int64(m), got, want[2])
		}
	}
}
