package engine

import (
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
)

// rulesHead is the start of every config below: lines 1 to 7.
const rulesHead = `sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY:-k}
actions:
  log:
    type: log
rules:
`

// checkRules loads a config whose rules start on line 9, compiles its rules
// with the PayRam schema and returns every problem as `payramd check`
// prints it.
func checkRules(t *testing.T, rules string) (*RuleSet, []string) {
	t.Helper()
	cfg, probs := config.LoadBytes("rules.yaml", []byte(rulesHead+rules), config.Options{Getenv: func(string) (string, bool) { return "", false }})
	if probs.HasErrors() {
		t.Fatalf("config: %v", probs.List)
	}
	rs := Compile(cfg.Rules, payramOptions, probs)
	return rs, problemStrings(probs)
}

// TestCompileProblems checks each mistake's message and that its position
// points at the mistake in the file, whatever the YAML style.
func TestCompileProblems(t *testing.T) {
	tests := []struct {
		name  string
		rules string // from line 9
		want  []string
	}{
		{
			name: "= instead of ==, plain",
			rules: `  - name: filled
    when: status = "FILLED"
    do: [log]
`,
			want: []string{`rules.yaml:10:18: unexpected token Operator("=") (to compare, write == instead of =)`},
		},
		{
			// expr's checker loses an error inside a call the decimal
			// patcher rewrote (abs() > 1 became _dec_gt(abs(), 1)).
			name: "a function called with the wrong arguments",
			rules: `  - name: refund
    when: status == "FILLED" && abs() > 1 || max(true) > 2 || round(amount, 2, 3) > 1
    do: [log]
`,
			want: []string{`rules.yaml:10:33: abs needs a number`},
		},
		{
			name: "an unknown function",
			rules: `  - name: refund
    when: asb(filled_amount_in_usd - amount) > 5
    do: [log]
`,
			want: []string{`rules.yaml:10:11: unknown function asb (did you mean "abs"?)`},
		},
		{
			// Also lost by expr's checker inside a patched comparison.
			name: "a type error inside a comparison",
			rules: `  - name: a
    when: upper(1) > 1
    do: [log]
  - name: b
    when: filled_amount_in_usd - lower(status) > 1
    do: [log]
`,
			want: []string{
				`rules.yaml:10:17: cannot use int as argument (type string) to call upper`,
				`rules.yaml:13:32: invalid operation: - (mismatched types number and string): arithmetic needs numbers on both sides; for an amount sent as text, write decimal(x)`,
			},
		},
		{
			name: "= instead of ==, double quoted",
			rules: `  - name: filled
    when: "status = 'FILLED'"
    do: [log]
`,
			want: []string{`rules.yaml:10:19: unexpected token Operator("=") (to compare, write == instead of =)`},
		},
		{
			name: "= instead of ==, literal block, second line",
			rules: `  - name: filled
    when: |
      amount > 5 &&
        status = "FILLED"
    do: [log]
`,
			want: []string{`rules.yaml:12:16: unexpected token Operator("=") (to compare, write == instead of =)`},
		},
		{
			name: "number compared with text, plain",
			rules: `  - name: big
    when: amount > "5"
    do: [log]
`,
			want: []string{`rules.yaml:10:18: invalid operation: > (mismatched types number and string): a number cannot be compared with text; remove the quotes around the number`},
		},
		{
			name: "number compared with text, single quoted",
			rules: `  - name: big
    when: 'status == "FILLED" && amount > "5"'
    do: [log]
`,
			want: []string{`rules.yaml:10:41: invalid operation: > (mismatched types number and string): a number cannot be compared with text; remove the quotes around the number`},
		},
		{
			name: "number compared with text, literal block",
			rules: `  - name: big
    when: |
      status == "FILLED"
        && filled_amount_in_usd - amount > "5"
    do: [log]
`,
			want: []string{`rules.yaml:12:42: invalid operation: > (mismatched types number and string): a number cannot be compared with text; remove the quotes around the number`},
		},
		{
			name: "number compared with text, folded block",
			rules: `  - name: big
    when: >-
      status == "FILLED"
      && amount > "5"
    do: [log]
`,
			want: []string{`rules.yaml:12:17: invalid operation: > (mismatched types number and string): a number cannot be compared with text; remove the quotes around the number`},
		},
		{
			name: "a number is not a condition",
			rules: `  - name: sum
    when: filled_amount_in_usd - amount
    do: [log]
`,
			want: []string{`rules.yaml:10:11: the condition must be true or false, but it gives a number: compare it with something, such as status == "FILLED"`},
		},
		{
			name: "text is not a condition",
			rules: `  - name: text
    when: money(amount)
    do: [log]
`,
			want: []string{`rules.yaml:10:11: the condition must be true or false, but it gives text: compare it with something, such as status == "FILLED"`},
		},
		{
			name: "an unquoted # cut the expression short",
			rules: `  - name: partial
    when: status == "PAID" && #amount > 5
    do: [log]
`,
			want: []string{"rules.yaml:10:29: unexpected token EOF; note: YAML read everything from ` #amount > 5` on as a comment, so it is not part of the expression — put the whole value in quotes"},
		},
		{
			name: "an unquoted # that still leaves a valid expression is a warning",
			rules: `  - name: paid
    when: status == "PAID" #and amount > 5
    do: [log]
`,
			want: []string{"rules.yaml:10:11: warning: everything after ` #and amount > 5` is a YAML comment, not part of the condition; if it belongs to it, put the whole condition in quotes"},
		},
		{
			name: "a quoted # is part of the expression",
			rules: `  - name: tagged
    when: 'reference_id == "#42"'
    do: [log]
`,
			want: nil,
		},
		{
			name: "misspelt payram field",
			rules: `  - name: overpaid
    when: status == "OVER_FILLED" && fillled_amount_in_usd - amount > 5
    do: [log]
`,
			want: []string{`rules.yaml:10:38: warning: no known payload has a field "fillled_amount_in_usd", so it will always be nil (did you mean "filled_amount_in_usd"?)`},
		},
		{
			name: "misspelt field on the second line of a block, after non-ASCII text",
			rules: `  - name: overpaid
    when: |
      customer_email != "zoë@example.com" &&
        fillled_amount_in_usd > 5
    do: [log]
`,
			want: []string{`rules.yaml:12:9: warning: no known payload has a field "fillled_amount_in_usd", so it will always be nil (did you mean "filled_amount_in_usd"?)`},
		},
		{
			name: "unknown field without a suggestion, in once_per",
			rules: `  - name: overpaid
    when: status == "OVER_FILLED"
    do: [log]
    once_per: order_number
`,
			want: []string{`rules.yaml:12:15: warning: no known payload has a field "order_number", so it will always be nil`},
		},
		{
			name: "functions, let, payload and meta are not fields",
			rules: `  - name: ok
    when: let due = amount - (filled_amount_in_usd ?? 0); due > 0 && money(due) != "" && lower(meta.type) != "" && payload.x == nil && abs(due) > 0
    do: [log]
`,
			want: nil,
		},
		{
			name: "once_per errors are placed too",
			rules: `  - name: overpaid
    when: "true"
    do: [log]
    once_per: reference_id +
`,
			want: []string{`rules.yaml:12:28: unexpected token EOF`},
		},
		{
			name: "empty when",
			rules: `  - name: nothing
    when: ""
    do: [log]
`,
			want: []string{`rules.yaml:9:5: rule "nothing" has no when: write a condition such as status == "FILLED" (or when: true to match every event)`},
		},
		{
			name: "literal too large for a decimal",
			rules: `  - name: huge
    when: amount < 123456789012345678901.5
    do: [log]
`,
			want: []string{`rules.yaml:10:20: the number 123456789012345678901.5 has more than 19 significant digits and would be rounded (a decimal holds 19 digits): compare the field as text instead, such as string(amount) == "123456789012345678901.5"`},
		},
		{
			name: "integer literal too large",
			rules: `  - name: huge
    when: amount < 99999999999999999999
    do: [log]
`,
			want: []string{`rules.yaml:10:39: the number 99999999999999999999 has more than 19 significant digits and would be rounded (a decimal holds 19 digits): compare the field as text instead, such as string(amount) == "99999999999999999999"`},
		},
		{
			// Rounded, it would compare as 0.1234567890123456789.
			name: "literal with too many decimals",
			rules: `  - name: precise
    when: status == "FILLED" && amount == 0.1234567890123456789012
    do: [log]
`,
			want: []string{`rules.yaml:10:43: the number 0.1234567890123456789012 has more than 19 significant digits and would be rounded (a decimal holds 19 digits): compare the field as text instead, such as string(amount) == "0.1234567890123456789012"`},
		},
		{
			name: "tiny literal",
			rules: `  - name: tiny
    when: amount > 1e-400
    do: [log]
`,
			want: []string{`rules.yaml:10:20: the number 1e-400 has more than 19 decimal places and would be rounded (a decimal holds 19 digits): compare the field as text instead, such as string(amount) == "1e-400"`},
		},
		{
			name: "literal beyond a float64",
			rules: `  - name: huge
    when: amount < 1e400
    do: [log]
`,
			want: []string{`rules.yaml:10:24: the number 1e400 has more than 19 digits before the decimal point and would be rounded (a decimal holds 19 digits): compare the field as text instead, such as string(amount) == "1e400"`},
		},
		{
			name: "every rule's problems in one pass",
			rules: `  - name: a
    when: status = "FILLED"
    do: [log]
  - name: b
    when: amount > "5"
    do: [log]
  - name: c
    when: stauts == "FILLED"
    do: [log]
`,
			want: []string{
				`rules.yaml:10:18: unexpected token Operator("=") (to compare, write == instead of =)`,
				`rules.yaml:13:18: invalid operation: > (mismatched types number and string): a number cannot be compared with text; remove the quotes around the number`,
				`rules.yaml:16:11: warning: no known payload has a field "stauts", so it will always be nil (did you mean "status"?)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, got := checkRules(t, tt.rules)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
			hasErr := false
			for _, w := range tt.want {
				hasErr = hasErr || !strings.Contains(w, ": warning: ")
			}
			if (rs == nil) != hasErr {
				t.Errorf("rule set = %v, want nil exactly when there is an error", rs)
			}
		})
	}
}

// Without a schema nothing is known about the fields: no warnings, and
// text against numbers is a run-time matter.
func TestCompileWithoutSchema(t *testing.T) {
	probs := &config.Problems{}
	rs := Compile([]*config.Rule{rule("r", `fillled_amount > 5 || amount > "5"`, 3)}, CompileOptions{Sources: []string{"shop"}}, probs)
	if rs == nil || len(probs.List) > 0 {
		t.Fatalf("problems: %v", problemStrings(probs))
	}
	ev := &Event{Source: "shop", Payload: map[string]any{"fillled_amount": MustDecimal("6")}}
	if res := rs.Evaluate(ev, false); len(res) != 1 || !res[0].Matched {
		t.Errorf("results = %+v", res)
	}
}

// A rule limited to sources with different providers gets no schema: the
// fields a rule may use depend on the provider.
func TestCompileMixedSources(t *testing.T) {
	opt := CompileOptions{
		Schemas: map[string]Schema{"payram": payramSchema, "shop": {"total": KindDecimal}},
		Sources: []string{"payram", "shop"},
	}
	probs := &config.Problems{}
	r := rule("any", `total > 5 || amount > 5`, 3)
	only := rule("shop-only", `total > 5 && amuont > 1`, 5)
	only.Sources = []string{"shop"}
	Compile([]*config.Rule{r, only}, opt, probs)
	want := []string{`rules.yaml:5:24: warning: no known payload has a field "amuont", so it will always be nil`}
	if got := problemStrings(probs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestOncePer(t *testing.T) {
	probs := &config.Problems{}
	r := rule("fulfil", `status == "FILLED"`, 3)
	r.OncePer = &config.Scalar{Value: "reference_id", Pos: config.Pos{File: "rules.yaml", Line: 4, Col: 15}}
	byAmount := rule("by-amount", `true`, 5)
	byAmount.OncePer = &config.Scalar{Value: `amount * 2`}
	byMissing := rule("by-missing", `true`, 7)
	byMissing.OncePer = &config.Scalar{Value: `invoice_number`}
	disabled := rule("disabled", `true`, 9)
	disabled.Enabled = false
	rs := Compile([]*config.Rule{r, byAmount, byMissing, disabled}, CompileOptions{Sources: []string{"payram"}}, probs)
	if rs == nil || len(rs.Rules) != 3 {
		t.Fatalf("compile: %v", problemStrings(probs))
	}
	var got []string
	for _, res := range rs.Evaluate(readEvent(t, "filled.json"), false) {
		s := res.Rule.Name + " key=" + res.OnceKey
		if res.Err != nil {
			s += " err=" + res.Err.Error()
		}
		got = append(got, s)
	}
	want := []string{"fulfil key=ref_9Tx3KpQ1", "by-amount key=99.98", "by-missing key= err=once_per evaluated to nil (missing field?)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The shipped example's tests: every non-legacy event matches exactly the
// rules the example expects.
func TestExampleRules(t *testing.T) {
	cfg, probs := config.Load("../rules.example.yaml", config.Options{Getenv: func(string) (string, bool) { return "", false }})
	if probs.HasErrors() {
		t.Fatal(probs.List)
	}
	rs := Compile(cfg.Rules, payramOptions, probs)
	if rs == nil || len(probs.List) > 0 {
		t.Fatalf("compile: %v", problemStrings(probs))
	}
	for _, tc := range cfg.Tests {
		name := tc.Event[strings.LastIndexByte(tc.Event, '/')+1:]
		if strings.HasPrefix(name, "legacy_") {
			continue // needs the provider's payment_state normalization
		}
		ev := readEvent(t, name)
		var got []string
		for _, res := range rs.Evaluate(ev, false) {
			if res.Err != nil {
				t.Errorf("%s: rule %s: %v", name, res.Rule.Name, res.Err)
			}
			if res.Matched {
				got = append(got, res.Rule.Name)
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.Expect, ",") {
			t.Errorf("%s matched %q, want %q", name, got, tc.Expect)
		}
	}
}
