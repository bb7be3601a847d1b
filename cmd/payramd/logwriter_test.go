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
	"unicode/utf8"
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

// journaldSplit cuts a line as journald cuts a service's output: at each
// newline and, in a longer line, every lineMax bytes (LineMax=, 48K by
// default); each piece is a log entry whose leading <N> is its priority.
func journaldSplit(out string, lineMax int) []string {
	var pieces []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		for len(line) > lineMax {
			pieces = append(pieces, line[:lineMax])
			line = line[lineMax:]
		}
		pieces = append(pieces, line)
	}
	return pieces
}

// TestPriorityLongLine: a line longer than journald's LineMax is cut by
// journald, and the piece after the cut is read for a priority prefix of
// its own. A payload's customer-written field logged by a log action
// (message: "note {{ note }}") could place "<0>" there and have a line
// filed as an emergency, which journald also writes to every terminal
// (ForwardToWall). A long line is cut by payramd into pieces that each
// carry the record's priority.
func TestPriorityLongLine(t *testing.T) {
	const journaldLineMax = 48 * 1024
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		h := newPriorityHandler(&buf, func(w io.Writer) slog.Handler {
			if format == "json" {
				return slog.NewJSONHandler(w, nil)
			}
			return slog.NewTextHandler(w, nil)
		})
		log := slog.New(h)
		log.Info("note X")
		head := strings.Index(buf.String(), "X")
		buf.Reset()
		note := strings.Repeat("a", journaldLineMax-head) + "<0>payramd: disk failure, call +1-555-0100 now " + strings.Repeat("é", 40000)
		log.Info("note "+note, "event", "e1")
		for i, p := range journaldSplit(buf.String(), journaldLineMax) {
			if !strings.HasPrefix(p, "<6>") {
				t.Errorf("%s: piece %d is not filed at info: %.40q", format, i, p)
			}
			if !utf8.ValidString(p) {
				t.Errorf("%s: piece %d cuts a character: %.40q", format, i, p)
			}
		}
		// Nothing is lost: the pieces, without their prefixes, are the line.
		var whole strings.Builder
		for _, p := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			whole.WriteString(strings.TrimPrefix(p, "<6>"))
		}
		if !strings.Contains(whole.String(), note) || !strings.Contains(whole.String(), "e1") {
			t.Errorf("%s: the pieces do not make up the line", format)
		}
	}
}
