package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payramd/payramd/journal"
)

// TestBacktestWithoutSecrets: a merchant backtests from a shell that lacks
// the service's EnvironmentFile. The backtest verifies no signature and
// runs no action, so unset variables in secrets, URLs and credentials are
// stood in for and named in the output, while the rules are evaluated as
// written. An unset variable in a rule stays an error naming it, and the
// commands that verify or send (check here) keep failing on any unset one.
func TestBacktestWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s, err := journal.Open(data, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"filled.json", "partially_filled.json"} {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", f))
		if err != nil {
			t.Fatal(err)
		}
		ev := &journal.Event{ID: "evt_" + strings.TrimSuffix(f, ".json"), Source: "payram", Provider: "payram", Type: "payment", ReceivedAt: time.Now(), Body: body, Payload: body}
		if _, err := s.Ingest(context.Background(), ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	const sources = `sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY}
  forwarded:
    provider: standard-webhooks
    secret_file: ${CREDENTIALS_DIRECTORY}/forwarded
actions:
  erp:
    type: http
    url: ${ERP_URL}
    headers: {Authorization: "Bearer ${ERP_TOKEN}"}
    sign: {secret: "${FORWARD_SECRET}", scheme: standard-webhooks}
  ops-slack:
    type: slack
    url: ${SLACK_WEBHOOK_URL}
    enabled: ${SLACK_WEBHOOK_URL:+true}
    text: "Paid {{ reference_id }}"
`
	cfg := writeFile(t, dir, "rules.yaml", fmt.Sprintf("server:\n  data_dir: %s\n", data)+sources+`rules:
  - name: fulfil
    when: status == "FILLED"
    do: [erp, ops-slack]
`)

	bt := backtestJSON(t, nil, "-c", cfg)
	if bt.Events != 2 || len(bt.Rules) != 1 || bt.Rules[0].Matched != 1 || bt.Rules[0].Actions["erp"] != 1 || len(bt.Rules[0].Actions) != 1 {
		t.Errorf("backtest = %+v; want fulfil matching filled.json and running erp (ops-slack is off with its variable unset)", bt)
	}
	var unset []string
	for _, u := range bt.Unset {
		unset = append(unset, fmt.Sprintf("%s%v%v", u.Name, u.Fields, u.Defaulted))
	}
	want := "PAYRAM_API_KEY[sources.payram.secret]false CREDENTIALS_DIRECTORY[sources.forwarded.secret_file]false ERP_URL[actions.erp.url]false ERP_TOKEN[actions.erp.headers.Authorization]false FORWARD_SECRET[actions.erp.sign.secret]false SLACK_WEBHOOK_URL[actions.ops-slack.url]false SLACK_WEBHOOK_URL[actions.ops-slack.enabled]true"
	if got := strings.Join(unset, " "); got != want {
		t.Errorf("unset_variables:\n%s\nwant:\n%s", got, want)
	}

	code, out, errOut := runCLI(t, nil, "replay", "--dry-run", "--since", "1h", "-c", cfg)
	for _, line := range []string{
		"environment variable PAYRAM_API_KEY is not set here: stood in for in sources.payram.secret, which a backtest does not use",
		"environment variable SLACK_WEBHOOK_URL is not set here: actions.ops-slack.enabled read as written for it unset; if the service sets it, the daemon does otherwise",
	} {
		if code != 0 || !strings.Contains(out, line+"\n") {
			t.Errorf("text backtest: %d %s %s; want the line %q", code, out, errOut, line)
		}
	}

	// With the variables set, nothing is stood in for.
	creds := t.TempDir()
	writeFile(t, creds, "forwarded", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
	env := []string{"PAYRAM_API_KEY=k", "CREDENTIALS_DIRECTORY=" + creds, "ERP_URL=https://erp.example.com/hook", "ERP_TOKEN=t",
		"FORWARD_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/x"}
	code, out, errOut = runCLI(t, env, "replay", "--dry-run", "--since", "1h", "-c", cfg, "--json")
	if code != 0 || !strings.Contains(out, `"unset_variables": []`) || !strings.Contains(out, `"ops-slack": 1`) {
		t.Errorf("backtest with every variable set: %d %s %s; want no unset variable and ops-slack running", code, out, errOut)
	}

	// check still needs every variable: it validates what the daemon runs.
	code, out, errOut = runCLI(t, nil, "check", "-c", cfg)
	if code != 1 || !strings.Contains(out+errOut, "environment variable PAYRAM_API_KEY is not set; set it") {
		t.Errorf("check with PAYRAM_API_KEY unset: %d %s %s; want the strict error", code, out, errOut)
	}

	// In a rule, a stand-in would change what matches: refused, by name.
	candidate := writeFile(t, dir, "candidate.yaml", fmt.Sprintf("server:\n  data_dir: %s\n", data)+sources+`rules:
  - name: big
    when: filled_amount_in_usd > ${BIG_USD}
    do: [erp]
`)
	code, out, errOut = runCLI(t, nil, "replay", "--dry-run", "--since", "1h", "-c", candidate)
	if code != 1 || !strings.Contains(errOut, "candidate.yaml:23:11: environment variable BIG_USD is not set; the backtest cannot stand in for it in rules[0].when, which decides what the rule matches") {
		t.Errorf("backtest with a variable in when: %d %s %s; want it refused, naming BIG_USD", code, out, errOut)
	}

	// The journal's directory from an unset variable: refused unless
	// --data-dir says where it is.
	fromEnv := writeFile(t, dir, "env-data.yaml", "server:\n  data_dir: ${PAYRAMD_DATA}\n"+sources+"rules: []\n")
	code, out, errOut = runCLI(t, nil, "replay", "--dry-run", "--since", "1h", "-c", fromEnv)
	if code != 1 || !strings.Contains(errOut, "server.data_dir uses environment variable PAYRAMD_DATA, which is not set: set it in this shell, or give the journal's directory with --data-dir") {
		t.Errorf("backtest with data_dir unset: %d %s %s; want it refused", code, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "replay", "--dry-run", "--since", "1h", "-c", fromEnv, "--data-dir", data, "--json")
	if code != 0 || !strings.Contains(out, `"events": 2`) {
		t.Errorf("backtest with data_dir unset and --data-dir: %d %s %s; want the journal's 2 events", code, out, errOut)
	}
	// PAYRAMD_DATA_DIR overrides data_dir (SPEC 2), so the stand-in is not
	// the directory opened.
	code, out, errOut = runCLI(t, []string{"PAYRAMD_DATA_DIR=" + data}, "replay", "--dry-run", "--since", "1h", "-c", fromEnv, "--json")
	if code != 0 || !strings.Contains(out, `"events": 2`) {
		t.Errorf("backtest with data_dir unset and PAYRAMD_DATA_DIR set: %d %s %s; want the journal's 2 events", code, out, errOut)
	}
}
