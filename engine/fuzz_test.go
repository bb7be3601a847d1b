package engine

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
)

// fuzzEvents are the events fuzzed rules and templates run against.
func fuzzEvents(f *testing.F) []*Event {
	var evs []*Event
	for _, name := range []string{"over_filled.json", "open.json", "payout_failed.json", "filled.json"} {
		evs = append(evs, readEvent(f, name))
	}
	evs = append(evs, &Event{ID: "empty", Source: "shop", Payload: map[string]any{}})
	return evs
}

// FuzzCompileRule compiles arbitrary conditions: Compile never panics, and
// a rule that compiles evaluates without panicking, with the index giving
// the same matches as a full evaluation.
func FuzzCompileRule(f *testing.F) {
	for _, s := range []string{
		`status == "OVER_FILLED" && filled_amount_in_usd - amount > 5`,
		`status == "FILLED"`,
		`status in ["FILLED", "OVER_FILLED"] && amount >= 10.5`,
		`meta.type == "payout.failed" && amount_usd > 50`,
		`49.99 - 44.99 == 5`,
		`0.1 + 0.2 == 0.3`,
		`amount / 0 > 5`,
		`nil - 5 > 0`,
		`-amount % 3 < 0`,
		`(filled_amount_in_usd ?? 0) < amount`,
		`lower(customer_email) endsWith "@example.com"`,
		`any(payment_info, .block_number > 21000000)`,
		`let due = amount - (filled_amount_in_usd ?? 0); due > 0`,
		`money(amount) == "49.99"`,
		`round(amount / 3, 2) == 16.66 || int(amount) in 40..50`,
		`status = "FILLED"`,
		`amount > "5"`,
		`amount`,
		`len(payment_info) - 1 >= 0 && payment_info[len(payment_info) - 1].block_number > 0`,
		`"OVER_FILLED" == status and customer_id == "cust_207"`,
		`amount < 99999999999999999999`,
		`amount < 12345678901234567890.5 || 1e-30 > 0`,
		`now() - meta.received_at > duration("1h")`,
	} {
		f.Add(s)
	}
	events := fuzzEvents(f)
	opt := CompileOptions{Schemas: map[string]Schema{"payram": payramSchema}, Sources: []string{"payram", "shop"}}
	f.Fuzz(func(t *testing.T, code string) {
		probs := &config.Problems{}
		rs := Compile([]*config.Rule{rule("a", code, 3), rule("b", `status == "FILLED"`, 5)}, opt, probs)
		if !checkProblems(t, probs, 1, rs != nil, "rule set") {
			return
		}
		for _, ev := range events {
			full := rs.Evaluate(ev, true)
			var want, got []string
			for _, r := range full {
				if r.Matched {
					want = append(want, r.Rule.Name)
				}
			}
			for _, r := range rs.Evaluate(ev, false) {
				if r.Matched {
					got = append(got, r.Rule.Name)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("event %s: indexed matched %v, full %v", ev.ID, got, want)
			}
		}
	})
}

// FuzzTemplate compiles and renders arbitrary templates.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"Overpaid {{ reference_id }} by {{ money(filled_amount_in_usd - amount) }} USD (customer {{ customer_email }})",
		"{{ meta.type }} {{ reference_id ?? payout_id }} amount={{ amount }}",
		`{"reference": "{{ reference_id }}", "paid_usd": {{ filled_amount_in_usd }}}`,
		`{{ "}}" }} {{ '{{' }}`,
		"{{ toJSON(payload) }}",
		"Customer {{ customer_email }} paid {{ money(filled_amount_in_usd) }} USD\nStill owed: {{ money(amount - filled_amount_in_usd) }} USD.\n",
		"{{ payment_info }} {{ payment_info[0] }} {{ missing }}",
		"unclosed {{ reference_id",
		"{{ }}",
		"{{ amount / 0 }}",
		"}} {{{{ }}}}",
		`{{ "\"}}" }}`,
	} {
		f.Add(s)
	}
	events := fuzzEvents(f)
	f.Fuzz(func(t *testing.T, s string) {
		probs := &config.Problems{}
		tmpl := CompileTemplate(&config.Scalar{Value: s, Pos: config.Pos{File: "rules.yaml", Line: 7, Col: 11}, Style: 2}, probs)
		if !checkProblems(t, probs, 7, tmpl != nil, "template") {
			return
		}
		if !strings.Contains(s, "{{") {
			if got, err := tmpl.Render(nil); err != nil || got != s {
				t.Errorf("constant template rendered %q, %v", got, err)
			}
			return
		}
		for _, ev := range events {
			_, _ = tmpl.Render(ev.Env())
		}
	})
}

