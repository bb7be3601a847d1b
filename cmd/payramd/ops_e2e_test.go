//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// The operations tests: the sd_notify protocol against a real socket,
// metrics, the admin API's token, secrets kept out of the logs, the shipped
// systemd unit and the version stamp.

// sdDatagram is one sd_notify message and when it arrived.
type sdDatagram struct {
	at  time.Time
	msg string
}

// notifySocket is a unix datagram socket standing in for systemd's
// $NOTIFY_SOCKET, recording every message.
type notifySocket struct {
	Path string
	mu   sync.Mutex
	msgs []sdDatagram
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 { // sun_path holds 108 bytes
		var err error
		if dir, err = os.MkdirTemp("", "sd"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	ns := &notifySocket{Path: filepath.Join(dir, "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.Path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, sdDatagram{at: time.Now(), msg: string(buf[:n])})
			ns.mu.Unlock()
		}
	}()
	return ns
}

// String lists the messages, for failures.
func (d sdDatagram) String() string { return strconv.Quote(d.msg) }

func (ns *notifySocket) all() []sdDatagram {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return slices.Clone(ns.msgs)
}

// wait returns the index and message of the first datagram at index from
// or later that has every field (such as "READY=1").
func (ns *notifySocket) wait(t *testing.T, from int, timeout time.Duration, fields ...string) (int, sdDatagram) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := ns.all()
		for i := from; i < len(msgs); i++ {
			if sdHasFields(msgs[i].msg, fields...) {
				return i, msgs[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no datagram with %q within %s; got %v", fields, timeout, msgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sdHasFields reports whether an sd_notify message (newline-separated
// VAR=value lines) has each field: "READY=1" exactly, or "MONOTONIC_USEC="
// with any value.
func sdHasFields(msg string, fields ...string) bool {
	lines := strings.Split(msg, "\n")
	for _, f := range fields {
		found := false
		for _, l := range lines {
			if l == f || strings.HasSuffix(f, "=") && strings.HasPrefix(l, f) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func notifyField(msg, name string) string {
	for _, l := range strings.Split(msg, "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			return v
		}
	}
	return ""
}

// monotonicUsec reads CLOCK_MONOTONIC, the clock of MONOTONIC_USEC.
func monotonicUsec(t *testing.T) uint64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		t.Fatal(errno)
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
}

// TestSystemdNotify drives the sd_notify protocol as systemd would with
// Type=notify-reload and WatchdogSec: READY=1 once serving, watchdog pings
// at half WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC in the same
// datagram then READY=1 around every reload, STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	ns := listenNotify(t)
	dir := t.TempDir()
	s := newSink(t, nil)
	cfg := writeFile(t, dir, "rules.yaml", cfgText(filepath.Join(dir, "data"), s.URL, "fulfil", `status == "FILLED"`))
	p := startDaemon(t, cfg, "NOTIFY_SOCKET="+ns.Path, "WATCHDOG_USEC=400000")

	// READY=1 comes first: nothing (no watchdog ping) before it, and the
	// listeners answer by then.
	ready, msg := ns.wait(t, 0, 10*time.Second, "READY=1")
	if ready != 0 {
		t.Errorf("READY=1 is datagram %d, want the first; before it: %v", ready, ns.all()[:ready])
	}
	if notifyField(msg.msg, "STATUS") == "" {
		t.Errorf("READY=1 carries no STATUS=: %q", msg.msg)
	}
	if code := p.getJSON("/healthz", nil); code != 200 {
		t.Errorf("/healthz = %d after READY=1", code)
	}
	if out := send(t, p, cfg, "../../testdata/events/filled.json"); !strings.Contains(out, `"status":"accepted"`) {
		t.Errorf("webhook after READY=1: %s", out)
	}

	// Watchdog: WATCHDOG_USEC=400000 means a ping every 200ms.
	time.Sleep(1300 * time.Millisecond)
	var pings []time.Time
	for _, d := range ns.all()[ready+1:] {
		if d.msg == "WATCHDOG=1" {
			pings = append(pings, d.at)
		}
	}
	if len(pings) < 4 {
		t.Fatalf("%d WATCHDOG=1 pings in 1.3s with WATCHDOG_USEC=400000, want about 6: %v", len(pings), ns.all())
	}
	var gaps []time.Duration
	for i := 1; i < len(pings); i++ {
		gaps = append(gaps, pings[i].Sub(pings[i-1]))
	}
	slices.Sort(gaps)
	if med := gaps[len(gaps)/2]; med < 150*time.Millisecond || med > 300*time.Millisecond {
		t.Errorf("median watchdog interval %s, want about 200ms (half of WATCHDOG_USEC); gaps %v", med, gaps)
	}

	// SIGHUP: RELOADING=1 and MONOTONIC_USEC in one datagram, the time
	// taken after the signal was sent, then READY=1.
	reloadDone := func(trigger string, from int, before uint64) (int, string) {
		t.Helper()
		i, d := ns.wait(t, from, 10*time.Second, "RELOADING=1")
		if !sdHasFields(d.msg, "RELOADING=1", "MONOTONIC_USEC=") {
			t.Errorf("%s: RELOADING=1 without MONOTONIC_USEC in the same datagram (systemctl reload would hang): %q", trigger, d.msg)
		}
		usec, err := strconv.ParseUint(notifyField(d.msg, "MONOTONIC_USEC"), 10, 64)
		if after := monotonicUsec(t); err != nil || usec < before || usec > after {
			t.Errorf("%s: MONOTONIC_USEC=%q, want CLOCK_MONOTONIC between %d and %d", trigger, notifyField(d.msg, "MONOTONIC_USEC"), before, after)
		}
		j, ready := ns.wait(t, i+1, 10*time.Second, "READY=1")
		for _, d := range ns.all()[i+1 : j] {
			if d.msg != "WATCHDOG=1" {
				t.Errorf("%s: between RELOADING=1 and READY=1: %q", trigger, d.msg)
			}
		}
		return j, notifyField(ready.msg, "STATUS")
	}
	from := len(ns.all())
	before := monotonicUsec(t)
	p.signal(syscall.SIGHUP)
	next, status := reloadDone("SIGHUP", from, before)
	p.waitLog(5*time.Second, "config reloaded", "SIGHUP")
	if status != "payramd serving" {
		t.Errorf("STATUS after a reload = %q", status)
	}

	// A reload refused for a broken config still ends with READY=1 (the
	// old config keeps serving), and STATUS says so.
	good, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte("rules: [\n"), 0o644)
	before = monotonicUsec(t)
	next, status = reloadDone("broken file edit", next+1, before)
	p.waitLog(5*time.Second, "config reload refused")
	if !strings.Contains(status, "reload refused") {
		t.Errorf("STATUS after a refused reload = %q, want it to say so", status)
	}

	// The admin API's reload goes through the same steps.
	os.WriteFile(cfg, good, 0o644)
	next, _ = reloadDone("fixed file edit", next+1, monotonicUsec(t))
	before = monotonicUsec(t)
	resp, err := http.Post(p.Admin+"/api/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, status = reloadDone("POST /api/reload", next+1, before); status != "payramd serving" {
		t.Errorf("STATUS after a good reload = %q", status)
	}

	from = len(ns.all())
	p.signal(syscall.SIGTERM)
	ns.wait(t, from, 10*time.Second, "STOPPING=1")
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

// opsAdminReq sends a request to an admin path with an optional Authorization header.
func opsAdminReq(t *testing.T, method, url, auth string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// opsPost POSTs body to the daemon's PayRam source with the headers.
func opsPost(t *testing.T, p *proc, body []byte, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", p.Public+"/webhooks/payram", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func opsPayramSig(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// opsWaitMetric polls until the series has the value.
func opsWaitMetric(t *testing.T, p *proc, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := p.metric(series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetrics checks the SPEC's series move as webhooks, matches, attempts
// and reloads happen, and that nothing of the admin listener is reachable
// on the public one.
func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	ok := newSink(t, nil)
	failing := newSink(t, func(int) int { return 500 })
	cfg := writeFile(t, dir, "rules.yaml", fmt.Sprintf(`server:
  data_dir: %s
sources:
  payram:
    provider: payram
    secret: test-api-key
actions:
  ok:
    type: http
    url: %s/ok
  failing:
    type: http
    url: %s/fail
    retry: {attempts: 2, initial: 50ms, max: 50ms}
rules:
  - name: fulfil
    when: status == "FILLED"
    do: [ok]
  - name: overpaid
    when: status == "OVER_FILLED"
    do: [failing]
`, filepath.Join(dir, "data"), ok.URL, failing.URL))
	p := startDaemon(t, cfg)

	startTS := p.metric("payramd_config_last_reload_success_timestamp_seconds")
	if startTS <= 0 {
		t.Fatalf("payramd_config_last_reload_success_timestamp_seconds = %v at start", startTS)
	}
	if got := p.metric("payramd_config_last_reload_successful"); got != 1 {
		t.Errorf("payramd_config_last_reload_successful = %v at start, want 1", got)
	}
	for _, series := range []string{"go_goroutines", "process_resident_memory_bytes", "process_start_time_seconds", "go_memstats_heap_alloc_bytes"} {
		if got := p.metric(series); got <= 0 {
			t.Errorf("%s = %v, want present and positive (runtime and process collectors)", series, got)
		}
	}
	for _, st := range []string{"pending", "running", "dead"} {
		if got := p.metric(`payramd_jobs{state="` + st + `"}`); got < 0 {
			t.Errorf("payramd_jobs{state=%q} absent", st)
		}
	}
	accepted := `payramd_webhooks_total{outcome="accepted",source="payram"}`
	invalid := `payramd_webhooks_total{outcome="invalid_signature",source="payram"}`
	// Every source's, rule's and action's series exist at 0 from the
	// start, so that an alert on their increase sees the first one.
	for _, series := range []string{accepted, invalid, `payramd_webhooks_total{outcome="unavailable",source="payram"}`,
		`payramd_rule_errors_total{rule="overpaid"}`, `payramd_rule_matches_total{rule="fulfil"}`,
		`payramd_action_attempts_total{action="failing",outcome="dead"}`, `payramd_action_duration_seconds_count{action="ok"}`} {
		if got := p.metric(series); got != 0 {
			t.Errorf("%s = %v before any webhook, want 0", series, got)
		}
	}

	send(t, p, cfg, "../../testdata/events/filled.json")
	body, _ := os.ReadFile("../../testdata/events/open.json")
	if code, out := opsPost(t, p, body, "X-Payram-Signature", opsPayramSig("not-the-key", body)); code != 401 {
		t.Errorf("wrong signature: %d %s", code, out)
	}
	if code, out := opsPost(t, p, body, "API-Key", "not-the-key"); code != 401 {
		t.Errorf("wrong API-Key: %d %s", code, out)
	}
	if got := p.metric(accepted); got != 1 {
		t.Errorf("%s = %v, want 1", accepted, got)
	}
	if got := p.metric(invalid); got != 2 {
		t.Errorf("%s = %v, want 2", invalid, got)
	}
	if got := p.metric(`payramd_rule_matches_total{rule="fulfil"}`); got != 1 {
		t.Errorf("payramd_rule_matches_total{rule=fulfil} = %v, want 1", got)
	}
	ok.waitCount(t, 1, 10*time.Second)
	opsWaitMetric(t, p, `payramd_action_attempts_total{action="ok",outcome="succeeded"}`, 1)
	if got := p.metric(`payramd_action_duration_seconds_count{action="ok"}`); got != 1 {
		t.Errorf(`payramd_action_duration_seconds_count{action="ok"} = %v, want 1`, got)
	}
	if got := p.metric(`payramd_action_duration_seconds_bucket{action="ok",le="+Inf"}`); got != 1 {
		t.Errorf(`payramd_action_duration_seconds_bucket{action="ok",le="+Inf"} = %v, want 1`, got)
	}

	// A failing action: one retry, then dead.
	send(t, p, cfg, "../../testdata/events/over_filled.json")
	opsWaitMetric(t, p, `payramd_action_attempts_total{action="failing",outcome="dead"}`, 1)
	if got := p.metric(`payramd_action_attempts_total{action="failing",outcome="retry"}`); got != 1 {
		t.Errorf(`payramd_action_attempts_total{action="failing",outcome="retry"} = %v, want 1`, got)
	}
	if got := p.metric(`payramd_action_duration_seconds_count{action="failing"}`); got != 2 {
		t.Errorf(`payramd_action_duration_seconds_count{action="failing"} = %v, want 2`, got)
	}
	if got := p.metric(accepted); got != 2 {
		t.Errorf("%s = %v, want 2", accepted, got)
	}
	if got := p.metric("payramd_ingest_duration_seconds_count"); got != 2 {
		t.Errorf("payramd_ingest_duration_seconds_count = %v, want 2", got)
	}
	// The group commit: two ingests and three attempt records at least,
	// each acknowledged after an fsync, and no failed fsync.
	writes, commits, fsyncs := p.metric("payramd_journal_writes_total"), p.metric("payramd_journal_commits_total"), p.metric("payramd_journal_fsyncs_total")
	if writes < 5 || commits < 1 || commits > writes || fsyncs < 1 || fsyncs > commits {
		t.Errorf("journal writes %v, commits %v, fsyncs %v: want 5 <= writes, 1 <= fsyncs <= commits <= writes", writes, commits, fsyncs)
	}
	if got := p.metric("payramd_journal_sync_failed"); got != 0 {
		t.Errorf("payramd_journal_sync_failed = %v, want 0", got)
	}

	// A reload moves the timestamp (whole seconds: wait for the next one).
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	p.signal(syscall.SIGHUP)
	p.waitLog(5*time.Second, "config reloaded", "SIGHUP")
	if got := p.metric("payramd_config_last_reload_success_timestamp_seconds"); got <= startTS {
		t.Errorf("payramd_config_last_reload_success_timestamp_seconds = %v after a reload, want more than %v", got, startTS)
	}
	// A refused reload sets successful to 0 and leaves the timestamp.
	ts := p.metric("payramd_config_last_reload_success_timestamp_seconds")
	os.WriteFile(cfg, []byte("rules: [\n"), 0o644)
	p.waitLog(5*time.Second, "config reload refused")
	if got := p.metric("payramd_config_last_reload_successful"); got != 0 {
		t.Errorf("payramd_config_last_reload_successful = %v after a refused reload, want 0", got)
	}
	if got := p.metric("payramd_config_last_reload_success_timestamp_seconds"); got != ts {
		t.Errorf("a refused reload moved the success timestamp from %v to %v", ts, got)
	}

	t.Run("nothing of the admin listener on the public one", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/healthz", "/readyz", "/api/events", "/api/jobs", "/api/config", "/debug/pprof/"} {
			code, body, _ := opsAdminReq(t, "GET", p.Public+path, "")
			if code != 404 {
				t.Errorf("GET %s on the public listener = %d, want 404", path, code)
			}
			if strings.Contains(body, "payramd_") || strings.Contains(body, "go_goroutines") || strings.Contains(body, `"events"`) {
				t.Errorf("GET %s on the public listener leaks admin content: %.200s", path, body)
			}
		}
		for _, path := range []string{"/api/reload", "/api/jobs/1/retry", "/api/events/x/replay"} {
			if code, _, _ := opsAdminReq(t, "POST", p.Public+path, ""); code != 404 {
				t.Errorf("POST %s on the public listener = %d, want 404", path, code)
			}
		}
		// And they are on the admin listener.
		if code, body, _ := opsAdminReq(t, "GET", p.Admin+"/metrics", ""); code != 200 || !strings.Contains(body, "payramd_webhooks_total") {
			t.Errorf("GET /metrics on the admin listener = %d", code)
		}
	})
}

// TestAdminToken: with admin_token set every admin route but the health
// checks wants it; check refuses an admin listener off loopback without one.
func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, nil)
	const token = "adm1n-t0ken-for-tests"
	cfg := writeFile(t, dir, "rules.yaml", strings.Replace(cfgText(filepath.Join(dir, "data"), s.URL, "fulfil", `status == "FILLED"`),
		"server:\n", "server:\n  admin_token: ${PAYRAMD_ADMIN_TOKEN}\n", 1))
	p := startDaemon(t, cfg, "PAYRAMD_ADMIN_TOKEN="+token)

	routes := []struct{ method, path string }{
		{"GET", "/metrics"}, {"GET", "/api/events"}, {"GET", "/api/events/nope"}, {"GET", "/api/jobs"},
		{"GET", "/api/config"}, {"POST", "/api/reload"}, {"POST", "/api/jobs/1/retry"}, {"POST", "/api/events/nope/replay"},
	}
	for _, r := range routes {
		for _, auth := range []string{"", "Bearer wrong-token", "Bearer " + token + "x", "Bearer " + token[:len(token)-1], "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+token)), token, "bearer" + token} {
			code, body, h := opsAdminReq(t, r.method, p.Admin+r.path, auth)
			if code != 401 {
				t.Errorf("%s %s with Authorization %q = %d, want 401", r.method, r.path, auth, code)
			} else if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || strings.Contains(body, token) {
				t.Errorf("%s %s 401: WWW-Authenticate %q, body %s", r.method, r.path, h.Get("WWW-Authenticate"), body)
			}
		}
	}
	for _, r := range routes {
		code, body, _ := opsAdminReq(t, r.method, p.Admin+r.path, "Bearer "+token)
		if code == 401 || code == 403 {
			t.Errorf("%s %s with the right token = %d: %s", r.method, r.path, code, body)
		}
		if strings.Contains(body, token) {
			t.Errorf("%s %s shows the admin token", r.method, r.path)
		}
	}
	if code, body, _ := opsAdminReq(t, "GET", p.Admin+"/metrics", "Bearer "+token); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics with the token = %d", code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _, _ := opsAdminReq(t, "GET", p.Admin+path, ""); code != 200 {
			t.Errorf("GET %s without a token = %d, want 200", path, code)
		}
	}
	// The CLI takes the token from the environment.
	if code, out, errOut := runCLI(t, []string{"PAYRAMD_ADMIN_TOKEN=" + token}, "events", "-c", cfg, "--admin", p.Admin); code != 0 {
		t.Errorf("payramd events with the token: %d %s %s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, []string{"PAYRAMD_ADMIN_TOKEN=wrong"}, "events", "-c", cfg, "--admin", p.Admin)
	if code == 0 || !strings.Contains(errOut+out, "401") {
		t.Errorf("payramd events with a wrong token: %d %s %s", code, out, errOut)
	}

	t.Run("the CLI reads the admin address from a config that does not load", func(t *testing.T) {
		// As in an operator's shell: the token and a source's secret live in
		// the service's environment file, so the config has errors there.
		addr := strings.TrimPrefix(p.Admin, "http://")
		text := strings.Replace(cfgText(filepath.Join(dir, "data"), s.URL, "fulfil", `status == "FILLED"`),
			"server:\n", "server:\n  admin_listen: \""+addr+"\"\n  admin_token: ${PAYRAMD_ADMIN_TOKEN}\n", 1)
		cliCfg := writeFile(t, dir, "cli.yaml", strings.Replace(text, "sources:\n",
			"sources:\n  other:\n    provider: hmac\n    header: X-Sig\n    secret: ${OTHER_SECRET_ONLY_IN_THE_SERVICE_ENV}\n", 1))
		code, out, errOut := runCLI(t, nil, "jobs", "-c", cliCfg)
		if code != 1 || !strings.Contains(errOut, "warning: "+cliCfg+" does not load in this shell, which does not set PAYRAMD_ADMIN_TOKEN, OTHER_SECRET_ONLY_IN_THE_SERVICE_ENV (the service's environment does)") ||
			!strings.Contains(errOut, "401 Unauthorized: unauthorized (no admin token: ") {
			t.Errorf("payramd jobs with no token anywhere: %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		// A config broken for another reason still says it has errors.
		broken := writeFile(t, dir, "broken.yaml", strings.Replace(text, "rules:\n", "rules:\n  - name: typo\n    whne: \"true\"\n    do: [sink]\n", 1))
		if code, out, errOut := runCLI(t, nil, "jobs", "-c", broken); code != 1 || !strings.Contains(errOut, "warning: "+broken+" has errors (payramd check -c "+broken+" lists them)") {
			t.Errorf("payramd jobs with a config that has errors: %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		// Both found (the address in the broken config, the token in the
		// environment): nothing to warn about.
		code, out, errOut = runCLI(t, []string{"PAYRAMD_ADMIN_TOKEN=" + token}, "jobs", "-c", cliCfg)
		if code != 0 || strings.Contains(errOut, "warning") || strings.Contains(errOut, token) {
			t.Errorf("payramd jobs with the token in the environment and the address from the broken config: %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		for _, cmd := range []string{"jobs", "reload"} {
			code, out, errOut = runCLI(t, []string{"PAYRAMD_ADMIN_TOKEN=wrong"}, cmd, "--admin", p.Admin)
			if code != 1 || !strings.Contains(errOut, "the admin token sent is not the daemon's") {
				t.Errorf("payramd %s with a wrong token: %d\nstdout %s\nstderr %s", cmd, code, out, errOut)
			}
		}
	})

	t.Run("check refuses admin_listen off loopback without a token", func(t *testing.T) {
		base := cfgText(filepath.Join(dir, "data2"), s.URL, "fulfil", `status == "FILLED"`)
		for _, addr := range []string{"0.0.0.0:8081", ":8081", "[::]:8081", "203.0.113.7:8081"} {
			c := writeFile(t, t.TempDir(), "rules.yaml", strings.Replace(base, "server:\n", "server:\n  admin_listen: \""+addr+"\"\n", 1))
			code, out, errOut := runCLI(t, nil, "check", "-c", c)
			if code != 1 || !strings.Contains(out, "admin_token is required") || !strings.Contains(out, "rules.yaml:") {
				t.Errorf("check with admin_listen %s and no token: %d %s %s", addr, code, out, errOut)
			}
			withToken := strings.Replace(base, "server:\n", "server:\n  admin_listen: \""+addr+"\"\n  admin_token: ${PAYRAMD_ADMIN_TOKEN}\n", 1)
			c = writeFile(t, t.TempDir(), "rules.yaml", withToken)
			if code, out, errOut := runCLI(t, []string{"PAYRAMD_ADMIN_TOKEN=" + token}, "check", "-c", c); code != 0 {
				t.Errorf("check with admin_listen %s and a token: %d %s %s", addr, code, out, errOut)
			}
		}
		for _, addr := range []string{"127.0.0.1:8081", "localhost:8081", "[::1]:8081"} {
			c := writeFile(t, t.TempDir(), "rules.yaml", strings.Replace(base, "server:\n", "server:\n  admin_listen: \""+addr+"\"\n", 1))
			if code, out, errOut := runCLI(t, nil, "check", "-c", c); code != 0 {
				t.Errorf("check with admin_listen %s and no token: %d %s %s", addr, code, out, errOut)
			}
		}
		// The PAYRAMD_ADMIN_LISTEN override is held to the same rule: run
		// refuses to start.
		c := writeFile(t, t.TempDir(), "rules.yaml", base)
		code, out, errOut := runCLI(t, []string{"PAYRAMD_ADMIN_LISTEN=0.0.0.0:0", "PAYRAMD_LISTEN=127.0.0.1:0"}, "run", "-c", c, "--log-format", "json")
		if code != 1 || !strings.Contains(errOut, "admin_token is required") {
			t.Errorf("run with PAYRAMD_ADMIN_LISTEN=0.0.0.0:0 and no token: %d %s %s", code, out, errOut)
		}
		// The hint names the file, so that pasting it checks the same one.
		if !strings.Contains(errOut, "run `payramd check -c "+c+"` for the list") {
			t.Errorf("run's hint does not name the config it was given: %s", errOut)
		}
	})
}

// opsSMTP is a mail server that refuses every login, recording the AUTH
// lines it got.
type opsSMTP struct {
	ln   net.Listener
	mu   sync.Mutex
	auth []string
}

func newOpsSMTP(t *testing.T) *opsSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &opsSMTP{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *opsSMTP) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprint(c, "220 fake.test ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch cmd {
		case "EHLO", "HELO":
			fmt.Fprint(c, "250-fake.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
		case "AUTH":
			f.mu.Lock()
			f.auth = append(f.auth, line)
			f.mu.Unlock()
			fmt.Fprint(c, "535 5.7.8 Authentication credentials invalid\r\n")
		case "QUIT":
			fmt.Fprint(c, "221 bye\r\n")
			return
		case "RSET", "NOOP":
			fmt.Fprint(c, "250 ok\r\n")
		default:
			fmt.Fprint(c, "503 5.5.1 authenticate first\r\n")
		}
	}
}

func (f *opsSMTP) authLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.auth)
}

// TestNoSecretsInLogs runs the daemon at debug level through bad
// signatures (a wrong key, a wrong API-Key value, the key itself in the
// signature header), a legacy delivery carrying the real key in API-Key,
// and failing actions whose URLs, headers and SMTP password are secrets,
// then checks no secret appears in any log line or admin API answer.
func TestNoSecretsInLogs(t *testing.T) {
	dir := t.TempDir()
	slack := newSink(t, func(int) int { return 500 })
	smtp := newOpsSMTP(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	const (
		apiKey       = "PAYRAMKEYs3cr3t0001"
		wrongSignKey = "WRONGSIGNINGKEY0002"
		oldKey       = "OLDROTATEDKEY0003"
		slackSecret  = "SLACKPATHSECRET0004"
		urlPassword  = "URLPASSWORD0005"
		pathSecret   = "ERPPATHSECRET0006"
		querySecret  = "QUERYSECRET0007"
		headerSecret = "HEADERBEARER0008"
		smtpPassword = "SMTPPASSWORD0009"
		adminToken   = "ADMINTOKEN0010"
		wrongToken   = "WRONGADMINTOKEN0011"
	)
	slackURL := slack.URL + "/services/T000/B000/" + slackSecret
	erpURL := "http://erp:" + urlPassword + "@" + closedAddr + "/orders/" + pathSecret + "?token=" + querySecret
	_, smtpPort, _ := net.SplitHostPort(smtp.ln.Addr().String())
	cfg := writeFile(t, dir, "rules.yaml", fmt.Sprintf(`server:
  data_dir: %s
  admin_token: ${PAYRAMD_ADMIN_TOKEN}
sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY}
actions:
  ops-slack:
    type: slack
    url: ${SLACK_WEBHOOK_URL}
    text: "paid {{ reference_id }}"
    retry: {attempts: 2, initial: 50ms, max: 50ms}
  erp:
    type: http
    url: ${ERP_URL}
    headers:
      Authorization: "Bearer ${ERP_TOKEN}"
    retry: {attempts: 2, initial: 50ms, max: 50ms}
    timeout: 2s
  mail:
    type: email
    smtp:
      host: 127.0.0.1
      port: %s
      tls: none
      username: mailer
      password: ${SMTP_PASSWORD}
    from: payramd@example.com
    to: [finance@example.com]
    subject: "paid {{ reference_id }}"
    body: "paid"
    retry: {attempts: 2, initial: 50ms, max: 50ms}
rules:
  - name: notify
    when: "true"
    do: [ops-slack, erp, mail]
`, filepath.Join(dir, "data"), smtpPort))
	env := []string{
		"PAYRAM_API_KEY=" + apiKey, "SLACK_WEBHOOK_URL=" + slackURL, "ERP_URL=" + erpURL, "ERP_TOKEN=" + headerSecret,
		"SMTP_PASSWORD=" + smtpPassword, "PAYRAMD_ADMIN_TOKEN=" + adminToken,
	}
	p := startDaemon(t, cfg, env...)
	auth := "Bearer " + adminToken

	body, _ := os.ReadFile("../../testdata/events/filled.json")
	refusals := []struct {
		name   string
		header []string
	}{
		{"signature made with a wrong key", []string{"X-Payram-Signature", opsPayramSig(wrongSignKey, body)}},
		{"old key in API-Key", []string{"API-Key", oldKey}},
		{"the key itself as the signature", []string{"X-Payram-Signature", apiKey}},
		{"the key after sha256=", []string{"X-Payram-Signature", "sha256=" + apiKey}},
		{"valid API-Key but a wrong signature", []string{"API-Key", apiKey, "X-Payram-Signature", opsPayramSig(oldKey, body)}},
	}
	for _, r := range refusals {
		if code, out := opsPost(t, p, body, r.header...); code != 401 {
			t.Errorf("%s: %d %s, want 401", r.name, code, out)
		}
	}
	// Accepted: the real key in the legacy header, and a signed delivery.
	if code, out := opsPost(t, p, body, "API-Key", apiKey); code != 200 {
		t.Fatalf("legacy API-Key delivery: %d %s", code, out)
	}
	other, _ := os.ReadFile("../../testdata/events/over_filled.json")
	if code, out := opsPost(t, p, other, "X-Payram-Signature", opsPayramSig(apiKey, other)); code != 200 {
		t.Fatalf("signed delivery: %d %s", code, out)
	}
	// Admin calls with a wrong and the right token.
	opsAdminReq(t, "GET", p.Admin+"/api/events", "Bearer "+wrongToken)
	opsAdminReq(t, "POST", p.Admin+"/api/reload", "Bearer "+wrongToken)

	// Every action fails: two events × (slack 2 attempts, erp 2, mail 1).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var jobs struct {
			Jobs []struct{ State string } `json:"jobs"`
		}
		_, b, _ := opsAdminReq(t, "GET", p.Admin+"/api/jobs?state=dead", auth)
		if err := json.Unmarshal([]byte(b), &jobs); err == nil && len(jobs.Jobs) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want 6 dead jobs; /api/jobs?state=dead: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The secrets were really in play: the Slack sink saw its secret path,
	// the mail server the password.
	if reqs := slack.requests(); len(reqs) < 2 || !strings.HasSuffix(reqs[0].Path, slackSecret) {
		t.Errorf("the Slack sink got %d requests (%v)", len(reqs), reqs)
	}
	var sawPassword bool
	for _, l := range smtp.authLines() {
		if f := strings.Fields(l); len(f) == 3 {
			dec, _ := base64.StdEncoding.DecodeString(f[2])
			sawPassword = sawPassword || strings.Contains(string(dec), smtpPassword)
		}
	}
	if !sawPassword {
		t.Errorf("the fake SMTP server never got the password: %q", smtp.authLines())
	}
	p.waitLog(5*time.Second, "action failed", `"action":"erp"`)
	p.waitLog(5*time.Second, "action failed", `"action":"mail"`)
	p.waitLog(5*time.Second, "action failed", `"action":"ops-slack"`)

	// The admin API's answers are under the same rule.
	var apiOut strings.Builder
	var evs struct {
		Events []struct{ ID string } `json:"events"`
	}
	_, b, _ := opsAdminReq(t, "GET", p.Admin+"/api/events", auth)
	apiOut.WriteString(b)
	if err := json.Unmarshal([]byte(b), &evs); err != nil || len(evs.Events) != 2 {
		t.Fatalf("/api/events: %v %s", err, b)
	}
	for _, e := range evs.Events {
		_, b, _ := opsAdminReq(t, "GET", p.Admin+"/api/events/"+e.ID, auth)
		apiOut.WriteString(b)
	}
	for _, path := range []string{"/api/jobs", "/api/config"} {
		_, b, _ := opsAdminReq(t, "GET", p.Admin+path, auth)
		apiOut.WriteString(b)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}

	logs := p.Logs()
	if !strings.Contains(logs, "webhook refused") || !strings.Contains(logs, "action failed") {
		t.Fatalf("the run logged no refusals or failures:\n%s", logs)
	}
	plainAuth := base64.StdEncoding.EncodeToString([]byte("\x00mailer\x00" + smtpPassword))
	secrets := []string{apiKey, wrongSignKey, oldKey, slackSecret, urlPassword, pathSecret, querySecret, headerSecret, smtpPassword, adminToken, wrongToken, plainAuth,
		opsPayramSig(wrongSignKey, body)[7:], opsPayramSig(oldKey, body)[7:]}
	for _, sec := range secrets {
		for i, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, sec) {
				t.Errorf("log line %d holds the secret %q:\n%s", i+1, sec, line)
			}
		}
		if strings.Contains(apiOut.String(), sec) {
			t.Errorf("the admin API shows the secret %q", sec)
		}
	}
	if t.Failed() {
		t.Logf("admin API answers:\n%s", apiOut.String())
	}
}

// unitExecStart matches the binary path of the unit's ExecStart.
var unitExecStart = regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/payramd `)

// systemdVersion is the major version systemd-analyze reports (0 if unknown).
func systemdVersion(analyze string) int {
	out, err := exec.Command(analyze, "--version").Output()
	if err != nil {
		return 0
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return 0
	}
	v, _ := strconv.Atoi(f[1])
	return v
}

// verifyUnit runs systemd-analyze verify on unit (rewritten to start bin)
// and returns its output and whether it succeeded.
func verifyUnit(t *testing.T, analyze, unit, bin string) (string, bool) {
	t.Helper()
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	if !unitExecStart.Match(text) {
		t.Fatalf("%s: no ExecStart=/usr/local/bin/payramd line", unit)
	}
	text = unitExecStart.ReplaceAll(text, []byte("ExecStart="+bin+" "))
	dir := t.TempDir()
	path := filepath.Join(dir, "payramd.service")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	// Only what concerns this unit: verify may also talk about the host.
	var ours []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "payramd") {
			ours = append(ours, l)
		}
	}
	return strings.Join(ours, "\n"), err == nil
}

// TestSystemdUnit verifies the shipped unit with systemd-analyze (nothing
// is installed on the machine: the unit is copied and pointed at the test
// binary), and what `make install` writes into a staging directory.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../contrib/payramd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Type=notify-reload", "ExecStart=/usr/local/bin/payramd run -c /etc/payramd/rules.yaml --log-format json",
		"WatchdogSec=", "StateDirectory=payramd", "ConfigurationDirectory=payramd", "DynamicUser=yes",
		"EnvironmentFile=-/etc/payramd/payramd.env", "Environment=PAYRAMD_DATA_DIR=/var/lib/payramd",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure", "TimeoutStopSec=", "CapabilityBoundingSet=\n",
		"#LoadCredential=payram_api_key:",
	} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("contrib/payramd.service lacks %q", want)
		}
	}
	analyze, _ := exec.LookPath("systemd-analyze")
	v := 0
	if analyze != "" {
		v = systemdVersion(analyze)
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		if analyze == "" {
			t.Skip("systemd-analyze is not installed")
		}
		out, ok := verifyUnit(t, analyze, "../../contrib/payramd.service", cliPath)
		if !ok {
			t.Fatalf("systemd-analyze verify contrib/payramd.service failed:\n%s", out)
		}
		if v >= 253 || v == 0 {
			if out != "" {
				t.Errorf("systemd-analyze verify (systemd %d) complains:\n%s", v, out)
			}
			return
		}
		// Before 253 the only complaint allowed is notify-reload, which
		// `make install` replaces there (checked below).
		for _, l := range strings.Split(out, "\n") {
			if l != "" && !strings.Contains(l, "Failed to parse service type, ignoring: notify-reload") {
				t.Errorf("systemd-analyze verify (systemd %d) complains:\n%s", v, l)
			}
		}
	})

	t.Run("make install", func(t *testing.T) {
		if _, err := exec.LookPath("make"); err != nil {
			t.Skip("make is not installed")
		}
		dest := t.TempDir()
		cmd := exec.Command("make", "-o", "build", "install", "BIN="+cliPath, "DESTDIR="+dest)
		cmd.Dir = "../.."
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install DESTDIR=%s: %v\n%s", dest, err, b)
		}
		for path, mode := range map[string]os.FileMode{
			"usr/local/bin/payramd": 0o755, "etc/systemd/system/payramd.service": 0o644,
			"etc/payramd/rules.yaml": 0o644, "etc/payramd/payramd.env": 0o600,
			"etc/payramd/testdata/events/filled.json": 0o644,
		} {
			st, err := os.Stat(filepath.Join(dest, path))
			if err != nil {
				t.Errorf("make install: %v", err)
			} else if st.Mode().Perm() != mode {
				t.Errorf("make install: %s has mode %o, want %o", path, st.Mode().Perm(), mode)
			}
		}
		installed := filepath.Join(dest, "etc/systemd/system/payramd.service")
		text, _ := os.ReadFile(installed)
		if v > 0 && v < 253 && !strings.Contains(string(text), "\nType=notify\nExecReload=/bin/kill -HUP $MAINPID\n") {
			t.Errorf("systemd %d: make install did not switch the unit to Type=notify + ExecReload:\n%s", v, text)
		}
		if analyze != "" {
			if out, ok := verifyUnit(t, analyze, installed, filepath.Join(dest, "usr/local/bin/payramd")); !ok || out != "" {
				t.Errorf("systemd-analyze verify of the unit make install wrote (systemd %d): ok=%v\n%s", v, ok, out)
			}
		}
		// The installed example config checks with the example environment
		// file sourced the way docs/vps.md does it, and its tests: pass with
		// the installed sample events.
		for _, sub := range []string{"check", "test"} {
			sh := exec.Command("sh", "-c", `set -a; . "$1"; set +a; cd /; exec "$2" "$3" -c "$4"`, "sh",
				filepath.Join(dest, "etc/payramd/payramd.env"), filepath.Join(dest, "usr/local/bin/payramd"), sub, filepath.Join(dest, "etc/payramd/rules.yaml"))
			sh.Env = baseEnv()
			if b, err := sh.CombinedOutput(); err != nil {
				t.Errorf("payramd %s of the installed example with payramd.env: %v\n%s", sub, err, b)
			}
		}
	})
}

// TestCredentialsSecretFile: a secret from systemd credentials
// (LoadCredential= puts it in $CREDENTIALS_DIRECTORY), with the fallback
// the unit's comment suggests for running check in a shell.
func TestCredentialsSecretFile(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	writeFile(t, creds, "payram_api_key", "cred-key\n")
	s := newSink(t, nil)
	cfg := writeFile(t, dir, "rules.yaml", strings.Replace(cfgText(filepath.Join(dir, "data"), s.URL, "fulfil", `status == "FILLED"`),
		"    secret: test-api-key\n", "    secret_file: ${CREDENTIALS_DIRECTORY:-"+creds+"}/payram_api_key\n", 1))
	if code, out, errOut := runCLI(t, nil, "check", "-c", cfg); code != 0 {
		t.Errorf("check without CREDENTIALS_DIRECTORY: %d %s %s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, []string{"CREDENTIALS_DIRECTORY=" + filepath.Join(dir, "none")}, "check", "-c", cfg); code != 1 || !strings.Contains(out, "secret_file: cannot read the secret") {
		t.Errorf("check with a CREDENTIALS_DIRECTORY lacking the file: %d %s", code, out)
	}
	p := startDaemon(t, cfg, "CREDENTIALS_DIRECTORY="+creds)
	body, _ := os.ReadFile("../../testdata/events/filled.json")
	if code, out := opsPost(t, p, body, "X-Payram-Signature", opsPayramSig("cred-key", body)); code != 200 {
		t.Errorf("delivery signed with the credential: %d %s", code, out)
	}
	if code, out := opsPost(t, p, body, "X-Payram-Signature", opsPayramSig("cred-key\n", body)); code != 401 {
		t.Errorf("the credential's trailing newline must not be part of the key: %d %s", code, out)
	}
}

// TestVersionStamp: `payramd version` prints what -ldflags -X stamped.
func TestVersionStamp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "payramd")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9 -X main.commit=abc1234", "-o", bin, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("payramd %s: %v", arg, err)
		}
		if !regexp.MustCompile(`^payramd v9\.9\.9 \(commit abc1234, go1\.\d+[^ ]* linux/[a-z0-9]+\)\n$`).Match(out) {
			t.Errorf("payramd %s = %q", arg, out)
		}
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	var v map[string]string
	if err != nil || json.Unmarshal(out, &v) != nil || v["version"] != "v9.9.9" || v["commit"] != "abc1234" ||
		!strings.HasPrefix(v["go"], "go1.") || !strings.HasPrefix(v["platform"], "linux/") {
		t.Errorf("payramd version --json = %q, %v", out, err)
	}
}

// TestAdminWithoutTokenRefusesForeignHost: with no admin_token the admin
// API is reachable from loopback only, and a web page must not reach it
// by DNS rebinding (a name of the attacker's resolving to 127.0.0.1, sent
// as Host by the browser). Addresses and localhost work; health checks
// answer whatever the Host.
func TestAdminWithoutTokenRefusesForeignHost(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, nil)
	p := startDaemon(t, writeFile(t, dir, "rules.yaml", cfgText(filepath.Join(dir, "data"), s.URL, "fulfil", `status == "FILLED"`)))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(p.Admin, "http://"))
	get := func(host, path string) int {
		t.Helper()
		req, err := http.NewRequest("GET", p.Admin+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, host := range []string{"rebind.evil.example:" + port, "rebind.evil.example", "127.0.0.1.evil.example:" + port} {
		for _, path := range []string{"/api/events", "/api/config", "/metrics"} {
			if code := get(host, path); code != 403 {
				t.Errorf("GET %s with Host %s = %d, want 403", path, host, code)
			}
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "[::1]:" + port} {
		if code := get(host, "/api/events"); code != 200 {
			t.Errorf("GET /api/events with Host %s = %d, want 200", host, code)
		}
	}
	if code := get("rebind.evil.example", "/healthz"); code != 200 {
		t.Errorf("/healthz with a foreign Host = %d, want 200", code)
	}
}

// TestCheckWarnsAboutSecretsWrittenInTheConfig: a secret written in
// rules.yaml itself (a source's secret, a Slack webhook URL, an
// Authorization header) is a warning at its place, never an error, and the
// warning never holds the secret; the same secrets taken from the
// environment or from secret_file are silent.
func TestCheckWarnsAboutSecretsWrittenInTheConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "creds/shop", "shop-secret-from-a-file\n")
	cfg := writeFile(t, dir, "rules.yaml", `server:
  data_dir: `+filepath.Join(dir, "data")+`
sources:
  payram:
    provider: payram
    secret: lit-api-key-5b1d
  shop:
    provider: payram
    secret_file: creds/shop
actions:
  ops-slack:
    type: slack
    url: https://hooks.slack.com/services/T0/B0/lit-hook-9c2e
    text: paid
  env-slack:
    type: slack
    url: ${SLACK_WEBHOOK_URL}
    text: paid
  erp:
    type: http
    url: https://erp.example/orders
    headers:
      Authorization: "Bearer lit-token-77aa"
      X-Api-Key: "${ERP_API_KEY}"
      X-Request-Token: "{{ reference_id }}"
rules:
  - name: paid
    when: status == "FILLED"
    do: [ops-slack, env-slack, erp]
`)
	env := []string{"SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T1/B1/env-hook-31f0", "ERP_API_KEY=env-api-key-0d4c"}
	code, out, errOut := runCLI(t, env, "check", "-c", cfg)
	const tail = " is written in the config; anyone who can read rules.yaml can use it: put it in the environment ("
	want := []string{
		cfg + ":6:13: warning: secret" + tail + "secret: ${PAYRAM_API_KEY}, set in the service's EnvironmentFile) or in secret_file",
		cfg + ":13:43: warning: url: this Slack webhook URL" + tail + "url: ${SLACK_WEBHOOK_URL}, set in the service's EnvironmentFile)",
		cfg + ":23:30: warning: headers: the value of Authorization" + tail + "Authorization: \"Bearer ${ERP_TOKEN}\", set in the service's EnvironmentFile)",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || !slices.Equal(got, want) || !strings.Contains(errOut, "OK: 2 source(s), 1 rule(s), 3 action(s), 0 test(s), 3 warning(s)") {
		t.Errorf("check: %d\n got: %s\nwant: %s\nstderr %s", code, strings.Join(got, "\n      "), strings.Join(want, "\n      "), errOut)
	}
	for _, secret := range []string{"lit-api-key", "5b1d", "lit-hook", "9c2e", "T0/B0", "lit-token", "77aa", "env-hook", "env-api-key", "shop-secret"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("check printed (part of) a secret, %q:\n%s%s", secret, out, errOut)
		}
	}
}

// TestCheckWarnsAboutValuesCutByComments: the QA pass's traps, through
// check: the text and message a merchant meant lose everything after an
// unquoted ` #`; check names the place of the #, what was kept and what was
// dropped, once per value, and the config stays valid. An ordinary comment
// is silent.
func TestCheckWarnsAboutValuesCutByComments(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", `server:
  data_dir: `+filepath.Join(dir, "data")+`
sources:
  payram:
    provider: payram
    secret: ${PAYRAM_API_KEY}
actions:
  ops-slack:
    type: slack
    url: ${SLACK_WEBHOOK_URL}
    text: Order #{{ reference_id }} paid
  note:
    type: log
    level: info  # verbose
    message: Refund #{{ id }}
rules:
  - name: paid
    when: status == "FILLED" # only paid
    do: [ops-slack, note]
`)
	// The secrets come from the environment, as the service's do, so that
	// the output holds the comment warnings only.
	env := []string{"PAYRAM_API_KEY=test-api-key", "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/x"}
	code, out, errOut := runCLI(t, env, "check", "-c", cfg)
	const warn = ": warning: YAML reads an unquoted ` #` as the start of a comment, so "
	want := []string{
		cfg + ":11:17" + warn + `this value is "Order" and "#{{ reference_id }} paid" is not part of it; if it belongs to the value, quote the whole value: text: "Order #{{ reference_id }} paid"`,
		cfg + ":15:21" + warn + `this value is "Refund" and "#{{ id }}" is not part of it; if it belongs to the value, quote the whole value: message: "Refund #{{ id }}"`,
		cfg + ":18:11: warning: everything after ` # only paid` is a YAML comment, not part of the condition; if it belongs to it, put the whole condition in quotes",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || !slices.Equal(got, want) || !strings.Contains(errOut, "3 warning(s)") {
		t.Errorf("check: %d\n got: %s\nwant: %s\nstderr %s", code, strings.Join(got, "\n      "), strings.Join(want, "\n      "), errOut)
	}
}

// A start refused for a config error logs each error once, as an error; a
// warning in the same config stays a warning (daemon.New logged it) and is
// not counted among the problems that stopped the start. The summary line
// comes after the errors it sums up.
func TestRunRefusedStartKeepsWarningsWarnings(t *testing.T) {
	dir := t.TempDir()
	// cfgText writes the source's secret into the file: a warning.
	c := writeFile(t, dir, "rules.yaml", cfgText(filepath.Join(dir, "data"), "http://127.0.0.1:9", "r", `status == "FILLED" &&`))
	code, out, errOut := runCLI(t, []string{"PAYRAMD_LISTEN=127.0.0.1:0", "PAYRAMD_ADMIN_LISTEN=127.0.0.1:0"}, "run", "-c", c, "--log-format", "json")
	if code != 1 {
		t.Fatalf("run with an invalid config: %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, line := range strings.Split(errOut, "\n") {
		if strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, "warning:") {
			t.Errorf("a warning logged as an error: %s", line)
		}
	}
	if n := strings.Count(errOut, "warning: secret is written in the config"); n != 1 {
		t.Errorf("the warning is logged %d times, want once:\n%s", n, errOut)
	}
	summary := strings.Index(errOut, "the config is invalid (1 error);")
	if summary < 0 {
		t.Fatalf("no summary counting 1 error:\n%s", errOut)
	}
	if last := strings.LastIndex(errOut, `"msg":"config error"`); last > summary {
		t.Errorf("the summary comes before the errors it sums up:\n%s", errOut)
	}
}
