package config

import (
	"slices"
	"strings"
	"testing"
)

func TestCommentLooksCut(t *testing.T) {
	tests := []struct {
		comment  string
		template bool
		want     bool
	}{
		// A placeholder in a comment is the rest of a value, in any field.
		{"#{{ reference_id }} paid", false, true},
		{"# {{ id }}", false, true},
		{"#{{ id }}", true, true},
		// In a template, # directly followed by text is part of the value.
		{"#123", true, true},
		{"#payments", true, true},
		{"#123", false, false},
		// Ordinary comments.
		{"# note", true, false},
		{"#   note", true, false},
		{"## note", true, false},
		{"#\tnote", true, false},
		{"#", true, false},
		{"", true, false},
	}
	for _, tt := range tests {
		if got := CommentLooksCut(tt.comment, tt.template); got != tt.want {
			t.Errorf("CommentLooksCut(%q, template %v) = %v, want %v", tt.comment, tt.template, got, tt.want)
		}
	}
}

// TestCommentCutsValue: the loader warns, in every field, about an unquoted
// value whose comment holds a placeholder, and about a key whose whole
// value was read as a comment. The stricter rule for template fields
// (`text: Order #123`) runs when actions compile: see actions'
// TestCommentCutsTemplate.
func TestCommentCutsValue(t *testing.T) {
	const warn = "warning: YAML reads an unquoted ` #` as the start of a comment, so "
	tests := []struct {
		name string
		yaml string // after head (lines 1 to 7)
		env  map[string]string
		want []string
	}{
		{
			name: "a placeholder after # in an action's text",
			yaml: "    text: Order #{{ reference_id }} paid\n",
			want: []string{`rules.yaml:8:17: ` + warn + `this value is "Order" and "#{{ reference_id }} paid" is not part of it; if it belongs to the value, quote the whole value: text: "Order #{{ reference_id }} paid"`},
		},
		{
			name: "a placeholder after # and a space, several spaces before it",
			yaml: "    text: Refund   # {{ id }}\n",
			want: []string{`rules.yaml:8:20: ` + warn + `this value is "Refund" and "# {{ id }}" is not part of it; if it belongs to the value, quote the whole value: text: "Refund   # {{ id }}"`},
		},
		{
			name: "a placeholder in a comment on a field that is not a template",
			yaml: "rules:\n  - name: big #{{ id }}\n    when: true\n    do: [ops-slack]\n",
			want: []string{`rules.yaml:9:15: ` + warn + `this value is "big" and "#{{ id }}" is not part of it; if it belongs to the value, quote the whole value: - name: "big #{{ id }}"`},
		},
		{
			name: "a list item",
			yaml: "    command:\n      - echo\n      - ${WORD} #{{ id }}\n",
			env:  map[string]string{"WORD": "paid"},
			want: []string{`rules.yaml:10:17: ` + warn + `this value is "${WORD}" and "#{{ id }}" is not part of it; if it belongs to the value, quote the whole value: - "${WORD} #{{ id }}"`},
		},
		{
			// The value is quoted as written: what a ${VAR} expands to is
			// often a secret, and warnings are printed and logged.
			name: "a value from the environment",
			yaml: "    url: ${SLACK_WEBHOOK_URL} #{{ channel }}\n",
			env:  map[string]string{"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/s3cret"},
			want: []string{`rules.yaml:8:31: ` + warn + `this value ends before it and the rest of the line is not part of it; if it belongs to the value, put the whole value in quotes (the value is not shown: it may be a secret)`},
		},
		{
			// A URL or a credential may be a secret written in the file:
			// the warning gives its place, never its text.
			name: "a secret written in the file",
			yaml: "    url: https://hooks.slack.com/services/T0/B0/s3cret #{{ channel }}\n",
			want: []string{`rules.yaml:8:56: ` + warn + `this value ends before it and the rest of the line is not part of it; if it belongs to the value, put the whole value in quotes (the value is not shown: it may be a secret)`},
		},
		{
			name: "a value from the environment spread over lines",
			yaml: "    text: Paid\n      ${WORD} #{{ id }}\n",
			env:  map[string]string{"WORD": "s3cret"},
			want: []string{`rules.yaml:9:15: ` + warn + `this value is "Paid ${WORD}" and "#{{ id }}" is not part of it; if it belongs to the value, quote the whole value: "Paid ${WORD} #{{ id }}"`},
		},
		{
			name: "a value spread over lines",
			yaml: "    text: Order\n      paid #{{ id }}\n",
			want: []string{`rules.yaml:9:12: ` + warn + `this value is "Order paid" and "#{{ id }}" is not part of it; if it belongs to the value, quote the whole value: "Order paid #{{ id }}"`},
		},
		{
			name: "a value holding a double quote is suggested in single quotes",
			yaml: `    text: say "hi" #{{ name }}` + "\n",
			want: []string{`rules.yaml:8:20: ` + warn + `this value is "say \"hi\"" and "#{{ name }}" is not part of it; if it belongs to the value, quote the whole value: text: 'say "hi" #{{ name }}'`},
		},
		{
			name: "a whole value read as a comment",
			yaml: "    channel: #payments\n",
			want: []string{`rules.yaml:8:14: ` + warn + `channel: has no value and "#payments" is not part of it; if it belongs to the value, quote it: channel: "#payments"`},
		},
		{
			name: "ordinary comments",
			yaml: "    channel: # set below\n    text: paid  # a note\n    level: info  #   verbose\n    url: x ## note\n    body: Order #123\n",
			want: nil,
		},
		{
			name: "quoted and block values keep their #",
			yaml: "    text: \"Order #{{ id }}\"\n    body: 'Refund #{{ id }}'\n    message: | # {{ not a value }}\n      x\n",
			want: nil,
		},
		{
			name: "when: has its own warning, given when rules compile",
			yaml: "rules:\n  - name: r\n    when: status == \"FILLED\" # {{ id }}\n    do: [ops-slack]\n",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"rules.yaml": head + tt.yaml})
			_, got := loadDir(t, dir, tt.env)
			var warnings []string
			for _, p := range got {
				if strings.Contains(p, "` #`") || strings.Contains(p, "comment") {
					warnings = append(warnings, p)
				}
			}
			if !slices.Equal(warnings, tt.want) {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}
