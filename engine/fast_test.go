package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
)

// vmOnly returns rs with every rule's fast form removed, so that each
// condition runs on expr's VM: the reference the fast forms must agree with.
func vmOnly(rs *RuleSet) *RuleSet {
	out := &RuleSet{bySrc: rs.bySrc, anySrc: rs.anySrc, compile: rs.compile, memoSlots: rs.memoSlots}
	for _, r := range rs.Rules {
		c := *r
		c.fast, c.fastIndexed = nil, nil
		out.Rules = append(out.Rules, &c)
	}
	return out
}

// sameResults compares two evaluations of the same event rule by rule:
// matched, error text and once_per key.
func sameResults(t *testing.T, what string, got, want []Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d results, the VM gives %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		errText := func(r Result) string {
			if r.Err == nil {
				return ""
			}
			return r.Err.Error()
		}
		if g.Rule.Name != w.Rule.Name || g.Matched != w.Matched || errText(g) != errText(w) || g.OnceKey != w.OnceKey {
			t.Fatalf("%s: rule %s (%s): fast gives matched=%v err=%q key=%q, the VM matched=%v err=%q key=%q",
				what, w.Rule.Name, w.Rule.When, g.Matched, errText(g), g.OnceKey, w.Matched, errText(w), w.OnceKey)
		}
	}
}

// randomFastCondition builds conditions from the shapes the fast forms
// handle and some they do not, over a few fields whose values may be of any
// kind. Literals and event values come from the same small sets, so that
// equal operands (where < and <= differ) are common.
func randomFastCondition(r *rand.Rand) string {
	field := func() string {
		return []string{"amount", "fee", "status", "note", "flag", "items", "missing", "payload.amount", "payload.status", "meta.type"}[r.IntN(10)]
	}
	num := func() string {
		return []string{"0", "5", "5.00", "49.99", "-5", "9999999999999999999"}[r.IntN(6)]
	}
	str := func() string {
		return []string{`"FILLED"`, `"OPEN"`, `""`, `"payment.filled"`}[r.IntN(4)]
	}
	operand := func() string {
		switch r.IntN(7) {
		case 0:
			return num()
		case 1:
			return str()
		case 2:
			return []string{"nil", "true", "false"}[r.IntN(3)]
		case 3:
			return fmt.Sprintf("%s %s %s", field(), []string{"+", "-", "*"}[r.IntN(3)], []string{num(), field()}[r.IntN(2)])
		case 4:
			return "-" + field()
		}
		return field()
	}
	var atom func(depth int) string
	atom = func(depth int) string {
		switch k := r.IntN(9); {
		case k < 4:
			return fmt.Sprintf("%s %s %s", operand(), []string{"==", "!=", "<", "<=", ">", ">="}[r.IntN(6)], operand())
		case k == 4:
			return fmt.Sprintf("%s in [%s, %s]", field(), []string{num(), str()}[r.IntN(2)], []string{num(), str()}[r.IntN(2)])
		case k == 5 && depth < 2:
			return "not (" + atom(depth+1) + ")"
		case k == 6 && depth < 2:
			return "(" + atom(depth+1) + " || " + atom(depth+1) + ")"
		case k == 7:
			return []string{"flag", "true", "status", "lower(status) == \"filled\"", "(amount ?? 0) > 1"}[r.IntN(5)]
		}
		return fmt.Sprintf("%s == %s", field(), str())
	}
	parts := make([]string, 1+r.IntN(3))
	for i := range parts {
		parts[i] = atom(0)
	}
	return strings.Join(parts, []string{" && ", " and "}[r.IntN(2)])
}

