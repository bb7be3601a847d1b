package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeTree writes files (slash-separated paths relative to a fresh
// directory) and returns the directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// envOf is an Options.Getenv that sees only vars.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// loadDir loads dir/rules.yaml and returns every problem as printed, with
// the directory removed from file names.
func loadDir(t *testing.T, dir string, env map[string]string) (*Config, []string) {
	t.Helper()
	cfg, probs := Load(filepath.Join(dir, "rules.yaml"), Options{Getenv: envOf(env)})
	var out []string
	for _, p := range probs.List {
		out = append(out, strings.ReplaceAll(p.String(), dir+string(filepath.Separator), ""))
	}
	return cfg, out
}

// head is a valid start of a config: lines 1 to 7. Its secret comes from
// the environment, as a service's does, so that it raises no warning.
const head = `sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY:-demo-key}
actions:
  ops-slack:
    type: slack
`

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // rules.yaml is the main file
		env   map[string]string
		want  []string
	}{
		{
			name:  "yaml tab used for indentation",
			files: map[string]string{"rules.yaml": "server:\n\tlisten: \":8080\"\n"},
			want:  []string{"rules.yaml:2:1: YAML syntax error: found character that cannot start any token; YAML does not allow tabs for indentation, use spaces"},
		},
		{
			name: "yaml key indented one space too far",
			files: map[string]string{"rules.yaml": `server:
  listen: ":8080"
   data_dir: ./data
`},
			want: []string{"rules.yaml:3:4: YAML syntax error: did not find expected key; check the indentation of this line against the lines above"},
		},
		{
			name: "yaml rule key indented one space too little",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: a
    when: "true"
   do: [ops-slack]
`},
			want: []string{"rules.yaml:11:4: YAML syntax error: did not find expected '-' indicator; check the indentation of this line against the lines above"},
		},
		{
			name: "yaml key dedented under a nested mapping",
			files: map[string]string{"rules.yaml": `server:
  listen: ":8080"
  data_dir: ./data
 max_body: 1MiB
`},
			want: []string{"rules.yaml:4:2: YAML syntax error: did not find expected key; check the indentation of this line against the lines above"},
		},
		{
			name: "yaml indentation error deep in a long file",
			files: map[string]string{"rules.yaml": head + "rules:\n" + strings.Repeat(`  - name: r
    when: "true"
    do: [ops-slack]
`, 1500) + `  - name: last
    when: "true"
     do: [ops-slack]
`},
			want: []string{"rules.yaml:4511:6: YAML syntax error: did not find expected key; check the indentation of this line against the lines above"},
		},
		{
			name: "yaml colon inside an unquoted value",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: a
    when: note == "x: y"
    do: [ops-slack]
`},
			want: []string{`rules.yaml:10:5: YAML syntax error: mapping values are not allowed in this context; a value containing ": " must be quoted`},
		},
		{
			name: "two inline actions of one type in a rule",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: a
    when: "true"
    do:
      - {type: log, message: one}
      - ops-slack
      - {type: slack, text: two}
      - {type: log, message: three}
`},
			want: []string{`rules.yaml:15:9: warning: a second inline log action in rule "a": retries waiting in the journal find an inline action by its place in do:, so reordering these two would send one's retries to the other; define them under actions: with names`},
		},
		{
			name: "unknown top-level key with suggestion",
			files: map[string]string{"rules.yaml": head + `rulse:
  - name: a
`},
			want: []string{`rules.yaml:8:1: unknown field "rulse" (did you mean "rules"?)`},
		},
		{
			name: "unknown top-level key without suggestion lists the known ones",
			files: map[string]string{"rules.yaml": head + `alerts: []
`},
			want: []string{`rules.yaml:8:1: unknown field "alerts" (known fields: actions, include, rules, server, sources, tests)`},
		},
		{
			name: "unknown key in server",
			files: map[string]string{"rules.yaml": `server:
  listen: ":8080"
  admin_lisen: "127.0.0.1:8081"
` + head},
			want: []string{`rules.yaml:3:3: unknown field "admin_lisen" (did you mean "admin_listen"?)`},
		},
		{
			name: "unknown key in a rule",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: overpaid
    whne: status == "OVER_FILLED"
    do: [ops-slack]
`},
			want: []string{
				`rules.yaml:9:5: rule "overpaid" needs when: a condition such as status == "FILLED"`,
				`rules.yaml:10:5: unknown field "whne" (did you mean "when"?)`,
			},
		},
		{
			name: "unknown key in a test",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: overpaid
    when: "true"
    do: [ops-slack]
tests:
  - event: e.json
    expct: [overpaid]
`},
			want: []string{`rules.yaml:14:5: unknown field "expct" (did you mean "expect"?)`},
		},
		{
			name: "unknown key in an action's retry",
			files: map[string]string{"rules.yaml": `actions:
  log:
    type: log
    retry: {attempts: 3, inital: 1s}
`},
			want: []string{`rules.yaml:4:26: unknown field "inital" (did you mean "initial"?)`},
		},
		{
			name: "missing required fields",
			files: map[string]string{"rules.yaml": `sources:
  payram:
    secret: ${PAYRAM_API_KEY:-k}
actions:
  log:
    message: hi
rules:
  - when: "true"
    do: [log]
  - name: b
tests:
  - expect: []
`},
			want: []string{
				`rules.yaml:3:5: missing required field "provider"`,
				`rules.yaml:6:5: missing required field "type"`,
				`rules.yaml:8:5: missing required field "name"`,
				`rules.yaml:10:5: rule "b" needs when: a condition such as status == "FILLED"`,
				`rules.yaml:10:5: rule "b" needs do: the actions to run, such as do: [ops-slack]`,
				`rules.yaml:12:5: missing required field "event"`,
			},
		},
		{
			name: "rule with neither name nor anything else",
			files: map[string]string{"rules.yaml": `rules:
  - {}
`},
			want: []string{
				`rules.yaml:2:5: missing required field "name"`,
				`rules.yaml:2:5: this rule needs when: a condition such as status == "FILLED"`,
				`rules.yaml:2:5: this rule needs do: the actions to run, such as do: [ops-slack]`,
			},
		},
		{
			name: "empty required value",
			files: map[string]string{"rules.yaml": `actions:
  log:
    type: ""
`},
			want: []string{`rules.yaml:3:11: type must not be empty`},
		},
		{
			name: "durations",
			files: map[string]string{"rules.yaml": `server:
  retention: 7d
  shutdown_timeout: -5s
actions:
  log:
    type: log
    timeout: 10 seconds
    retry: {attempts: 3, initial: 5s, max: 1s}
`},
			want: []string{
				`rules.yaml:2:14: retention: "7d" is not a duration: write a number and a unit, such as 30s, 5m or 720h; days are written in hours (720h is 30 days)`,
				`rules.yaml:3:21: shutdown_timeout: "-5s": a duration cannot be negative`,
				`rules.yaml:7:14: timeout: "10 seconds" is not a duration: write a number and a unit, such as 30s, 5m or 720h`,
				`rules.yaml:8:44: max (1s) must not be less than initial (5s)`,
			},
		},
		{
			name: "sizes",
			files: map[string]string{"rules.yaml": `server:
  max_body: 1 megabyte
sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY:-k}
    max_body: 2Mib
`},
			want: []string{
				`rules.yaml:2:13: max_body: "1 megabyte" is not a size: write a number and a unit, such as 1MiB, 512KiB or 1MB`,
				`rules.yaml:7:15: max_body: "2Mib" is not a size: write a number and a unit, such as 1MiB, 512KiB or 1MB`,
			},
		},
		{
			name: "CIDRs",
			files: map[string]string{"rules.yaml": `server:
  trusted_proxies: [10.0.0.0/33, 10.1.2.3]
sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY:-k}
    allow_ips:
      - 203.0.113.0/24
      - 203.0.113.300
`},
			want: []string{
				`rules.yaml:2:21: trusted_proxies: "10.0.0.0/33" is not a CIDR such as 203.0.113.0/24`,
				`rules.yaml:9:9: allow_ips: "203.0.113.300" is not an IP address or CIDR`,
			},
		},
		{
			name: "unset variable names the variable and its line",
			files: map[string]string{"rules.yaml": `sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY}
`},
			want: []string{
				`rules.yaml:4:13: environment variable PAYRAM_API_KEY is not set; set it (systemd: EnvironmentFile=, then restart: a running payramd does not see new variables) or give a default: ${PAYRAM_API_KEY:-value}`,
			},
		},
		{
			name: "variable set to an empty string is not unset",
			files: map[string]string{"rules.yaml": `server:
  data_dir: ./data${SUFFIX}
`},
			env:  map[string]string{"SUFFIX": ""},
			want: nil,
		},
		{
			name: "malformed variable reference",
			files: map[string]string{"rules.yaml": `server:
  data_dir: ${1DIR}
`},
			want: []string{`rules.yaml:2:13: "${1DIR}" is not a valid variable reference: write ${NAME} or ${NAME:-default}`},
		},
		{
			name: "empty source secret",
			files: map[string]string{"rules.yaml": `sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY:-}
  shop:
    provider: hmac
    secrets: [old-key, "  "]
`},
			want: []string{
				`rules.yaml:4:13: secret is empty: an empty secret would accept anything signed with no key`,
				// The other item is a secret written in the config (an empty one is no secret).
				`rules.yaml:7:15: warning: item 1 of secrets is written in the config; anyone who can read rules.yaml can use it: put it in the environment (secrets: [${SHOP_SECRET_OLD}, ${SHOP_SECRET}], set in the service's EnvironmentFile) or in secret_file`,
				`rules.yaml:7:24: secret is empty: an empty secret would accept anything signed with no key`,
			},
		},
		{
			name: "unreadable secret_file",
			files: map[string]string{"rules.yaml": `sources:
  payram:
    provider: payram
    secret_file: creds/missing.txt
`},
			want: []string{`rules.yaml:4:18: secret_file: cannot read the secret: creds/missing.txt: no such file or directory`},
		},
		{
			name: "unknown action in do with suggestion",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: overpaid
    when: "true"
    do: [ops-slak, page-oncall]
`},
			want: []string{
				`rules.yaml:11:10: unknown action "ops-slak" (did you mean "ops-slack"?)`,
				`rules.yaml:11:20: unknown action "page-oncall"`,
			},
		},
		{
			name: "unknown source in a rule with suggestion",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: overpaid
    source: [payram, pyaram]
    when: "true"
    do: [ops-slack]
`},
			want: []string{`rules.yaml:10:22: unknown source "pyaram" (did you mean "payram"?)`},
		},
		{
			name: "duplicate names in one file",
			files: map[string]string{"rules.yaml": head + `  ops-slack:
    type: log
rules:
  - name: overpaid
    when: "true"
    do: [ops-slack]
  - name: overpaid
    when: "false"
    do: [ops-slack]
`},
			want: []string{
				`rules.yaml:8:3: action "ops-slack" is already defined at rules.yaml:7:5`,
				`rules.yaml:14:11: rule "overpaid" is already defined at rules.yaml:11:5; rule names must be unique (they key once_per and metrics)`,
			},
		},
		{
			// yaml.v3 keeps both keys in the node tree and a lookup found
			// the first: the second rules: was silently ignored.
			name: "a key written twice: a second rules: pasted at the end",
			files: map[string]string{"rules.yaml": head + `    url: https://hooks.slack.com/services/${SLACK_PATH:-x}
    text: paid
rules:
  - name: audit
    when: "true"
    do: [ops-slack]
rules:
  - name: overpaid
    when: status == "OVER_FILLED"
    do: [ops-slack]
`},
			want: []string{`rules.yaml:14:1: rules: is written twice (first at line 10); YAML would read only one of them and silently ignore the other: merge them into one rules:`},
		},
		{
			name: "a key written twice inside an action, a rule and the server",
			files: map[string]string{"rules.yaml": `server:
  max_body: 1MiB
  max_body: 2MiB
` + head + `    url: https://hooks.slack.com/services/${SLACK_PATH:-x}
    text: paid
    text: overpaid
rules:
  - name: audit
    when: "true"
    when: status == "FILLED"
    do: [ops-slack]
`},
			want: []string{
				`rules.yaml:3:3: max_body: is written twice (first at line 2); YAML would read only one of them and silently ignore the other: merge them into one max_body:`,
				`rules.yaml:13:5: text: is written twice (first at line 12); YAML would read only one of them and silently ignore the other: merge them into one text:`,
				`rules.yaml:17:5: when: is written twice (first at line 16); YAML would read only one of them and silently ignore the other: merge them into one when:`,
			},
		},
		{
			name: "a key written twice in an include",
			files: map[string]string{
				"rules.yaml": head + `    url: https://hooks.slack.com/services/${SLACK_PATH:-x}
    text: paid
include: [rules.d/*.yaml]
`,
				"rules.d/ops.yaml": `rules:
  - name: a
    when: "true"
    do: [ops-slack]
    do: []
`,
			},
			want: []string{`rules.d/ops.yaml:5:5: do: is written twice (first at line 4); YAML would read only one of them and silently ignore the other: merge them into one do:`},
		},
		{
			name: "duplicate names across an include name the include file",
			files: map[string]string{
				"rules.yaml": head + `rules:
  - name: overpaid
    when: "true"
    do: [ops-slack]
include: [rules.d/*.yaml]
`,
				"rules.d/ops.yaml": `actions:
  ops-slack:
    type: log
rules:
  - name: overpaid
    when: "true"
    do: [ops-slack]
`,
			},
			want: []string{
				`rules.d/ops.yaml:2:3: action "ops-slack" is already defined at rules.yaml:7:5`,
				`rules.d/ops.yaml:5:11: rule "overpaid" is already defined at rules.yaml:9:5; rule names must be unique (they key once_per and metrics)`,
			},
		},
		{
			name: "server and sources are refused in an include",
			files: map[string]string{
				"rules.yaml": head + "include: [rules.d/*.yaml]\n",
				"rules.d/a.yaml": `# ops alerts
server:
  listen: ":9999"
sources:
  other:
    provider: none
include: [more/*.yaml]
`,
			},
			want: []string{
				`rules.d/a.yaml:2:1: server: can only be in the main config file (rules.yaml); an included file may hold actions:, rules: and tests:`,
				`rules.d/a.yaml:4:1: sources: can only be in the main config file (rules.yaml); an included file may hold actions:, rules: and tests:`,
				`rules.d/a.yaml:7:1: include: can only be in the main config file (rules.yaml); an included file may hold actions:, rules: and tests:`,
			},
		},
		{
			name: "problems inside an include carry its name",
			files: map[string]string{
				"rules.yaml": head + "include: [rules.d/*.yaml]\n",
				"rules.d/a.yaml": `rules:
  - name: extra
    when: "true"
    do: [ops-slak]
    bogus: 1
`,
				"rules.d/b.yaml": "rules:\n\t- name: x\n",
			},
			want: []string{
				`rules.d/a.yaml:4:10: unknown action "ops-slak" (did you mean "ops-slack"?)`,
				`rules.d/a.yaml:5:5: unknown field "bogus" (known fields: do, enabled, name, once_per, source, when)`,
				`rules.d/b.yaml:2:1: YAML syntax error: found character that cannot start any token; YAML does not allow tabs for indentation, use spaces`,
			},
		},
		{
			name: "test expecting an unknown rule",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: overpaid
    when: "true"
    do: [ops-slack]
tests:
  - event: e.json
    source: pyram
    expect: [overpiad, refunded]
`},
			want: []string{
				`rules.yaml:14:13: unknown source "pyram" (did you mean "payram"?)`,
				`rules.yaml:15:14: test expects unknown rule "overpiad" (did you mean "overpaid"?)`,
				`rules.yaml:15:24: test expects unknown rule "refunded"`,
			},
		},
		{
			name: "test may expect a rule from an include",
			files: map[string]string{
				"rules.yaml": head + "include: [rules.d/*.yaml]\ntests:\n  - event: e.json\n    expect: [extra]\n",
				"rules.d/a.yaml": `rules:
  - name: extra
    when: "true"
    do: [ops-slack]
`,
			},
			want: nil,
		},
		{
			name: "admin_listen off loopback without a token",
			files: map[string]string{"rules.yaml": `server:
  admin_listen: "0.0.0.0:8081"
`},
			want: []string{`rules.yaml:2:17: admin_listen "0.0.0.0:8081" is not a loopback address, so admin_token is required (the admin API can replay events and retry jobs)`},
		},
		{
			name: "admin_listen off loopback with a token",
			files: map[string]string{"rules.yaml": `server:
  admin_listen: ":8081"
  admin_token: ${TOKEN}
`},
			env:  map[string]string{"TOKEN": "s3cret"},
			want: nil,
		},
		{
			name: "admin_listen on loopback needs no token",
			files: map[string]string{"rules.yaml": `server:
  admin_listen: "[::1]:8081"
`},
			want: nil,
		},
		{
			name: "tag trap: when: !paid",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: unpaid
    when: !paid
    do: [ops-slack]
`},
			want: []string{`rules.yaml:10:11: a value starting with ! is read by YAML as a tag (!paid), not as text; put the whole value in quotes, such as '!paid'`},
		},
		{
			name: "tag trap followed by more expression",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: live
    when: !is_test && amount > 5
    do: [ops-slack]
`},
			want: []string{`rules.yaml:10:11: a value starting with ! is read by YAML as a tag, not as text; put the whole value in quotes, such as '!is_test && amount > 5'`},
		},
		{
			name: "alias trap: when: *x > 1",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: big
    when: *x > 1
    do: [ops-slack]
`},
			want: []string{`rules.yaml:10:11: a value starting with * is read by YAML as a reference to an anchor, not as text; put the whole value in quotes, such as '*x > 1'`},
		},
		{
			name: "alias trap: a bare unknown anchor",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: big
    when: *weird
    do: [ops-slack]
`},
			want: []string{`rules.yaml:10:11: a value starting with * is read by YAML as a reference to an anchor (*weird), not as text; put the whole value in quotes`},
		},
		{
			name: "alias to a real anchor is refused too",
			files: map[string]string{"rules.yaml": head + `rules:
  - name: a
    when: &cond status == "FILLED"
    do: [ops-slack]
  - name: b
    when: *cond
    do: [ops-slack]
`},
			want: []string{`rules.yaml:13:11: a value starting with * is read by YAML as a reference to an anchor, not as text; put the whole value in quotes`},
		},
		{
			name: "variable inside a flow sequence",
			files: map[string]string{"rules.yaml": `actions:
  mail:
    type: email
    to: [${FINANCE_TO}]
`},
			env:  map[string]string{"FINANCE_TO": "a@example.com"},
			want: []string{`rules.yaml:4:5: YAML syntax error: did not find expected ',' or ']'; inside [ ] or { }, put quotes around values containing {, }, [, ], commas or ${VAR}`},
		},
		{
			name: "variable inside a flow mapping on a later line",
			files: map[string]string{"rules.yaml": `actions:
  hook:
    type: http
    headers: {Authorization: "Bearer x",
      X-Token: ${TOKEN}}
`},
			want: []string{`rules.yaml:5:7: YAML syntax error: did not find expected ',' or '}'; inside [ ] or { }, put quotes around values containing {, }, [, ], commas or ${VAR}`},
		},
		{
			name:  "empty file",
			files: map[string]string{"rules.yaml": "# nothing yet\n"},
			want:  []string{"rules.yaml:1:1: the file is empty: expected sources:, actions: and rules: (see rules.example.yaml)"},
		},
		{
			name:  "top level is a list",
			files: map[string]string{"rules.yaml": "- name: a\n"},
			want:  []string{"rules.yaml:1:1: the file must be a mapping of sections (server:, sources:, actions:, rules:), not a list"},
		},
		{
			name: "many problems in one file are all reported, sorted",
			files: map[string]string{"rules.yaml": `server:
  retention: 30d
  listn: ":8080"
sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY}
    allow_ips: [10.0.0.0/8, 10.0.0.300]
