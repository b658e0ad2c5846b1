package money

import (
	"bytes"
	"errors"
	"math"
	"testing"
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
	var buf bytes.Buffer
	Money(-125005).MarshalGQL(&buf)
	if buf.String() != `"-1250.05"` {
		t.Fatalf("MarshalGQL = %s", buf.String())
	}
	var m Money
	if err := m.UnmarshalGQL("1250.05"); err != nil || m != 125005 {
		t.Fatalf("UnmarshalGQL = %d, %v", m, err)
	}
	if err := m.UnmarshalGQL(3.5); err == nil {
		t.Fatal("float accepted")
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

// TestStringExtremes: String and MarshalGQL agree with plain decimal
// formatting at the edges of int64, for small negatives and for zero.
func TestStringExtremes(t *testing.T) {
	cases := map[Money]string{
		0:                 "0.00",
		-5:                "-0.05",
		-100:              "-1.00",
		99:                "0.99",
		math.MaxInt64:     "92233720368547758.07",
		math.MinInt64:     "-92233720368547758.08",
		math.MinInt64 + 1: "-92233720368547758.07",
	}
	for m, want := range cases {
		var buf bytes.Buffer
		m.MarshalGQL(&buf)
		if m.String() != want || buf.String() != `"`+want+`"` {
			t.Errorf("%d: String %q, MarshalGQL %s, want %q", int64(m), m.String(), buf.String(), want)
		}
	}
}
