package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cfgText is a small config: a payram source and one rule posting to a sink.
func cfgText(dataDir, sinkURL, ruleName, when string) string {
	return fmt.Sprintf(`server:
  data_dir: %s
  shutdown_timeout: 5s
sources:
  payram:
    provider: payram
    secret: test-api-key
actions:
  sink:
    type: http
    url: %s/hook
    retry: {attempts: 4, initial: 50ms, max: 200ms}
rules:
  - name: %s
    when: %s
    do: [sink]
`, dataDir, sinkURL, ruleName, when)
}

func ruleNames(t *testing.T, p *proc) []string {
	var cfg struct {
		Rules []struct {
			Name string `json:"name"`
		} `json:"rules"`
	}
	p.getJSON("/api/config", &cfg)
	var out []string
	for _, r := range cfg.Rules {
		out = append(out, r.Name)
	}
	return out
}

func waitRules(t *testing.T, p *proc, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Equal(ruleNames(t, p), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("rules are %v, want %v", ruleNames(t, p), want)
}

func send(t *testing.T, p *proc, cfg, event string) string {
	t.Helper()
	code, out, errOut := runCLI(t, nil, "send", "-c", cfg, "--source", "payram", "--url", p.Public+"/webhooks/payram", event)
	if code != 0 {
		t.Fatalf("payramd send exited %d: %s %s", code, out, errOut)
	}
	return out
}

// TestWalkthrough is the README's walk-through: run, send a signed PayRam
// webhook, see the rule fire, inspect it with the CLI.
func TestWalkthrough(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, nil)
	cfg := writeFile(t, dir, "rules.yaml", cfgText(filepath.Join(dir, "data"), s.URL, "fulfil", `status == "FILLED"`))
	t0 := time.Now()
	p := startDaemon(t, cfg)
	t.Logf("started after %s", time.Since(t0))

	out := send(t, p, cfg, "../../testdata/events/filled.json")
	if !strings.Contains(out, "200 OK") || !strings.Contains(out, `"status":"accepted"`) {
		t.Fatalf("send output: %s", out)
	}
	t.Logf("sent after %s", time.Since(t0))
	reqs := s.waitCount(t, 1, 10*time.Second)
	t.Logf("delivered after %s", time.Since(t0))
	raw, _ := os.ReadFile("../../testdata/events/filled.json")
	if reqs[0].Body != string(raw) {
		t.Errorf("the http action's default body must be the raw payload received\n got %q\nwant %q", reqs[0].Body, raw)
	}
	if reqs[0].Header.Get("Idempotency-Key") == "" {
		t.Error("no Idempotency-Key header")
	}
	// The same delivery again is a duplicate and runs nothing.
	if out := send(t, p, cfg, "../../testdata/events/filled.json"); !strings.Contains(out, `"status":"duplicate"`) {
		t.Errorf("second send: %s", out)
	}
	// An event that matches no rule is accepted and runs nothing.
	send(t, p, cfg, "../../testdata/events/open.json")
	time.Sleep(300 * time.Millisecond)
	if n := len(s.requests()); n != 1 {
		t.Errorf("sink got %d requests, want 1", n)
	}
	code, evOut, errOut := runCLI(t, nil, "events", "-c", cfg, "--admin", p.Admin)
	if code != 0 || !strings.Contains(evOut, "payment.filled") || !strings.Contains(evOut, "payment.open") {
		t.Errorf("payramd events: %d %s %s", code, evOut, errOut)
	}
	code, jobsOut, _ := runCLI(t, nil, "jobs", "-c", cfg, "--admin", p.Admin, "--json")
	var jobs struct {
		Jobs []struct {
			State string `json:"state"`
			Rule  string `json:"rule"`
		} `json:"jobs"`
	}
	if code != 0 || json.Unmarshal([]byte(jobsOut), &jobs) != nil || len(jobs.Jobs) != 1 || jobs.Jobs[0].State != "succeeded" || jobs.Jobs[0].Rule != "fulfil" {
		t.Errorf("payramd jobs --json: %d %s", code, jobsOut)
	}
	if got := p.metric(`payramd_rule_matches_total{rule="fulfil"}`); got != 1 {
		t.Errorf("payramd_rule_matches_total{rule=fulfil} = %v, want 1", got)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

// TestHotReload edits the config the ways editors, sed and Kubernetes do and
// checks the daemon follows each, keeps the old rules through a broken edit,
// and reloads on SIGHUP.
func TestHotReload(t *testing.T) {
	s := newSink(t, nil)
	cases := []struct {
		name string
		edit func(t *testing.T, dir, cfgPath, content string)
	}{
		{"in-place write", func(t *testing.T, dir, cfgPath, content string) {
			f, err := os.OpenFile(cfgPath, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(content)
			f.Close()
		}},
		{"write and rename (vim, VS Code)", func(t *testing.T, dir, cfgPath, content string) {
			tmp := filepath.Join(dir, ".rules.yaml.swp")
			os.WriteFile(tmp, []byte(content), 0o644)
			if err := os.Rename(tmp, cfgPath); err != nil {
				t.Fatal(err)
			}
		}},
		{"delete and recreate", func(t *testing.T, dir, cfgPath, content string) {
			os.Remove(cfgPath)
			time.Sleep(50 * time.Millisecond)
			os.WriteFile(cfgPath, []byte(content), 0o644)
		}},
		{"kubernetes symlink swap", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			v1 := cfgText(data, s.URL, "v1", `status == "FILLED"`)
			v2 := cfgText(data, s.URL, "v2", `status == "FILLED"`)
			var cfgPath string
			edit := tc.edit
			if edit == nil {
				// ConfigMap layout: rules.yaml -> ..data/rules.yaml, ..data -> ..2024_v1
				os.MkdirAll(filepath.Join(dir, "..v1"), 0o755)
				writeFile(t, dir, "..v1/rules.yaml", v1)
				os.Symlink("..v1", filepath.Join(dir, "..data"))
				cfgPath = filepath.Join(dir, "rules.yaml")
				os.Symlink("..data/rules.yaml", cfgPath)
				edit = func(t *testing.T, dir, cfgPath, content string) {
					os.MkdirAll(filepath.Join(dir, "..v2"), 0o755)
					writeFile(t, dir, "..v2/rules.yaml", content)
					os.Symlink("..v2", filepath.Join(dir, "..data_tmp"))
					if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
						t.Fatal(err)
					}
					os.RemoveAll(filepath.Join(dir, "..v1"))
				}
			} else {
				cfgPath = writeFile(t, dir, "rules.yaml", v1)
			}
			p := startDaemon(t, cfgPath)
			waitRules(t, p, "v1")
			edit(t, dir, cfgPath, v2)
			waitRules(t, p, "v2")
			p.waitLog(5*time.Second, "config reloaded", "file change")
			// And a second edit works too: watches survive renames.
			edit(t, dir, cfgPath, v1)
			waitRules(t, p, "v1")
		})
	}

	t.Run("invalid edit keeps the old rules, then a fix applies", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		cfgPath := writeFile(t, dir, "rules.yaml", cfgText(data, s.URL, "good", `status == "FILLED"`))
		p := startDaemon(t, cfgPath)
		if got := p.metric("payramd_config_last_reload_successful"); got != 1 {
			t.Fatalf("payramd_config_last_reload_successful = %v at start", got)
		}
		broken := strings.Replace(cfgText(data, s.URL, "broken", `status == "FILLED"`), "when:", "whne:", 1)
		os.WriteFile(cfgPath, []byte(broken), 0o644)
		line := p.waitLog(5*time.Second, "config error", `unknown field \"whne\" (did you mean \"when\"?)`)
		if !strings.Contains(line, "rules.yaml:15:5") {
			t.Errorf("the error must carry file:line:col, got %s", line)
		}
		p.waitLog(5*time.Second, "config reload refused")
		if got := p.metric("payramd_config_last_reload_successful"); got != 0 {
			t.Errorf("payramd_config_last_reload_successful = %v after a broken edit, want 0", got)
		}
		if got := ruleNames(t, p); !slices.Equal(got, []string{"good"}) {
			t.Errorf("rules after a broken edit = %v, want the old [good]", got)
		}
		before := len(s.requests())
		sendCfg := writeFile(t, t.TempDir(), "send.yaml", cfgText(data, s.URL, "x", "true"))
		send(t, p, sendCfg, "../../testdata/events/filled.json")
		s.waitCount(t, before+1, 10*time.Second)

		os.WriteFile(cfgPath, []byte(cfgText(data, s.URL, "fixed", `status == "FILLED"`)), 0o644)
		waitRules(t, p, "fixed")
		if got := p.metric("payramd_config_last_reload_successful"); got != 1 {
			t.Errorf("payramd_config_last_reload_successful = %v after the fix, want 1", got)
		}
	})

	t.Run("SIGHUP", func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := writeFile(t, dir, "rules.yaml", cfgText(filepath.Join(dir, "data"), s.URL, "v1", `status == "FILLED"`))
		p := startDaemon(t, cfgPath)
		p.signal(syscall.SIGHUP)
		p.waitLog(5*time.Second, "config reloaded", "SIGHUP")
	})
}

