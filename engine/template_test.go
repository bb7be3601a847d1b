package engine

import (
	"strconv"
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
)

func TestTemplateRender(t *testing.T) {
	ev := payramEvent(t, `{"reference_id":"ref_2Bv6NcX9","status":"OVER_FILLED","amount":"44.99","filled_amount_in_usd":"52.50",
		"note":null,"tags":["vip","eu"],"count":3,"ok":true,"html":"<b>&</b>",
		"payment_info":[{"tx":"0xabc","block_number":21438012,"fee":0.10}]}`)
	env := ev.Env()
	tests := []struct {
		name, tmpl, want string
	}{
		{"no placeholder", "plain text, no braces", "plain text, no braces"},
		{"placeholders", "Overpaid {{ reference_id }} by {{ money(filled_amount_in_usd - amount) }} USD", "Overpaid ref_2Bv6NcX9 by 7.51 USD"},
		{"no spaces", "{{reference_id}}/{{status}}", "ref_2Bv6NcX9/OVER_FILLED"},
		{"}} inside a string literal", `{{ "}}" }} and {{ '}}' + "{{" }}`, "}} and }}{{"},
		{"escaped quote inside a string literal", `{{ "a\"}}" }}!`, `a"}}!`},
		{"single braces are text", "{ {{ status }} }", "{ OVER_FILLED }"},
		{"nil renders empty", "[{{ note }}][{{ missing }}][{{ meta.headers.nope }}]", "[][][]"},
		{"decimals render plain, as sent", "{{ amount }} {{ filled_amount_in_usd }} {{ amount * 2 }} {{ 1/4 }} {{ 0.0000001 }} {{ -amount }}", "44.99 52.50 89.98 0.25 0.0000001 -44.99"},
		{"numbers of other types", "{{ len(tags) }} {{ float(amount) }} {{ int(amount) }}", "2 44.99 44"},
		{"booleans", "{{ ok }} {{ amount > 5 }}", "true true"},
		{"lists render as JSON", "{{ tags }}", `["vip","eu"]`},
		{"maps render as JSON with decimals as numbers", "{{ payment_info[0] }}", `{"block_number":21438012,"fee":0.10,"tx":"0xabc"}`},
		{"no HTML escaping in JSON", "{{ [html] }}", `["<b>&</b>"]`},
		{"text is not escaped", "{{ html }}", "<b>&</b>"},
		{"toJSON", "{{ toJSON(tags) }}", "[\n  \"vip\",\n  \"eu\"\n]"},
		{"meta", "{{ meta.id }} {{ meta.source }} {{ meta.type }} {{ meta.headers['content-type'] }}", "evt_1 payram payment.over_filled application/json"},
		{"conditional", `{{ amount > 40 ? "big" : "small" }}`, "big"},
		{"times render as RFC 3339", `{{ meta.received_at }} {{ meta.received_at.Add(duration("1.5s")) }} {{ meta.received_at.Format("2006-01-02") }}`, "2026-11-23T12:00:00Z 2026-11-23T12:00:01.5Z 2026-11-23"},
		{"payload by name", `{{ payload["reference_id"] }}`, "ref_2Bv6NcX9"},
		{"urlpath escapes a path segment", `/orders/{{ urlpath("42/refund?x=1 #") }}/{{ urlpath(count) }}/{{ urlpath("a..b/..c") }}`, "/orders/42%2Frefund%3Fx=1%20%23/3/a..b%2F..c"},
		{"urlquery escapes a query value", `?ref={{ urlquery("a&b=c d+é") }}&n={{ urlquery(amount) }}`, "?ref=a%26b%3Dc+d%2B%C3%A9&n=44.99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probs := &config.Problems{}
			tmpl := CompileTemplate(&config.Scalar{Value: tt.tmpl, Pos: config.Pos{File: "rules.yaml", Line: 5, Col: 11}}, probs)
			if tmpl == nil || len(probs.List) > 0 {
				t.Fatalf("compile: %v", problemStrings(probs))
			}
			got, err := tmpl.Render(env)
			if err != nil || got != tt.want {
				t.Errorf("Render(%q) = %q, %v\n want %q", tt.tmpl, got, err, tt.want)
			}
			if tmpl.Source() != tt.tmpl {
				t.Errorf("Source() = %q", tmpl.Source())
			}
			if tmpl.IsConstant() != !strings.Contains(tt.tmpl, "{{") {
				t.Errorf("IsConstant() = %v", tmpl.IsConstant())
			}
		})
	}
}

