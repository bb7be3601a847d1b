package engine

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
)

// floatEvent decodes body the way a float-only engine would: every number,
// and every amount sent as a string, becomes a float64.
func floatEvent(t testing.TB, body string) *Event {
	t.Helper()
	var payload map[string]any
	if err := json.Unmarshal([]byte(body), &payload); err != nil {
		t.Fatal(err)
	}
	for k, v := range payload {
		if s, ok := v.(string); ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				payload[k] = f
			}
		}
	}
	return &Event{ID: "evt_1", Source: "payram", Provider: "payram", Type: "payment.over_filled", Payload: payload}
}

// outcome evaluates the single rule of rs against ev: "true", "false" or
// "error: <message>".
func outcome(rs *RuleSet, ev *Event) string {
	res := rs.Evaluate(ev, true)[0]
	if res.Err != nil {
		return "error: " + res.Err.Error()
	}
	return strconv.FormatBool(res.Matched)
}

// TestDecimalRules runs conditions through real compiled rules. float is
// what the same rule gives with expr's native float64 arithmetic, where it
// differs: the reason payramd patches expressions.
func TestDecimalRules(t *testing.T) {
	const overpaidBy5 = `{"status":"OVER_FILLED","amount":49.99,"filled_amount_in_usd":54.99}`
	const overpaidBy5Strings = `{"status":"OVER_FILLED","amount":"49.99","filled_amount_in_usd":"54.99"}`
	// float64 gets 34.99 - 29.99 wrong (5.000000000000004) where it
	// happens to get 54.99 - 49.99 right.
	const overpaidBy5Float = `{"status":"OVER_FILLED","amount":29.99,"filled_amount_in_usd":34.99}`
	const overpaidBy5FloatStrings = `{"status":"OVER_FILLED","amount":"29.99","filled_amount_in_usd":"34.99"}`
	const overpaid = `{"status":"OVER_FILLED","amount":"44.99","filled_amount_in_usd":"52.50"}`
	const open = `{"status":"OPEN","amount":"49.99","filled_amount_in_usd":null}`
	tests := []struct {
		name, when, body string
		want             string // "true", "false" or "error: ..." (a prefix)
		float            string // expr's float64 answer, when it differs
	}{
		{"subtraction", `49.99 - 44.99 == 5 && 34.99 - 29.99 == 5`, `{}`, "true", "false"},
		{"addition", `0.1 + 0.2 == 0.3`, `{}`, "true", "false"},
		{"54.99 - 49.99 is not more than 5 (numbers)", `filled_amount_in_usd - amount > 5`, overpaidBy5, "false", ""},
		{"54.99 - 49.99 is not more than 5 (strings)", `filled_amount_in_usd - amount > 5`, overpaidBy5Strings, "false", ""},
		{"54.99 - 49.99 equals 5", `filled_amount_in_usd - amount == 5`, overpaidBy5, "true", ""},
		{"34.99 - 29.99 is not more than 5 (numbers)", `filled_amount_in_usd - amount > 5`, overpaidBy5Float, "false", "true"},
		{"34.99 - 29.99 is not more than 5 (strings)", `filled_amount_in_usd - amount > 5`, overpaidBy5FloatStrings, "false", "true"},
		{"34.99 - 29.99 equals 5", `filled_amount_in_usd - amount == 5`, overpaidBy5Float, "true", "false"},
		{"overpaid by 7.51", `status == "OVER_FILLED" && filled_amount_in_usd - amount > 5`, overpaid, "true", ""},
		{"difference is exactly 7.51", `filled_amount_in_usd - amount == 7.51`, overpaid, "true", "false"},
		{"string and number amounts compare the same", `amount == 49.99 && amount == 49.990 && amount == decimal("49.99")`, overpaidBy5Strings, "true", ""},
		{"integer literal against a decimal", `amount * 100 == 4999`, overpaidBy5, "true", ""},
		{"multiplication", `amount * 3 == 149.97 && 0.1 * 3 == 0.3`, overpaidBy5, "true", "false"},
		// Division rounds to 19 significant digits, as a calculator does.
		{"one third times three rounds at 19 digits", `1/3*3 == 0.9999999999999999999`, `{}`, "true", ""},
		{"one third times three is not one", `1/3*3 == 1`, `{}`, "false", "true"},
		{"division", `amount / 2 == 24.995`, overpaidBy5, "true", ""},
		{"integer division gives a decimal", `7 / 2 == 3.5`, `{}`, "true", ""},
		{"division by zero is an error, not +Inf", `amount / 0 > 5`, overpaidBy5, "error: division by zero", "true"},
		{"division by a zero field", `amount / (filled_amount_in_usd - 54.99) > 5`, overpaidBy5, "error: division by zero", ""},
		{"remainder by zero", `amount % 0 == 0`, overpaidBy5, "error: division by zero", ""},
		{"nil minus 5", `nil - 5 > 0`, `{}`, "error: invalid operation -: nil (the field is missing or null) is not a number (1:5)", ""},
		{"missing field minus 5", `missing - 5 > 0`, `{}`, "error: invalid operation -: nil (the field is missing or null) is not a number (1:9)", ""},
		{"null amount in arithmetic", `filled_amount_in_usd - amount > 5`, open, "error: invalid operation -: nil (the field is missing or null) is not a number (1:22)", ""},
		{"null amount compared", `filled_amount_in_usd > 5`, open, "error: invalid operation >: nil (the field is missing or null) is not a number", ""},
		{"null is not equal to a number", `filled_amount_in_usd == 0`, open, "false", ""},
		{"null coalesced", `(filled_amount_in_usd ?? 0) < amount`, open, "true", ""},
		{"text is not a number", `currency - 1 > 0`, `{"currency":"USDC"}`, `error: invalid operation -: the string "USDC" is not a number`, ""},
		{"text equals no number", `currency == 1`, `{"currency":"1"}`, "false", ""},
		{"integer remainder", `7 % 3 == 1`, `{}`, "true", ""},
		{"decimal remainder", `amount % 10 == 9.99`, overpaidBy5, "true", ""},
		{"decimal remainder by a decimal", `amount % 0.5 == 0.49`, overpaidBy5, "true", ""}, // a compile error with floats
		{"remainder keeps the sign of the dividend", `-amount % 10 == -9.99`, overpaidBy5, "true", ""},
		{"negative result", `amount - 50 == -0.01`, overpaidBy5, "true", "false"},
		{"negation", `-amount < -49.98 && -(-amount) == amount`, overpaidBy5, "true", ""},
		{"negative literal", `-5 + 2 == -3 && -0.5 * 2 == -1`, `{}`, "true", ""},
		{"abs of a difference", `abs(amount - 50) == 0.01`, overpaidBy5, "true", "false"},
		{"round, ceil, floor, int", `round(amount, 1) == 50 && ceil(amount) == 50 && floor(amount) == 49 && int(amount) == 49`, overpaidBy5, "true", ""},
		{"round half to even", `round(0.125, 2) == 0.12 && round(0.135, 2) == 0.14`, `{}`, "true", ""},
		{"in compares numbers by value", `amount in [10, 49.990, 100] && 50 in [50.00]`, overpaidBy5Strings, "true", ""},
		{"not in", `amount not in [49.98, 50]`, overpaidBy5, "true", ""},
		{"integer field against a decimal literal", `timestamp > 1763901199.5`, `{"timestamp":1763901200}`, "true", ""},
		{"decimal inside a predicate", `all(payment_info, .amount > 1.1) && count(payment_info, .amount == 2.20) == 1`, `{"payment_info":[{"amount":2.2},{"amount":1.15}]}`, "true", ""},
		{"nested amount strings are text", `any(payment_info, decimal(.amount) == 2.2) && any(payment_info, .amount > 1)`, `{"payment_info":[{"amount":"2.2"}]}`, `error: invalid operation >: the string "2.2" is not a number`, ""},
		// A literal a Decimal would round is refused (TestCompileProblems);
		// trailing zeros beyond 19 digits are not rounding.
		{"a literal with trailing zeros is exact", `25.000000000000000000000 == 25 && 0.10000000000000000000000 == 0.1`, `{}`, "true", ""},
		{"19-digit number overflows", `big * 10 > 0`, `{"big":9999999999999999999}`, "error: number too large for exact decimal arithmetic (more than 19 digits)", ""},
		{"a product that would round is an error", `amount * 1.23456789012345678 > 0`, overpaidBy5, "error: the exact result has more than 19 significant digits, so a decimal would round it", ""},
		{"a sum that would round is an error", `0.1234567890123456789 + 1 > 0`, `{}`, "error: the exact result has more than 19 significant digits", ""},
		{"a sum whose dropped digits are zeros is exact", `0.1000000000000000000 + 1 == 1.1`, `{}`, "true", ""},
		{"19-digit sum overflows", `big + big > 0`, `{"big":9999999999999999999}`, "error: number too large for exact decimal arithmetic (more than 19 digits)", ""},
		{"20-digit payload number compares exactly", `big > 0 && big > 9999999999999999999.0 && big != 1234567890123456789 && -5 < big && big == big && string(big) == "12345678901234567890"`, `{"big":12345678901234567890}`, "true", ""},
		{"arithmetic on a 20-digit payload number", `big + 1 > 0`, `{"big":12345678901234567890}`, `error: the number 12345678901234567890 has more than 19 digits before the decimal point, too many to compute with exactly: compare it with == or <, or as text, such as string(amount) == "12345678901234567890" (1:5)`, ""},
		{"20-digit payload number still equals itself", `big == big`, `{"big":12345678901234567890}`, "true", ""},
		{"float() leaves decimals", `float(amount) > 49.98`, overpaidBy5, "true", ""},
		{"text functions still work", `lower(status) == "over_filled" && len(status) - 1 == 10`, overpaidBy5, "true", ""},
		{"string concatenation", `status + "!" == "OVER_FILLED!"`, overpaidBy5, "true", ""},
		{"string ordering", `currency < "USDT"`, `{"currency":"USDC"}`, "true", ""},
		// Aggregates are exact too; expr's own refused decimals at run time.
		{"max and min of amounts", `max(amount, filled_amount_in_usd) == 54.99 && min(amount, 50) == 49.99 && max([amount, 3], 7) == 49.99`, overpaidBy5Strings, "true", ""},
		{"sum of amounts", `sum([amount, filled_amount_in_usd]) == 104.98 && sum([0.1, 0.2]) == 0.3`, overpaidBy5, "true", "false"},
		{"sum with a mapping", `sum(payment_info, decimal(.amount)) == 3.3 && sum(payment_info, decimal(.amount) * 2) == 6.6`, `{"payment_info":[{"amount":"1.1"},{"amount":"2.2"}]}`, "true", ""},
		{"sum of nothing is zero", `sum([]) == 0`, `{}`, "true", ""},
		{"sum of integers stays an integer", `[10, 20, 30][sum([0, 1])] == 20`, `{}`, "true", ""},
		{"mean and median", `mean([amount, filled_amount_in_usd]) == 52.49 && median([3, amount, 1]) == 3 && median([1, 2, 3, 4]) == 2.5`, overpaidBy5, "true", ""},
		{"max with a missing amount", `max(amount, filled_amount_in_usd) > 1`, open, "error: max: a value is nil (a missing or null field); write (x ?? 0) to count it as zero", ""},
		{"mean of an empty list", `mean([]) == 0`, `{}`, "error: mean of no numbers (an empty list)", ""},
		{"sum of text", `sum(status) > 0`, overpaidBy5, `error: sum takes a list, not the string "OVER_FILLED"`, ""},
		{"max of text", `max(status, 1) > 0`, overpaidBy5, `error: max: "OVER_FILLED" is not a decimal number`, ""},
		{"powers", `1.1 ** 2 == 1.21 && 2 ^ 10 == 1024 && 2 ** -2 == 0.25 && 4 ** 0.5 == 2`, `{}`, "true", "false"},
		{"power of an amount", `amount ** 2 == 2499.0001`, overpaidBy5, "true", ""},
		{"zero to a negative power", `0 ** -1 > 0`, `{}`, "error: division by zero", ""},
		{"negative to a fractional power", `(0 - 8) ** 0.5 > 0`, `{}`, "error: -8 ** 0.5 has no real value", ""},
		{"power overflow", `10 ** 19 > 0`, `{}`, "error: number too large for exact decimal arithmetic", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustCompile(t, payramOptions, tt.when)
			got := outcome(rs, payramEvent(t, tt.body))
			if got != tt.want && !(strings.HasPrefix(tt.want, "error: ") && strings.HasPrefix(got, tt.want)) {
				t.Errorf("%s\n got %s\nwant %s", tt.when, got, tt.want)
			}
			if tt.float == "" {
				return
			}
			frs := mustCompile(t, CompileOptions{mode: floatMode}, tt.when)
			if got := outcome(frs, floatEvent(t, tt.body)); got != tt.float {
				t.Errorf("with float64 arithmetic %s gives %s, the test expects %s", tt.when, got, tt.float)
			}
		})
	}
}

