package daemon

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payramd/payramd/engine"
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