func TestTemplateRenderErrors(t *testing.T) {
	env := payramEvent(t, `{"amount":"44.99","note":null}`).Env()
	tests := []struct{ tmpl, wantErr string }{
		{"x {{ amount / 0 }}", "{{ amount / 0 }}: division by zero (1:9)"},
		{"{{ note - 1 }}", "{{ note - 1 }}: invalid operation -: nil (the field is missing or null) is not a number (1:7)"},
		{"{{ money(note) }}{{ upper(note) }}", "{{ upper(note) }}: "},
		{"/orders/{{ urlpath(note) }}/paid", "{{ urlpath(note) }}: urlpath: the value is empty (or nil), and an empty path segment changes the address called"},
		// %2E is "." to a proxy that decodes before resolving dot segments.
		{`/orders/{{ urlpath("..") }}/cancel`, `{{ urlpath("..") }}: urlpath: the value is "..", a path segment that moves up or stays (/orders/../cancel is /cancel)`},
		{`/orders/{{ urlpath("42/../refund") }}/cancel`, `{{ urlpath("42/../refund") }}: urlpath: the value "42/../refund" holds a ".." segment, which a proxy that decodes %2F reads as moving up or staying`},
		{`/orders/{{ urlpath("42\\.\\x") }}/cancel`, `{{ urlpath("42\\.\\x") }}: urlpath: the value "42\\.\\x" holds a "." segment`},
		{`/orders/{{ urlpath(".") }}/cancel`, `{{ urlpath(".") }}: urlpath: the value is ".", a path segment that moves up or stays (/orders/../cancel is /cancel)`},
	}
	for _, tt := range tests {
		tmpl := CompileTemplate(&config.Scalar{Value: tt.tmpl}, &config.Problems{})
		got, err := tmpl.Render(env)
		if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
			t.Errorf("Render(%q) = %q, %v; want error %q", tt.tmpl, got, err, tt.wantErr)
		}
	}
	var none *Template
	if got, err := none.Render(env); got != "" || err != nil {
		t.Errorf("nil template renders %q, %v", got, err)
	}
	if got, err := CompileTemplate(nil, &config.Problems{}).Render(env); got != "" || err != nil {
		t.Errorf("absent template renders %q, %v", got, err)
	}
}

// TestTemplateProblems checks messages and their file positions.
func TestTemplateProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string // an action's fields, the text field on line 3
		want []string
	}{
		{
			name: "unclosed placeholder",
			yaml: "a:\n  type: log\n  text: \"Paid {{ reference_id }} by {{ amount\"\n",
			want: []string{"rules.yaml:3:37: placeholder opened with {{ is never closed with }}"},
		},
		{
			name: "empty placeholder",
			yaml: "a:\n  type: log\n  text: paid {{ }} now\n",
			want: []string{"rules.yaml:3:14: empty placeholder {{ }}: put an expression inside, such as {{ reference_id }}"},
		},
		{
			name: "syntax error inside a placeholder",
			yaml: "a:\n  type: log\n  text: 'status {{ status = 1 }}'\n",
			want: []string{`rules.yaml:3:27: unexpected token Operator("=") (to compare, write == instead of =)`},
		},
		{
			name: "columns count characters, not bytes",
			yaml: "a:\n  type: log\n  text: 'héhé — {{ status = 1 }}'\n",
			want: []string{`rules.yaml:3:27: unexpected token Operator("=") (to compare, write == instead of =)`},
		},
		{
			name: "every placeholder is checked",
			yaml: "a:\n  type: log\n  text: '{{ a +}} and {{ b[ }}'\n",
			want: []string{
				"rules.yaml:3:15: unexpected token EOF",
				"rules.yaml:3:28: unexpected token EOF",
			},
		},
		{
			name: "error on a later line of a literal block",
			yaml: "a:\n  type: email\n  text: |\n    Hello {{ customer_email }},\n    you paid {{ money(amount }} USD.\n",
			want: []string{"rules.yaml:5:29: unexpected token EOF"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, probs := config.LoadBytes("rules.yaml", []byte("actions:\n"+indent(tt.yaml)), config.Options{Getenv: func(string) (string, bool) { return "", false }})
			if probs.HasErrors() {
				t.Fatal(probs.List)
			}
			// The YAML is shifted down one line and right two columns by
			// the actions: wrapper; shift the wanted positions the same way.
			tmpl := CompileTemplate(cfg.Actions[0].Fields.Scalar("text"), probs)
			if tmpl != nil {
				t.Error("a template with an error must compile to nil")
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, shift(w))
			}
			if got := problemStrings(probs); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		})
	}
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

