package engine

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/govalues/decimal"
)

// Decimal is an exact decimal number: every JSON number in a payload and
// every numeric literal in a rule is one, so money behaves as on paper
// (49.99 - 44.99 == 5). It holds up to 19 significant digits; arithmetic
// that would need more fails with an error rather than rounding silently
// (division rounds to 19 digits, as a calculator does).
//
// It wraps github.com/govalues/decimal, which is allocation-free, so that
// exact arithmetic costs about as much as float64 in a rule.
type Decimal struct{ d decimal.Decimal }

// ErrDivisionByZero is returned by Quo and Rem for a zero divisor: a rule
// dividing by zero errors instead of comparing against +Inf.
var ErrDivisionByZero = errors.New("division by zero")

// ParseDecimal parses a decimal number such as "25", "-0.10" or "1.5e3".
// Surrounding spaces are not allowed; an empty string is not a number.
//
// It never rounds: a number a Decimal cannot hold exactly (more than 19
// significant digits, 19 before the point or 19 after) is a *DigitsError.
// Trailing zeros beyond that are dropped, which keeps the value:
// "25.000000000000000000000" is 25.00000000000000000.
func ParseDecimal(s string) (Decimal, error) {
	d, err := decimal.Parse(s)
	if err != nil {
		if p, ok := splitNumber(s); ok {
			if p.digits == "" {
				// Zero with a large exponent (0e20), which the parser
				// counts as 20 whole digits.
				return Decimal{}, nil
			}
			// A number, out of range (1e400) or too long for the parser.
			return Decimal{}, &DigitsError{Text: s, reason: p.excess()}
		}
		return Decimal{}, fmt.Errorf("%q is not a decimal number", s)
	}
	if plainShort(s) {
		return Decimal{d}, nil
	}
	// Long or with an exponent: the parser may have rounded.
	p, ok := splitNumber(s)
	q, _ := splitNumber(d.String())
	if !ok || cmpParts(p, q) != 0 {
		return Decimal{}, &DigitsError{Text: s, reason: p.excess()}
	}
	return Decimal{d}, nil
}

// plainShort reports whether s, which parsed as a decimal, has at most 19
// digits and no exponent: the parser holds such a number exactly.
func plainShort(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			n++
		case c == 'e' || c == 'E':
			return false
		}
	}
	return n <= 19
}

// MustDecimal parses s and panics on failure; for tests and constants.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// DecimalFromInt converts an integer exactly.
func DecimalFromInt(n int64) Decimal {
	d, _ := decimal.New(n, 0) // cannot fail at scale 0
	return Decimal{d}
}

// DecimalFromFloat converts a float by its shortest decimal representation,
// so 5.05 becomes exactly 5.05, not 5.04999999999999982236431605997495353221893310546875.
func DecimalFromFloat(f float64) (Decimal, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Decimal{}, fmt.Errorf("%v is not a finite number", f)
	}
	d, err := ParseDecimal(strconv.FormatFloat(f, 'f', -1, 64))
	if err != nil {
		// Only a number beyond 19 digits fails (1e25, 1e-25).
		var de *DigitsError
		if errors.As(err, &de) {
			return d, fmt.Errorf("the number %v %s", f, de.why())
		}
		return d, err
	}
	return d, nil
}

// String renders the number in plain notation with its own precision
// (trailing zeros the provider sent are kept: "25.00").
func (x Decimal) String() string { return x.d.String() }

// MarshalJSON writes the number unquoted, as it appeared in the payload.
func (x Decimal) MarshalJSON() ([]byte, error) { return []byte(x.d.String()), nil }

// Money renders the number rounded half-to-even to two decimals, such as 5 → "5.00".
func (x Decimal) Money() string {
	r := x.d.Round(2).Pad(2)
	s := r.String()
	// Pad stops at 19 digits; a number that long still gets its two decimals.
	switch r.Scale() {
	case 0:
		s += ".00"
	case 1:
		s += "0"
	}
	return s
}

