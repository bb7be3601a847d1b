package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestPriorityHandler: under journald every line starts with its level's
// syslog priority, for lines of derived loggers too, and concurrent lines
// never get another record's prefix.
func TestPriorityHandler(t *testing.T) {
	var buf bytes.Buffer
	h := newPriorityHandler(&buf, func(w io.Writer) slog.Handler {
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	})
	log := slog.New(h)
	log.Error("e")
	log.With("job", 1).Warn("w")
	log.WithGroup("g").Info("i")
	log.Debug("d")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		prefix, rest, _ := strings.Cut(line, "time=")
		level := strings.Fields(rest)[1]
		got = append(got, prefix+level)
	}
	if want := "<3>level=ERROR <4>level=WARN <6>level=INFO <7>level=DEBUG"; strings.Join(got, " ") != want {
		t.Errorf("lines:\n%s\nwant prefixes and levels %s", buf.String(), want)
	}

	buf.Reset()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if i%2 == 0 {
					log.Error("x")
				} else {
					log.Info("x")
				}
			}
		}()
	}
	wg.Wait()
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.HasPrefix(line, "<3>") != strings.Contains(line, "level=ERROR") || !strings.HasPrefix(line, "<") {
			t.Fatalf("line with the wrong prefix: %q", line)
		}
	}
}

// TestJournalPriorities runs the binary with its standard error as the
// stream $JOURNAL_STREAM names, as systemd does: its error lines carry <3>
// (journald files them as errors). Elsewhere nothing is added.
func TestJournalPriorities(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", "sources:\n  shop:\n    provider: payram\n    secret: ${PAYRAM_API_KEY:-k}\nrules:\n  - name: r\n    when: status = \"FILLED\"\n    do: [nowhere]\n")
	run := func(journal bool) string {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cmd := exec.Command(cliPath, "run", "-c", cfg, "--log-format", "json")
		cmd.Env = append(baseEnv(), "PAYRAMD_DATA_DIR="+filepath.Join(dir, "data"))
		if journal {
			var st syscall.Stat_t
			if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			cmd.Env = append(cmd.Env, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
		}
		cmd.Stderr = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		var out bytes.Buffer
		_, _ = out.ReadFrom(r)
		_ = cmd.Wait()
		return out.String()
	}
	out := run(true)
	var errs int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, `<3>{"time"`) && strings.Contains(line, `"level":"ERROR"`) {
			errs++
		} else if strings.HasPrefix(line, "{") {
			t.Errorf("a log line without its priority under journald: %q", line)
		}
	}
	if errs == 0 {
		t.Errorf("no error line with <3> under journald:\n%s", out)
	}
	// The line saying what to do about a refused start is an error too:
	// without a prefix journald files it at info, and journalctl -p err
	// leaves it out.
	if !strings.Contains(out, "\n<3>payramd: the config is invalid") {
		t.Errorf("the refused start's summary without <3> under journald:\n%s", out)
	}
	if out := run(false); strings.Contains(out, "<3>") || !strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("without JOURNAL_STREAM the lines changed:\n%s", out)
	}
}