actions:
  ops-slack:
    type: slack
    timeout: 5 s
rules:
  - name: overpaid
    source: payrm
    when: status == "OVER_FILLED"
    do: [ops-slak]
  - name: overpaid
    when: "true"
    do: [ops-slack]
    once: reference_id
tests:
  - event: e.json
    expect: [overpaid, partial]
`},
			want: []string{
				`rules.yaml:2:14: retention: "30d" is not a duration: write a number and a unit, such as 30s, 5m or 720h; days are written in hours (720h is 30 days)`,
				`rules.yaml:3:3: unknown field "listn" (did you mean "listen"?)`,
				`rules.yaml:7:13: environment variable PAYRAM_API_KEY is not set; set it (systemd: EnvironmentFile=, then restart: a running payramd does not see new variables) or give a default: ${PAYRAM_API_KEY:-value}`,
				`rules.yaml:8:29: allow_ips: "10.0.0.300" is not an IP address or CIDR`,
				`rules.yaml:12:14: timeout: "5 s" is not a duration: write a number and a unit, such as 30s, 5m or 720h`,
				`rules.yaml:15:13: unknown source "payrm" (did you mean "payram"?)`,
				`rules.yaml:17:10: unknown action "ops-slak" (did you mean "ops-slack"?)`,
				`rules.yaml:18:11: rule "overpaid" is already defined at rules.yaml:14:5; rule names must be unique (they key once_per and metrics)`,
				`rules.yaml:21:5: unknown field "once" (known fields: do, enabled, name, once_per, source, when)`,
				`rules.yaml:24:24: test expects unknown rule "partial"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			_, got := loadDir(t, dir, tt.env)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

