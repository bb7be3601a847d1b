package journal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openTest opens a journal in a fresh temporary directory and closes it when
// the test ends.
func openTest(t testing.TB, opts Options) (*SQLite, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, dir
}

var kib = bytes.Repeat([]byte("x"), 1024)

// testEvent returns an event with a 1 KiB body.
func testEvent(id string) *Event {
	return &Event{
		ID:         id,
		Source:     "payram",
		Provider:   "payram",
		Type:       "payment.updated",
		ReceivedAt: time.Unix(1_700_000_000, 0).UTC(),
		Headers:    map[string]string{"Content-Type": "application/json", "X-Request-Id": id},
		Body:       kib,
		Payload:    []byte(`{"status":"OVER_FILLED","amount":25}`),
	}
}

// evalFor returns an evaluation in which rule matched and asks for actions.
func evalFor(rule string, actions ...string) *Evaluation {
	return &Evaluation{
		Results: []RuleResult{{Rule: rule, Matched: true}, {Rule: "other", Matched: false}},
		Matches: []Match{{Rule: rule, Actions: actions}},
	}
}

// onceEval is evalFor with a once_per key.
func onceEval(rule, key string, actions ...string) *Evaluation {
	e := evalFor(rule, actions...)
	e.Matches[0].HasOnce, e.Matches[0].OnceKey = true, key
	return e
}

func mustIngest(t testing.TB, s *SQLite, ev *Event, eval *Evaluation) IngestResult {
	t.Helper()
	res, err := s.Ingest(context.Background(), ev, eval)
	if err != nil {
		t.Fatalf("Ingest(%s): %v", ev.ID, err)
	}
	return res
}

// closedJournal writes a journal holding one event with a job into a new
// directory, closes it and returns the directory: for tests that then make
// it unwritable.
func closedJournal(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustIngest(t, s, testEvent("before"), evalFor("r", "a"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func idOf(prefix string, i int) string { return fmt.Sprintf("%s-%06d", prefix, i) }

// hashID is a 64-hex-digit id like the ones payramd derives from a body hash.
func hashID(i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "event %d", i))
	return hex.EncodeToString(h[:])
}

func testingGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }

// ingestConcurrently ingests n events (ids prefix-000000...) at once, as
// concurrent webhooks would, and returns each one's error.
func ingestConcurrently(s *SQLite, prefix string, n int) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Ingest(context.Background(), testEvent(idOf(prefix, i)), evalFor("r", "a"))
		}()
	}
	wg.Wait()
	return errs
}

// switchableFault returns a fault hook that fails with msg while fail is set.
func switchableFault(msg string) (fail *atomic.Bool, fault func() error) {
	fail = new(atomic.Bool)
	return fail, func() error {
		if fail.Load() {
			return errors.New(msg)
		}
		return nil
	}
}
