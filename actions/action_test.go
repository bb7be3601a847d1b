package actions

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTypes(t *testing.T) {
	if got, want := Types(), []string{"email", "exec", "http", "log", "slack"}; !slices.Equal(got, want) {
		t.Errorf("Types() = %v, want %v", got, want)
	}
}

// TestConfigErrors checks that every mistake is reported at its position,
// in words that say what to write instead.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must be one of the problems, file:line:col first
	}{
		{
			name: "missing url",
			src:  "type: http\nmethod: POST\n",
			want: []string{`rules.yaml:1:1: missing required field "url"`},
		},
		{
			name: "bad constant url",
			src:  "type: http\nurl: ftp://example.com/x\n",
			want: []string{`rules.yaml:2:6: url: must start with http:// or https://, not "ftp:"`},
		},
		{
			name: "bad method and expect",
			src:  "type: http\nurl: https://example.com\nmethod: PSOT\nexpect: [200, 99]\n",
			want: []string{`rules.yaml:3:9: method must be one of POST, PUT, PATCH, GET, DELETE, HEAD, OPTIONS, not "PSOT" (did you mean "POST"?)`, `rules.yaml:4:15: expect: "99" is not an HTTP status code (100 to 599)`},
		},
		{
			name: "template syntax",
			src:  "type: slack\nurl: https://hooks.slack.com/x\ntext: 'paid {{ reference_id'\n",
			want: []string{`rules.yaml:3:13: placeholder opened with {{ is never closed with }}`},
		},
		{
			name: "bad email address",
			src:  "type: email\nsmtp: {host: smtp.example.com}\nfrom: not-an-address\nto: [ops@example.com, 'bad@@example']\n",
			want: []string{`rules.yaml:3:7: from: "not-an-address" is not an email address such as ops@example.com`, `rules.yaml:4:23: to: "bad@@example" is not an email address such as ops@example.com`},
		},
		{
			name: "email without smtp host",
			src:  "type: email\nsmtp: {port: 2525}\nfrom: a@example.com\nto: b@example.com\n",
			want: []string{`rules.yaml:2:7: missing required field "host"`},
		},
		{
			name: "placeholder in sh -c",
			src:  "type: exec\ncommand: [sh, -c, 'curl -d {{ reference_id }} https://x']\n",
			want: []string{`rules.yaml:2:28: placeholder inside the script of sh -c: it would run whatever the event contains; pass data through env: instead`},
		},
		{
			name: "placeholder in bash -ec, block list",
			src:  "type: exec\ncommand:\n  - /bin/bash\n  - -ec\n  - \"echo {{ note }}\"\n",
			want: []string{`rules.yaml:5:11: placeholder inside the script of bash -c`},
		},
		{
			name: "placeholder in sh -c behind timeout",
			src:  "type: exec\ncommand: [timeout, '30', sh, -c, 'echo {{ reference_id }}']\n",
			want: []string{`rules.yaml:2:40: placeholder inside the script of sh -c`},
		},
		{
			name: "placeholder in python3 -c",
			src:  "type: exec\ncommand: [python3, -c, 'print(\"{{ reference_id }}\")']\n",
			want: []string{`rules.yaml:2:32: placeholder inside the code of python3 -c`},
		},
		{
			name: "placeholder in perl -le (a clustered code option)",
			src:  "type: exec\ncommand: [perl, -le, 'print q({{ note }})']\n",
			want: []string{`rules.yaml:2:31: placeholder inside the code of perl -e: it would run whatever the event contains`},
		},
		{
			name: "placeholder in perl -M, which can run code",
			src:  "type: exec\ncommand: [perl, '-M{{ note }}', -e, '1']\n",
			want: []string{`rules.yaml:2:20: placeholder inside the value of perl -M: check cannot tell that the program will not run it as code`},
		},
		{
			name: "a shell reading its script from stdin, where the event's JSON is",
			src:  "type: exec\ncommand: [/bin/bash]\n",
			want: []string{`rules.yaml:2:11: bash reads its program from standard input here, and payramd writes the event's JSON there`},
		},
		{
			name: "ssh runs its remote command through a shell",
			src:  "type: exec\ncommand: [ssh, erp, /opt/erp/mark-paid, '{{ reference_id }}']\n",
			want: []string{`rules.yaml:2:42: placeholder inside the remote command of ssh, which the remote shell runs: it would run whatever the event contains`},
		},
		{
			name: "a placeholder in PATH",
			src:  "type: exec\ncommand: [/usr/bin/notify]\nenv: {PATH: '/opt/{{ note }}:/usr/bin'}\n",
			want: []string{`rules.yaml:3:13: env: PATH with a placeholder lets the event choose code`},
		},
		{
			name: "the event choosing the program",
			src:  "type: exec\ncommand: ['/opt/hooks/{{ note }}']\n",
			want: []string{`rules.yaml:2:23: placeholder inside the program (first item of command)`},
		},
		{
			name: "xargs -I puts the event's JSON into a script",
			src:  "type: exec\ncommand: [xargs, '-I{}', sh, -c, '/opt/notify {}']\n",
			want: []string{`rules.yaml:2:34: code where xargs -I puts the event's data ({}): the event would run as code`},
		},
		{
			name: "rails runner code",
			src:  "type: exec\ncommand: [bin/rails, runner, \"Order.paid!('{{ reference_id }}')\"]\n",
			want: []string{`rules.yaml:2:44: placeholder inside the code of rails runner: it would run whatever the event contains`},
		},
		{
			name: "placeholder in an awk program",
			src:  "type: exec\ncommand: [awk, -F, ',', '{ print \"{{ note }}\" }', /var/log/x]\n",
			want: []string{`rules.yaml:2:35: placeholder inside the program text of awk`},
		},
		{
			name: "placeholder in env -S",
			src:  "type: exec\ncommand: [/usr/bin/env, -S, \"sh -c 'echo {{ reference_id }}'\"]\n",
			want: []string{`rules.yaml:2:42: placeholder inside the command line of env -S`},
		},
		{
			name: "command as a string",
			src:  "type: exec\ncommand: /usr/bin/notify --all\n",
			want: []string{`rules.yaml:2:10: command is a list of arguments, not a command line: write command: [/usr/bin/notify, --all]`},
		},
		{
			name: "reserved env",
			src:  "type: exec\ncommand: [/bin/true]\nenv: {PAYRAMD_RULE: x}\n",
			want: []string{`rules.yaml:3:21: env: PAYRAMD_RULE is set by payramd`},
		},
		{
			name: "unknown type",
			src:  "type: slak\nurl: https://hooks.slack.com/x\n",
			want: []string{`rules.yaml:1:7: unknown action type "slak" (did you mean "slack"?) (known types: email, exec, http, log, slack)`},
		},
		{
			name: "unknown key",
			src:  "type: http\nurl: https://example.com\nheaderz: {A: b}\n",
			want: []string{`rules.yaml:3:1: unknown field "headerz" (did you mean "headers"?)`},
		},
		{
			name: "unknown key in sign",
			src:  "type: http\nurl: https://example.com\nsign: {secret: abc, schme: hmac}\n",
			want: []string{`rules.yaml:3:21: unknown field "schme" (did you mean "scheme"?)`},
		},
		{
			name: "standard-webhooks secret not base64",
			src:  "type: http\nurl: https://example.com\nsign: {secret: 'not base64 at all!'}\n",
			want: []string{`rules.yaml:3:16: a standard-webhooks secret is whsec_ followed by base64`},
		},
		{
			name: "empty hmac signing secret",
			src:  "type: http\nurl: https://example.com\nsign: {scheme: hmac, secret: ''}\n",
			want: []string{`rules.yaml:3:30: secret is empty: bodies would be signed with no key`},
		},
		{
			name: "blank standard-webhooks signing secret",
			src:  "type: http\nurl: https://example.com\nsign:\n  secret: '  '\n",
			want: []string{`rules.yaml:4:11: secret is empty: bodies would be signed with no key`},
		},
		{
			name: "log level",
			src:  "type: log\nmessage: hi\nlevel: loud\n",
			want: []string{`rules.yaml:3:8: level must be one of debug, info, warn, error, not "loud"`},
		},
		{
			name: "disabled action still rejects unknown keys",
			src:  "type: slack\nenabled: false\ntxet: hi\n",
			want: []string{`rules.yaml:3:1: unknown field "txet" (did you mean "text"?)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			act, probs := compileYAML(t, "a", tt.src)
			if act != nil && probs.HasErrors() && !strings.Contains(tt.name, "disabled") {
				t.Errorf("an action was built despite errors")
			}
			got := problemStrings(probs)
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, w) }) {
					t.Errorf("missing problem\n  %s\ngot\n  %s", w, strings.Join(got, "\n  "))
				}
			}
			assertNoSecrets(t, []string{"not base64 at all!"}, probs)
		})
	}
}

// TestEmptySigningSecretFile: a secret file holding nothing is refused like
// an empty secret, unless the action is disabled.
func TestEmptySigningSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forward.key")
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := "type: http\nurl: https://example.com\nsign: {scheme: hmac, secret_file: " + path + "}\n"
	act, probs := compileYAML(t, "a", src)
	if got := problemStrings(probs); act != nil || len(got) != 1 || !strings.HasPrefix(got[0], "rules.yaml:3:35: secret is empty: bodies would be signed with no key") {
		t.Errorf("built %v, problems %q", act != nil, got)
	}
	act, probs = compileYAML(t, "a", "enabled: false\n"+src)
	if probs.HasErrors() || act == nil {
		t.Errorf("a disabled action may keep an empty secret (set by the environment of another machine): %q", problemStrings(probs))
	}
}

func TestConfigWarnings(t *testing.T) {
	_, probs := compileYAML(t, "a", "type: exec\ncommand: [payramd-no-such-program, x]\n")
	if probs.HasErrors() || len(probs.List) != 1 || !probs.List[0].Warning || !strings.Contains(probs.List[0].Msg, "not found on PATH") {
		t.Errorf("problems: %v", problemStrings(probs))
	}
}

func TestUnescapedURLPlaceholderWarns(t *testing.T) {
	tests := []struct{ url, want string }{
		{`https://erp.example/orders/{{ reference_id }}/paid`, `rules.yaml:2:34: warning: url: {{ reference_id }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlpath(reference_id) }}`},
		{`https://erp.example/paid?ref={{ reference_id }}`, `rules.yaml:2:36: warning: url: {{ reference_id }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlquery(reference_id) }}`},
		// Found by a review: a base URL from a placeholder, a query with no
		// path, urlpath in a query, and a ? inside an earlier placeholder.
		{`{{ erp_base }}/orders/{{ reference_id }}/paid`, `rules.yaml:2:29: warning: url: {{ reference_id }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlpath(reference_id) }}`},
		{`https://erp.example?ref={{ reference_id }}&amount=5`, `rules.yaml:2:31: warning: url: {{ reference_id }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlquery(reference_id) }}`},
		{`https://erp.example/paid?ref={{ urlpath(reference_id) }}`, `rules.yaml:2:36: warning: url: {{ urlpath(reference_id) }} is in the query, where urlpath leaves & and = unescaped (a value 'x&amount=1000' adds a parameter); use urlquery instead`},
		{`https://erp.example/{{ urlpath(kind ?? 'x') }}/orders/{{ reference_id }}`, `rules.yaml:2:61: warning: url: {{ reference_id }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlpath(reference_id) }}`},
		{`https://erp.example/{{ urlquery(kind) }}`, `rules.yaml:2:27: warning: url: {{ urlquery(kind) }} is in the path, where urlquery's + for a space stays a plus; use urlpath instead`},
		// A fragment is never sent; a constant inserts nothing from the event.
		{`https://erp.example/page#{{ reference_id }}`, ""},
		{`https://erp.example/{{ 'v2' }}/orders`, ""},
		// Escaped, or the address itself chosen by a placeholder: no warning.
		{`https://erp.example/orders/{{ urlpath(reference_id) }}?n={{ urlquery(note) }}`, ""},
		{`{{ meta.headers['x-callback'] }}`, ""},
		{`https://{{ meta.source }}.erp.example/hook`, ""},
		// A leading placeholder followed by :// is the scheme alone.
		{`{{ meta.source }}://{{ meta.source }}.erp.example/hook`, ""},
		{`{{ meta.source }}://erp.example/orders/{{ reference_id }}`, `rules.yaml:2:46: warning: url: {{ reference_id }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlpath(reference_id) }}`},
		// An event value that can move the call to another server while the
		// rest of the host is fixed: part of the host name, the port, the
		// scheme, a user name, or next to a fixed placeholder.
		{`https://{{ tenant }}.erp.example/hook`, `rules.yaml:2:15: warning: url: {{ tenant }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`https://erp.example{{ id }}/hook`, `rules.yaml:2:26: warning: url: {{ id }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`{{ meta.source }}://erp-{{ tenant }}.example/hook`, `rules.yaml:2:31: warning: url: {{ tenant }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`https://erp.example:{{ port }}/hook`, `rules.yaml:2:27: warning: url: {{ port }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`{{ scheme }}://erp.example/hook`, `rules.yaml:2:7: warning: url: {{ scheme }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`http{{ s }}://erp.example/hook`, `rules.yaml:2:11: warning: url: {{ s }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`https://{{ tenant }}{{ meta.source }}.erp.example/hook`, `rules.yaml:2:15: warning: url: {{ tenant }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`https://{{ tenant }}{{ '.erp.example' }}/hook`, `rules.yaml:2:15: warning: url: {{ tenant }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`https://{{ user }}@erp.example/hook`, `rules.yaml:2:15: warning: url: {{ user }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`https://{{ lower(tenant) }}.erp.example/hook`, `rules.yaml:2:15: warning: url: {{ lower(tenant) }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		// The event choosing the whole host (or address), the config's own
		// names, escaped values and IPv6 brackets are left alone.
		{`https://{{ host }}/hook`, ""},
		{`https://{{ host }}:8443/hook`, ""},
		{`https://{{ host }}:{{ port }}/hook`, ""},
		{`https://[{{ v6 }}]/hook`, ""},
		{`https://user@{{ host }}/hook`, ""},
		{`https://{{ meta.provider }}.erp.example/hook`, ""},
		{`https://{{ lower(meta.source) }}.erp.example/hook`, ""},
		{`https://{{ meta['source'] }}-{{ meta.provider }}.erp.example/hook`, ""},
		{`https://{{ meta.source + tenant }}.erp.example/hook`, `rules.yaml:2:15: warning: url: {{ meta.source + tenant }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`https://{{ meta.headers.host }}.erp.example/hook`, `rules.yaml:2:15: warning: url: {{ meta.headers.host }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery`},
		{`https://{{ urlquery(tenant) }}.erp.example/hook`, ""},
	}
	for _, tt := range tests {
		_, probs := compileYAML(t, "a", "type: http\nurl: \""+tt.url+"\"\n")
		got := problemStrings(probs)
		if tt.want == "" {
			if len(got) != 0 {
				t.Errorf("%s: problems %q, want none", tt.url, got)
			}
			continue
		}
		if probs.HasErrors() || len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.url, got, tt.want)
		}
	}
}

func TestDisabledActionMayOmitRequiredFields(t *testing.T) {
	act, probs := compileYAML(t, "a", "type: slack\nenabled: false\ntext: hi\n")
	if probs.HasErrors() {
		t.Errorf("problems: %v", problemStrings(probs))
	}
	if act == nil {
		t.Error("a disabled action is still compiled, for `payramd test` to show")
	}
}

func TestSecretsNeverShown(t *testing.T) {
	// Config errors about secrets must not quote them.
	_, probs := compileYAML(t, "a", "type: slack\nurl: 'hooks.slack.com/services/T0/B0/sekrit'\ntext: hi\n")
	if !probs.HasErrors() {
		t.Error("a URL without scheme was accepted")
	}
	assertNoSecrets(t, []string{"sekrit"}, probs)
}

func TestLogAction(t *testing.T) {
	act := mustCompile(t, "audit", "type: log\nlevel: warn\nmessage: 'overpaid {{ reference_id }} by {{ money(filled_amount_in_usd - amount) }}'\n")
	var buf bytes.Buffer
	act.(*Log).logger = slog.New(slog.NewTextHandler(&buf, nil))
	res := act.Run(context.Background(), testJob(t, "audit"))
	if res.Err != nil || res.Output != "overpaid ref-42 by 5.05" {
		t.Errorf("got %v %q", res.Err, res.Output)
	}
	line := buf.String()
	for _, want := range []string{"level=WARN", `msg="overpaid ref-42 by 5.05"`, "event=evt_123", "source=payram", "rule=overpaid", "action=audit"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %s", line, want)
		}
	}
	rd, err := act.Render(testJob(t, "audit"))
	if err != nil || !hasField(rd, "level", "warn") {
		t.Errorf("render %+v %v", rd, err)
	}
}