// TestBacktestAndReplay tries a candidate config against journaled events
// (changing nothing), then replays one event for real.
func TestBacktestAndReplay(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := newSink(t, nil)
	cfg := writeFile(t, dir, "rules.yaml", cfgText(data, s.URL, "fulfil", `status == "FILLED"`))
	p := startDaemon(t, cfg)
	for _, f := range []string{"filled.json", "over_filled.json", "over_filled_small.json", "partially_filled.json"} {
		send(t, p, cfg, "../../testdata/events/"+f)
	}
	s.waitCount(t, 1, 10*time.Second)

	candidate := writeFile(t, dir, "candidate.yaml", cfgText(data, s.URL, "overpaid", `status == "OVER_FILLED" && filled_amount_in_usd - amount > 5`)+
		"  - name: big-customer\n    when: customer_id == \"cust_207\"\n    do: [sink]\n    once_per: customer_id\n")
	bt := backtestJSON(t, nil, "-c", candidate)
	if bt.Events != 4 || len(bt.Rules) != 2 {
		t.Fatalf("backtest = %+v", bt)
	}
	// Only over_filled.json is overpaid by more than 5 (7.51); the small one
	// is overpaid by exactly 5.00, which floats would call more than 5.
	if r := bt.Rules[0]; r.Rule != "overpaid" || r.Matched != 1 || r.Actions["sink"] != 1 {
		t.Errorf("overpaid: %+v", r)
	}
	// cust_207 has two events; once_per lets the rule fire once.
	if r := bt.Rules[1]; r.Matched != 2 || r.OncePer != 1 || r.Actions["sink"] != 1 {
		t.Errorf("big-customer: %+v", r)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(s.requests()); n != 1 {
		t.Errorf("a backtest must run nothing: sink has %d requests, want 1", n)
	}

	// A real replay evaluates the event again with the current config.
	var evs struct {
		Events []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"events"`
	}
	p.getJSON("/api/events?limit=10", &evs)
	var filledID string
	for _, e := range evs.Events {
		if e.Type == "payment.filled" {
			filledID = e.ID
		}
	}
	code, out, errOut := runCLI(t, nil, "replay", filledID, "-c", cfg, "--admin", p.Admin)
	if code != 0 || !strings.Contains(out, "matched [fulfil], 1 new job(s)") {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	s.waitCount(t, 2, 10*time.Second)
}

// reloadCfg is a config whose server settings a hot-reload test edits: a
// payram source (secret durSecret), one rule named rule posting to sink.
func reloadCfg(dataDir, server, sinkURL, rule string) string {
	return fmt.Sprintf(`server:
  data_dir: %s
  shutdown_timeout: 5s
%ssources:
  payram:
    provider: payram
    secret: %s
actions:
  sink:
    type: http
    url: %s/hook
    timeout: 30s
rules:
  - name: %s
    when: status == "FILLED"
    do: [sink]
`, dataDir, server, durSecret, sinkURL, rule)
}

// TestHotReloadServerSettings edits server settings of a running payramd
// and sees them take effect without a restart.
func TestHotReloadServerSettings(t *testing.T) {
	t.Run("max_body", func(t *testing.T) {
		s := newSink(t, nil)
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		cfgPath := writeFile(t, dir, "rules.yaml", reloadCfg(data, "  max_body: 1KiB\n", s.URL, "v1"))
		p := startDaemon(t, cfgPath)
		body := payment("ref_big", 1700000000, 2000) // between 1 KiB and 4 KiB
		if code, a, _ := postSigned(p.Public, body); code != 413 || a.Error != "payload_too_large" {
			t.Fatalf("a %d-byte body under max_body 1KiB: %d %+v", len(body), code, a)
		}
		writeFile(t, dir, "rules.yaml", reloadCfg(data, "  max_body: 4KiB\n", s.URL, "v2"))
		waitRules(t, p, "v2")
		mustAccept(t, p, body)
		if strings.Contains(p.Logs(), "take effect only on restart") {
			t.Errorf("max_body was reported as restart-only:\n%s", p.Logs())
		}
		// And back down.
		writeFile(t, dir, "rules.yaml", reloadCfg(data, "  max_body: 1KiB\n", s.URL, "v3"))
		waitRules(t, p, "v3")
		if code, _, _ := postSigned(p.Public, payment("ref_big2", 1700000000, 2000)); code != 413 {
			t.Fatalf("after max_body went back to 1KiB: %d, want 413", code)
		}
	})

	t.Run("workers", func(t *testing.T) {
		// The sink holds every delivery, so the number it holds at once is
		// the number of jobs running at once.
		var hits, inFlight atomic.Int32
		done := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			inFlight.Add(1)
			defer inFlight.Add(-1)
			select {
			case <-done:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(done) })
		waitFor := func(what string, cond func() bool) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for !cond() {
				if time.Now().After(deadline) {
					t.Fatalf("timed out waiting for %s (sink: %d requests, %d held)", what, hits.Load(), inFlight.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		cfgPath := writeFile(t, dir, "rules.yaml", reloadCfg(data, "  workers: 1\n", srv.URL, "v1"))
		p := startDaemon(t, cfgPath)
		for i := range 5 {
			mustAccept(t, p, payment(fmt.Sprintf("ref_w%d", i), 1700000000, 0))
		}
		waitFor("the first job", func() bool { return inFlight.Load() == 1 })
		time.Sleep(300 * time.Millisecond)
		if n := hits.Load(); n != 1 {
			t.Fatalf("%d jobs started under workers: 1", n)
		}
		writeFile(t, dir, "rules.yaml", reloadCfg(data, "  workers: 3\n", srv.URL, "v2"))
		waitRules(t, p, "v2")
		waitFor("three jobs at once after workers went to 3", func() bool { return inFlight.Load() == 3 })
		time.Sleep(300 * time.Millisecond)
		if n := hits.Load(); n != 3 {
			t.Fatalf("%d jobs started under workers: 3", n)
		}
		if strings.Contains(p.Logs(), "take effect only on restart") {
			t.Errorf("workers was reported as restart-only:\n%s", p.Logs())
		}
	})
}
