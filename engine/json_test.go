package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, in string
		// want is the value re-encoded, or the error message.
		want    string
		wantErr bool
	}{
		{name: "numbers keep their digits", in: `{"a":25.00,"b":-0.10,"c":1.5e3,"d":0,"e":49.99}`, want: `{"a":25.00,"b":-0.10,"c":1500,"d":0,"e":49.99}`},
		{name: "nested numbers", in: `{"x":[1,{"y":[2.50]}]}`, want: `{"x":[1,{"y":[2.50]}]}`},
		{name: "strings stay strings", in: `{"amount":"25.00"}`, want: `{"amount":"25.00"}`},
		{name: "null, bools", in: `{"a":null,"b":true}`, want: `{"a":null,"b":true}`},
		{name: "19 digits fit", in: `[9999999999999999999, 0.1234567890123456789]`, want: `[9999999999999999999,0.1234567890123456789]`},
		{name: "top-level scalar", in: ` 42 `, want: `42`},
		{name: "trailing comma", in: `{"a":1,}`, want: `invalid JSON at byte 8: invalid character '}' looking for beginning of object key string`, wantErr: true},
		{name: "truncated", in: `{"a":[1,2`, want: `invalid JSON: the body ends in the middle of the document (truncated?)`, wantErr: true},
		{name: "empty", in: " \n", want: `empty body: expected a JSON object`, wantErr: true},
		{name: "two documents", in: `{"a":1} {"b":2}`, want: `unexpected data after the JSON document`, wantErr: true},
		{name: "trailing garbage", in: `{"a":1}x`, want: `unexpected data after the JSON document`, wantErr: true},
		{name: "not JSON", in: `status=FILLED`, want: `invalid JSON at byte 1: invalid character 's' looking for beginning of value`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeJSON([]byte(tt.in))
			if tt.wantErr {
				if err == nil || err.Error() != tt.want {
					t.Errorf("DecodeJSON(%s) error = %v, want %s", tt.in, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := EncodeJSON(v)
			if err != nil || string(b) != tt.want {
				t.Errorf("round trip of %s = %s, %v; want %s", tt.in, b, err, tt.want)
			}
		})
	}
}

func TestDecodeJSONTypes(t *testing.T) {
	v, err := DecodeObject([]byte(`{"amount":49.99,"n":3,"list":[1.0],"obj":{"f":0.5},"big":12345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"amount", "n"} {
		if _, ok := v[k].(Decimal); !ok {
			t.Errorf("%s is %T, want Decimal", k, v[k])
		}
	}
	if _, ok := v["list"].([]any)[0].(Decimal); !ok {
		t.Errorf("list item is %T", v["list"].([]any)[0])
	}
	if _, ok := v["obj"].(map[string]any)["f"].(Decimal); !ok {
		t.Errorf("nested number is %T", v["obj"].(map[string]any)["f"])
	}
	// Beyond 19 digits a number cannot be a Decimal; it keeps its text, and
	// arithmetic on it fails rather than rounding (see TestDecimalRules).
	if b, ok := v["big"].(BigNumber); !ok || b.String() != "12345678901234567890" {
		t.Errorf("big is %#v, want BigNumber 12345678901234567890", v["big"])
	}
	for _, in := range []string{`[]`, `"x"`, `null`, `3`} {
		if _, err := DecodeObject([]byte(in)); err == nil || !strings.HasPrefix(err.Error(), "the payload must be a JSON object, not ") {
			t.Errorf("DecodeObject(%s) error = %v", in, err)
		}
	}
}

func TestEncodeJSON(t *testing.T) {
	b, err := EncodeJSON(map[string]any{"url": "https://x/?a=1&b=<2>", "amount": MustDecimal("25.00"), "list": []any{MustDecimal("-1.5")}})
	if want := `{"amount":25.00,"list":[-1.5],"url":"https://x/?a=1&b=<2>"}`; err != nil || string(b) != want {
		t.Errorf("EncodeJSON = %s, %v; want %s", b, err, want)
	}
}

// Every sample event decodes to an object whose numbers are Decimals.
func TestDecodeSampleEvents(t *testing.T) {
	files, _ := filepath.Glob("../testdata/events/*.json")
	if len(files) == 0 {
		t.Fatal("no sample events")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := DecodeObject(b)
		if strings.Contains(f, "invalid") {
			if err == nil {
				t.Errorf("%s decoded", f)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		walkValues(v, func(x any) {
			switch x.(type) {
			case nil, bool, string, Decimal, map[string]any, []any:
			default:
				t.Errorf("%s: a value of type %T", f, x)
			}
		})
	}
}

func walkValues(v any, f func(any)) {
	f(v)
	switch t := v.(type) {
	case map[string]any:
		for _, e := range t {
			walkValues(e, f)
		}
	case []any:
		for _, e := range t {
			walkValues(e, f)
		}
	}
}

// The fast paths must serve what webhooks send; otherwise they only add a
// failed attempt before encoding/json.
func TestJSONFastPathsServeSampleEvents(t *testing.T) {
	files, _ := filepath.Glob("../testdata/events/*.json")
	for _, f := range files {
		if strings.Contains(f, "invalid") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := decodeFast(b)
		if !ok {
			t.Errorf("%s: the fast decoder gave up", f)
			continue
		}
		if _, ok := encodeFast(v); !ok {
			t.Errorf("%s: the fast encoder gave up", f)
		}
	}
	for _, s := range []string{`{"s":"caf\u00e9 \"q\" \ud83d\ude00","l":[1,{"a":null}],"t":true}`, `"x"`, ` [] `} {
		if _, ok := decodeFast([]byte(s)); !ok {
			t.Errorf("the fast decoder gave up on %s", s)
		}
	}
}

// A document larger than shareLimit decodes the same, with its own strings.
func TestDecodeJSONLarge(t *testing.T) {
	pad := strings.Repeat("x", shareLimit)
	in := `{"pad":"` + pad + `","amount":25.00,"e":"\n"}`
	v, err := DecodeObject([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if v["pad"] != pad || v["amount"] != MustDecimal("25.00") || v["e"] != "\n" {
		t.Errorf("decoded %v", v)
	}
}

// Values the fast encoder does not know are encoded by encoding/json, and
// a map that contains itself is an error, not a stack overflow.
func TestEncodeJSONFallback(t *testing.T) {
	b, err := EncodeJSON(map[string]any{"argv": []string{"a", "<b>"}, "n": 1.5e300, "d": MustDecimal("1.10")})
	if want := `{"argv":["a","<b>"],"d":1.10,"n":1.5e+300}`; err != nil || string(b) != want {
		t.Errorf("EncodeJSON = %s, %v; want %s", b, err, want)
	}
	loop := map[string]any{}
	loop["self"] = loop
	if _, err := EncodeJSON(loop); err == nil {
		t.Error("a map containing itself encoded")
	}
}
