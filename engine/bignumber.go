package engine

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// BigNumber is a number a Decimal cannot hold exactly: more than 19
// significant digits (an 18-decimal token amount such as
// 12.345678901234567890123), more than 19 digits before the point, more
// than 19 decimal places, or an exponent beyond a Decimal's (1e400). It
// keeps the number's text exactly as it was received, so that it is
// forwarded, rendered and keyed with every digit.
//
// In rules, ==, != and in compare a BigNumber with any number by exact
// value, and so do <, <=, > and >=. Arithmetic on it, and conversions such
// as decimal(x) or money(x), are errors rather than rounded results.
type BigNumber struct{ text string }

// NewBigNumber returns the BigNumber for text, which must be a JSON number
// ("-12.5e3": no "+" sign, no leading zeros, no bare "." ), since it is
// written into JSON as it is.
func NewBigNumber(text string) (BigNumber, error) {
	if !isJSONNumber(text) {
		return BigNumber{}, fmt.Errorf("%q is not a number", shorten(text))
	}
	return BigNumber{text}, nil
}

// String returns the number's text as received.
func (b BigNumber) String() string { return b.text }

// MarshalJSON writes the number's text unquoted, as received.
func (b BigNumber) MarshalJSON() ([]byte, error) {
	if b.text == "" {
		return nil, errors.New("empty BigNumber")
	}
	return []byte(b.text), nil
}

// tooLong is the error for arithmetic or a conversion (what) that would
// need to round b.
func (b BigNumber) tooLong(what string) error {
	p, _ := splitNumber(b.text)
	e := DigitsError{Text: b.text, reason: p.excess()}
	return fmt.Errorf("%s, too many to %s exactly: compare it with == or <, or as text, such as %s",
		e.Error(), what, textSuggestion(b.text))
}

// DigitsError is returned by ParseDecimal for a number a Decimal would
// have to round: the text is a number, but too long or too large.
type DigitsError struct {
	Text   string
	reason string
}

func (e *DigitsError) Error() string {
	return fmt.Sprintf("the number %s %s", shorten(e.Text), e.why())
}

func (e *DigitsError) why() string {
	if e.reason == "" {
		// 0e400, or a number written with hundreds of trailing zeros
		return "is beyond what a decimal holds exactly (19 digits)"
	}
	return e.reason
}

// textSuggestion is the comparison as text a merchant can write instead.
func textSuggestion(text string) string {
	if len(text) > maxShown {
		return `string(amount) == "…"`
	}
	return fmt.Sprintf("string(amount) == %q", text)
}

// maxShown is the longest number text an error message quotes in full.
const maxShown = 64

func shorten(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return s[:maxShown-16] + "…" + s[len(s)-8:]
}

