// Package money owns the exact representation of amounts: int64 minor units
// of the tenant's currency in the database (cents for USD, yen for JPY, fils
// for KWD) and a decimal string with the currency's ISO 4217 number of
// fraction digits in the API ("1250.00" USD, "1500" JPY, "12.345" KWD).
package money

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Money is an amount in minor units of the tenant's currency. The number of
// minor units in a major unit depends on the currency (see MinorUnit); the
// stored integer never does.
type Money int64

// Scale is the number of minor units in one major unit of a two-digit
// currency (USD, BDT), the default when no currency is known.
const Scale = 100

// DefaultDigits is the number of fraction digits used when the currency is
// unknown: a caller without a tenant.
const DefaultDigits = 2

// maxDigits bounds the fraction digits of any ISO 4217 currency.
const maxDigits = 4

var pow10 = [...]int64{1, 10, 100, 1000, 10000}

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid amount")

// FromMajor converts whole units of a two-digit currency to Money.
func FromMajor(units int64) Money { return Money(units * Scale) }

// FromMajorIn converts whole units of a currency with digits fraction digits
// to Money.
func FromMajorIn(units int64, digits int) Money { return Money(units * pow10[clampDigits(digits)]) }

// String renders the amount with two fraction digits. Code that knows the
// currency uses Format or In instead.
func (m Money) String() string { return m.Format(DefaultDigits) }

// AppendText appends the amount as String renders it to dst.
func (m Money) AppendText(dst []byte) []byte { return m.AppendFormat(dst, DefaultDigits) }

// In renders the amount in the ISO 4217 currency code ("1500" for JPY,
// "12.345" for KWD); an unknown code renders two digits.
func (m Money) In(code string) string { return m.Format(DigitsOf(code)) }

// Format renders the amount as a decimal string with exactly digits fraction
// digits (none and no dot for 0).
func (m Money) Format(digits int) string {
	var buf [28]byte
	return string(m.AppendFormat(buf[:0], digits))
}

// AppendFormat appends the amount as Format renders it to dst: the API
// writes thousands of amounts per page without a string for each.
func (m Money) AppendFormat(dst []byte, digits int) []byte {
	digits = clampDigits(digits)
	u := uint64(m)
	if m < 0 {
		dst = append(dst, '-')
		u = uint64(-(m + 1)) + 1 // safe for math.MinInt64
	}
	if digits == 0 {
		return strconv.AppendUint(dst, u, 10)
	}
	p := uint64(pow10[digits])
	dst = strconv.AppendUint(dst, u/p, 10)
	dst = append(dst, '.')
	frac := u % p
	for d := p / 10; d > 0; d /= 10 {
		dst = append(dst, byte('0'+frac/d%10))
	}
	return dst
}

// DigitsOf returns the fraction digits of currency code, DefaultDigits for
// an unknown code.
func DigitsOf(code string) int {
	if n, ok := MinorUnit(code); ok {
		return n
	}
	return DefaultDigits
}

// DigitsFromContext returns the fraction digits of the currency of the
// viewer's tenant (carried by the viewer, so reading it costs no statement),
// DefaultDigits for a caller without a tenant currency.
func DigitsFromContext(ctx context.Context) int {
	if v := viewer.FromContext(ctx); v != nil && v.Currency != "" {
		return DigitsOf(v.Currency)
	}
	return DefaultDigits
}

func clampDigits(d int) int {
	if d < 0 || d > maxDigits {
		return DefaultDigits
	}
	return d
}

// Parse reads a decimal amount of a two-digit currency such as "1250",
// "1250.5" or "-3.05". Code that knows the currency uses ParseDigits or ParseIn.
func Parse(s string) (Money, error) { return ParseDigits(s, DefaultDigits) }

// ParseIn reads a decimal amount in the ISO 4217 currency code.
func ParseIn(s, code string) (Money, error) { return ParseDigits(s, DigitsOf(code)) }

// ParseDigits reads a decimal amount of a currency with digits fraction
// digits. More fraction digits than the currency has ("10.5" yen, "1.2345"
// dinars), exponents, thousands separators and overflow are refused rather
// than rounded, so no amount is ever silently changed.
func ParseDigits(s string, digits int) (Money, error) {
	digits = clampDigits(digits)
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrInvalid)
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") {
		return 0, fmt.Errorf("%w: %q is not a decimal number", ErrInvalid, orig)
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%w: %q is not a decimal number", ErrInvalid, orig)
		}
	}
	if len(frac) > digits {
		switch digits {
		case 0:
			return 0, fmt.Errorf("%w: %q has decimal places; the currency has no minor unit", ErrInvalid, orig)
		case 1:
			return 0, fmt.Errorf("%w: %q has more than one decimal place", ErrInvalid, orig)
		case 2:
			return 0, fmt.Errorf("%w: %q has more than two decimal places", ErrInvalid, orig)
		default:
			return 0, fmt.Errorf("%w: %q has more than %d decimal places", ErrInvalid, orig, digits)
		}
	}
	scale := pow10[digits]
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/scale-1 {
		return 0, fmt.Errorf("%w: %q is too large", ErrInvalid, orig)
	}
	for len(frac) < digits {
		frac += "0"
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	v := w*scale + f
	if neg {
		v = -v
	}
	return Money(v), nil
}

// MustParse is Parse for constants in tests and seed data.
func MustParse(s string) Money {
	m, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return m
}

// MarshalGQLContext writes the amount as a GraphQL string with the fraction
// digits of the viewer's tenant currency.
func (m Money) MarshalGQLContext(ctx context.Context, w io.Writer) error {
	var buf [32]byte
	b := append(m.AppendFormat(append(buf[:0], '"'), DigitsFromContext(ctx)), '"') // digits, '-' and '.' need no escaping
	_, err := w.Write(b)
	return err
}

// UnmarshalGQLContext accepts a decimal string in the viewer's tenant
// currency, or an integer literal meaning whole units. Floating-point literals
// are refused: they cannot carry an exact amount.
func (m *Money) UnmarshalGQLContext(ctx context.Context, v any) error {
	digits := DigitsFromContext(ctx)
	switch x := v.(type) {
	case string:
		p, err := ParseDigits(x, digits)
		if err != nil {
			return err
		}
		*m = p
		return nil
	case json.Number:
		p, err := ParseDigits(x.String(), digits)
		if err != nil {
			return err
		}
		*m = p
		return nil
	case int:
		return m.setMajor(int64(x), digits)
	case int64:
		return m.setMajor(x, digits)
	default:
		return fmt.Errorf("%w: Money must be a decimal string such as \"1250.00\"", ErrInvalid)
	}
}

func (m *Money) setMajor(units int64, digits int) error {
	p, err := ParseDigits(strconv.FormatInt(units, 10), digits)
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// MulRate returns m multiplied by rate/denominator, rounded half away from zero
// to the minor unit (a whole yen, a fils, a cent).
// It is the one place proportional amounts (tax, proration) are computed.
func (m Money) MulRate(rate, denominator int64) Money {
	if denominator == 0 {
		panic("money: zero denominator")
	}
	n := int64(m) * rate
	q, r := n/denominator, n%denominator
	if r < 0 {
		r = -r
	}
	if 2*r >= abs(denominator) {
		if (n < 0) != (denominator < 0) {
			q--
		} else {
			q++
		}
	}
	return Money(q)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