// FuzzDecodeJSON decodes arbitrary bytes: it never panics; every number is
// a Decimal (or, beyond 19 digits, what encoding/json makes of it); and
// encoding then decoding again gives equal values.
func FuzzDecodeJSON(f *testing.F) {
	addSampleEvents(f)
	for _, s := range []string{
		`{"amount":25.00,"b":-0.10,"c":1.5e3,"d":-0,"e":1E-7}`,
		`[9999999999999999999, 12345678901234567890, 1e400, 1e-400, 0.12345678901234567891]`,
		`{"s":"\u00e9\ud800","n":null,"t":true,"a":[[],{}]}`,
		`{"a":1,"a":2}`,
		`{"a":1,}`,
		`  "x"  `,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeJSON(data)
		if err != nil {
			return
		}
		// encoding/json with UseNumber is the reference for what the text said.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var ref any
		if err := dec.Decode(&ref); err != nil {
			t.Fatalf("DecodeJSON accepted what encoding/json refuses: %v", err)
		}
		checkNumbers(t, ref, v)
		b, err := EncodeJSON(v)
		if err != nil {
			t.Fatalf("EncodeJSON: %v", err)
		}
		again, err := DecodeJSON(b)
		if err != nil {
			t.Fatalf("decoding %s again: %v", b, err)
		}
		if !sameValue(v, again) {
			t.Errorf("round trip changed the value:\n%#v\n%#v", v, again)
		}
	})
}