// A rule that fails at run time does not match, and never stops the others.
func TestRuntimeErrorDoesNotStopOtherRules(t *testing.T) {
	rs := mustCompile(t, payramOptions,
		`status == "OPEN"`,
		`status == "OPEN" && filled_amount_in_usd - 5 > 0`, // filled_amount_in_usd is null
		`amount / 0 > 1`,
		`amount > 10`,
	)
	ev := readEvent(t, "open.json")
	for _, all := range []bool{false, true} {
		var got []string
		for _, r := range rs.Evaluate(ev, all) {
			s := r.Rule.Name + "=" + strconv.FormatBool(r.Matched)
			if r.Err != nil {
				s += " (" + r.Err.Error() + ")"
			}
			got = append(got, s)
		}
		want := []string{
			"r0=true",
			"r1=false (invalid operation -: nil (the field is missing or null) is not a number (1:42))",
			"r2=false (division by zero (1:8))",
			"r3=true",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("Evaluate(all=%v):\n%s\nwant\n%s", all, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestMoney(t *testing.T) {
	tests := []struct{ in, want string }{
		{"5", "5.00"},
		{"5.1", "5.10"},
		{"5.049", "5.05"},
		{"5.045", "5.04"}, // half to even
		{"5.055", "5.06"},
		{"5.0451", "5.05"},
		{"-5.045", "-5.04"},
		{"0.005", "0.00"},
		{"0.015", "0.02"},
		{"1234.5", "1234.50"},
		{"49.990", "49.99"},
		{"1234567890123456789", "1234567890123456789.00"},
		{"123456789012345678.9", "123456789012345678.90"},
	}
	for _, tt := range tests {
		if got := MustDecimal(tt.in).Money(); got != tt.want {
			t.Errorf("Money(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	// The same through money() in a template, with the types a payload holds.
	tmpl := CompileTemplate(&config.Scalar{Value: `{{ money(a) }}|{{ money(b) }}|{{ money(c) }}|{{ money(missing) }}|{{ money(5) }}|{{ money(a - b) }}`}, &config.Problems{})
	got, err := tmpl.Render(map[string]any{"a": MustDecimal("52.50"), "b": MustDecimal("44.99"), "c": "12.3"})
	if want := "52.50|44.99|12.30||5.00|7.51"; err != nil || got != want {
		t.Errorf("money() template = %q, %v; want %q", got, err, want)
	}
	if _, err := tmpl.Render(map[string]any{"a": "lots", "b": MustDecimal("1")}); err == nil || err.Error() != `{{ money(a) }}: money: "lots" is not a decimal number (1:2)` {
		t.Errorf("money(text) error = %v", err)
	}
}

func TestDecimalArithmetic(t *testing.T) {
	d := MustDecimal
	type op func(x, y Decimal) (Decimal, error)
	tests := []struct {
		name    string
		f       op
		x, y    string
		want    string
		wantErr string
	}{
		{"add", Decimal.Add, "49.99", "0.01", "50.00", ""},
		{"sub", Decimal.Sub, "49.99", "44.99", "5.00", ""},
		{"mul", Decimal.Mul, "1.10", "3", "3.30", ""},
		{"quo", Decimal.Quo, "10", "4", "2.5", ""},
		{"quo trims trailing zeros", Decimal.Quo, "9.00", "3", "3", ""},
		{"quo rounds at 19 digits", Decimal.Quo, "2", "3", "0.6666666666666666667", ""},
		{"quo by zero", Decimal.Quo, "1", "0.00", "", "division by zero"},
		{"rem", Decimal.Rem, "-7.5", "2", "-1.5", ""},
		{"rem by zero", Decimal.Rem, "1", "0", "", "division by zero"},
		{"add overflow", Decimal.Add, "9999999999999999999", "1", "", "number too large for exact decimal arithmetic (more than 19 digits)"},
		{"mul overflow", Decimal.Mul, "99999999999", "99999999999", "", "number too large for exact decimal arithmetic (more than 19 digits)"},
	}
	for _, tt := range tests {
		got, err := tt.f(d(tt.x), d(tt.y))
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s(%s, %s) = %s, %v; want error %q", tt.name, tt.x, tt.y, got, err, tt.wantErr)
			}
		case err != nil || got.String() != tt.want:
			t.Errorf("%s(%s, %s) = %s, %v; want %s", tt.name, tt.x, tt.y, got, err, tt.want)
		}
	}
	if got := d("0.10").Cmp(d("0.1")); got != 0 {
		t.Errorf("Cmp(0.10, 0.1) = %d", got)
	}
	if n, ok := d("42.00").Int64(); !ok || n != 42 {
		t.Errorf("Int64(42.00) = %d, %v", n, ok)
	}
	if _, ok := d("42.5").Int64(); ok {
		t.Error("Int64(42.5) must not be whole")
	}
	if got := d("-2.5").Abs().Neg().Round(0).String(); got != "-2" {
		t.Errorf("-|−2.5| rounded = %s, want -2 (half to even)", got)
	}
	for _, f := range []struct {
		in   float64
		want string
	}{{5.05, "5.05"}, {0.1, "0.1"}, {1e-7, "0.0000001"}, {-3, "-3"}} {
		if got, err := DecimalFromFloat(f.in); err != nil || got.String() != f.want {
			t.Errorf("DecimalFromFloat(%v) = %s, %v; want %s", f.in, got, err, f.want)
		}
	}
	for _, bad := range []string{"", " 1", "1,5", "abc", "1e", "0x10", "99999999999999999999"} {
		if _, err := ParseDecimal(bad); err == nil {
			t.Errorf("ParseDecimal(%q) succeeded", bad)
		}
	}
}
