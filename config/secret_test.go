package config

import (
	"slices"
	"strings"
	"testing"
)

// TestLiteralSecretWarnings: a secret written in the config itself is a
// warning at its place; one that comes, wholly or partly, from a ${VAR}
// or from a *_file is not, and no warning holds the secret.
func TestLiteralSecretWarnings(t *testing.T) {
	const tail = " is written in the config; anyone who can read rules.yaml can use it: put it in the environment ("
	const envFile = ", set in the service's EnvironmentFile)"
	env := map[string]string{"PAYRAM_API_KEY": "env-key-4f1a", "EMPTY": ""}
	tests := []struct {
		name  string
		yaml  string
		files map[string]string
		want  []string
	}{
		{name: "a source's secret", yaml: "sources:\n  payram:\n    provider: payram\n    secret: lit-1a2b\n",
			want: []string{"rules.yaml:4:13: warning: secret" + tail + "secret: ${PAYRAM_API_KEY}" + envFile + " or in secret_file"}},
		{name: "quoted", yaml: "sources:\n  shop-eu:\n    provider: hmac\n    header: X-Sig\n    secret: \"lit-1a2b\"\n",
			want: []string{"rules.yaml:5:13: warning: secret" + tail + "secret: ${SHOP_EU_SECRET}" + envFile + " or in secret_file"}},
		{name: "each literal item of secrets", yaml: "sources:\n  payram:\n    provider: payram\n    secrets: [lit-1a2b, \"${PAYRAM_API_KEY}\", lit-3c4d]\n",
			want: []string{
				"rules.yaml:4:15: warning: item 1 of secrets" + tail + "secrets: [${PAYRAM_API_KEY_OLD}, ${PAYRAM_API_KEY}]" + envFile + " or in secret_file",
				"rules.yaml:4:46: warning: item 3 of secrets" + tail + "secrets: [${PAYRAM_API_KEY_OLD}, ${PAYRAM_API_KEY}]" + envFile + " or in secret_file",
			}},
		{name: "admin_token", yaml: "server:\n  admin_token: lit-1a2b\n",
			want: []string{"rules.yaml:2:16: warning: admin_token" + tail + "admin_token: ${PAYRAMD_ADMIN_TOKEN}" + envFile + " or in admin_token_file"}},
		// $${ is a literal ${, and ${VAR:+word} gives the word written here.
		{name: "an escaped ${", yaml: "sources:\n  payram:\n    provider: payram\n    secret: lit$${1a2b}\n",
			want: []string{"rules.yaml:4:13: warning: secret" + tail + "secret: ${PAYRAM_API_KEY}" + envFile + " or in secret_file"}},
		{name: "the word of ${VAR:+word}", yaml: "sources:\n  payram:\n    provider: payram\n    secret: ${PAYRAM_API_KEY:+lit-1a2b}\n",
			want: []string{"rules.yaml:4:13: warning: secret" + tail + "secret: ${PAYRAM_API_KEY}" + envFile + " or in secret_file"}},

		// Silent.
		{name: "from the environment", yaml: "server:\n  admin_token: ${PAYRAM_API_KEY}\nsources:\n  payram:\n    provider: payram\n    secret: ${PAYRAM_API_KEY}\n"},
		{name: "partly from the environment", yaml: "sources:\n  payram:\n    provider: payram\n    secret: \"lit-${PAYRAM_API_KEY}\"\n"},
		{name: "an unset variable's default", yaml: "sources:\n  payram:\n    provider: payram\n    secret: ${UNSET_KEY:-lit-1a2b}\n"},
		{name: "a variable set to nothing, beside text", yaml: "sources:\n  payram:\n    provider: payram\n    secret: lit-1a2b${EMPTY}\n"},
		{name: "secret_file", yaml: "server:\n  admin_token_file: creds/admin\nsources:\n  payram:\n    provider: payram\n    secret_file: creds/payram\n",
			files: map[string]string{"creds/admin": "lit-1a2b\n", "creds/payram": "lit-3c4d\n"}},
		{name: "an empty secret is not one", yaml: "server:\n  admin_token: \"\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"rules.yaml": tt.yaml}
			for k, v := range tt.files {
				files[k] = v
			}
			dir := writeTree(t, files)
			_, probs := loadDir(t, dir, env)
			got := slices.DeleteFunc(probs, func(p string) bool { return !strings.Contains(p, " is written in the config;") })
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
			for _, p := range probs {
				for _, secret := range []string{"lit", "1a2b", "3c4d", "env-key", "4f1a"} {
					if strings.Contains(p, secret) {
						t.Errorf("a problem holds (part of) a secret, %q: %s", secret, p)
					}
				}
			}
		})
	}
}

func TestScalarFromEnv(t *testing.T) {
	// "a${X}b${Y:+w}c$${d}" with X=xx, Y set: the value "axxbwc${d}".
	e := &expansion{src: "a${X}b${Y:+w}c$${d}", spans: []expSpan{
		{val: 1, valLen: 2, src: 1, srcLen: 4},
		{val: 4, valLen: 1, src: 6, srcLen: 7},
		{val: 6, valLen: 2, src: 14, srcLen: 3},
	}}
	s := &Scalar{Value: "axxbwc${d}", exp: e}
	tests := []struct {
		start, end int
		want       bool
	}{
		{0, 1, false}, {0, 2, true}, {2, 3, true}, {3, 4, false},
		{4, 5, false}, // the word of ${Y:+w}
		{6, 8, false}, // $${
		{0, 10, true},
	}
	for _, tt := range tests {
		if got := s.FromEnv(tt.start, tt.end); got != tt.want {
			t.Errorf("FromEnv(%d, %d) = %v, want %v", tt.start, tt.end, got, tt.want)
		}
	}
	if (&Scalar{Value: "abc"}).FromEnv(0, 3) {
		t.Error("a value without references is not from the environment")
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"payram": "PAYRAM", "shop-eu": "SHOP_EU", "X-Api-Key": "X_API_KEY", "a..b_": "A_B", "api_key": "API_KEY"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}