// TestPositionsAfterExpansion: a position inside a value whose ${VAR}
// references were replaced is where that text is in the file, not where it
// would be if the file held the expanded text.
func TestPositionsAfterExpansion(t *testing.T) {
	dir := writeTree(t, map[string]string{"rules.yaml": `actions:
  erp:
    type: http
    url: "${ERP_URL:-http://127.0.0.1:9000}/orders/{{ id }}/${SUFFIX}"
  note:
    type: log
    message: |
      to ${WHO}:
        paid {{ ref }}
`})
	cfg, probs := loadDir(t, dir, map[string]string{"SUFFIX": "paid", "WHO": "the finance team at ACME"})
	if len(probs) > 0 {
		t.Fatalf("unexpected problems:\n%s", strings.Join(probs, "\n"))
	}
	url := cfg.Action("erp").Fields.Scalar("url")
	msg := cfg.Action("note").Fields.Scalar("message")
	for _, c := range []struct {
		name string
		got  Pos
		line int
		col  int
	}{
		{"after a reference with its default", url.AtOffset(strings.Index(url.Value, "{{")), 4, 52},
		{"inside a reference's value: its ${", url.AtOffset(strings.Index(url.Value, "9000")), 4, 11},
		{"after two references", url.AtOffset(strings.Index(url.Value, "paid")), 4, 61},
		{"line and column, as expr reports them", url.At(1, strings.Index(url.Value, "id }}")+1), 4, 55},
		{"second line of a block, after a longer value on the first", msg.AtOffset(strings.Index(msg.Value, "{{")), 9, 14},
		{"start", url.AtOffset(0), 4, 11},
	} {
		if c.got.Line != c.line || c.got.Col != c.col {
			t.Errorf("%s: %d:%d, want %d:%d", c.name, c.got.Line, c.got.Col, c.line, c.col)
		}
	}
}