// shift moves "rules.yaml:L:C:" one line down and two columns right.
func shift(p string) string {
	parts := strings.SplitN(p, ":", 4)
	line, _ := strconv.Atoi(parts[1])
	col, _ := strconv.Atoi(parts[2])
	return parts[0] + ":" + strconv.Itoa(line+1) + ":" + strconv.Itoa(col+2) + ":" + parts[3]
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"text", "text"},
		{MustDecimal("25.00"), "25.00"},
		{MustDecimal("-0.5"), "-0.5"},
		{BigNumber{"12.345678901234567890123"}, "12.345678901234567890123"},
		{BigNumber{"-1E-400"}, "-1E-400"},
		{7, "7"},
		{int64(-7), "-7"},
		{true, "true"},
		{0.1, "0.1"},
		{1e21, "1000000000000000000000"},
		{[]any{MustDecimal("1.50"), nil, "x"}, `[1.50,null,"x"]`},
		{map[string]any{"b": 1, "a": []any{}}, `{"a":[],"b":1}`},
	}
	for _, tt := range tests {
		if got, err := FormatValue(tt.in); err != nil || got != tt.want {
			t.Errorf("FormatValue(%#v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestTemplateBareNames checks the shortcut for placeholders that only name a
// variable: it must be taken for such placeholders, and give what expr's VM
// gives for every kind of value, including names that are missing, nil, or
// not variables at all.
func TestTemplateBareNames(t *testing.T) {
	ev := payramEvent(t, `{"reference_id":"ref_1","amount":"44.99","note":null,"tags":["a"],"count":3,"ok":false,
		"nested":{"x":"1.50"},"len":"shadow","true_":"t","$env":"dollar"}`)
	env := ev.Env()
	names := []string{"reference_id", "amount", "note", "tags", "count", "ok", "nested", "missing",
		"meta", "payload", "len", "true_", "$env", "money", "now", "duration", "trim"}
	took := map[string]bool{}
	for _, name := range names {
		probs := &config.Problems{}
		tmpl := CompileTemplate(&config.Scalar{Value: "{{ " + name + " }}"}, probs)
		if tmpl == nil {
			continue // not a valid placeholder on its own; nothing to compare
		}
		got, gotErr := tmpl.Render(env)
		took[name] = tmpl.parts[0].name != ""

		vmOnly := *tmpl
		vmOnly.parts = []tmplPart{tmpl.parts[0]}
		vmOnly.parts[0].name = ""
		want, wantErr := vmOnly.Render(env)
		if got != want || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Errorf("{{ %s }}: shortcut gives %q, %v; the VM gives %q, %v", name, got, gotErr, want, wantErr)
		}
	}
	for _, name := range []string{"reference_id", "amount", "note", "missing", "meta"} {
		if !took[name] {
			t.Errorf("{{ %s }} is a bare name but Render does not read it directly", name)
		}
	}
	if took["$env"] {
		t.Errorf("{{ $env }} is the whole environment, not a variable, and must run on the VM")
	}
	// Anything more than a name runs on the VM.
	tmpl := CompileTemplate(&config.Scalar{Value: "{{ nested.x }}{{ amount * 2 }}{{ -amount }}"}, &config.Problems{})
	for _, p := range tmpl.parts {
		if p.name != "" {
			t.Errorf("{{ %s }} was taken for a bare name (%q)", p.code, p.name)
		}
	}
}

// TestPlaceholderConfigOnly: a placeholder reads only the config when the
// event can reach it through nothing but meta.source and meta.provider.
func TestPlaceholderConfigOnly(t *testing.T) {
	for code, want := range map[string]bool{
		`meta.source`:                          true,
		`lower(meta.provider)`:                 true,
		`meta["source"] + "-" + meta.provider`: true,
		`"v2"`:                                 true,
		`tenant`:                               false,
		`meta.source + tenant`:                 false,
		`meta.headers.host`:                    false,
		`meta.type`:                            false,
		`payload.source`:                       false,
		`let s = meta.source; s`:               false, // conservative: a name it does not follow
		`$env.meta.source`:                     false,
	} {
		probs := &config.Problems{}
		ps := CompileTemplate(&config.Scalar{Value: "{{ " + code + " }}"}, probs).Placeholders()
		if probs.HasErrors() || len(ps) != 1 {
			t.Fatalf("%s: %v", code, probs.List)
		}
		if ps[0].ConfigOnly != want {
			t.Errorf("{{ %s }}: ConfigOnly = %v, want %v", code, ps[0].ConfigOnly, want)
		}
	}
}
