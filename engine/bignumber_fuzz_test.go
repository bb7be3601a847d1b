package engine

import (
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

// FuzzNumberValue checks numbers against math/big: ParseDecimal never
// rounds (a Decimal it returns has exactly the input's value) and refuses
// only numbers a Decimal cannot hold; a JSON number a Decimal cannot hold
// decodes, in both decoders, as a BigNumber that encodes back to its exact
// text; and comparisons involving a BigNumber agree with exact rationals.
func FuzzNumberValue(f *testing.F) {
	seeds := []string{
		"12.345678901234567890123", "0.000000000000000000001", "-0.0000000000000000000001",
		"123456789012345678901234", "1e400", "-1E-400", "25.000000000000000000000", "25.00",
		"9999999999999999999", "-9999999999999999999", "10000000000000000000", "0e400",
		"1.5e3", "0.1234567890123456789", "0.12345678901234567891", "-0", "+.5", "5.",
		"1e19", "1e18", "1e-19", "1e-20", "12345e-24", "0.00000000000000000010", "x", "",
	}
	for i, s := range seeds {
		f.Add(s, seeds[(i+1)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		checkParse(t, a)
		checkJSONNumber(t, a)
		checkCompare(t, a, b)
	})
}

// ratOf is the exact value of s, or nil when s is not a number big.Rat
// reads or its exponent is too large to expand.
func ratOf(s string) *big.Rat {
	if _, ok := splitNumber(s); !ok || len(s) > 400 {
		return nil
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 && len(strings.TrimLeft(strings.TrimLeft(s[i+1:], "+-"), "0")) > 3 {
		// Zero with any exponent is zero; other such numbers are too
		// large for big.Rat to build quickly.
		exp := strings.TrimPrefix(strings.TrimPrefix(s[i+1:], "+"), "-")
		if m, ok := new(big.Rat).SetString(s[:i]); ok && m.Sign() == 0 && exp != "" && strings.Trim(exp, "0123456789") == "" {
			return m
		}
		return nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	return r
}

// holdable reports whether a Decimal (19 digits, at most 19 after the
// point) can hold r exactly.
func holdable(r *big.Rat) bool {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(19), nil)
	x := new(big.Rat).Set(r)
	ten := big.NewRat(10, 1)
	for range 20 {
		if x.IsInt() {
			return new(big.Int).Abs(x.Num()).Cmp(limit) < 0
		}
		x.Mul(x, ten)
	}
	return false
}

func checkParse(t *testing.T, s string) {
	d, err := ParseDecimal(s)
	r := ratOf(s)
	if err == nil {
		if r == nil {
			t.Fatalf("ParseDecimal(%q) = %s, of a text big.Rat does not read", s, d)
		}
		got, ok := new(big.Rat).SetString(d.String())
		if !ok || got.Cmp(r) != 0 {
			t.Fatalf("ParseDecimal(%q) = %s: rounded", s, d)
		}
		return
	}
	if !errors.As(err, new(*DigitsError)) {
		if r != nil {
			t.Fatalf("ParseDecimal(%q) refused a number: %v", s, err)
		}
		return
	}
	if r != nil && holdable(r) {
		// Only the parser's own limits (330 bytes, exponent 330) refuse
		// a number a Decimal holds.
		if i := strings.IndexAny(s, "eE"); len(s) <= 330 && (i < 0 || len(strings.TrimLeft(strings.TrimLeft(s[i+1:], "+-"), "0")) <= 2) {
			t.Fatalf("ParseDecimal(%q) refused a number a Decimal holds: %v", s, err)
		}
	}
}

func checkJSONNumber(t *testing.T, s string) {
	if !isJSONNumber(s) {
		return
	}
	doc := `{"n":` + s + `}`
	fast, ok := decodeFast([]byte(doc))
	if !ok {
		t.Fatalf("the fast decoder gave up on %s", doc)
	}
	std, err := decodeStd([]byte(doc))
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("the decoders disagree on %s:\n%#v\n%#v", doc, fast, std)
	}
	v := fast.(map[string]any)["n"]
	if _, err := ParseDecimal(s); err == nil {
		if _, ok := v.(Decimal); !ok {
			t.Fatalf("%s decoded as %#v, want a Decimal", s, v)
		}
		return
	}
	bn, ok := v.(BigNumber)
	if !ok || bn.String() != s {
		t.Fatalf("%s decoded as %#v, want a BigNumber of its text", s, v)
	}
	for _, enc := range []func(any) ([]byte, error){EncodeJSON, encodeStd} {
		out, err := enc(fast)
		if err != nil || string(out) != doc {
			t.Fatalf("%s encoded as %s, %v", doc, out, err)
		}
	}
	again, err := DecodeJSON([]byte(doc))
	if err != nil || !reflect.DeepEqual(again, fast) {
		t.Fatalf("%s decoded again as %#v, %v", doc, again, err)
	}
	if got, err := FormatValue(v); err != nil || got != s {
		t.Fatalf("%s rendered as %q, %v", s, got, err)
	}
}

// asRuleNumber is what a rule sees for the text s: a Decimal when one holds
// it, else a BigNumber.
func asRuleNumber(s string) (any, bool) {
	if d, err := ParseDecimal(s); err == nil {
		return d, true
	}
	if _, ok := splitNumber(s); !ok {
		return nil, false
	}
	return BigNumber{s}, true
}

func checkCompare(t *testing.T, a, b string) {
	x, ok := asRuleNumber(a)
	if !ok {
		return
	}
	y, ok := asRuleNumber(b)
	if !ok {
		return
	}
	c, ok := cmpExact(x, y)
	if !ok {
		t.Fatalf("cmpExact(%q, %q) found no number", a, b)
	}
	if back, _ := cmpExact(y, x); back != -c {
		t.Fatalf("cmpExact(%q, %q) = %d but the other way %d", a, b, c, back)
	}
	if eq := equal(x, y); eq != (c == 0) {
		t.Fatalf("equal(%q, %q) = %v, cmpExact %d", a, b, eq, c)
	}
	ra, rb := ratOf(a), ratOf(b)
	if ra == nil || rb == nil {
		return
	}
	if want := ra.Cmp(rb); c != want {
		t.Fatalf("%q vs %q compared %d, math/big says %d", a, b, c, want)
	}
	lt, err := compare("<", func(c int) bool { return c < 0 })(x, y)
	if err != nil || lt != (c < 0) {
		t.Fatalf("%q < %q gave %v, %v", a, b, lt, err)
	}
}
