package engine

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/payramd/payramd/config"
)

// generation compiles rule set number gen: every rule's name carries gen,
// so an evaluation that mixed two rule sets would show two numbers.
func generation(t testing.TB, gen int) *RuleSet {
	var rules []*config.Rule
	for i, w := range []string{
		`status == "FILLED"`,
		`status == "OVER_FILLED" && filled_amount_in_usd - amount > 5`,
		fmt.Sprintf(`amount > %d`, gen%50),
		`customer_id == "cust_207"`,
		`meta.type in ["payment.filled", "payment.over_filled"]`,
		`true`,
	} {
		r := rule(fmt.Sprintf("g%d-r%d", gen, i), w, 2*i+2)
		r.OncePer = &config.Scalar{Value: "reference_id"}
		rules = append(rules, r)
	}
	probs := &config.Problems{}
	rs := Compile(rules, payramOptions, probs)
	if rs == nil {
		t.Errorf("compile: %v", problemStrings(probs))
	}
	return rs
}

// TestReloadWhileEvaluating swaps the rule set 100 times while other
// goroutines evaluate events and render templates; run with -race.
func TestReloadWhileEvaluating(t *testing.T) {
	var current atomic.Pointer[RuleSet]
	current.Store(generation(t, 0))
	events := []*Event{readEvent(t, "filled.json"), readEvent(t, "over_filled.json"), readEvent(t, "open.json")}
	tmpl := CompileTemplate(&config.Scalar{Value: "{{ reference_id }} {{ money(amount) }} {{ meta.type }}"}, &config.Problems{})

	var stop atomic.Bool
	var evaluations atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() || i < 50; i++ {
				ev := events[(w+i)%len(events)]
				rs := current.Load() // one consistent snapshot per event
				gens := map[string]bool{}
				for _, res := range rs.Evaluate(ev, i%7 == 0) {
					gens[strings.SplitN(res.Rule.Name, "-", 2)[0]] = true
					if res.Matched && res.OnceKey != ev.Payload["reference_id"] {
						t.Errorf("once_per key %q for %v", res.OnceKey, ev.Payload["reference_id"])
						return
					}
				}
				if len(gens) > 1 {
					t.Errorf("one evaluation saw rules of several generations: %v", gens)
					return
				}
				if _, err := tmpl.Render(ev.Env()); err != nil {
					t.Error(err)
					return
				}
				evaluations.Add(1)
			}
		}()
	}
	for gen := 1; gen <= 100; gen++ {
		rs := generation(t, gen)
		if rs == nil {
			break
		}
		current.Store(rs)
	}
	stop.Store(true)
	wg.Wait()
	if evaluations.Load() == 0 {
		t.Error("nothing was evaluated")
	}
}
