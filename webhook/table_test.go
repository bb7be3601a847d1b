package webhook

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payramd/payramd/config"
)

// compileProblems compiles sources given as YAML and returns the problems
// as `payramd check` would print them.
func compileProblems(t *testing.T, sources ...[2]string) (*Table, []string) {
	t.Helper()
	tab, probs := compileWith(t, sources...)
	probs.Sort()
	var out []string
	for _, p := range probs.List {
		out = append(out, p.String())
	}
	return tab, out
}

func TestCompileProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // each must appear in one problem, in order
	}{
		{"unknown provider with suggestion", "provider: payrma\nsecret: x\n",
			[]string{`rules.yaml:1:11: unknown provider "payrma" (did you mean "payram"?)`}},
		{"unknown provider listing the known ones", "provider: shopify\nsecret: x\n",
			[]string{`known providers: hmac, none, payram, standard-webhooks, stripe`}},
		{"unknown provider without field noise", "provider: github\nsecret: x\nheader: X-Hub-Signature-256\n",
			[]string{`unknown provider "github"`}},
		{"missing provider", "secret: x\n",
			[]string{`missing required field "provider"`}},
		{"unknown key with suggestion", "provider: hmac\nsecret: x\nheader: X-Sig\nprefx: sha256=\n",
			[]string{`rules.yaml:4:1: unknown field "prefx" (did you mean "prefix"?)`}},
		{"provider-specific key on the wrong provider", "provider: payram\nsecret: x\nheader: X-Sig\n",
			[]string{`rules.yaml:3:1: unknown field "header"`}},
		{"hmac without header", "provider: hmac\nsecret: x\n",
			[]string{`rules.yaml:1:1: provider hmac needs header: the request header the signature arrives in`}},
		{"bad encoding", "provider: hmac\nsecret: x\nheader: X-Sig\nencoding: hexa\n",
			[]string{`rules.yaml:4:11: encoding must be one of hex, base64, not "hexa" (did you mean "hex"?)`}},
		{"bad algorithm", "provider: hmac\nsecret: x\nheader: X-Sig\nalgorithm: md5\n",
			[]string{`algorithm must be one of sha256, sha512, sha1, not "md5"`}},
		{"tolerance without timestamp header", "provider: hmac\nsecret: x\nheader: X-Sig\ntolerance: 1m\n",
			[]string{`warning: tolerance has no effect without timestamp_header`}},
		{"zero tolerance", "provider: stripe\nsecret: x\ntolerance: 0s\n",
			[]string{`tolerance must be more than zero`}},
		{"bad tolerance", "provider: standard-webhooks\nsecret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\ntolerance: 5 minutes\n",
			[]string{`is not a duration`}},
		{"no secret (payram)", "provider: payram\n",
			[]string{`provider payram needs a secret`}},
		{"no secret (hmac)", "provider: hmac\nheader: X-Sig\n",
			[]string{`provider hmac needs a secret`}},
		{"no secret (stripe)", "provider: stripe\n", []string{`provider stripe needs a secret`}},
		{"no secret (standard-webhooks)", "provider: standard-webhooks\n", []string{`provider standard-webhooks needs a secret`}},
		{"standard-webhooks secret not base64", "provider: standard-webhooks\nsecret: whsec_not*base64!\n",
			[]string{`secret 1 is not a Standard Webhooks secret`}},
		{"none warns", "provider: none\n",
			[]string{`rules.yaml:1:11: warning: provider none verifies nothing: anyone who can reach /webhooks/src can post events`}},
		{"path without slash", "provider: none\npath: webhooks/x\n",
			[]string{`path must start with /`}},
		{"require_signature not a bool", "provider: payram\nsecret: x\nrequire_signature: maybe\n",
			[]string{`require_signature must be true or false`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, got := compileProblems(t, [2]string{"src", c.yaml})
			all := strings.Join(got, "\n")
			t.Log("\n" + all)
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("want %q in:\n%s", w, all)
				}
			}
			if c.name == "unknown provider without field noise" && strings.Contains(all, "unknown field") {
				t.Errorf("unknown-field noise for an unknown provider:\n%s", all)
			}
			if strings.Contains(all, "not*base64") {
				t.Errorf("secret value quoted in a problem:\n%s", all)
			}
		})
	}
}

