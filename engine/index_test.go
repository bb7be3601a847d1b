package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
)

var testStatuses = []string{"OPEN", "FILLED", "PARTIALLY_FILLED", "OVER_FILLED", "CANCELLED", "VERIFYING"}

// randomCondition builds a condition from one to three conjuncts of
// indexable equalities and conditions the index cannot use.
func randomCondition(r *rand.Rand) string {
	status := func() string {
		if r.IntN(10) == 0 {
			return "REFUNDED" // no event has it
		}
		return testStatuses[r.IntN(len(testStatuses))]
	}
	atoms := []func() string{
		func() string { return fmt.Sprintf(`status == %q`, status()) },
		func() string { return fmt.Sprintf(`%q == status`, status()) },
		func() string { return fmt.Sprintf(`status in [%q, %q]`, status(), status()) },
		func() string { return fmt.Sprintf(`meta.type == "payment.%s"`, strings.ToLower(status())) },
		func() string {
			return fmt.Sprintf(`meta.type in ["payout.sent", "payment.%s"]`, strings.ToLower(status()))
		},
		func() string { return fmt.Sprintf(`meta.source == %q`, []string{"payram", "shop", "other"}[r.IntN(3)]) },
		func() string { return fmt.Sprintf(`meta.provider == %q`, []string{"payram", "hmac"}[r.IntN(2)]) },
		func() string { return fmt.Sprintf(`customer_id == "cust_%d"`, r.IntN(5)) },
		func() string { return fmt.Sprintf(`reference_id in ["ref_%d", "ref_%d"]`, r.IntN(5), r.IntN(5)) },
		func() string { return fmt.Sprintf(`currency == %q`, []string{"USDC", "USDT"}[r.IntN(2)]) },
		func() string { return fmt.Sprintf(`amount > %d`, r.IntN(200)) },
		func() string { return `filled_amount_in_usd - amount > 5` }, // errors on a null amount
		func() string { return fmt.Sprintf(`status == %q || amount > 100`, status()) },
		func() string { return fmt.Sprintf(`not (status == %q)`, status()) },
		func() string { return fmt.Sprintf(`status != %q`, status()) },
		func() string { return fmt.Sprintf(`lower(status) == %q`, strings.ToLower(status())) },
		func() string { return `true` },
		func() string { return `status == nil` },
		func() string { return fmt.Sprintf(`payload.status == %q`, status()) },
	}
	n := 1 + r.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = atoms[r.IntN(len(atoms))]()
		if r.IntN(4) == 0 {
			parts[i] = "(" + parts[i] + ")"
		}
	}
	sep := " && "
	if r.IntN(5) == 0 {
		sep = " and "
	}
	return strings.Join(parts, sep)
}

func randomEvent(r *rand.Rand) *Event {
	p := map[string]any{
		"reference_id": fmt.Sprintf("ref_%d", r.IntN(5)),
		"customer_id":  fmt.Sprintf("cust_%d", r.IntN(5)),
		"currency":     []string{"USDC", "USDT"}[r.IntN(2)],
		"amount":       DecimalFromInt(int64(r.IntN(200))),
	}
	switch r.IntN(10) {
	case 0: // no status
	case 1:
		p["status"] = DecimalFromInt(1) // not text
	case 2:
		p["status"] = nil
	default:
		p["status"] = testStatuses[r.IntN(len(testStatuses))]
	}
	switch r.IntN(3) {
	case 0:
		p["filled_amount_in_usd"] = nil
	case 1:
		p["filled_amount_in_usd"] = MustDecimal(fmt.Sprintf("%d.%02d", r.IntN(210), r.IntN(100)))
	}
	typ := "payout.sent"
	if s, ok := p["status"].(string); ok {
		typ = "payment." + strings.ToLower(s)
	}
	ev := &Event{ID: "e", Source: []string{"payram", "shop", "other"}[r.IntN(3)], Provider: []string{"payram", "hmac"}[r.IntN(2)], Type: typ, Payload: p}
	if r.IntN(20) == 0 {
		p["meta"] = "shadowed" // meta.* must still be the event's
	}
	return ev
}

