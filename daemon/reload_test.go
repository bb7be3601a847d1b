package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/internal/testcert"
)

// writeConfig writes a config with one PayRam source (secret "k"), one log
// action and one rule with the condition when, its listeners on loopback
// ports of the system's choosing and its journal next to the file.
func writeConfig(t *testing.T, path, when string) {
	t.Helper()
	cfg := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  data_dir: %s
sources:
  payram:
    provider: payram
    secret: k
actions:
  note:
    type: log
    message: "{{ reference_id }}"
rules:
  - name: big
    when: %s
    do: [note]
`, filepath.Join(filepath.Dir(path), "data"), when)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// thresholdRule is the condition TestReloadsRaceEvaluations swaps.
func thresholdRule(n int) string { return fmt.Sprintf(`status == "FILLED" && amount > %d`, n) }

// TestReloadsRaceEvaluations swaps the config 100 times while events are
// evaluated concurrently (run with -race): each evaluation sees one whole
// snapshot, old or new, and never fails.
func TestReloadsRaceEvaluations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeConfig(t, path, thresholdRule(0))
	d, err := New(Options{Load: LoadOptions{Path: path}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ev := &engine.Event{ID: "e1", Source: "payram", Provider: "payram", Type: "payment.filled", ReceivedAt: time.Now(),
		Payload: map[string]any{"status": "FILLED", "reference_id": "r1", "amount": engine.MustDecimal("50")}}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var evals, matches int64
	var mu sync.Mutex
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, eval, err := d.evaluate(d.Snapshot(), ev)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				evals++
				matches += int64(len(eval.Matches))
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < 100; i++ {
		// Thresholds alternate below and above the amount (50).
		writeConfig(t, path, thresholdRule([]int{10, 90}[i%2]))
		if !d.Reload("test") {
			t.Fatalf("reload %d refused", i)
		}
	}
	close(stop)
	wg.Wait()
	if evals == 0 {
		t.Fatal("no evaluation ran")
	}
	if matches == 0 || matches == evals {
		t.Logf("evaluations %d, matches %d (both configs were seen: %v)", evals, matches, matches > 0 && matches < evals)
	}
	// The last config (threshold 90) is in force.
	if _, eval, _ := d.evaluate(d.Snapshot(), ev); len(eval.Matches) != 0 {
		t.Errorf("after the last reload the rule still matches amount 50 > 90")
	}
}

// TestReloadKeepsAdminTokenOffLoopback: the admin listener stays where it
// was bound, so an edit that moves admin_listen to loopback and drops the
// token must not leave the running, public admin API without one.
func TestReloadKeepsAdminTokenOffLoopback(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	base := "sources:\n  payram:\n    provider: payram\n    secret: k\nactions:\n  note:\n    type: log\n    message: x\nrules:\n  - name: r\n    when: \"true\"\n    do: [note]\n"
	write := func(server string) {
		if err := os.WriteFile(path, []byte("server:\n  data_dir: "+filepath.Join(dir, "data")+"\n"+server+base), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("  admin_listen: \"0.0.0.0:18081\"\n  admin_token: s3cret\n")
	d, err := New(Options{Load: LoadOptions{Path: path}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	write("  admin_listen: \"127.0.0.1:8081\"\n")
	if ok, st := d.reload("test"); ok {
		t.Fatalf("reload dropping the token of a public admin listener was accepted: %+v", st)
	}
	if got := d.Snapshot().Config.Server.AdminToken.Reveal(); got != "s3cret" {
		t.Errorf("admin token after the refused reload = %q", got)
	}
	// Keeping the token (or changing it) reloads fine.
	write("  admin_listen: \"127.0.0.1:8081\"\n  admin_token: n3w\n")
	if ok, st := d.reload("test"); !ok {
		t.Fatalf("reload refused: %+v", st)
	}
	if got := d.Snapshot().Config.Server.AdminListen; got != "0.0.0.0:18081" {
		t.Errorf("admin_listen after reload = %q, want the bound 0.0.0.0:18081", got)
	}
}

// TestReloadNamesRestartOnlyChanges: a reload that edits a setting bound at
// start keeps the running value and its warning names that setting, not a
// list of every such setting.
func TestReloadNamesRestartOnlyChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeConfig(t, path, `status == "FILLED"`)
	var logs bytes.Buffer
	d, err := New(Options{Load: LoadOptions{Path: path}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(text), "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:18099\n", 1)
	if err := os.WriteFile(path, []byte(edited+"  - name: second\n    when: \"true\"\n    do: [note]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, st := d.reload("test"); !ok {
		t.Fatalf("reload refused: %+v", st)
	}
	if got := d.Snapshot().Config.Server.Listen; got != "127.0.0.1:0" {
		t.Errorf("listen after reload = %q, want the running 127.0.0.1:0", got)
	}
	if n := len(d.Snapshot().Rules.Rules); n != 2 {
		t.Errorf("the rest of the edit was not applied: %d rules", n)
	}
	if !strings.Contains(logs.String(), "changed=listen\n") {
		t.Errorf("the warning does not name listen alone:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "shutdown_timeout") {
		t.Errorf("the warning names settings that did not change:\n%s", logs.String())
	}
}

// TestHashFilesSameAcrossAnIncludeChange: after an include file is added or
// removed, the snapshot the reload replaced and the one it loaded see the
// same files on disk, so they must fingerprint them the same; otherwise the
// watcher's next check (the 10 s poll) reloads the unchanged config again.
func TestHashFilesSameAcrossAnIncludeChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	writeConfig(t, path, `"true"`)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append([]byte("include: [rules.d/*.yaml]\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "rules.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	load := func() *Snapshot {
		t.Helper()
		snap, probs := Load(LoadOptions{Path: path})
		if snap == nil {
			t.Fatal(probs.Err())
		}
		return snap
	}
	before := load()
	extra := filepath.Join(dir, "rules.d", "extra.yaml")
	if err := os.WriteFile(extra, []byte("rules:\n  - name: extra\n    when: \"true\"\n    do: [note]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	after := load()
	if len(after.Config.Files) != len(before.Config.Files)+1 {
		t.Fatalf("files before %v, after %v", before.Config.Files, after.Config.Files)
	}
	if hashFiles(before) != hashFiles(after) {
		t.Error("an added include: the old and the new snapshot fingerprint the same files differently")
	}
	if err := os.Remove(extra); err != nil {
		t.Fatal(err)
	}
	if hashFiles(after) != hashFiles(load()) {
		t.Error("a removed include: the old and the new snapshot fingerprint the same files differently")
	}
	// A real edit still changes the fingerprint.
	h := hashFiles(after)
	if err := os.WriteFile(extra, []byte("rules: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if hashFiles(after) == h {
		t.Error("a new include file does not change the fingerprint")
	}
}

// blockingSink is an http action target that holds every request until
// the test releases it (one per value sent on release) or ends; it counts
// the requests it got and those it holds now.
type blockingSink struct {
	url      string
	hits     atomic.Int32
	inFlight atomic.Int32
	release  chan struct{}
}

func newBlockingSink(t *testing.T) *blockingSink {
	s := &blockingSink{release: make(chan struct{})}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		select {
		case <-s.release:
		case <-done:
		case <-r.Context().Done():
		}
	}))
	s.url = srv.URL
	// Cleanups run last in, first out: these, registered before the
	// daemon's, run after the daemon stopped (its shutdown_timeout bounds
	// the wait for the requests held here).
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	return s
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stays checks that cond holds for a while (nothing more happens).
func stays(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 30 {
		if !cond() {
			t.Fatalf("%s no longer holds", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadResizesWorkerPool: server.workers follows a reload. Raised,
// the jobs waiting for a worker start at once; lowered, the running jobs
// finish and no new one starts until fewer than the new size run.
func TestReloadResizesWorkerPool(t *testing.T) {
	sink := newBlockingSink(t)
	dir := t.TempDir()
	path := writeHookConfig(t, dir, "  workers: 1\n  shutdown_timeout: 200ms\n", sink.url, "    timeout: 30s\n")
	logs := &syncBuffer{}
	d := startDaemon(t, path, logs)
	post := func(i int) {
		t.Helper()
		if code := postSigned(t, d, fmt.Sprintf(`{"reference_id":"r%d","status":"FILLED","amount":"5.00"}`, i)); code != 200 {
			t.Fatalf("webhook answered %d", code)
		}
	}
	for i := range 4 {
		post(i)
	}
	waitFor(t, "the first job", func() bool { return sink.inFlight.Load() == 1 })
	stays(t, "one job at a time under workers: 1", func() bool { return sink.hits.Load() == 1 })

	writeHookConfig(t, dir, "  workers: 3\n  shutdown_timeout: 200ms\n", sink.url, "    timeout: 30s\n")
	if ok, st := d.reload("test"); !ok {
		t.Fatalf("reload refused: %+v", st)
	}
	waitFor(t, "three jobs at once after workers went to 3", func() bool { return sink.inFlight.Load() == 3 })
	stays(t, "no more than three jobs at once", func() bool { return sink.inFlight.Load() == 3 && sink.hits.Load() == 3 })

	writeHookConfig(t, dir, "  workers: 1\n  shutdown_timeout: 200ms\n", sink.url, "    timeout: 30s\n")
	if ok, st := d.reload("test"); !ok {
		t.Fatalf("reload refused: %+v", st)
	}
	post(4)
	post(5) // three jobs wait now
	// The three running jobs finish; only when none is left does a new
	// one start, and then one at a time.
	for want := int32(2); want >= 0; want-- {
		sink.release <- struct{}{}
		waitFor(t, "a released job to finish", func() bool { return sink.inFlight.Load() == want || sink.hits.Load() > 3 })
		if want > 0 {
			stays(t, "no new job while the pool is over its new size", func() bool { return sink.hits.Load() == 3 })
		}
	}
	waitFor(t, "the next job under workers: 1", func() bool { return sink.hits.Load() == 4 })
	stays(t, "one job at a time under workers: 1 again", func() bool { return sink.inFlight.Load() == 1 && sink.hits.Load() == 4 })
	if strings.Contains(logs.String(), "take effect only on restart") {
		t.Errorf("workers was reported as restart-only:\n%s", logs.String())
	}
}

// TestReloadedShutdownTimeout: a shutdown waits for running jobs as long as
// the shutdown_timeout in force then says, not the one of the start.
func TestReloadedShutdownTimeout(t *testing.T) {
	sink := newBlockingSink(t)
	dir := t.TempDir()
	path := writeHookConfig(t, dir, "  shutdown_timeout: 1m\n", sink.url, "    timeout: 30s\n")
	logs := &syncBuffer{}
	d, err := New(Options{Load: LoadOptions{Path: path}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "the listener", func() bool { return d.PublicAddr() != nil })
	if code := postSigned(t, d, `{"reference_id":"r1","status":"FILLED","amount":"5.00"}`); code != 200 {
		t.Fatalf("webhook answered %d", code)
	}
	waitFor(t, "the job to run", func() bool { return sink.inFlight.Load() == 1 })

	writeHookConfig(t, dir, "  shutdown_timeout: 200ms\n", sink.url, "    timeout: 30s\n")
	if ok, st := d.reload("test"); !ok {
		t.Fatalf("reload refused: %+v", st)
	}
	start := time.Now()
	cancel() // SIGTERM with a job stuck in its sink
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the shutdown still waits for the start's shutdown_timeout (1m)")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s with shutdown_timeout 200ms", took)
	}
	if !strings.Contains(logs.String(), "timeout=200ms") {
		t.Errorf("the shutdown line does not say the reloaded timeout:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "take effect only on restart") {
		t.Errorf("shutdown_timeout was reported as restart-only:\n%s", logs.String())
	}
}

// tlsProblem is the reload's problem about the certificate, or "" (the
// others are config warnings, such as the secret written in the file).
func tlsProblem(st reloadStatus) string {
	for _, p := range st.Problems {
		if strings.HasPrefix(p, "tls: ") {
			return p
		}
	}
	return ""
}

// TestReloadSwitchesTLSFiles: with TLS on, a reload that names other
// certificate files serves them from the next handshake; files that do not
// load keep the certificate in use and are reported as the reload's
// problem. Turning TLS off (or on) waits for a restart, with a warning.
func TestReloadSwitchesTLSFiles(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := testcert.Write(t, filepath.Join(dir, "a"), 1)
	certB, keyB := testcert.Write(t, filepath.Join(dir, "b"), 2)
	tlsLines := func(cert, key string) string { return "  tls_cert: " + cert + "\n  tls_key: " + key + "\n" }
	const url = "http://127.0.0.1:9/" // no job runs: the test sends no webhook
	path := writeHookConfig(t, dir, tlsLines(certA, keyA), url, "")
	logs := &syncBuffer{}
	d := startDaemon(t, path, logs)
	serial := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", d.PublicAddr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // self-signed test certificate
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d at start, want 1", s)
	}

	writeHookConfig(t, dir, tlsLines(certB, keyB), url, "")
	if ok, st := d.reload("test"); !ok || tlsProblem(st) != "" {
		t.Fatalf("reload to other certificate files: %v %+v", ok, st)
	}
	if s := serial(); s != 2 {
		t.Fatalf("serial %d after the reload, want 2", s)
	}
	if got := d.Snapshot().Config.Server.TLSCert; got != certB {
		t.Errorf("tls_cert in force %q, want %q", got, certB)
	}

	missing := filepath.Join(dir, "missing.pem")
	writeHookConfig(t, dir, tlsLines(missing, keyB), url, "")
	ok, st := d.reload("test")
	if p := tlsProblem(st); ok || !strings.Contains(p, "missing.pem") || !strings.Contains(p, "previous certificate stays in use") {
		t.Fatalf("reload to a missing certificate: %v %+v, want it refused with the load's problem", ok, st)
	}
	if s := serial(); s != 2 {
		t.Fatalf("serial %d after a failed certificate load, want the previous 2", s)
	}
	if got := d.Snapshot().Config.Server.TLSCert; got != certB {
		t.Errorf("tls_cert in force %q after a failed load, want the running %q", got, certB)
	}
	if !strings.Contains(logs.String(), "config reload refused: the new tls_cert/tls_key do not load") {
		t.Errorf("the refused reload is not logged:\n%s", logs.String())
	}

	writeHookConfig(t, dir, "", url, "") // TLS off
	if ok, st := d.reload("test"); !ok {
		t.Fatalf("reload refused: %+v", st)
	}
	if s := serial(); s != 2 {
		t.Fatalf("serial %d after turning TLS off, want TLS kept with 2", s)
	}
	if got := d.Snapshot().Config.Server.TLSCert; got != certB {
		t.Errorf("tls_cert in force %q after turning TLS off, want the running %q", got, certB)
	}
	for _, want := range []string{`changed="tls_cert, tls_key"`, "turning TLS on or off takes effect only on restart"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs.String())
		}
	}
}

// TestReloadCannotTurnTLSOn: with TLS off, certificate files named by a
// reload wait for a restart (the listener is plain TCP), with a warning.
func TestReloadCannotTurnTLSOn(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Write(t, filepath.Join(dir, "a"), 1)
	path := writeHookConfig(t, dir, "", "http://127.0.0.1:9/", "")
	logs := &syncBuffer{}
	d := startDaemon(t, path, logs)
	writeHookConfig(t, dir, "  tls_cert: "+cert+"\n  tls_key: "+key+"\n", "http://127.0.0.1:9/", "")
	if ok, st := d.reload("test"); !ok {
		t.Fatalf("reload refused: %+v", st)
	}
	if got := d.Snapshot().Config.Server.TLSCert; got != "" {
		t.Errorf("tls_cert in force %q, want none until a restart", got)
	}
	for _, want := range []string{`changed="tls_cert, tls_key"`, "turning TLS on or off takes effect only on restart"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs.String())
		}
	}
	// Still plain HTTP.
	if code := postSigned(t, d, `{"reference_id":"r1","status":"PARTIALLY_FILLED","amount":"5.00"}`); code != 200 {
		t.Errorf("plain HTTP webhook after the reload answered %d", code)
	}
}