func randomFastEvent(r *rand.Rand) *Event {
	value := func() any {
		switch r.IntN(10) {
		case 0:
			return nil
		case 1, 2:
			return []string{"FILLED", "OPEN", "", "payment.filled"}[r.IntN(4)]
		case 3:
			return r.IntN(2) == 0
		case 4:
			return []any{"FILLED", DecimalFromInt(5)}
		case 5:
			return map[string]any{"a": "b"}
		case 6:
			return 5 // an int, which no decoder produces: the fast form must give up
		}
		return MustDecimal([]string{"0", "5", "5.0", "49.99", "-5", "9999999999999999999"}[r.IntN(6)])
	}
	p := map[string]any{}
	for _, f := range []string{"amount", "fee", "status", "note", "flag", "items"} {
		if r.IntN(8) != 0 {
			p[f] = value()
		}
	}
	return &Event{ID: "e", Source: []string{"payram", "shop"}[r.IntN(2)], Provider: "payram", Type: []string{"payment.filled", "payout.sent"}[r.IntN(2)], Payload: p}
}

// TestFastFormsAgreeWithVM is a property test: for random conditions over
// random events, with and without the index, every rule's outcome (match,
// error text, once_per key) is the VM's.
func TestFastFormsAgreeWithVM(t *testing.T) {
	generic := CompileOptions{Sources: []string{"payram", "shop"}}
	typed := CompileOptions{Schemas: map[string]Schema{"payram": payramSchema}, Sources: []string{"payram", "shop"}}
	fast, total := 0, 0
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 0x5bd1e995))
		var rules []*config.Rule
		for i := range 1 + r.IntN(40) {
			cr := rule(fmt.Sprintf("r%d", i), randomFastCondition(r), 2*i+2)
			if r.IntN(5) == 0 {
				cr.OncePer = &config.Scalar{Value: []string{"note", "amount", "missing"}[r.IntN(3)]}
			}
			if r.IntN(4) == 0 {
				cr.Sources = []string{"payram"}
			}
			rules = append(rules, cr)
		}
		for _, opt := range []CompileOptions{generic, typed} {
			probs := &config.Problems{}
			rs := Compile(rules, opt, probs)
			if rs == nil {
				continue // a type error the typed schema catches, such as status - 5
			}
			for _, cr := range rs.Rules {
				total++
				if cr.fast != nil {
					fast++
				}
			}
			ref := vmOnly(rs)
			for range 30 {
				ev := randomFastEvent(r)
				sameResults(t, fmt.Sprintf("seed %d, all rules, payload %v", seed, ev.Payload), rs.Evaluate(ev, true), ref.Evaluate(ev, true))
				sameResults(t, fmt.Sprintf("seed %d, indexed, payload %v", seed, ev.Payload), rs.Evaluate(ev, false), ref.Evaluate(ev, false))
			}
		}
	}
	if fast < total/2 {
		t.Errorf("only %d of %d random rules have a fast form: the test exercises little", fast, total)
	}
}

