package engine

import (
	"fmt"
	"testing"

	"github.com/payramd/payramd/config"
)

// merchantRules is a realistic rule set of n rules: mostly a status and an
// amount condition, some keyed on one customer or payment, and one in a
// hundred the index cannot narrow (amount > 1000).
func merchantRules(n int) []*config.Rule {
	amountConds := []string{
		`amount > %d`,
		`filled_amount_in_usd - amount > %d`,
		`amount >= %d && amount < 500.50`,
		`currency == "USDC" && amount > %d.99`,
	}
	rules := make([]*config.Rule, 0, n)
	for i := range n {
		var when string
		switch {
		case i%100 == 99:
			when = `amount > 1000`
		case i%10 == 1:
			when = fmt.Sprintf(`customer_id == "cust_%d" && amount > 20`, i%500)
		case i%20 == 2:
			when = fmt.Sprintf(`reference_id == "ref_%d"`, i)
		default:
			when = fmt.Sprintf(`status == %q && `, testStatuses[i%len(testStatuses)]) + fmt.Sprintf(amountConds[i%len(amountConds)], i%50)
		}
		rules = append(rules, rule(fmt.Sprintf("rule-%d", i), when, 2*i+2))
	}
	return rules
}

func compileBench(b *testing.B, n int, opt CompileOptions) *RuleSet {
	probs := &config.Problems{}
	rs := Compile(merchantRules(n), opt, probs)
	if rs == nil {
		b.Fatalf("compile: %v", problemStrings(probs))
	}
	return rs
}

var benchEvents = []string{"over_filled.json", "filled.json", "partially_filled.json", "open.json", "cancelled.json", "over_filled_small.json"}

// BenchmarkEvaluate measures one event against n rules: exact decimals
// (as payramd runs, with the PayRam schema) against the same rules with
// expr's native float64 arithmetic, and, for 10,000 rules, without the
// index. One op is one event.
func BenchmarkEvaluate(b *testing.B) {
	var decEvents, floatEvents []*Event
	for _, name := range benchEvents {
		ev := readEvent(b, name)
		decEvents = append(decEvents, ev)
		fev := floatEvent(b, string(ev.Raw))
		fev.Source, fev.Type = ev.Source, ev.Type
		floatEvents = append(floatEvents, fev)
	}
	run := func(b *testing.B, rs *RuleSet, events []*Event, all bool) {
		b.ReportAllocs()
		matched := 0
		i := 0
		for b.Loop() {
			for _, r := range rs.Evaluate(events[i%len(events)], all) {
				if r.Matched {
					matched++
				}
			}
			i++
		}
		b.ReportMetric(float64(matched)/float64(i), "matches/event")
	}
	for _, n := range []int{1, 100, 1000, 10000} {
		dec := compileBench(b, n, payramOptions)
		flt := compileBench(b, n, CompileOptions{Sources: []string{"payram"}, mode: floatMode})
		b.Run(fmt.Sprintf("rules=%d/decimal", n), func(b *testing.B) { run(b, dec, decEvents, false) })
		b.Run(fmt.Sprintf("rules=%d/float", n), func(b *testing.B) { run(b, flt, floatEvents, false) })
		if n == 10000 {
			b.Run(fmt.Sprintf("rules=%d/decimal-noindex", n), func(b *testing.B) { run(b, dec, decEvents, true) })
			b.Run(fmt.Sprintf("rules=%d/float-noindex", n), func(b *testing.B) { run(b, flt, floatEvents, true) })
		}
	}
}

// BenchmarkCompile measures compiling 1,000 rules, the engine's share of a
// reload.
func BenchmarkCompile(b *testing.B) {
	rules := merchantRules(1000)
	b.ReportAllocs()
	for b.Loop() {
		if Compile(rules, payramOptions, &config.Problems{}) == nil {
			b.Fatal("compile failed")
		}
	}
}

func BenchmarkTemplate(b *testing.B) {
	env := readEvent(b, "over_filled.json").Env()
	for _, c := range []struct{ name, src string }{
		{"expressions", "Overpaid {{ reference_id }} by {{ money(filled_amount_in_usd - amount) }} USD (customer {{ customer_email }})"},
		{"names", "{{ reference_id }} {{ status }}"}, // bench/load's log action
	} {
		b.Run(c.name, func(b *testing.B) {
			tmpl := CompileTemplate(&config.Scalar{Value: c.src}, &config.Problems{})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tmpl.Render(env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// listenerBody is what bench/load sends: a PayRam payment with amounts as
// strings and a numeric timestamp.
const listenerBody = `{"reference_id":"ref_123456","invoice_id":"inv_123456","customer_id":"cust_456","customer_email":"buyer456@example.com","status":"FILLED","amount":"46.99","filled_amount":"51.50","filled_amount_in_usd":"51.50","currency":"USDC","timestamp":1795000000}`

// BenchmarkDecodeJSON measures decoding a webhook body, the listener's
// per-request JSON cost.
func BenchmarkDecodeJSON(b *testing.B) {
	for _, c := range []struct{ name, body string }{
		{"payment", listenerBody},
		{"payout", string(readEvent(b, "payout_failed.json").Raw)},
		{"nested", `{"id":"evt_1","data":{"object":{"amount":2500,"items":[{"price":"9.99","qty":2},{"price":"5.01","qty":1}],"note":"caf\u00e9 \"quoted\""}},"live":true,"prev":null}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			data := []byte(c.body)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeObject(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeJSON measures encoding a normalized payload, as the
// journal stores it.
func BenchmarkEncodeJSON(b *testing.B) {
	payload := payramEvent(b, listenerBody).Payload
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeJSON(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateLoadRules is one PayRam payment through the 100 rules
// bench/load configures: most are status == "<one of 6>" &&
// filled_amount_in_usd - amount > N, so the fast forms' shared
// subexpressions (the difference, computed once per event) count here.
func BenchmarkEvaluateLoadRules(b *testing.B) {
	statuses := []string{"FILLED", "OVER_FILLED", "PARTIALLY_FILLED", "OPEN", "CANCELLED", "UNDEFINED"}
	var whens []string
	for i := range 100 {
		switch {
		case i%10 == 9:
			whens = append(whens, fmt.Sprintf(`customer_id == "cust_%d" && amount > %d`, i, i%50))
		case i%25 == 24:
			whens = append(whens, fmt.Sprintf(`amount > %d.5`, 1000+i))
		default:
			whens = append(whens, fmt.Sprintf(`status == %q && filled_amount_in_usd - amount > %d.%02d`, statuses[i%len(statuses)], i, i%100))
		}
	}
	rs := mustCompile(b, payramOptions, whens...)
	ev := payramEvent(b, `{"reference_id":"ref_1","customer_id":"cust_7","status":"FILLED","amount":"46.99","filled_amount_in_usd":"51.50","currency":"USDC","timestamp":1795000000}`)
	b.ReportAllocs()
	for b.Loop() {
		rs.Evaluate(ev, false)
	}
}
