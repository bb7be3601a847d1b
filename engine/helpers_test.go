package engine

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payramd/payramd/config"
)

// payramSchema mirrors the PayRam provider's field list (webhook/payram.go),
// which the engine cannot import: amounts are decimals, the rest unknown
// or text.
var payramSchema = Schema{
	"reference_id": KindString, "invoice_id": KindString, "customer_id": KindString,
	"customer_email": KindString, "status": KindString, "payment_state": KindString,
	"amount": KindDecimal, "filled_amount": KindDecimal, "filled_amount_in_usd": KindDecimal,
	"currency": KindString, "timestamp": KindDecimal, "payment_info": KindList,
	"confirmation_current": KindDecimal, "confirmation_required": KindDecimal,
	"event_type": KindString, "payout_id": KindAny, "network": KindString, "token": KindString,
	"amount_usd": KindDecimal, "email": KindString, "address": KindString,
	"from_address": KindString, "tx_hash": KindString, "withdrawal_type": KindString,
	"currency_type": KindString, "created_at": KindDecimal, "updated_at": KindDecimal,
	"failure_reason": KindString,
}

// payramOptions compiles for one source, payram, with the PayRam schema.
var payramOptions = CompileOptions{Schemas: map[string]Schema{"payram": payramSchema}, Sources: []string{"payram"}}

// payramEvent decodes body as the PayRam provider does: numbers are
// decimals, and amounts sent as JSON strings become decimals too (or
// BigNumbers, when too long for a Decimal).
func payramEvent(t testing.TB, body string) *Event {
	t.Helper()
	payload, err := DecodeObject([]byte(body))
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	for _, k := range []string{"amount", "filled_amount", "filled_amount_in_usd", "amount_usd"} {
		if s, ok := payload[k].(string); ok {
			d, err := ParseDecimal(s)
			if errors.As(err, new(*DigitsError)) {
				// Too long for a Decimal: kept exactly, as a BigNumber.
				payload[k], err = NewBigNumber(s)
			} else {
				payload[k] = d
			}
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
		}
	}
	typ := "payment." + strings.ToLower(asString(payload["status"]))
	if et, ok := payload["event_type"].(string); ok {
		typ = et
	}
	return &Event{
		ID: "evt_1", Source: "payram", Provider: "payram", Type: typ,
		ReceivedAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Headers:    map[string]string{"content-type": "application/json"},
		Payload:    payload, Raw: []byte(body),
	}
}

// readEvent reads one of testdata/events as a PayRam delivery.
func readEvent(t testing.TB, name string) *Event {
	t.Helper()
	b, err := os.ReadFile("../testdata/events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return payramEvent(t, string(b))
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// rule builds a config rule named name with condition when, written plain
// on line line of rules.yaml (the value starting at column 11, as after
// "    when: ").
func rule(name, when string, line int) *config.Rule {
	return &config.Rule{
		Name: name, Enabled: true, Do: []string{"log"},
		Pos:  config.Pos{File: "rules.yaml", Line: line - 1, Col: 5},
		When: &config.Scalar{Value: when, Pos: config.Pos{File: "rules.yaml", Line: line, Col: 11}},
	}
}

// mustCompile compiles when conditions as rules r0, r1, ... and fails the
// test on any error.
func mustCompile(t testing.TB, opt CompileOptions, whens ...string) *RuleSet {
	t.Helper()
	var rules []*config.Rule
	for i, w := range whens {
		rules = append(rules, rule("r"+strconv.Itoa(i), w, 2*i+2))
	}
	probs := &config.Problems{}
	rs := Compile(rules, opt, probs)
	if rs == nil || probs.HasErrors() {
		t.Fatalf("compile %q: %v", whens, probs.List)
	}
	return rs
}

// problemStrings renders problems as `payramd check` prints them.
func problemStrings(probs *config.Problems) []string {
	probs.Sort()
	var out []string
	for _, p := range probs.List {
		out = append(out, p.String())
	}
	return out
}
