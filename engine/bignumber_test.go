package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
)

// ParseDecimal never rounds: a number a Decimal cannot hold exactly is an
// error, and trailing zeros beyond 19 digits (which change no value) are
// dropped.
func TestParseDecimalNeverRounds(t *testing.T) {
	tests := []struct {
		in, want string // want is the Decimal's text, or "error: ..."
	}{
		{"25.00", "25.00"},
		{"-0.10", "-0.10"},
		{"1.5e3", "1500"},
		{"9999999999999999999", "9999999999999999999"},
		{"0.1234567890123456789", "0.1234567890123456789"},
		{"0.0000000000000000001", "0.0000000000000000001"},
		{"-0.0000000000000000001", "-0.0000000000000000001"},
		{"1234567890.123456789", "1234567890.123456789"},
		{"1e-19", "0.0000000000000000001"},
		{"12345e14", "1234500000000000000"},
		{"25.000000000000000000000", "25.00000000000000000"},
		{"0.00000000000000000000000", "0.0000000000000000000"},
		{"-0", "0"},
		{"12.345678901234567890123", "error: the number 12.345678901234567890123 has more than 19 significant digits"},
		{"0.000000000000000000001", "error: the number 0.000000000000000000001 has more than 19 decimal places"},
		{"-0.00000000000000000001", "error: the number -0.00000000000000000001 has more than 19 decimal places"},
		{"0.12345678901234567891", "error: the number 0.12345678901234567891 has more than 19 significant digits"},
		{"12345678901234567890", "error: the number 12345678901234567890 has more than 19 digits before the decimal point"},
		{"1e19", "error: the number 1e19 has more than 19 digits before the decimal point"},
		{"1e400", "error: the number 1e400 has more than 19 digits before the decimal point"},
		{"1e-400", "error: the number 1e-400 has more than 19 decimal places"},
		{"1.00000000000000000001", "error: the number 1.00000000000000000001 has more than 19 significant digits"},
		{"x", `error: "x" is not a decimal number`},
		{"", `error: "" is not a decimal number`},
		{" 1", `error: " 1" is not a decimal number`},
	}
	for _, tt := range tests {
		d, err := ParseDecimal(tt.in)
		got := d.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tt.want {
			t.Errorf("ParseDecimal(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if strings.Contains(tt.want, "digits") || strings.Contains(tt.want, "places") {
			if !errors.As(err, new(*DigitsError)) {
				t.Errorf("ParseDecimal(%q) error is %T, want *DigitsError", tt.in, err)
			}
		}
	}
}

// A number a Decimal cannot hold decodes, in both decoders, as a
// BigNumber with its text, and encodes back as that text.
func TestDecodeBigNumbers(t *testing.T) {
	in := `{"eth":12.345678901234567890123,"id":123456789012345678901234,"huge":1e400,"tiny":-0.0000000000000000000001,"neg":-1E-400,"ok":1.5e3,"l":[0.12345678901234567891,2]}`
	wantBig := map[string]string{"eth": "12.345678901234567890123", "id": "123456789012345678901234", "huge": "1e400", "tiny": "-0.0000000000000000000001", "neg": "-1E-400"}
	fast, ok := decodeFast([]byte(in))
	if !ok {
		t.Fatal("the fast decoder gave up")
	}
	std, err := decodeStd([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("the decoders disagree:\n%#v\n%#v", fast, std)
	}
	m := fast.(map[string]any)
	for k, want := range wantBig {
		if b, ok := m[k].(BigNumber); !ok || b.String() != want {
			t.Errorf("%s decoded as %#v, want BigNumber %s", k, m[k], want)
		}
	}
	if _, ok := m["ok"].(Decimal); !ok {
		t.Errorf("ok decoded as %#v", m["ok"])
	}
	if b, ok := m["l"].([]any)[0].(BigNumber); !ok || b.String() != "0.12345678901234567891" {
		t.Errorf("list item decoded as %#v", m["l"].([]any)[0])
	}
	want := `{"eth":12.345678901234567890123,"huge":1e400,"id":123456789012345678901234,"l":[0.12345678901234567891,2],"neg":-1E-400,"ok":1500,"tiny":-0.0000000000000000000001}`
	for name, enc := range map[string]func(any) ([]byte, error){"EncodeJSON": EncodeJSON, "encodeStd": encodeStd} {
		if b, err := enc(fast); err != nil || string(b) != want {
			t.Errorf("%s = %s, %v; want %s", name, b, err, want)
		}
	}
}

func TestNewBigNumber(t *testing.T) {
	for _, s := range []string{"1", "-0.5", "12.345678901234567890123", "1E+400", "0e-0"} {
		if b, err := NewBigNumber(s); err != nil || b.String() != s {
			t.Errorf("NewBigNumber(%q) = %v, %v", s, b, err)
		}
	}
	for _, s := range []string{"", "+1", ".5", "5.", "01", "1e", "--1", " 1", "1x", "NaN"} {
		if _, err := NewBigNumber(s); err == nil {
			t.Errorf("NewBigNumber(%q) accepted", s)
		}
	}
	if _, err := EncodeJSON(BigNumber{}); err == nil {
		t.Error("a zero BigNumber encoded")
	}
}

func TestTemplateRendersEveryDigit(t *testing.T) {
	ev := payramEvent(t, `{"status":"FILLED","reference_id":"r1","amount":"12.345678901234567890123","filled_amount":123456789012345678901234}`)
	for tmpl, want := range map[string]string{
		`{{ amount }}`:                       "12.345678901234567890123",
		`paid {{ amount }} ETH`:              "paid 12.345678901234567890123 ETH",
		`{{ string(amount) }}`:               "12.345678901234567890123",
		`{{ filled_amount }}`:                "123456789012345678901234",
		`{{ payload.amount }}`:               "12.345678901234567890123",
		`{{ urlquery(amount) }}`:             "12.345678901234567890123",
		`{"amount": {{ toJSON(amount) }}}`:   `{"amount": 12.345678901234567890123}`,
		`{{ [amount, filled_amount, 1.5] }}`: "[12.345678901234567890123,123456789012345678901234,1.5]",
	} {
		probs := &config.Problems{}
		tp := CompileTemplate(&config.Scalar{Value: tmpl, Pos: config.Pos{File: "rules.yaml", Line: 1, Col: 1}}, probs)
		if tp == nil {
			t.Fatalf("%s: %v", tmpl, probs.List)
		}
		if got, err := tp.Render(ev.Env()); err != nil || got != want {
			t.Errorf("%s rendered %q, %v; want %q", tmpl, got, err, want)
		}
	}
}

// In rules a BigNumber compares exactly; arithmetic and conversions on it
// are errors that say to compare it instead.
func TestBigNumberRules(t *testing.T) {
	const eth = `{"status":"FILLED","amount":"12.345678901234567890123","filled_amount":12.3456789012345678901230,"amount_usd":"12.345678901234567890124","filled_amount_in_usd":1e-400,"zero":0e400,"big":123456789012345678901234,"id":100000000000000000000}`
	const suggestion = `, too many to compute with exactly: compare it with == or <, or as text, such as string(amount) == "12.345678901234567890123"`
	tests := []struct {
		name, when, want string
	}{
		{"equal to itself", `amount == amount && amount == payload.amount`, "true"},
		{"equal by value, not text", `amount == filled_amount && filled_amount == amount && !(amount != filled_amount)`, "true"},
		{"unequal by the last digit", `amount == amount_usd || amount_usd == amount`, "false"},
		{"unequal to its rounding", `amount == 12.34567890123456789 || amount == 12.3456789012345679`, "false"},
		{"a tiny number is not zero", `filled_amount_in_usd == 0 || filled_amount_in_usd == 0.0`, "false"},
		{"zero with a large exponent is zero", `zero == 0 && zero == -0.0 && zero != 1`, "true"},
		{"not equal to text or nil", `payload.amount == "12.345678901234567890123" || amount == nil || nil == amount`, "false"},
		{"in", `amount in [1, filled_amount] && !(amount in [12.34567890123456789, "x", nil])`, "true"},
		{"not in", `amount not in [amount_usd, 12]`, "true"},
		{"as text", `string(amount) == "12.345678901234567890123" && string(filled_amount) == "12.3456789012345678901230"`, "true"},
		{"ordered exactly", `amount > 12.34567890123456789 && amount < 12.3456789012345679 && amount < amount_usd && amount_usd > amount && amount <= filled_amount && amount >= filled_amount`, "true"},
		{"ordered against a tiny number", `filled_amount_in_usd > 0 && filled_amount_in_usd < 0.0000000000000000001 && -1 < filled_amount_in_usd`, "true"},
		{"ordered against a large number", `big > 9999999999999999999.0 && big > amount && 5 < big && big >= big`, "true"},
		{"ordered against text", `payload.amount > "12"`, `error: invalid operation: number > string (1:16)`},
		{"ordered against a string field", `payload.amount > payload.status`, `error: invalid operation >: the string "FILLED" is not a number`},
		{"ordered against nil", `amount < missing`, `error: invalid operation <: nil (the field is missing or null) is not a number`},
		{"addition", `amount + 1 > 0`, `error: the number 12.345678901234567890123 has more than 19 significant digits` + suggestion + ` (1:8)`},
		{"subtraction", `filled_amount_in_usd - amount > 0`, `error: the number 1e-400 has more than 19 decimal places, too many to compute with exactly`},
		{"multiplication", `2 * amount > 0`, `error: the number 12.345678901234567890123 has more than 19 significant digits` + suggestion},
		{"division", `amount / 2 > 0`, `error: the number 12.345678901234567890123 has more than 19 significant digits` + suggestion},
		{"remainder", `amount % 2 > 0`, `error: the number 12.345678901234567890123 has more than 19 significant digits` + suggestion},
		{"negation", `-amount < 0`, `error: the number 12.345678901234567890123 has more than 19 significant digits` + suggestion},
		{"large integer", `big + 0 > 1`, `error: the number 123456789012345678901234 has more than 19 significant digits`},
		{"large round integer", `payload.id * 2 > 1`, `error: the number 100000000000000000000 has more than 19 digits before the decimal point`},
		{"decimal()", `decimal(amount) > 0`, `error: decimal: the number 12.345678901234567890123 has more than 19 significant digits, too many to convert exactly`},
		{"decimal() of text", `decimal(payload.status + "") > 0 || decimal("12.345678901234567890123") > 0`, `error: decimal: "FILLED" is not a decimal number`},
		{"money()", `money(amount) == "12.35"`, `error: money: the number 12.345678901234567890123 has more than 19 significant digits, too many to convert exactly`},
		{"round()", `round(amount, 2) == 12.35`, `error: round: the number 12.345678901234567890123`},
		{"abs()", `abs(amount) > 0`, `error: abs: the number 12.345678901234567890123`},
		{"int()", `int(amount) == 12`, `error: int: the number 12.345678901234567890123`},
		{"float()", `float(amount) > 12`, `error: float: the number 12.345678901234567890123`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustCompile(t, payramOptions, tt.when)
			got := outcome(rs, payramEvent(t, eth))
			if got != tt.want && !(strings.HasPrefix(tt.want, "error: ") && strings.HasPrefix(got, tt.want)) {
				t.Errorf("%s\n got %s\nwant %s", tt.when, got, tt.want)
			}
		})
	}
}

// decimal() of a numeric text too long for a Decimal says so.
func TestAsDecimalLongText(t *testing.T) {
	_, err := AsDecimal("12.345678901234567890123")
	want := `the number 12.345678901234567890123 has more than 19 significant digits, too many to convert exactly: compare it as text, such as string(amount) == "12.345678901234567890123"`
	if err == nil || err.Error() != want {
		t.Errorf("AsDecimal = %v, want %s", err, want)
	}
}

// once_per keys a BigNumber by its exact text, not a rounding of it.
func TestOncePerBigNumber(t *testing.T) {
	probs := &config.Problems{}
	r := rule("by-amount", `true`, 3)
	r.OncePer = &config.Scalar{Value: `amount`}
	both := rule("by-both", `true`, 5)
	both.OncePer = &config.Scalar{Value: `reference_id + ":" + string(filled_amount)`}
	rs := Compile([]*config.Rule{r, both}, payramOptions, probs)
	if rs == nil {
		t.Fatal(problemStrings(probs))
	}
	ev := payramEvent(t, `{"status":"FILLED","reference_id":"r1","amount":"0.000000000000000000001","filled_amount":1.0000000000000000000001}`)
	var got []string
	for _, res := range rs.Evaluate(ev, true) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		got = append(got, res.OnceKey)
	}
	if want := []string{"0.000000000000000000001", "r1:1.0000000000000000000001"}; !reflect.DeepEqual(got, want) {
		t.Errorf("once_per keys %q, want %q", got, want)
	}
}
