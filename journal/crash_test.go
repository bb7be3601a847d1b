package journal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// crashHelperEnv, when set to a directory, turns the test binary into the
// crash-test child: see crashHelper.
const crashHelperEnv = "PAYRAMD_JOURNAL_CRASH_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		crashHelper(dir)
		return
	}
	os.Exit(m.Run())
}

// crashHelper ingests events from many goroutines forever and prints each ID
// on stdout only after Ingest has returned success, i.e. after the event was
// acknowledged. The parent SIGKILLs it at an arbitrary moment.
func crashHelper(dir string) {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash helper: open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := range 32 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("crash-%02d-%07d", g, i)
				if _, err := s.Ingest(context.Background(), testEvent(id), evalFor("r", "a", "b")); err != nil {
					fmt.Fprintln(os.Stderr, "crash helper: ingest:", err)
					os.Exit(3)
				}
				mu.Lock()
				_, err := io.WriteString(os.Stdout, id+"\n") // one write(2) per line: never torn
				mu.Unlock()
				if err != nil {
					os.Exit(4)
				}
			}
		}()
	}
	select {}
}

// TestCrashSafety kills a process that is ingesting as fast as it can and
// checks that every event it acknowledged survived, with its jobs.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	first := make(chan struct{})
	lines := make(chan []string, 1)
	go func() {
		var acked []string
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // EOF once the child is dead; a partial line is ignored
			}
			if len(acked) == 0 {
				close(first)
			}
			acked = append(acked, strings.TrimSuffix(line, "\n"))
		}
		lines <- acked
	}()

	select {
	case <-first:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child acknowledged nothing in 10s; stderr:\n%s", stderr.String())
	}
	time.Sleep(time.Second)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to flush or close
		t.Fatal(err)
	}
	acked := <-lines
	cmd.Wait()
	if stderr.Len() > 0 {
		t.Fatalf("child failed before the kill:\n%s", stderr.String())
	}

	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	jobsPerEvent := map[string]int{}
	rows, err := s.rdb.Query(`SELECT e.id, count(j.id) FROM events e LEFT JOIN jobs j ON j.event_id = e.id GROUP BY e.id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		jobsPerEvent[id] = n
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, id := range acked {
		if n, ok := jobsPerEvent[id]; !ok || n != 2 {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged event %s: present=%v jobs=%d", id, ok, n)
			}
		}
	}
	for id, n := range jobsPerEvent {
		if n != 2 {
			t.Errorf("event %s has %d jobs; event and jobs must commit together", id, n)
		}
	}
	var integrity string
	if err := s.rdb.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check: %q %v", integrity, err)
	}
	t.Logf("killed after %d acknowledged events; %d events on disk; %d acknowledged events missing",
		len(acked), len(jobsPerEvent), missing)
}