// TestCommentCutsTemplate: in a template field, an unquoted ` #` directly
// followed by text, or by a placeholder, is taken for the rest of the value
// YAML cut off as a comment; an ordinary comment is not. (The loader warns
// about a {{ in any field's comment, and about a key left with no value:
// see config's TestCommentCutsValue.) Without the file's text, the # is
// placed one space after the value.
func TestCommentCutsTemplate(t *testing.T) {
	const warn = "warning: YAML reads an unquoted ` #` as the start of a comment, so "
	tests := []struct{ name, src, want string }{
		{"slack text", "type: slack\nurl: https://hooks.slack.com/services/T0/B0/x\ntext: Order #{{ reference_id }} paid\n",
			`rules.yaml:3:13: ` + warn + `this value is "Order" and "#{{ reference_id }} paid" is not part of it; if it belongs to the value, quote the whole value: "Order #{{ reference_id }} paid"`},
		{"log message", "type: log\nmessage: Refund #{{ id }}\n",
			`rules.yaml:2:17: ` + warn + `this value is "Refund" and "#{{ id }}" is not part of it; if it belongs to the value, quote the whole value: "Refund #{{ id }}"`},
		{"an order number", "type: log\nmessage: Order #123 paid\n",
			`rules.yaml:2:16: ` + warn + `this value is "Order" and "#123 paid" is not part of it; if it belongs to the value, quote the whole value: "Order #123 paid"`},
		{"email subject", "type: email\nto: ops@example.com\nfrom: payramd@example.com\nsmtp: {host: smtp.example.com}\nsubject: Paid #{{ reference_id }}\n",
			`rules.yaml:5:15: ` + warn + `this value is "Paid" and "#{{ reference_id }}" is not part of it; if it belongs to the value, quote the whole value: "Paid #{{ reference_id }}"`},
		// A URL or a credential header may be a secret written in the
		// file: only its place is given.
		{"http url", "type: http\nurl: https://erp.example/hook?token=s3cret #payments\n",
			`rules.yaml:2:44: ` + warn + `this value ends before it and the rest of the line is not part of it; if it belongs to the value, put the whole value in quotes (the value is not shown: it may be a secret)`},
		{"credential header", "type: http\nurl: https://erp.example/hook\nheaders:\n  Authorization: Bearer s3cret #prod\n",
			`rules.yaml:4:32: ` + warn + `this value ends before it and the rest of the line is not part of it; if it belongs to the value, put the whole value in quotes (the value is not shown: it may be a secret)`},
		{"http header", "type: http\nurl: https://erp.example/hook\nheaders:\n  X-Order: order #1\n",
			`rules.yaml:4:18: ` + warn + `this value is "order" and "#1" is not part of it; if it belongs to the value, quote the whole value: "order #1"`},
		{"http body", "type: http\nurl: https://erp.example/hook\nbody: ref #{{ reference_id }}\n",
			`rules.yaml:3:11: ` + warn + `this value is "ref" and "#{{ reference_id }}" is not part of it; if it belongs to the value, quote the whole value: "ref #{{ reference_id }}"`},
		{"command item", "type: exec\ncommand:\n  - true\n  - paid #42\n",
			`rules.yaml:4:10: ` + warn + `this value is "paid" and "#42" is not part of it; if it belongs to the value, quote the whole value: "paid #42"`},
		// Ordinary comments, quoted values and fields that are not templates.
		{"a note", "type: log\nmessage: paid # note\n", ""},
		{"a spaced note", "type: log\nmessage: paid #   note\n", ""},
		{"a double #", "type: log\nmessage: paid ## note\n", ""},
		{"double quotes", "type: log\nmessage: \"Order #{{ id }}\"\n", ""},
		{"single quotes", "type: log\nmessage: 'Order #123'\n", ""},
		{"a # inside a word", "type: log\nmessage: C#{{ id }}\n", ""},
		{"not a template", "type: log\nmessage: paid\ntimeout: 5s #5\n", ""},
	}
	for _, tt := range tests {
		_, probs := compileYAML(t, "a", tt.src)
		var got []string
		for _, p := range problemStrings(probs) {
			// exec's true may be missing; the Slack URL is a secret written
			// in the config (TestLiteralSecretWarnings covers that).
			if !strings.Contains(p, "not found on PATH") && !strings.Contains(p, " is written in the config; ") {
				got = append(got, p)
			}
		}
		if tt.want == "" {
			if len(got) != 0 {
				t.Errorf("%s: problems %q, want none", tt.name, got)
			}
			continue
		}
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestUnescapedURLPlaceholdersEachWarn: every unescaped placeholder of a url
// is reported, not only the first, so one check shows every fix.
func TestUnescapedURLPlaceholdersEachWarn(t *testing.T) {
	tests := []struct {
		url  string
		want []string
	}{
		{`https://erp.example/orders/{{ reference_id }}/items/{{ item }}?note={{ note }}`, []string{
			`rules.yaml:2:34: warning: url: {{ reference_id }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlpath(reference_id) }}`,
			`rules.yaml:2:59: warning: url: {{ item }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlpath(item) }}`,
			`rules.yaml:2:75: warning: url: {{ note }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ urlquery(note) }}`,
		}},
		// Escaped ones in between are skipped; each wrong escape is reported.
		{`https://erp.example/{{ urlquery(kind) }}/{{ urlpath(id) }}?a={{ urlpath(a) }}&b={{ urlquery(b) }}`, []string{
			`rules.yaml:2:27: warning: url: {{ urlquery(kind) }} is in the path, where urlquery's + for a space stays a plus; use urlpath instead`,
			`rules.yaml:2:68: warning: url: {{ urlpath(a) }} is in the query, where urlpath leaves & and = unescaped (a value 'x&amount=1000' adds a parameter); use urlquery instead`,
		}},
	}
	for _, tt := range tests {
		_, probs := compileYAML(t, "a", "type: http\nurl: \""+tt.url+"\"\n")
		if got := problemStrings(probs); !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.url, got, tt.want)
		}
	}
}