// TestFastAtomsAgreeWithVM checks every comparison and membership test
// between a set of operands, as a rule of its own and behind an indexed
// equality, on events whose fields take every kind of value: the fast
// forms must decide exactly as the VM does, down to the error text.
func TestFastAtomsAgreeWithVM(t *testing.T) {
	operands := []string{
		"amount", "status", "flag", "payload.amount", "meta.type",
		"-amount", "amount - fee", "amount + 5", "fee * 2", "not flag",
		`"FILLED"`, "5.00", "49.99", "nil", "true",
	}
	var whens []string
	for _, a := range operands {
		whens = append(whens, a)
		for _, b := range operands {
			for _, op := range []string{"==", "!=", "<", "<=", ">", ">="} {
				whens = append(whens, fmt.Sprintf("%s %s %s", a, op, b))
			}
		}
		for _, list := range []string{`["FILLED", "OPEN"]`, `[5, 49.99]`, `[5.00, "FILLED", nil]`, `[true]`} {
			whens = append(whens, fmt.Sprintf("%s in %s", a, list))
		}
	}
	n := len(whens)
	for i := range n {
		// Behind an indexed equality, and beside a second one on the
		// same field, which the index must not be trusted with.
		whens = append(whens, fmt.Sprintf(`status == "FILLED" && (%s)`, whens[i]), fmt.Sprintf(`(%s) and status == "OPEN" and "FILLED" == status`, whens[i]))
	}
	values := []any{nil, "FILLED", "", true, false, 5, DecimalFromInt(5), MustDecimal("49.99"),
		MustDecimal("-5"), MustDecimal("9999999999999999999"), []any{"FILLED"}}
	var events []*Event
	fees := []any{MustDecimal("5.0"), MustDecimal("-9999999999999999999")}
	for i, amount := range values {
		for j, status := range []any{nil, "FILLED", "OPEN", DecimalFromInt(5)} {
			events = append(events, &Event{Source: "payram", Provider: "payram", Type: "payment.filled",
				Payload: map[string]any{"amount": amount, "status": status, "fee": fees[(i+j)%2], "flag": amount}})
		}
	}
	for _, opt := range []CompileOptions{{Sources: []string{"payram"}}, payramOptions} {
		var rules []*config.Rule
		for i, w := range whens {
			rules = append(rules, rule(fmt.Sprintf("r%d", i), w, 2*i+2))
		}
		probs := &config.Problems{}
		rs := Compile(rules, opt, probs)
		if rs == nil {
			// The typed schema refuses some (status - 5): leave those out.
			bad := map[int]bool{}
			for _, p := range probs.List {
				if !p.Warning {
					bad[p.Pos.Line] = true
				}
			}
			var kept []*config.Rule
			for _, r := range rules {
				if !bad[r.When.Pos.Line] {
					kept = append(kept, r)
				}
			}
			if rs = Compile(kept, opt, &config.Problems{}); rs == nil {
				t.Fatal("the rules without errors do not compile")
			}
		}
		fast := 0
		for _, r := range rs.Rules {
			if r.fast != nil {
				fast++
			}
		}
		if fast < len(rs.Rules)*3/4 {
			t.Fatalf("only %d of %d rules have a fast form", fast, len(rs.Rules))
		}
		ref := vmOnly(rs)
		for _, ev := range events {
			what := fmt.Sprintf("payload %v", ev.Payload)
			sameResults(t, what, rs.Evaluate(ev, true), ref.Evaluate(ev, true))
			sameResults(t, what+" (indexed)", rs.Evaluate(ev, false), ref.Evaluate(ev, false))
		}
	}
}

// The shapes merchants write run without the VM; anything else keeps it.
func TestFastFormCoverage(t *testing.T) {
	rs := mustCompile(t, payramOptions,
		`status == "OVER_FILLED" && filled_amount_in_usd - amount > 5`,
		`status in ["FILLED", "OVER_FILLED"] && amount >= 10.5`,
		`meta.type == "payout.failed" && amount_usd > 50`,
		`customer_id == "cust_207" || not (amount < 3) && status != nil`,
		`payload.amount * 2 + 1 <= 100 and -amount < 0`,
		`amount in [10, 19.99]`,
		`lower(customer_email) endsWith "@example.com"`,
		`(filled_amount_in_usd ?? 0) < amount`,
		`let due = amount - filled_amount_in_usd; due > 0`,
		`amount / 2 > 5`,
		`any(payment_info, .block_number > 21000000)`,
	)
	for i, r := range rs.Rules {
		if want := i < 6; (r.fast != nil) != want {
			t.Errorf("%s: fast form %v, want %v", r.When, r.fast != nil, want)
		}
	}
	// amount, read by several conditions, is read once per event.
	if rs.memoSlots == 0 {
		t.Error("no subexpression is shared between the conditions")
	}
	// The index's conjunct is left out of the indexed form only.
	ev := payramEvent(t, `{"status":"FILLED","amount":"20","filled_amount_in_usd":"30"}`)
	if v, ok := rs.Rules[0].fastIndexed(ev, &fmemo{}); !ok || !v.b {
		t.Errorf("indexed form of %s on a FILLED event: %v %v, want true (the status test is the index's)", rs.Rules[0].When, v, ok)
	}
	if v, ok := rs.Rules[0].fast(ev, &fmemo{}); !ok || v.b {
		t.Errorf("full form of %s on a FILLED event: %v %v, want false", rs.Rules[0].When, v, ok)
	}
}

