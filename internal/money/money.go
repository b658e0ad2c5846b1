// Package money owns the exact representation of amounts: int64 minor units
// in the database and a decimal string ("1250.00") in the API.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Money is an amount in minor units (1/100 of the tenant's currency).
type Money int64

// Scale is the number of minor units in one major unit.
const Scale = 100

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid amount")

// FromMajor converts whole units of currency to Money.
func FromMajor(units int64) Money { return Money(units * Scale) }

// String renders the amount as a decimal string with two fraction digits.
func (m Money) String() string {
	var buf [24]byte
	return string(m.AppendText(buf[:0]))
}

// AppendText appends the amount as String renders it to dst: the API
// writes thousands of amounts per page without a string for each.
func (m Money) AppendText(dst []byte) []byte {
	u := uint64(m)
	if m < 0 {
		dst = append(dst, '-')
		u = uint64(-(m + 1)) + 1 // safe for math.MinInt64
	}
	dst = strconv.AppendUint(dst, u/Scale, 10)
	frac := u % Scale
	return append(dst, '.', byte('0'+frac/10), byte('0'+frac%10))
}

// Parse reads a decimal amount such as "1250", "1250.5" or "-3.05". More than
// two fraction digits, exponents, thousands separators and overflow are refused
// rather than rounded, so no amount is ever silently changed.
func Parse(s string) (Money, error) {
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
	if len(frac) > 2 {
		return 0, fmt.Errorf("%w: %q has more than two decimal places", ErrInvalid, orig)
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%w: %q is not a decimal number", ErrInvalid, orig)
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/Scale-1 {
		return 0, fmt.Errorf("%w: %q is too large", ErrInvalid, orig)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	v := w*Scale + f
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

// MarshalGQL writes the amount as a GraphQL string.
func (m Money) MarshalGQL(w io.Writer) {
	var buf [28]byte
	b := append(m.AppendText(append(buf[:0], '"')), '"') // digits, '-' and '.' need no escaping
	_, _ = w.Write(b)
}

// UnmarshalGQL accepts a decimal string, or an integer literal meaning whole units.
// Floating-point literals are refused: they cannot carry an exact amount.
func (m *Money) UnmarshalGQL(v any) error {
	switch x := v.(type) {
	case string:
		p, err := Parse(x)
		if err != nil {
			return err
		}
		*m = p
		return nil
	case json.Number:
		p, err := Parse(x.String())
		if err != nil {
			return err
		}
		*m = p
		return nil
	case int:
		*m = FromMajor(int64(x))
		return nil
	case int64:
		*m = FromMajor(x)
		return nil
	default:
		return fmt.Errorf("%w: Money must be a decimal string such as \"1250.00\"", ErrInvalid)
	}
}

// MulRate returns m multiplied by rate/denominator, rounded half away from zero.
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