// isJSONNumber reports whether s is a number by JSON's grammar.
func isJSONNumber(s string) bool {
	p := 0
	if p < len(s) && s[p] == '-' {
		p++
	}
	switch {
	case p < len(s) && s[p] == '0':
		p++
	case p < len(s) && s[p] >= '1' && s[p] <= '9':
		for p < len(s) && isDigit(s[p]) {
			p++
		}
	default:
		return false
	}
	if p < len(s) && s[p] == '.' {
		p++
		if p >= len(s) || !isDigit(s[p]) {
			return false
		}
		for p < len(s) && isDigit(s[p]) {
			p++
		}
	}
	if p < len(s) && (s[p] == 'e' || s[p] == 'E') {
		p++
		if p < len(s) && (s[p] == '+' || s[p] == '-') {
			p++
		}
		if p >= len(s) || !isDigit(s[p]) {
			return false
		}
		for p < len(s) && isDigit(s[p]) {
			p++
		}
	}
	return p == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// numParts is a number's exact value in a canonical form:
// ±0.digits × 10^adj, digits without leading or trailing zeros ("" for
// zero). adj is bigAdj when it does not fit an int64 comfortably (an
// exponent of thousands of digits).
type numParts struct {
	neg    bool
	digits string
	adj    int64
	bigAdj *big.Int
}

// maxSmallExp bounds an exponent kept in an int64, far from overflow when
// the digit count is added.
const maxSmallExp = 1 << 60

// splitNumber reads a number in the grammar ParseDecimal accepts (a
// superset of JSON's: [+-] digits [. digits] [e [+-] digits], where either
// side of the point may be empty but not both).
func splitNumber(s string) (numParts, bool) {
	var p numParts
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		p.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	ip := s[start:i]
	var fp string
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fp = s[start:i]
	}
	if ip == "" && fp == "" {
		return p, false
	}
	var exp int64
	var bigExp *big.Int
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		digits := strings.TrimLeft(s[start:i], "0")
		if start == i {
			return p, false
		}
		if n, err := strconv.ParseInt(digits, 10, 64); err == nil && n < maxSmallExp {
			exp = n
		} else if digits != "" {
			bigExp, _ = new(big.Int).SetString(digits, 10)
		}
		if eneg {
			exp = -exp
			if bigExp != nil {
				bigExp.Neg(bigExp)
			}
		}
	}
	if i != len(s) {
		return p, false
	}
	// Leading zeros of the integer part, then (if it is all zeros) of the
	// fraction, move the first significant digit right.
	lead := len(ip) - len(strings.TrimLeft(ip, "0"))
	all := ip[lead:]
	if all == "" {
		f := strings.TrimLeft(fp, "0")
		lead += len(fp) - len(f)
		all = strings.TrimRight(f, "0")
	} else {
		all = strings.TrimRight(all+fp, "0")
	}
	if all == "" {
		return numParts{}, true // zero, whatever its sign and exponent
	}
	p.digits = all
	shift := int64(len(ip) - lead)
	if bigExp != nil {
		p.bigAdj = bigExp.Add(bigExp, big.NewInt(shift))
	} else {
		p.adj = exp + shift
	}
	return p, true
}

func (p numParts) sign() int {
	switch {
	case p.digits == "":
		return 0
	case p.neg:
		return -1
	}
	return 1
}

func (p numParts) bigExp() *big.Int {
	if p.bigAdj != nil {
		return p.bigAdj
	}
	return big.NewInt(p.adj)
}

// cmpParts compares two numbers exactly: -1, 0 or +1.
func cmpParts(a, b numParts) int {
	sa, sb := a.sign(), b.sign()
	if sa != sb || sa == 0 {
		return cmpInt(sa, sb)
	}
	var c int
	if a.bigAdj == nil && b.bigAdj == nil {
		c = cmpInt(a.adj, b.adj)
	} else {
		c = a.bigExp().Cmp(b.bigExp())
	}
	if c == 0 {
		c = strings.Compare(a.digits, b.digits)
	}
	return c * sa
}

func cmpInt[T int | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// excess says why a Decimal cannot hold the number exactly, or "" when it
// can: at most 19 significant digits, 19 before the point and 19 after.
func (p numParts) excess() string {
	if p.digits == "" {
		return ""
	}
	n := int64(len(p.digits))
	switch {
	case n > 19:
		return "has more than 19 significant digits"
	case p.bigAdj != nil && p.bigAdj.Sign() > 0, p.bigAdj == nil && p.adj > 19:
		return "has more than 19 digits before the decimal point"
	case p.bigAdj != nil, n-p.adj > 19:
		return "has more than 19 decimal places"
	}
	return ""
}

// numberParts returns the exact value of a number a rule can hold; ok is
// false for anything else (text, nil, NaN, infinities).
func numberParts(v any) (numParts, bool) {
	var s string
	switch x := v.(type) {
	case BigNumber:
		s = x.text
	case Decimal:
		s = x.String()
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case uint8:
		s = strconv.FormatUint(uint64(x), 10)
	case uint:
		s = strconv.FormatUint(uint64(x), 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return numParts{}, false
		}
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return numParts{}, false
		}
		s = strconv.FormatFloat(float64(x), 'g', -1, 32)
	default:
		return numParts{}, false
	}
	return splitNumber(s)
}

// cmpExact compares two numbers, at least one a BigNumber, by exact value;
// ok is false when either is not a number.
func cmpExact(a, b any) (int, bool) {
	x, ok := numberParts(a)
	if !ok {
		return 0, false
	}
	y, ok := numberParts(b)
	if !ok {
		return 0, false
	}
	return cmpParts(x, y), true
}

func isBig(v any) bool {
	_, ok := v.(BigNumber)
	return ok
}
