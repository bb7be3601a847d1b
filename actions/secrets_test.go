package actions

import (
	"slices"
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
)

// TestLiteralSecretWarnings: every credential field of an action warns when
// its secret is written in the config, at the secret's place; one from a
// ${VAR} (wholly or partly), a *_file or the event's data is silent, and no
// warning holds the secret. The config is loaded as the daemon loads it,
// so that ${VAR} references expand.
func TestLiteralSecretWarnings(t *testing.T) {
	const tail = " is written in the config; anyone who can read rules.yaml can use it: put it in the environment ("
	const envFile = ", set in the service's EnvironmentFile)"
	env := map[string]string{"ERP_TOKEN": "env-tok-4f1a", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B1/env-4f1a", "SLACK_PATH": "T1/B1/env-4f1a", "PASS": "env-4f1a"}
	const http = "    type: http\n    url: https://erp.example/orders\n"
	const slack = "    type: slack\n    text: paid\n"
	const email = "    type: email\n    from: a@example.com\n    to: b@example.com\n"
	tests := []struct {
		name string
		yaml string // the action's fields, indented by 4, from line 3
		want []string
	}{
		// Each field.
		{name: "sign secret", yaml: http + "    sign: {secret: lit-1a2b, scheme: hmac}\n",
			want: []string{"rules.yaml:5:20: warning: secret" + tail + "secret: ${ERP_SIGNING_SECRET}" + envFile + " or in secret_file"}},
		{name: "smtp password", yaml: email + "    smtp: {host: smtp.example.com, username: u, password: lit-1a2b}\n",
			want: []string{"rules.yaml:6:59: warning: password" + tail + "password: ${SMTP_PASSWORD}" + envFile + " or in password_file"}},
		{name: "password in an http url", yaml: "    type: http\n    url: https://bob:lit-1a2b@erp.example/orders\n",
			want: []string{"rules.yaml:4:22: warning: url: the password in this URL" + tail + "url: https://user:${ERP_PASSWORD}@…" + envFile}},
		{name: "password in a slack url", yaml: slack + "    url: https://bob:lit-1a2b@chat.example/hook\n",
			want: []string{"rules.yaml:5:22: warning: url: the password in this URL" + tail + "url: https://user:${ERP_PASSWORD}@…" + envFile}},
		{name: "slack webhook url", yaml: slack + "    url: https://hooks.slack.com/services/T0/B0/lit-1a2b\n",
			want: []string{"rules.yaml:5:43: warning: url: this Slack webhook URL" + tail + "url: ${SLACK_WEBHOOK_URL}" + envFile}},
		{name: "slack webhook url in an http action", yaml: "    type: http\n    url: https://hooks.slack.com/workflows/T0/lit-1a2b\n",
			want: []string{"rules.yaml:4:44: warning: url: this Slack webhook URL" + tail + "url: ${SLACK_WEBHOOK_URL}" + envFile}},
		{name: "authorization", yaml: http + "    headers: {Authorization: \"Bearer lit-1a2b\"}\n",
			want: []string{"rules.yaml:5:38: warning: headers: the value of Authorization" + tail + "Authorization: \"Bearer ${ERP_TOKEN}\"" + envFile}},
		{name: "authorization without a scheme", yaml: http + "    headers: {Proxy-Authorization: lit-1a2b}\n",
			want: []string{"rules.yaml:5:36: warning: headers: the value of Proxy-Authorization" + tail + "Proxy-Authorization: \"Bearer ${ERP_TOKEN}\"" + envFile}},
		{name: "credential headers", yaml: http + "    headers:\n      X-API-Key: lit-1a2b\n      Api-Key: lit-1a2b\n      X-Auth-Token: lit-1a2b\n      X-Webhook-Secret: lit-1a2b\n      Idempotency-Key: k-1a2b\n      X-Note: lit-1a2b\n",
			want: []string{
				"rules.yaml:6:18: warning: headers: the value of X-API-Key" + tail + "X-API-Key: \"${API_KEY}\"" + envFile,
				"rules.yaml:7:16: warning: headers: the value of Api-Key" + tail + "Api-Key: \"${API_KEY}\"" + envFile,
				"rules.yaml:8:21: warning: headers: the value of X-Auth-Token" + tail + "X-Auth-Token: \"${AUTH_TOKEN}\"" + envFile,
				"rules.yaml:9:25: warning: headers: the value of X-Webhook-Secret" + tail + "X-Webhook-Secret: \"${WEBHOOK_SECRET}\"" + envFile,
			}},
		{name: "a credential mixed with a placeholder", yaml: http + "    headers: {X-Api-Key: \"lit-1a2b-{{ reference_id }}\"}\n",
			want: []string{"rules.yaml:5:27: warning: headers: the value of X-Api-Key" + tail + "X-Api-Key: \"${API_KEY}\"" + envFile}},
		{name: "exec env", yaml: "    type: exec\n    command: [/bin/sh, -c, 'true']\n    env: {ERP_TOKEN: lit-1a2b, INVOICE: lit-1a2b, AWS_SECRET_ACCESS_KEY: lit-1a2b}\n",
			want: []string{
				"rules.yaml:5:22: warning: env: the value of ERP_TOKEN" + tail + "ERP_TOKEN: \"${ERP_TOKEN}\"" + envFile,
				"rules.yaml:5:74: warning: env: the value of AWS_SECRET_ACCESS_KEY" + tail + "AWS_SECRET_ACCESS_KEY: \"${AWS_SECRET_ACCESS_KEY}\"" + envFile,
			}},
		{name: "a disabled action too", yaml: slack + "    enabled: false\n    url: https://hooks.slack.com/services/T0/B0/lit-1a2b\n",
			want: []string{"rules.yaml:6:43: warning: url: this Slack webhook URL" + tail + "url: ${SLACK_WEBHOOK_URL}" + envFile}},

		// Silent: from the environment, wholly or partly.
		{name: "sign secret from a variable", yaml: http + "    sign: {secret: \"${ERP_TOKEN}\", scheme: hmac}\n"},
		{name: "smtp password from a variable", yaml: email + "    smtp: {host: smtp.example.com, username: u, password: \"${PASS}\"}\n"},
		{name: "smtp password from a file", yaml: email + "    smtp: {host: smtp.example.com, username: u, password_file: /dev/null}\n"},
		{name: "password from a variable", yaml: "    type: http\n    url: https://bob:${PASS}@erp.example/orders\n"},
		{name: "a whole url from a variable", yaml: slack + "    url: ${SLACK_WEBHOOK_URL}\n"},
		{name: "slack path from a variable", yaml: slack + "    url: https://hooks.slack.com/services/${SLACK_PATH}\n"},
		{name: "an unset url", yaml: slack + "    enabled: false\n    url: ${UNSET_URL:-}\n"},
		{name: "a user name alone", yaml: "    type: http\n    url: https://bob@erp.example/orders\n"},
		{name: "a slack url that is not a webhook", yaml: slack + "    url: https://hooks.slack.com/\n"},
		{name: "bearer from a variable", yaml: http + "    headers: {Authorization: \"Bearer ${ERP_TOKEN}\"}\n"},
		{name: "bearer from an unset variable", yaml: http + "    headers: {Authorization: \"Bearer ${UNSET_TOKEN:-}\"}\n"},
		{name: "exec env from a variable", yaml: "    type: exec\n    command: [/bin/sh, -c, 'true']\n    env: {ERP_TOKEN: \"${ERP_TOKEN}\"}\n"},
		// Silent: the event's data is not a secret of the config.
		{name: "bearer from the event", yaml: http + "    headers: {Authorization: \"Bearer {{ reference_id }}\", X-Api-Key: \"{{ reference_id }}\"}\n"},
		{name: "password from the event", yaml: "    type: http\n    url: \"https://bob:{{ urlpath(reference_id) }}@erp.example/orders\"\n"},
		{name: "exec env from the event", yaml: "    type: exec\n    command: [/bin/sh, -c, 'true']\n    env: {ERP_TOKEN: \"{{ reference_id }}\"}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "actions:\n  erp:\n" + tt.yaml
			cfg, probs := config.LoadBytes(testFile, []byte(src), config.Options{Getenv: func(name string) (string, bool) {
				v, ok := env[name]
				return v, ok
			}})
			if cfg != nil && !probs.HasErrors() {
				Compile(cfg)
			}
			probs.Sort()
			var got []string
			for _, p := range problemStrings(probs) {
				switch {
				case strings.Contains(p, " is written in the config;"):
					got = append(got, p)
				case !strings.Contains(p, "warning: "):
					t.Errorf("error: %s", p)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
			assertNoSecrets(t, []string{"lit", "1a2b", "4f1a", "T0/B0", "T1/B1"}, probs)
		})
	}
}

func TestCredentialName(t *testing.T) {
	for _, n := range []string{"Authorization", "proxy-authorization", "X-API-Key", "Api-Key", "X-ApiKey", "X-Auth-Token", "Private-Token", "X-Webhook-Secret", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "X-Access-Key", "Client.Secret"} {
		if !credentialName(n) {
			t.Errorf("credentialName(%q) = false, want true", n)
		}
	}
	for _, n := range []string{"Idempotency-Key", "Content-Type", "X-Token-TTL", "TOKEN_URL", "Key", "X-Request-Id", "SECRET_KEY_BASE_DIR", ""} {
		if credentialName(n) {
			t.Errorf("credentialName(%q) = true, want false", n)
		}
	}
}
