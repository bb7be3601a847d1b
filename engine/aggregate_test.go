package engine

import (
	"math/big"
	"strings"
	"testing"

	"github.com/expr-lang/expr/vm"
)

func evalValue(t *testing.T, code string, vars map[string]any) (any, error) {
	t.Helper()
	prog, err := compileValue(code, envFor(payramSchema))
	if err != nil {
		t.Fatalf("compile %s: %v", code, err)
	}
	return vm.Run(prog, vars)
}

// A whole power is a product: exact, or an error as x * x is, never rounded.
func TestPowWholeExponentExactOrError(t *testing.T) {
	vars := map[string]any{"amount": MustDecimal("1234567890.123")}
	for code, want := range map[string]string{
		`2 ** 10`:     "1024",
		`1.5 ** 2`:    "2.25",
		`-2 ** 3`:     "-8",
		`amount ** 1`: "1234567890.123",
		`2 ** -2`:     "0.25",
		`7 ** 0`:      "1",
	} {
		v, err := evalValue(t, code, vars)
		if err != nil || formatAny(v) != want {
			t.Errorf("%s = %v, %v; want %s", code, v, err, want)
		}
	}
	for _, code := range []string{`amount ** 2`, `1.0000000001 ** 2`, `1.1 ** 30`, `0.5 ** 100`} {
		if v, err := evalValue(t, code, vars); err == nil || !strings.Contains(err.Error(), "19 significant digits") {
			t.Errorf("%s = %v, %v; want the 19-digit error that amount * amount gives", code, v, err)
		}
	}
	if v, err := evalValue(t, `2 ** 0.5`, nil); err != nil || formatAny(v) != "1.414213562373095049" {
		t.Errorf("2 ** 0.5 = %v, %v; want it rounded to 19 digits", v, err)
	}
}

// mean and median round once, at the end, like /: a total too long for a
// decimal is no error.
func TestMeanMedianRoundOnce(t *testing.T) {
	for code, want := range map[string]string{
		`mean([0.1234567890123456789, 1])`:                      "0.5617283945061728394",
		`median([0.1234567890123456789, 1.123456789012345678])`: "0.6234567890123456784",
		`mean([6000000000000000000, 6000000000000000000])`:      "6000000000000000000",
		`median([6000000000000000000, 6000000000000000000, 1])`: "6000000000000000000",
		`mean([1, 2, 2])`:       "1.666666666666666667",
		`mean([-1, -2, 2])`:     "-0.3333333333333333333",
		`median([3, 1, 2, 10])`: "2.5",
	} {
		v, err := evalValue(t, code, nil)
		if err != nil || formatAny(v) != want {
			t.Errorf("%s = %v, %v; want %s", code, v, err, want)
		}
	}
}

// min and max only compare: a BigNumber is compared by its exact value and
// returned as it is, and whole numbers stay ints, so they can index a list.
func TestMinMaxKeepTheirArguments(t *testing.T) {
	b, err := NewBigNumber("12.345678901234567890123")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"amount": b, "payment_info": []any{"a", "b", "c"}}
	if v, err := evalValue(t, `max(amount, 1)`, vars); err != nil || v != any(b) {
		t.Errorf("max(BigNumber, 1) = %v, %v; want the BigNumber", v, err)
	}
	if v, err := evalValue(t, `min(amount, 13)`, vars); err != nil || v != any(b) {
		t.Errorf("min(BigNumber, 13) = %v, %v; want the BigNumber", v, err)
	}
	if v, err := evalValue(t, `max(amount, 13) == 13`, vars); err != nil || v != true {
		t.Errorf("max(BigNumber, 13) == 13 = %v, %v; want true", v, err)
	}
	for code, want := range map[string]any{
		`payment_info[max(len(payment_info) - 2, 0)]`:  "b",
		`payment_info[0:min(2, len(payment_info))][1]`: "b",
		`len(take(payment_info, max(1, 2)))`:           2,
		`max(1, 2.5)`:                                  MustDecimal("2.5"),
	} {
		if v, err := evalValue(t, code, vars); err != nil || v != want {
			t.Errorf("%s = %#v, %v; want %#v", code, v, err, want)
		}
	}
}

// sum takes a list; sum(5) is a mistake the compiler reports.
func TestSumOfNonListIsACompileError(t *testing.T) {
	for _, code := range []string{`sum(5) == 5`, `sum("abc") > 1`} {
		if _, err := compileExpr(code, envFor(payramSchema), decimalMode, true); err == nil || !strings.Contains(err.Error(), "sum takes a list") {
			t.Errorf("%s: %v; want 'sum takes a list'", code, err)
		}
	}
}

func formatAny(v any) string {
	s, err := FormatValue(v)
	if err != nil {
		return "error: " + err.Error()
	}
	return s
}

// ratToDecimal rounds as Quo does, halves to even, checked against Quo on
// divisions whose exact result needs 20 digits.
func TestRatToDecimalRoundsAsQuo(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"0.2469135780246913577", "2"}, {"0.2469135780246913579", "2"}, {"-0.2469135780246913577", "2"},
		{"1", "3"}, {"-2", "3"}, {"9999999999999999999", "2"}, {"1", "8"}, {"12345678901234567.89", "7"},
		{"0", "5"}, {"0.0000000000000000001", "2"}, {"0.0000000000000000003", "2"},
	} {
		x, y := MustDecimal(c.a), MustDecimal(c.b)
		want, err := x.Quo(y)
		if err != nil {
			t.Fatal(err)
		}
		ra, _ := new(big.Rat).SetString(c.a)
		rb, _ := new(big.Rat).SetString(c.b)
		got, err := ratToDecimal(ra.Quo(ra, rb))
		if err != nil || got.Cmp(want) != 0 {
			t.Errorf("%s / %s: ratToDecimal = %v, %v; Quo = %v", c.a, c.b, got, err, want)
		}
	}
}
