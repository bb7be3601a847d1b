package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// every problem it reports must point into a file.
func FuzzLoad(f *testing.F) {
	if example, err := os.ReadFile("../rules.example.yaml"); err == nil {
		f.Add(example)
	}
	for _, s := range []string{
		head + "rules:\n  - name: overpaid\n    when: status == \"OVER_FILLED\" && filled_amount_in_usd - amount > 5\n    do: [ops-slack]\n    once_per: reference_id\n",
		"server:\n  listen: \":8080\"\n   data_dir: x\n",
		"server:\n\tlisten: x\n",
		"rules:\n  - name: a\n    when: !paid\n    do: [x]\n",
		"rules:\n  - name: a\n    when: *x > 1\n    do: [x]\n",
		"rules:\n  - name: a\n    when: &c x\n  - name: b\n    when: *c\n",
		"actions:\n  a:\n    type: email\n    to: [${FOO}]\n",
		"server:\n  data_dir: ${NOPE}\n  listen: \"${A:-:9090}\"\n  tls_cert: ${B:+x}\n  retention: 7d\n  max_body: 1 megabyte\n",
		"sources:\n  s:\n    provider: hmac\n    secrets: [a, \"\"]\n    allow_ips: [1.2.3.4/40]\n    rate_limit: {per_second: 0}\n",
		"rules:\n  - name: a\n    when: |\n      status == \"FILLED\"\n    do:\n      - type: log\n        retry: {attempts: 0}\n",
		"include: [rules.d/*.yaml]\ntests:\n  - event: e.json\n    expect: [nope]\n",
		"a: &a [*a]\n",
		"{",
		"",
		"--- \n...\n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "rules.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		// Includes and secret files are read from disk: keep them inside
		// the temporary directory (a fuzzed /dev/zero would never end).
		if bytes.ContainsAny(data, `/\`) && (bytes.Contains(data, []byte("include")) || bytes.Contains(data, []byte("_file"))) {
			t.Skip()
		}
		cfg, probs := LoadBytes(path, data, Options{Getenv: func(string) (string, bool) { return "", false }})
		if cfg == nil || probs == nil {
			t.Fatal("LoadBytes returned nil")
		}
		for _, p := range probs.List {
			if p.Pos.File == "" || p.Pos.Line < 1 || p.Pos.Col < 1 {
				t.Errorf("problem without a position: %q", p.String())
			}
			if p.Msg == "" {
				t.Errorf("problem without a message at %s", p.Pos)
			}
		}
		if !probs.HasErrors() {
			for _, r := range cfg.Rules {
				if r.Name == "" || r.When == nil {
					t.Errorf("a valid config has a rule without a name or a condition: %+v", r)
				}
			}
		}
	})
}