// checkNumbers walks the reference decoding next to ours.
func checkNumbers(t *testing.T, ref, got any) {
	t.Helper()
	switch r := ref.(type) {
	case json.Number:
		if d, err := ParseDecimal(string(r)); err == nil {
			if g, ok := got.(Decimal); !ok || g.Cmp(d) != 0 {
				t.Errorf("number %s decoded as %#v, want Decimal %s", r, got, d)
			}
		} else if g, ok := got.(BigNumber); !ok || g.String() != string(r) {
			t.Errorf("number %s (beyond a Decimal) decoded as %#v, want its text", r, got)
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(r) {
			t.Fatalf("object decoded as %#v", got)
		}
		for k, e := range r {
			checkNumbers(t, e, g[k])
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(r) {
			t.Fatalf("array decoded as %#v", got)
		}
		for i := range r {
			checkNumbers(t, r[i], g[i])
		}
	default:
		if !reflect.DeepEqual(ref, got) {
			t.Errorf("%#v decoded as %#v", ref, got)
		}
	}
}

// sameValue compares decoded values, Decimals by value and text.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case Decimal:
		y, ok := b.(Decimal)
		return ok && x.Cmp(y) == 0 && x.String() == y.String()
	case BigNumber:
		y, ok := b.(BigNumber)
		return ok && x.String() == y.String()
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			if !sameValue(e, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// FuzzDecodeJSONDifferential holds the fast decoder to encoding/json: for
// any input, DecodeJSON gives exactly what the encoding/json path gives (the
// same value, types included, or the same error), and whatever the fast
// path accepts, encoding/json accepts too.
func FuzzDecodeJSONDifferential(f *testing.F) {
	addSampleEvents(f)
	for _, s := range []string{
		`{"amount":25.00,"b":-0.10,"c":1.5e3,"d":-0,"e":1E-7,"f":0e+0,"g":-0.0E-00}`,
		`[9999999999999999999, 12345678901234567890, 1e400, 1e-400, 0.12345678901234567891, -1e999]`,
		`{"s":"\u00e9\ud800","n":null,"t":true,"a":[[],{}]}`,
		`{"s":"\ud83d\ude00 \uD83D\uDE00 \ud83d\u0041 \ude00 \ud83d"}`,
		`{"esc":"\"\\\/\b\f\n\r\t\u0000\u001f\u2028\uFFFD","raw":"é € 😀 ` + "\u2028" + `"}`,
		"{\"bad\":\"\xff\xfe\",\"half\":\"\xe2\x82\"}",
		"{\"k\xc3\":1}",
		"\"\xed\xa0\x80\"",
		"{\"ctl\":\"a\x01b\"}",
		"\ufeff{}",
		`{"a":1,"a":2,"a":{"b":1},"a":[3]}`,
		`{"a":1,}`, `[1,]`, `[01]`, `[1.]`, `[.5]`, `[1e]`, `[-]`, `[+1]`, `[1.5e+]`, `[0x10]`,
		`{"a" 1}`, `{1:2}`, `{"a":1 "b":2}`, `[1 2]`, `[tru]`, `[nul]`, `[falsey]`,
		`{"a":1} {"b":2}`, `{"a":1}x`, `{"a":1}  ` + "\n\t\r",
		`  "x"  `, ` 42 `, `-0`, `true`, `null`, `[]`, `{}`, ``, `  `, `"`, `"\`, `"\u12`, `"\x"`,
		strings.Repeat("[", 600) + strings.Repeat("]", 600),
		strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if fast, ok := decodeFast(data); ok {
			ref, err := decodeStd(data)
			if err != nil {
				t.Fatalf("fast path accepted what encoding/json refuses (%v)", err)
			}
			if !reflect.DeepEqual(fast, ref) {
				t.Fatalf("fast path decoded\n%#v\nencoding/json\n%#v", fast, ref)
			}
		}
		got, gotErr := DecodeJSON(data)
		want, wantErr := decodeStd(data)
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("DecodeJSON error %v, encoding/json %v", gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeJSON\n%#v\nencoding/json\n%#v", got, want)
		}
	})
}

// FuzzEncodeJSONDifferential holds the fast encoder to encoding/json: a
// decoded document, and the same values under a key that needs escaping and
// as a string, encode byte for byte as encoding/json encodes them.
func FuzzEncodeJSONDifferential(f *testing.F) {
	for _, s := range []string{
		`{"amount":25.00,"b":-0.10,"c":1.5e3,"d":-0,"e":1E-7,"big":12345678901234567890}`,
		`{"s":"<a href=\"x\">&amp;</a>","ctl":"\u0000\u0001\b\f\n\r\t\u001f\u007f","u":"\u2028\u2029 é 😀 \ufffd"}`,
		`{"z":1,"a":{"y":[true,false,null,[],{}],"b":"x"},"A":2,"":3,"é":4,"e\u0301":5}`,
		`[1e400, "1e400", 0.1234567890123456789]`,
	} {
		f.Add([]byte(s), "key")
	}
	f.Add([]byte(`"x"`), "\xff\xfe \u2028 \" \\ <>&")
	f.Add([]byte(`{}`), "\xed\xa0\x80 \xe2\x82 \xf0\x9f\x98")
	std := func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "error: " + err.Error()
		}
		return strings.TrimSuffix(buf.String(), "\n")
	}
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		v, err := DecodeJSON(data)
		if err != nil {
			v = string(data)
		}
		for _, val := range []any{v, map[string]any{key: v, "n": nil, "l": []any(nil), "m": map[string]any(nil)}, key, []any{key, string(data)}} {
			got, err := EncodeJSON(val)
			gotS := string(got)
			if err != nil {
				gotS = "error: " + err.Error()
			}
			if want := std(val); gotS != want {
				t.Fatalf("EncodeJSON(%#v)\n= %s\nencoding/json\n= %s", val, gotS, want)
			}
		}
	})
}

// addSampleEvents seeds f with every sample event and provider payload in
// testdata.
func addSampleEvents(f *testing.F) {
	files, _ := filepath.Glob("../testdata/events/*.json")
	providers, _ := filepath.Glob("../testdata/providers/*.json")
	for _, p := range append(files, providers...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// checkProblems asserts what a fuzzed compile must report: every problem
// placed in rules.yaml at or after line minLine, and an error whenever it
// built nothing. It returns built.
func checkProblems(t *testing.T, probs *config.Problems, minLine int, built bool, what string) bool {
	t.Helper()
	for _, p := range probs.List {
		if p.Pos.File != "rules.yaml" || p.Pos.Line < minLine || p.Pos.Col < 1 {
			t.Errorf("problem without a position: %s", p)
		}
	}
	if !built && !probs.HasErrors() {
		t.Errorf("no %s and no error", what)
	}
	return built
}