func TestLoadExpandsVariables(t *testing.T) {
	dir := writeTree(t, map[string]string{"rules.yaml": `server:
  listen: "${LISTEN:-:9090}"
  data_dir: ${DATA_DIR:-./data}
  admin_token: ${TOKEN:-}
  tls_cert: ${CERT:+/etc/payramd/cert.pem}
  tls_key: ${CERT:+/etc/payramd/key.pem}
sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY}
actions:
  slack:
    type: slack
    enabled: ${SLACK_WEBHOOK_URL:+true}
    url: ${SLACK_WEBHOOK_URL:-}
  script:
    type: exec
    command: [sh, -c, 'echo $${HOME} $$HOME ${WHO}']
  cost:
    type: log
    message: "${CURRENCY:-USD} $5 ${EMPTY:-fallback} ${SET_EMPTY:-fallback} ${SET_EMPTY:+word}"
`})
	cfg, probs := loadDir(t, dir, map[string]string{
		"PAYRAM_API_KEY": "k-123",
		"DATA_DIR":       "/var/lib/payramd",
		"CERT":           "yes",
		"WHO":            "me",
		"SET_EMPTY":      "",
	})
	if len(probs) > 0 {
		t.Fatalf("unexpected problems:\n%s", strings.Join(probs, "\n"))
	}
	s := cfg.Server
	for _, c := range []struct{ name, got, want string }{
		{"listen (default)", s.Listen, ":9090"},
		{"data_dir (set)", s.DataDir, "/var/lib/payramd"},
		{"admin_token (empty default)", s.AdminToken.Reveal(), ""},
		{"tls_cert (:+ set)", s.TLSCert, "/etc/payramd/cert.pem"},
		{"secret", cfg.Sources[0].Secrets[0].Reveal(), "k-123"},
		{"url (unset, empty default)", cfg.Action("slack").Fields.String("url"), ""},
		{"message", cfg.Action("cost").Fields.String("message"), "USD $5 fallback fallback "},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.Action("slack").Enabled {
		t.Error("an action with enabled: ${UNSET:+true} must be disabled")
	}
	if got, want := cfg.Action("script").Fields.Strings("command"), []string{"sh", "-c", "echo ${HOME} $$HOME me"}; !slices.Equal(got, want) {
		t.Errorf("command = %q, want %q ($${ escapes ${, a lone $$ stays)", got, want)
	}
}

func TestLoadSecretFile(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"rules.yaml": `server:
  admin_listen: ":8081"
  admin_token_file: creds/admin
sources:
  payram:
    provider: payram
    secret_file: creds/payram
  shop:
    provider: hmac
    secrets: [old-secret]
    secret_file: /ABS/creds/shop
`,
		"creds/admin":  "admin-token\n",
		"creds/payram": "  spaced key \r\n\n",
		"creds/shop":   "new-secret",
	})
	// An absolute secret_file path is used as is.
	main := filepath.Join(dir, "rules.yaml")
	b, _ := os.ReadFile(main)
	if err := os.WriteFile(main, []byte(strings.ReplaceAll(string(b), "/ABS", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, probs := loadDir(t, dir, nil)
	// Secrets read from files are not written in the config; the old
	// secret of the rotation is.
	want := []string{"rules.yaml:10:15: warning: item 1 of secrets is written in the config; anyone who can read rules.yaml can use it: put it in the environment (secrets: [${SHOP_SECRET_OLD}, ${SHOP_SECRET}], set in the service's EnvironmentFile) or in secret_file"}
	if !slices.Equal(probs, want) {
		t.Fatalf("problems:\n got: %s\nwant: %s", strings.Join(probs, "\n      "), strings.Join(want, "\n      "))
	}
	reveal := func(ss []Secret) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Reveal())
		}
		return out
	}
	if got := cfg.Server.AdminToken.Reveal(); got != "admin-token" {
		t.Errorf("admin token = %q, want the file minus its trailing newline", got)
	}
	if got, want := reveal(cfg.Source("payram").Secrets), []string{"  spaced key "}; !slices.Equal(got, want) {
		t.Errorf("payram secrets = %q, want %q (only trailing newlines are trimmed)", got, want)
	}
	if got, want := reveal(cfg.Source("shop").Secrets), []string{"old-secret", "new-secret"}; !slices.Equal(got, want) {
		t.Errorf("shop secrets = %q, want %q (the file's secret is the newest)", got, want)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	j, _ := s.MarshalJSON()
	y, _ := s.MarshalYAML()
	for _, got := range []string{s.String(), s.GoString(), string(j), y.(string)} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("a secret printed itself: %q", got)
		}
	}
}