func TestCompileValid(t *testing.T) {
	tab, probs := compileProblems(t,
		[2]string{"payram", "provider: payram\nsecrets: [a, b]\nrequire_signature: true\n"},
		[2]string{"gh", "provider: hmac\nsecret: x\nheader: X-Hub-Signature-256\nprefix: sha256=\nencoding: hex\nalgorithm: sha256\ntimestamp_header: X-Ts\ntolerance: 2m\n"},
		[2]string{"sw", "provider: standard-webhooks\nsecret: MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\ntolerance: 10m\n"},
		[2]string{"st", "provider: stripe\nsecret: whsec_x\nheader: Payvost-Signature\ntolerance: 1m\n"},
	)
	// The secrets are written in the test's config, which check warns
	// about (config's tests cover that); anything else is a problem.
	probs = slices.DeleteFunc(probs, func(p string) bool {
		return strings.Contains(p, ": warning: ") && strings.Contains(p, " is written in the config; ")
	})
	if len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	if got := tab.Sources(); !slices.Equal(got, []string{"gh", "payram", "st", "sw"}) {
		t.Fatalf("sources %v", got)
	}
	if tab.Path("gh") != "/webhooks/gh" || tab.Provider("gh") == nil || tab.Provider("nope") != nil || tab.Path("nope") != "" {
		t.Fatal("lookups")
	}
	if p := tab.Provider("gh").(*hmacProvider); p.tol != 2*time.Minute {
		t.Fatalf("hmac settings %+v", p)
	}
	if p := tab.Provider("sw").(*standardWebhooks); p.tol != 10*time.Minute || len(p.keys) != 1 {
		t.Fatalf("standard-webhooks settings %+v", p)
	}
	var nilTable *Table
	if nilTable.Provider("x") != nil || nilTable.Schema("x") != nil || nilTable.Sources() != nil {
		t.Fatal("nil table")
	}
}

func TestDuplicatePaths(t *testing.T) {
	_, probs := compileProblems(t,
		[2]string{"a", "provider: none\npath: /hooks/x\n"},
		[2]string{"b", "provider: none\npath: /hooks/x\n"},
		[2]string{"c", "provider: none\npath: /webhooks/a\n"},
	)
	all := strings.Join(probs, "\n")
	for _, w := range []string{`path /hooks/x is already used by source "a"`} {
		if !strings.Contains(all, w) {
			t.Errorf("want %q in:\n%s", w, all)
		}
	}
	if strings.Contains(all, "/webhooks/a is already") {
		t.Errorf("an explicit path equal to another source's default is fine here: %s", all)
	}
}

// TestNoDoubleReports checks that problems the config loader already
// reported (it checks paths and the provider key itself) are not repeated
// by Compile, so `check` says each thing once. The loader is simulated
// here: its errors are recorded at the same positions first.
func TestNoDoubleReports(t *testing.T) {
	probs := &config.Problems{}
	a := newSourceWith(t, "a", "provider: none\n", probs)
	b := newSourceWith(t, "b", "provider: none\npath: /webhooks/a\n", probs)
	c := newSourceWith(t, "c", "secret: x\n", probs)
	b.Fields.Errorf("path", "path /webhooks/a is already used by source %q", "a")
	c.Fields.Errorf("provider", "missing required field %q", "provider")
	Compile(&config.Config{Sources: []*config.Source{a, b, c}})
	var all []string
	for _, p := range probs.List {
		all = append(all, p.String())
	}
	joined := strings.Join(all, "\n")
	for _, w := range []string{"already used by source", `missing required field "provider"`} {
		if strings.Count(joined, w) != 1 {
			t.Errorf("want %q exactly once in:\n%s", w, joined)
		}
	}
}

func TestProvidersSorted(t *testing.T) {
	got := Providers()
	if !slices.IsSorted(got) || !slices.Equal(got, []string{"hmac", "none", "payram", "standard-webhooks", "stripe"}) {
		t.Fatalf("providers %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate registration did not panic")
		}
	}()
	Register("payram", newPayram)
}

// TestInheritLimits checks that a reload keeps a source's spent tokens
// unless its limit changed.
func TestInheritLimits(t *testing.T) {
	old := compile(t, [2]string{"a", "provider: none\nrate_limit: {per_second: 1, burst: 1}\n"}, [2]string{"b", "provider: none\nrate_limit: {per_second: 1, burst: 1}\n"})
	old.bySource["a"].limiter.AllowN(testNow, 1)
	old.bySource["b"].limiter.AllowN(testNow, 1)
	next := compile(t, [2]string{"a", "provider: none\nrate_limit: {per_second: 1, burst: 1}\n"}, [2]string{"b", "provider: none\nrate_limit: {per_second: 2, burst: 1}\n"})
	next.InheritLimits(old)
	if next.bySource["a"].limiter.AllowN(testNow, 1) {
		t.Error("unchanged source got a fresh bucket")
	}
	if !next.bySource["b"].limiter.AllowN(testNow, 1) {
		t.Error("changed source kept the old bucket")
	}
}

// An unreadable secret_file is reported once, where it is written; the
// source is not also told that it "needs a secret: add secret:".
func TestUnreadableSecretFileReportedOnce(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "payram_api_key")
	_, got := compileProblems(t, [2]string{"src", "provider: payram\nsecret_file: " + missing + "\n"})
	all := strings.Join(got, "\n")
	if !strings.Contains(all, "secret_file: cannot read the secret") {
		t.Errorf("no error about the unreadable file:\n%s", all)
	}
	if strings.Contains(all, "needs a secret") {
		t.Errorf("an unreadable secret_file is also reported as a missing secret:\n%s", all)
	}
}