// Two divergences a review found, now fixed: a payload key named "$env"
// made "$env == ..." look like an indexed equality, whose conjunct the
// indexed form then left out; and field names containing ")(" made two
// different subtractions share one memo slot.
func TestFastFormEdgeCases(t *testing.T) {
	for _, c := range []struct {
		whens   []string
		payload map[string]any
	}{
		{[]string{`$env == "FILLED" && amount > 1`, `"FILLED" == $env`}, map[string]any{"$env": "FILLED", "amount": DecimalFromInt(5)}},
		{[]string{`payload["a)(f:b"] - c > 0`, `a - payload["b)(f:c"] > 0`},
			map[string]any{"a)(f:b": DecimalFromInt(10), "c": DecimalFromInt(1), "a": DecimalFromInt(0), "b)(f:c": DecimalFromInt(1)}},
	} {
		for _, opt := range []CompileOptions{{Sources: []string{"payram"}}, payramOptions} {
			rs := mustCompile(t, opt, c.whens...)
			ev := &Event{Source: "payram", Provider: "payram", Type: "payment.filled", Payload: c.payload}
			ref := vmOnly(rs)
			sameResults(t, fmt.Sprint(c.whens), rs.Evaluate(ev, true), ref.Evaluate(ev, true))
			sameResults(t, fmt.Sprint(c.whens)+" (indexed)", rs.Evaluate(ev, false), ref.Evaluate(ev, false))
		}
	}
}

// FuzzFastCondition compiles arbitrary conditions and checks that with
// fast forms every event gets the VM's outcome for every rule.
func FuzzFastCondition(f *testing.F) {
	for _, s := range []string{
		`status == "OVER_FILLED" && filled_amount_in_usd - amount > 5`,
		`status in ["FILLED", "OVER_FILLED"] && amount >= 10.5`,
		`amount in [10, 19.99, "x"] || -amount < -5`,
		`meta.type == "payout.failed" && amount_usd * 2 > 50`,
		`not (customer_id != nil) or payload.status <= "M"`,
		`9999999999999999999 + amount > 0`,
		`"FILLED" == status and amount == 49.99`,
		`status < amount`,
		`amount == c && amount in [c, 1] && amount > 12.3 && amount_usd < 0 && status == "FILLED"`,
		`amount + 1 > 0 || filled_amount_in_usd == amount`,
		`$env == "FILLED" && payload["a)(f:b"] - c > a - payload["b)(f:c"]`,
	} {
		f.Add(s)
	}
	events := fuzzEvents(f)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		events = append(events, randomFastEvent(r))
	}
	// Keys that are not identifiers, as a payload may carry.
	events = append(events, &Event{Source: "payram", Payload: map[string]any{"$env": "FILLED", "a)(f:b": DecimalFromInt(10), "b)(f:c": DecimalFromInt(1), "c": DecimalFromInt(1)}})
	// Numbers a Decimal cannot hold: the fast forms leave them to the VM.
	events = append(events, payramEvent(f, `{"status":"FILLED","reference_id":"r","amount":"12.345678901234567890123","filled_amount_in_usd":1e400,"amount_usd":-1e-400,"c":12.3456789012345678901230}`))
	opts := []CompileOptions{
		{Sources: []string{"payram", "shop"}},
		{Schemas: map[string]Schema{"payram": payramSchema}, Sources: []string{"payram", "shop"}},
	}
	f.Fuzz(func(t *testing.T, code string) {
		for _, opt := range opts {
			rs := Compile([]*config.Rule{rule("a", code, 3), rule("b", `status == "FILLED" && amount > 1`, 5)}, opt, &config.Problems{})
			if rs == nil {
				continue
			}
			ref := vmOnly(rs)
			for _, ev := range events {
				sameResults(t, "all rules", rs.Evaluate(ev, true), ref.Evaluate(ev, true))
				sameResults(t, "indexed", rs.Evaluate(ev, false), ref.Evaluate(ev, false))
			}
		}
	})
}