func TestLoadServerDefaultsAndOverrides(t *testing.T) {
	file := `server:
  listen: "127.0.0.1:8080"
  admin_listen: "127.0.0.1:8081"
  data_dir: ./data
  max_body: 512KiB
  retention: 48h
  trusted_proxies: [10.0.0.0/8, 192.168.1.7]
`
	tests := []struct {
		name                         string
		file                         string
		env                          map[string]string
		listen, adminListen, dataDir string
		wantProbs                    []string
	}{
		{name: "defaults", file: "sources: {}\n", listen: ":8080", adminListen: "127.0.0.1:8081", dataDir: "./data"},
		{name: "file values", file: file, listen: "127.0.0.1:8080", adminListen: "127.0.0.1:8081", dataDir: "./data"},
		{
			name:   "environment overrides the file",
			file:   file,
			env:    map[string]string{"PAYRAMD_LISTEN": ":9000", "PAYRAMD_ADMIN_LISTEN": "localhost:9001", "PAYRAMD_DATA_DIR": "/var/lib/payramd"},
			listen: ":9000", adminListen: "localhost:9001", dataDir: "/var/lib/payramd",
		},
		{
			name:   "empty overrides are ignored",
			file:   file,
			env:    map[string]string{"PAYRAMD_LISTEN": "", "PAYRAMD_ADMIN_LISTEN": "", "PAYRAMD_DATA_DIR": ""},
			listen: "127.0.0.1:8080", adminListen: "127.0.0.1:8081", dataDir: "./data",
		},
		{
			name:   "an overridden admin_listen off loopback still needs a token",
			file:   file,
			env:    map[string]string{"PAYRAMD_ADMIN_LISTEN": "0.0.0.0:8081"},
			listen: "127.0.0.1:8080", adminListen: "0.0.0.0:8081", dataDir: "./data",
			wantProbs: []string{`rules.yaml:3:17: admin_listen (from PAYRAMD_ADMIN_LISTEN) "0.0.0.0:8081" is not a loopback address, so admin_token is required (the admin API can replay events and retry jobs)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"rules.yaml": tt.file})
			cfg, probs := loadDir(t, dir, tt.env)
			if !slices.Equal(probs, tt.wantProbs) {
				t.Fatalf("problems = %q, want %q", probs, tt.wantProbs)
			}
			s := cfg.Server
			if s.Listen != tt.listen || s.AdminListen != tt.adminListen || s.DataDir != tt.dataDir {
				t.Errorf("listen, admin_listen, data_dir = %q, %q, %q; want %q, %q, %q", s.Listen, s.AdminListen, s.DataDir, tt.listen, tt.adminListen, tt.dataDir)
			}
		})
	}
	t.Run("parsed values", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"rules.yaml": file})
		cfg, _ := loadDir(t, dir, nil)
		s := cfg.Server
		if s.MaxBody != 512<<10 || s.Retention != 48*time.Hour || s.ShutdownTimeout != 30*time.Second || s.Workers != 16 {
			t.Errorf("max_body, retention, shutdown_timeout, workers = %d, %s, %s, %d", s.MaxBody, s.Retention, s.ShutdownTimeout, s.Workers)
		}
		want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
		if !slices.Equal(s.TrustedProxies, want) {
			t.Errorf("trusted_proxies = %v, want %v", s.TrustedProxies, want)
		}
	})
}

func TestLoadIncludes(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"rules.yaml": head + `rules:
  - name: main-rule
    when: "true"
    do: [ops-slack]
include: [rules.d/*.yaml, extra.yaml, missing/*.yaml]
tests:
  - event: testdata/e.json
    expect: [main-rule]
`,
		"rules.d/20-b.yaml": `rules:
  - name: b-rule
    when: "true"
    do: [b-log]
actions:
  b-log:
    type: log
`,
		"rules.d/10-a.yaml": `rules:
  - name: a-rule
    source: payram
    when: "true"
    do: [ops-slack, {type: log, message: inline}]
tests:
  - event: events/a.json
    expect: [a-rule, b-rule]
`,
		"rules.d/notes.txt": "not yaml: [",
		"extra.yaml":        "rules: []\n",
	})
	cfg, probs := loadDir(t, dir, nil)
	if len(probs) > 0 {
		t.Fatalf("unexpected problems:\n%s", strings.Join(probs, "\n"))
	}
	var rules []string
	for _, r := range cfg.Rules {
		rules = append(rules, r.Name+"@"+strings.TrimPrefix(r.Pos.String(), dir+"/"))
	}
	if want := []string{"main-rule@rules.yaml:9:5", "a-rule@rules.d/10-a.yaml:2:5", "b-rule@rules.d/20-b.yaml:2:5"}; !slices.Equal(rules, want) {
		t.Errorf("rules = %q, want %q (main file first, then includes sorted by name)", rules, want)
	}
	files := []string{}
	for _, f := range cfg.Files {
		files = append(files, strings.TrimPrefix(f, dir+"/"))
	}
	if want := []string{"rules.yaml", "rules.d/10-a.yaml", "rules.d/20-b.yaml", "extra.yaml"}; !slices.Equal(files, want) {
		t.Errorf("files = %q, want %q", files, want)
	}
	if want := []string{dir + "/rules.d/*.yaml", dir + "/extra.yaml", dir + "/missing/*.yaml"}; !slices.Equal(cfg.IncludePatterns, want) {
		t.Errorf("include patterns = %q, want %q (absolute, kept even when nothing matches yet)", cfg.IncludePatterns, want)
	}
	if a := cfg.Action("a-rule/do[1]:log"); a == nil || !a.Inline || a.Type != "log" {
		t.Errorf("inline action = %+v, want an inline log action named a-rule/do[1]:log", a)
	}
	if cfg.Action("b-log") == nil {
		t.Error("an include's named action is missing")
	}
	var events []string
	for _, tc := range cfg.Tests {
		events = append(events, strings.TrimPrefix(tc.Event, dir+"/"))
	}
	if want := []string{"testdata/e.json", "rules.d/events/a.json"}; !slices.Equal(events, want) {
		t.Errorf("test events = %q, want %q (relative to the file that names them)", events, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, probs := Load(filepath.Join(t.TempDir(), "nope.yaml"), Options{Getenv: envOf(nil)})
	if len(probs.List) != 1 || !strings.Contains(probs.List[0].String(), "nope.yaml: cannot read the config:") {
		t.Errorf("problems = %v", probs.List)
	}
}

// The shipped example must load with no environment at all: `make run`
// starts on it.
func TestLoadExample(t *testing.T) {
	cfg, probs := Load("../rules.example.yaml", Options{Getenv: envOf(nil)})
	if len(probs.List) > 0 {
		t.Fatalf("rules.example.yaml: %v", probs.List)
	}
	if len(cfg.Rules) == 0 || len(cfg.Tests) == 0 {
		t.Errorf("the example has %d rules and %d tests", len(cfg.Rules), len(cfg.Tests))
	}
}