// TestIndexMatchesFullEvaluation is a property test: for random rule sets
// and random events, the indexed evaluation matches exactly the rules a
// full evaluation matches, in file order.
func TestIndexMatchesFullEvaluation(t *testing.T) {
	opt := CompileOptions{Schemas: map[string]Schema{"payram": payramSchema}, Sources: []string{"payram", "shop"}}
	sourceSets := [][]string{nil, nil, {"payram"}, {"shop"}, {"payram", "shop"}}
	indexed := 0
	for seed := range uint64(150) {
		r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		var rules []*config.Rule
		for i := range 1 + r.IntN(60) {
			cr := rule(fmt.Sprintf("r%d", i), randomCondition(r), 2*i+2)
			cr.Sources = sourceSets[r.IntN(len(sourceSets))]
			cr.Enabled = r.IntN(15) != 0
			rules = append(rules, cr)
		}
		probs := &config.Problems{}
		rs := Compile(rules, opt, probs)
		if rs == nil {
			t.Fatalf("seed %d: compile: %v", seed, problemStrings(probs))
		}
		for _, cr := range rs.Rules {
			if cr.req != nil {
				indexed++
			}
		}
		for range 40 {
			ev := randomEvent(r)
			var want, got []string
			wantErr := map[string]bool{}
			for _, res := range rs.Evaluate(ev, true) {
				if res.Matched {
					want = append(want, res.Rule.Name)
				}
				if res.Err != nil {
					wantErr[res.Rule.Name] = true
				}
			}
			last := -1
			for _, res := range rs.Evaluate(ev, false) {
				if !res.Matched && res.Err == nil {
					t.Fatalf("seed %d: indexed evaluation returned a rule that neither matched nor failed", seed)
				}
				if res.Rule.Index <= last {
					t.Fatalf("seed %d: results out of file order", seed)
				}
				last = res.Rule.Index
				if res.Matched {
					got = append(got, res.Rule.Name)
				}
				if res.Err != nil && !wantErr[res.Rule.Name] {
					t.Errorf("seed %d: rule %s failed only with the index: %v", seed, res.Rule.Name, res.Err)
				}
			}
			if !slices.Equal(got, want) {
				var desc []string
				for _, cr := range rs.Rules {
					desc = append(desc, fmt.Sprintf("  %s %v: %s", cr.Name, cr.Sources, cr.When))
				}
				t.Fatalf("seed %d: event source=%s provider=%s type=%s payload=%v\nindexed matched %v\n   full matched %v\nrules:\n%s",
					seed, ev.Source, ev.Provider, ev.Type, ev.Payload, got, want, strings.Join(desc, "\n"))
			}
		}
	}
	if indexed == 0 {
		t.Error("no rule was indexed: the test exercises nothing")
	}
}

// The index keys each rule on the requirement that splits the rule set
// finest.
func TestIndexChoosesRequirements(t *testing.T) {
	rs := mustCompile(t, CompileOptions{Sources: []string{"payram"}},
		`status == "FILLED" && customer_id == "cust_1"`,
		`status == "FILLED" && customer_id == "cust_2"`,
		`status == "OPEN" && customer_id == "cust_3"`,
		`"OPEN" == status && amount > 5`,
		`status in ["FILLED", "OPEN"] and meta.type == "payment.filled"`,
		`amount > 1000`,
		`status == "FILLED" || amount > 5`,
		`meta?.type == "payment.filled"`,
	)
	var got []string
	for _, r := range rs.Rules {
		if r.req == nil {
			got = append(got, r.Name+": always")
			continue
		}
		got = append(got, fmt.Sprintf("%s: %s in %q", r.Name, r.req.field, r.req.values))
	}
	want := []string{
		`r0: customer_id in ["cust_1"]`,
		`r1: customer_id in ["cust_2"]`,
		`r2: customer_id in ["cust_3"]`,
		`r3: status in ["OPEN"]`,
		`r4: status in ["FILLED" "OPEN"]`,
		`r5: always`,
		`r6: always`,
		`r7: always`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requirements:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
