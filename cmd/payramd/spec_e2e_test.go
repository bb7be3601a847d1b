package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRuleRuntimeErrorIsIsolated (SPEC §4): a rule failing at run time
// (nil - 5) does not match, is logged with the event id and the rule, is
// counted in payramd_rule_errors_total, and never stops the other rules.
func TestRuleRuntimeErrorIsIsolated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSink(t, nil)
	cfg := writeFile(t, dir, "rules.yaml", cfgText(filepath.Join(dir, "data"), s.URL, "broken", `not_in_payload - 5 > 0`)+
		"  - name: works\n    when: status == \"FILLED\"\n    do: [sink]\n")
	p := startDaemon(t, cfg)
	out := send(t, p, cfg, "../../testdata/events/filled.json")
	var ack struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &ack); err != nil || ack.ID == "" {
		t.Fatalf("send: %s", out)
	}
	s.waitCount(t, 1, 10*time.Second)
	p.waitLog(5*time.Second, "rule failed at run time", `"rule":"broken"`, ack.ID)
	if got := p.metric(`payramd_rule_errors_total{rule="broken"}`); got != 1 {
		t.Errorf("payramd_rule_errors_total{rule=broken} = %v, want 1", got)
	}
	if got := p.metric(`payramd_rule_matches_total{rule="works"}`); got != 1 {
		t.Errorf("payramd_rule_matches_total{rule=works} = %v, want 1", got)
	}
	if got := p.metric(`payramd_rule_matches_total{rule="broken"}`); got > 0 {
		t.Errorf("the failing rule counted as a match: %v", got)
	}
}

// TestJobOfRemovedActionGoesDead (SPEC §7): jobs look their action up by
// name when they run; a pending retry whose action was removed by a reload
// becomes dead with that reason instead of running something else.
func TestJobOfRemovedActionGoesDead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSink(t, func(int) int { return 503 })
	config := func(withSink bool) string {
		acts, do := "  note:\n    type: log\n    message: \"{{ reference_id }}\"\n", "[note]"
		if withSink {
			acts += fmt.Sprintf("  sink:\n    type: http\n    url: %s/hook\n    retry: {attempts: 10, initial: 2s, max: 2s}\n", s.URL)
			do = "[sink]"
		}
		return fmt.Sprintf("server:\n  data_dir: %s\nsources:\n  payram:\n    provider: payram\n    secret: test-api-key\nactions:\n%srules:\n  - name: fulfil\n    when: status == \"FILLED\"\n    do: %s\n",
			filepath.Join(dir, "data"), acts, do)
	}
	cfg := writeFile(t, dir, "rules.yaml", config(true))
	p := startDaemon(t, cfg)
	send(t, p, cfg, "../../testdata/events/filled.json")
	s.waitCount(t, 1, 10*time.Second) // the first attempt failed; the retry waits 2 s

	writeFile(t, dir, "rules.yaml", config(false))
	resp, err := http.Post(p.Admin+"/api/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload answered %d", resp.StatusCode)
	}
	var dead struct {
		Jobs []struct {
			Action    string `json:"action"`
			LastError string `json:"last_error"`
		} `json:"jobs"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(dead.Jobs) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		p.getJSON("/api/jobs?state=dead", &dead)
	}
	if len(dead.Jobs) != 1 || dead.Jobs[0].Action != "sink" || !strings.Contains(dead.Jobs[0].LastError, `action "sink" is no longer in the config`) {
		t.Fatalf("dead jobs = %+v, want the sink job dead because its action was removed", dead.Jobs)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("the sink got %d requests, want only the first attempt", n)
	}
}

// TestTestCommandExitCodes (SPEC §2): `payramd test` exits 1 when a tests:
// expectation fails or an event file is invalid, 0 otherwise, and --json
// gives each rule's outcome for scripts.
func TestTestCommandExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	events, _ := filepath.Abs("../../testdata/events")
	base := cfgText(filepath.Join(dir, "data"), "http://127.0.0.1:9", "fulfil", `status == "FILLED"`)
	pass := writeFile(t, dir, "pass.yaml", base+"tests:\n  - event: "+events+"/filled.json\n    expect: [fulfil]\n  - event: "+events+"/open.json\n    expect: []\n")
	fail := writeFile(t, dir, "fail.yaml", base+"tests:\n  - event: "+events+"/open.json\n    expect: [fulfil]\n")

	if code, out, errOut := runCLI(t, nil, "test", "-c", pass); code != 0 || !strings.Contains(out, "2 passed, 0 failed") {
		t.Errorf("passing tests: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ := runCLI(t, nil, "test", "-c", fail)
	if code != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(out, "expected [fulfil], matched []") || !strings.Contains(out, "0 passed, 1 failed") {
		t.Errorf("failing expectation: exit %d, want 1\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, nil, "test", "-c", pass, events+"/invalid_trailing_comma.json"); code != 1 || !strings.Contains(errOut, "invalid") {
		t.Errorf("invalid event file: exit %d, want 1: %s", code, errOut)
	}
	// An unknown --source is a usage error, said before any file is read.
	if code, _, errOut := runCLI(t, nil, "test", "-c", pass, "--source", "payrm", events+"/filled.json"); code != 2 || !strings.Contains(errOut, `unknown source "payrm" (did you mean "payram"?)`) {
		t.Errorf("unknown --source: exit %d, want 2: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, nil, "test", "--json", "-c", pass, events+"/filled.json")
	var results []struct {
		Type  string `json:"type"`
		Rules []struct {
			Rule    string `json:"rule"`
			Matched bool   `json:"matched"`
			Actions []struct {
				Fields []map[string]string `json:"fields"`
			} `json:"actions"`
		} `json:"rules"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &results) != nil || len(results) != 1 || results[0].Type != "payment.filled" ||
		len(results[0].Rules) != 1 || !results[0].Rules[0].Matched {
		t.Errorf("test --json: exit %d\n%s%s", code, out, errOut)
	} else if a := results[0].Rules[0].Actions; len(a) != 1 || len(a[0].Fields) == 0 || a[0].Fields[0]["name"] != "url" {
		t.Errorf("test --json: each rendered field should be {\"name\": …, \"value\": …}, the first the url:\n%s", out)
	}
}