// Add returns x + y, or an error when the exact sum needs more than 19
// significant digits (the library would round it).
func (x Decimal) Add(y Decimal) (Decimal, error) {
	r, err := x.d.Add(y.d)
	if err == nil && r.Scale() < max(x.d.Scale(), y.d.Scale()) {
		err = roundedUnless(r, func(a, b *big.Rat) *big.Rat { return a.Add(a, b) }, x, y)
	}
	return Decimal{r}, wrapArith(err)
}

// Sub returns x - y, or an error when the exact difference needs more than
// 19 significant digits.
func (x Decimal) Sub(y Decimal) (Decimal, error) {
	r, err := x.d.Sub(y.d)
	if err == nil && r.Scale() < max(x.d.Scale(), y.d.Scale()) {
		err = roundedUnless(r, func(a, b *big.Rat) *big.Rat { return a.Sub(a, b) }, x, y)
	}
	return Decimal{r}, wrapArith(err)
}

// errRounded is the error for a sum, difference or product that a decimal
// can only hold rounded.
var errRounded = errors.New("the exact result has more than 19 significant digits, so a decimal would round it; round an operand first, such as round(x, 8)")

// roundedUnless is the slow path of Add, Sub and Mul, taken only when the
// result has fewer decimal places than the exact one needs: nil when r
// still equals op(x, y) exactly (the digits dropped were zeros), else
// errRounded.
func roundedUnless(r decimal.Decimal, op func(a, b *big.Rat) *big.Rat, x, y Decimal) error {
	if op(x.rat(), y.rat()).Cmp(Decimal{r}.rat()) != 0 {
		return errRounded
	}
	return nil
}

// rat returns x as an exact fraction, for the few results a Decimal can
// only hold rounded.
func (x Decimal) rat() *big.Rat {
	num := new(big.Int).SetUint64(x.d.Coef())
	if x.d.IsNeg() {
		num.Neg(num)
	}
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.d.Scale())), nil)
	return new(big.Rat).SetFrac(num, den)
}

// Mul returns x * y, or an error when the exact product needs more than
// 19 significant digits.
func (x Decimal) Mul(y Decimal) (Decimal, error) {
	r, err := x.d.Mul(y.d)
	if err == nil && r.Scale() < x.d.Scale()+y.d.Scale() {
		err = roundedUnless(r, func(a, b *big.Rat) *big.Rat { return a.Mul(a, b) }, x, y)
	}
	return Decimal{r}, wrapArith(err)
}

// Quo returns x / y rounded to 19 significant digits; a zero y is an error.
func (x Decimal) Quo(y Decimal) (Decimal, error) {
	if y.d.IsZero() {
		return Decimal{}, ErrDivisionByZero
	}
	r, err := x.d.Quo(y.d)
	return Decimal{r.Trim(0)}, wrapArith(err)
}

// Rem returns the remainder of x / y, with the sign of x; a zero y is an error.
func (x Decimal) Rem(y Decimal) (Decimal, error) {
	if y.d.IsZero() {
		return Decimal{}, ErrDivisionByZero
	}
	_, r, err := x.d.QuoRem(y.d)
	return Decimal{r}, wrapArith(err)
}

// Cmp compares x and y numerically: -1, 0 or +1.
func (x Decimal) Cmp(y Decimal) int { return x.d.Cmp(y.d) }

// Neg returns -x.
func (x Decimal) Neg() Decimal { return Decimal{x.d.Neg()} }

// Abs returns |x|.
func (x Decimal) Abs() Decimal { return Decimal{x.d.Abs()} }

// Round rounds half-to-even to the given number of decimal places.
func (x Decimal) Round(places int) Decimal {
	return Decimal{x.d.Round(max(0, min(places, decimal.MaxScale)))}
}

// IsZero reports whether x == 0.
func (x Decimal) IsZero() bool { return x.d.IsZero() }

// Float64 converts to the nearest float64.
func (x Decimal) Float64() float64 {
	f, _ := x.d.Float64()
	return f
}

// Int64 returns the integer part of x, and whether x was whole and in range.
func (x Decimal) Int64() (int64, bool) {
	w, frac, ok := x.d.Int64(0)
	return w, ok && frac == 0 && x.d.IsInt()
}

func wrapArith(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, "overflow") {
		return errors.New("number too large for exact decimal arithmetic (more than 19 digits)")
	}
	return err
}
