package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTemplateFieldTypos: a template reading a name no payload of its
// events has ({{ custmer_email }}) is warned about, as a rule's when: is,
// at the name's line and column with a suggestion. Only when every event
// that can reach the action has known fields: an action also used for an
// hmac source's events, or by no rule, is not judged.
func TestTemplateFieldTypos(t *testing.T) {
	const head = `sources:
  shop:
    provider: payram
    secret: s3cret-one
  erp:
    provider: hmac
    header: X-Sig
    secret: s3cret-two
actions:
`
	tests := []struct {
		name, actions, rules string
		want                 []string
	}{
		{
			name: "payram only: each misspelt name, placed",
			actions: `  note:
    type: log
    message: "paid {{ refrence_id }} (zoë) {{ urlpath(invoice_Id) }} {{ reference_id }}"
`,
			rules: `  - name: paid
    source: shop
    when: status == "FILLED"
    do: [note]
`,
			want: []string{
				`rules.yaml:12:23: warning: no known payload has a field "refrence_id", so {{ }} gives nil here: an empty value, or a failed job where a function needs one (did you mean "reference_id"?)`,
				`rules.yaml:12:55: warning: no known payload has a field "invoice_Id", so {{ }} gives nil here: an empty value, or a failed job where a function needs one (did you mean "invoice_id"?)`,
			},
		},
		{
			name: "functions, let, meta, payload and payout fields are fine",
			actions: `  note:
    type: log
    message: "{{ let due = amount - (filled_amount_in_usd ?? 0); money(due) }} {{ meta.source }} {{ payload.x }} {{ upper(status) }}"
`,
			rules: `  - name: paid
    source: shop
    when: "true"
    do: [note]
`,
		},
		{
			name: "an action that also gets an hmac source's events is not judged",
			actions: `  note:
    type: log
    message: "{{ order_ref }}"
`,
			rules: `  - name: any
    when: "true"
    do: [note]
`,
		},
		{
			name: "nor one no rule uses",
			actions: `  note:
    type: log
    message: "{{ order_ref }}"
  spare:
    type: log
    message: "{{ refrence_id }}"
`,
			rules: `  - name: erp
    source: erp
    when: "true"
    do: [note]
`,
		},
		{
			name: "inline actions and nested fields are read too",
			actions: `  {}
`,
			rules: `  - name: paid
    source: shop
    when: status == "FILLED"
    do:
      - type: http
        url: https://erp.example/orders/{{ urlpath(reference_id) }}
        headers:
          X-Customer: "{{ custmer_id }}"
`,
			want: []string{
				`rules.yaml:19:27: warning: no known payload has a field "custmer_id", so {{ }} gives nil here: an empty value, or a failed job where a function needs one (did you mean "customer_id"?)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rules.yaml")
			if err := os.WriteFile(path, []byte(head+tt.actions+"rules:\n"+tt.rules), 0o600); err != nil {
				t.Fatal(err)
			}
			snap, probs := Load(LoadOptions{Path: path})
			var got []string
			for _, p := range probs.List {
				if s := p.String(); strings.Contains(s, "payload has a field") {
					got = append(got, strings.TrimPrefix(s, filepath.Dir(path)+"/"))
				}
			}
			if snap == nil || !slices.Equal(got, tt.want) {
				t.Errorf("loaded: %v\n got %q\nwant %q\nall: %v", snap != nil, got, tt.want, probs.List)
			}
		})
	}
}
