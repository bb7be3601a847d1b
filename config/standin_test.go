package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// standInConfig uses unset variables only where a backtest reads nothing:
// secrets, a secret file's path, an action's url, header and credentials,
// a number and a duration nobody evaluates, and the data_dir (which the
// backtest checks itself). One :+ reference decides an action's enabled.
const standInConfig = `server:
  data_dir: ${PAYRAMD_DATA}
  workers: ${WORKERS}
sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY}
  rotating:
    provider: payram
    secrets: ["${OLD_KEY}", "${NEW_KEY}"]
  creds:
    provider: payram
    secret_file: ${CREDENTIALS_DIRECTORY}/payram
actions:
  ops-slack:
    type: slack
    url: ${SLACK_WEBHOOK_URL}
    enabled: ${SLACK_WEBHOOK_URL:+true}
    timeout: ${SLACK_TIMEOUT}
  erp:
    type: http
    url: https://erp.example.com/hook
    headers: {Authorization: "Bearer ${ERP_TOKEN}"}
rules:
  - name: paid
    when: status == "FILLED"
    do: [ops-slack, erp]
`

// TestLoadStandInTolerates: with Options.StandIn an unset variable in a
// value that a backtest does not use loads as StandInValue, with no error,
// and is listed in Config.Unset with the field it is in; without StandIn
// (run, check, test, send) the same config fails as before.
func TestLoadStandInTolerates(t *testing.T) {
	dir := writeTree(t, map[string]string{"rules.yaml": standInConfig})
	path := filepath.Join(dir, "rules.yaml")
	cfg, probs := Load(path, Options{Getenv: envOf(nil), StandIn: true})
	if probs.HasErrors() {
		t.Fatalf("stand-in load has errors:\n%v", probs.Err())
	}
	if got := cfg.Source("payram").Secrets; len(got) != 1 || got[0].Reveal() != StandInValue("PAYRAM_API_KEY") {
		t.Errorf("payram secret = %q, want the stand-in", got)
	}
	if got := cfg.Source("rotating").Secrets; len(got) != 2 {
		t.Errorf("rotating secrets = %d, want 2 stand-ins", len(got))
	}
	if got := cfg.Source("creds").Secrets; len(got) != 1 {
		t.Errorf("a secret_file whose path is stood in gives %d secrets, want a stand-in", len(got))
	}
	if cfg.Server.Workers != 16 {
		t.Errorf("workers = %d, want the default when its value is stood in", cfg.Server.Workers)
	}
	if a := cfg.Action("ops-slack"); a.Enabled || a.Timeout != 10*time.Second {
		t.Errorf("ops-slack: enabled %v timeout %s; want false (the :+ of an unset variable) and the default", a.Enabled, a.Timeout)
	}
	var got []string
	for _, u := range cfg.Unset {
		s := u.Name + " " + u.Field + " " + strings.TrimPrefix(u.Pos.String(), dir+string(filepath.Separator))
		if u.Defaulted {
			s += " defaulted"
		}
		got = append(got, s)
	}
	want := []string{
		"PAYRAMD_DATA server.data_dir rules.yaml:2:13",
		"WORKERS server.workers rules.yaml:3:12",
		"PAYRAM_API_KEY sources.payram.secret rules.yaml:7:13",
		"OLD_KEY sources.rotating.secrets[0] rules.yaml:10:15",
		"NEW_KEY sources.rotating.secrets[1] rules.yaml:10:29",
		"CREDENTIALS_DIRECTORY sources.creds.secret_file rules.yaml:13:18",
		"SLACK_WEBHOOK_URL actions.ops-slack.url rules.yaml:17:10",
		"SLACK_WEBHOOK_URL actions.ops-slack.enabled rules.yaml:18:14 defaulted",
		"SLACK_TIMEOUT actions.ops-slack.timeout rules.yaml:19:14",
		"ERP_TOKEN actions.erp.headers.Authorization rules.yaml:23:30",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Unset:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	_, strict := loadDir(t, dir, nil)
	for _, v := range []string{"PAYRAM_API_KEY", "SLACK_WEBHOOK_URL", "CREDENTIALS_DIRECTORY", "WORKERS"} {
		if !slices.ContainsFunc(strict, func(p string) bool { return strings.Contains(p, "environment variable "+v+" is not set") }) {
			t.Errorf("without StandIn, %s must still be an error; got:\n%s", v, strings.Join(strict, "\n"))
		}
	}
}

// TestLoadStandInRefuses: an unset variable in a value that decides what
// a backtest reports (what a rule matches, what once_per holds back,
// whether a rule or action runs, the provider, the includes) stays an
// error under StandIn, naming the variable and the field: a stand-in there
// would change the report or fail to parse with a confusing message.
func TestLoadStandInRefuses(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"when", head + "rules:\n  - name: big\n    when: amount > ${LIMIT}\n    do: [ops-slack]\n",
			"rules.yaml:10:11: environment variable LIMIT is not set; the backtest cannot stand in for it in rules[0].when, which decides what the rule matches"},
		{"once_per", head + "rules:\n  - name: big\n    when: \"true\"\n    once_per: ${KEY}\n    do: [ops-slack]\n",
			"rules.yaml:11:15: environment variable KEY is not set; the backtest cannot stand in for it in rules[0].once_per, which decides which matches once_per holds back"},
		{"rule enabled", head + "rules:\n  - name: big\n    when: \"true\"\n    enabled: ${ON}\n    do: [ops-slack]\n",
			"rules.yaml:11:14: environment variable ON is not set; the backtest cannot stand in for it in rules[0].enabled, which decides whether the rule runs"},
		{"rule source", head + "rules:\n  - name: big\n    source: ${SRC}\n    when: \"true\"\n    do: [ops-slack]\n",
			"rules.yaml:10:13: environment variable SRC is not set; the backtest cannot stand in for it in rules[0].source, which decides which events the rule sees"},
		{"do by name", head + "rules:\n  - name: big\n    when: \"true\"\n    do: [\"${ACTION}\"]\n",
			"rules.yaml:11:10: environment variable ACTION is not set; the backtest cannot stand in for it in rules[0].do[0], which decides which actions the rule would run"},
		{"inline action enabled", head + "rules:\n  - name: big\n    when: \"true\"\n    do:\n      - type: log\n        message: hi\n        enabled: ${ON}\n",
			"rules.yaml:14:18: environment variable ON is not set; the backtest cannot stand in for it in rules[0].do[0].enabled, which decides whether the action would run"},
		{"action enabled", head + "    enabled: ${ON}\n",
			"rules.yaml:8:14: environment variable ON is not set; the backtest cannot stand in for it in actions.ops-slack.enabled, which decides whether the action would run"},
		{"action type", "actions:\n  a:\n    type: ${TYPE}\n",
			"rules.yaml:3:11: environment variable TYPE is not set; the backtest cannot stand in for it in actions.a.type, which decides what kind of action it is"},
		{"provider", "sources:\n  payram:\n    provider: ${PROVIDER}\n    secret: x\n",
			"rules.yaml:3:15: environment variable PROVIDER is not set; the backtest cannot stand in for it in sources.payram.provider, which decides which fields the rules can read"},
		{"include", "include: [\"${RULES_DIR}/*.yaml\"]\n",
			"rules.yaml:1:11: environment variable RULES_DIR is not set; the backtest cannot stand in for it in include[0], which decides which files' rules are evaluated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"rules.yaml": tc.yaml})
			cfg, probs := Load(filepath.Join(dir, "rules.yaml"), Options{Getenv: envOf(nil), StandIn: true})
			var got []string
			for _, p := range probs.List {
				got = append(got, strings.ReplaceAll(p.String(), dir+string(filepath.Separator), ""))
			}
			if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, tc.want) }) {
				t.Errorf("problems:\n%s\nwant one starting:\n%s", strings.Join(got, "\n"), tc.want)
			}
			if len(cfg.Unset) != 0 {
				t.Errorf("a refused variable is not stood in for: Unset = %+v", cfg.Unset)
			}
		})
	}
}

// TestLoadStandInMootChecks: a check that fails on a stood-in value is
// about the stand-in, not the service's value, so it is no error; the
// same check on a value written in the file still is.
func TestLoadStandInMootChecks(t *testing.T) {
	dir := writeTree(t, map[string]string{"rules.yaml": `server:
  max_body: ${MAX_BODY}
  trusted_proxies: ["${PROXY}", 10.0.0.0/33]
`})
	_, probs := Load(filepath.Join(dir, "rules.yaml"), Options{Getenv: envOf(nil), StandIn: true})
	var got []string
	for _, p := range probs.List {
		got = append(got, strings.ReplaceAll(p.String(), dir+string(filepath.Separator), ""))
	}
	want := []string{`rules.yaml:3:33: trusted_proxies: "10.0.0.0/33" is not a CIDR such as 203.0.113.0/24`}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
