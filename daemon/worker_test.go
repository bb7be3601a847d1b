package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
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

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/journal"
)

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	r := config.Retry{Attempts: 10, Initial: time.Second, Max: 10 * time.Second}
	cases := []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{2, 1600 * time.Millisecond, 2400 * time.Millisecond},
		{3, 3200 * time.Millisecond, 4800 * time.Millisecond},
		{4, 6400 * time.Millisecond, 9600 * time.Millisecond},
		{5, 10 * time.Second, 10 * time.Second}, // capped
		{9, 10 * time.Second, 10 * time.Second},
	}
	for _, tc := range cases {
		seen := map[time.Duration]bool{}
		for i := 0; i < 50; i++ {
			d := backoff(r, tc.attempt)
			if d < tc.min || d > tc.max {
				t.Fatalf("backoff(attempt %d) = %s, want within [%s, %s]", tc.attempt, d, tc.min, tc.max)
			}
			seen[d] = true
		}
		if tc.min != tc.max && len(seen) < 5 {
			t.Errorf("backoff(attempt %d) shows no jitter: %v", tc.attempt, seen)
		}
	}
}

func TestEventCacheEvictsOldest(t *testing.T) {
	c := newEventCache(3, 1<<20)
	for i := 0; i < 5; i++ {
		c.put(&engine.Event{ID: fmt.Sprint(i)}, 1)
	}
	for i, want := range []bool{false, false, true, true, true} {
		if got := c.get("", fmt.Sprint(i)) != nil; got != want {
			t.Errorf("event %d cached = %v, want %v", i, got, want)
		}
	}
	c.put(&engine.Event{ID: "4"}, 1) // already there: no eviction
	if c.get("", "2") == nil {
		t.Error("re-putting a cached event evicted another")
	}
}

func TestEventCacheBoundedByBytes(t *testing.T) {
	c := newEventCache(100, 30<<10) // each 10 KiB body costs 30 KiB
	body := make([]byte, 10<<10)
	for i := 0; i < 5; i++ {
		c.put(&engine.Event{ID: fmt.Sprint(i), Raw: body}, 1)
	}
	if c.bytes > 30<<10 {
		t.Errorf("cache holds %d bytes, over its 30 KiB bound", c.bytes)
	}
	if c.get("", "4") == nil || c.get("", "0") != nil {
		t.Error("the newest event must be kept and the oldest evicted")
	}
	if c.put(&engine.Event{ID: "big", Raw: make([]byte, maxCachedEvent+1)}, 1) {
		t.Error("an event over maxCachedEvent was cached")
	}
}

// TestEventCacheForgetsFinishedEvents: an event stays cached while any of
// its jobs may still run (a retry needs it) and leaves with its last job,
// and a slot reused after that does not evict a newer entry.
func TestEventCacheForgetsFinishedEvents(t *testing.T) {
	c := newEventCache(2, 1<<20)
	c.put(&engine.Event{ID: "a", Raw: []byte("{}")}, 2)
	c.done("", "a")
	if c.get("", "a") == nil {
		t.Fatal("event left the cache with one of its two jobs still unfinished")
	}
	c.done("", "a")
	if c.get("", "a") != nil || c.len() != 0 || c.bytes != 0 {
		t.Fatalf("event still cached after its last job: len %d, bytes %d", c.len(), c.bytes)
	}
	c.done("", "a")       // a stray done is harmless
	c.done("", "unknown") // so is one for an event never cached
	c.put(&engine.Event{ID: "b"}, 1)
	c.put(&engine.Event{ID: "c"}, 1)
	c.put(&engine.Event{ID: "d"}, 1) // full: evicts b, the oldest
	if c.get("", "b") != nil || c.get("", "c") == nil || c.get("", "d") == nil {
		t.Errorf("after b, c, d in a 2-event cache: b=%v c=%v d=%v", c.get("", "b") != nil, c.get("", "c") != nil, c.get("", "d") != nil)
	}
	if c.put(&engine.Event{ID: "e"}, 0) {
		t.Error("an event without jobs was cached")
	}
}

// TestEventCacheKeepsWaitingEvents: an event whose job waits for a retry
// stays cached however many events come and go after it, as long as the
// cache is not full.
func TestEventCacheKeepsWaitingEvents(t *testing.T) {
	c := newEventCache(8, 1<<20)
	c.put(&engine.Event{ID: "waiting"}, 1)
	for i := range 10000 {
		id := fmt.Sprint(i)
		c.put(&engine.Event{ID: id}, 1)
		c.done("", id)
	}
	if c.get("", "waiting") == nil || c.len() != 1 {
		t.Errorf("waiting event evicted (len %d) by events that finished", c.len())
	}
}

// TestDispatcherIsToldOfPendingJobs: jobs that ingest stores as pending
// (here because the in-memory backlog is full), a retry scheduled by a
// failed attempt, or a job revived by hand must be claimed because the
// dispatcher is told, not because its safety-net timer happens to fire:
// the timer is set to a minute here, so only the wake-up can run the job.
func TestDispatcherIsToldOfPendingJobs(t *testing.T) {
	b, w := maxBacklog, dispatcherMaxWait
	t.Cleanup(func() { maxBacklog, dispatcherMaxWait = b, w }) // after the daemon stops
	maxBacklog, dispatcherMaxWait = 0, time.Minute

	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeConfig(t, path, "true")
	logs := &syncBuffer{}
	d := startDaemon(t, path, logs)
	// Let the dispatcher's first look at the journal (at start) pass, so
	// that only a wake-up can find the job.
	time.Sleep(200 * time.Millisecond)

	if code := postSigned(t, d, `{"reference_id":"r1","status":"FILLED","amount":"5.00"}`); code != 200 {
		t.Fatalf("webhook answered %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "action succeeded") {
		if time.Now().After(deadline) {
			t.Fatalf("the job stored pending did not run within 10 s; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockJournal takes the write lock of the journal in dataDir from a second
// SQLite connection, as a long sqlite3 session or a stuck disk would hold
// it. The returned func releases it.
func lockJournal(t *testing.T, dataDir string) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, journal.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStalledJournalAnswers503 holds the journal's write lock from another
// connection, as a stuck disk or a long sqlite3 session would. The webhook
// the writer is executing gets 503 when SQLite's busy timeout (5 s) fails
// its batch; one queued behind it gets 503 when the daemon's own deadline
// runs out (25 s, shortened here). (SQLite sometimes refuses at once
// instead, when the writer's snapshot is older than the lock holder's; the
// answers are 503 either way, and such a run does not reach the deadline.)
// Both answers come well inside the server's 30 s write timeout, so the
// provider retries, and once the lock is gone the retries are accepted.
func TestStalledJournalAnswers503(t *testing.T) {
	timeout := acceptTimeout
	t.Cleanup(func() { acceptTimeout = timeout })
	acceptTimeout = 300 * time.Millisecond

	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeConfig(t, path, "true")
	d := startDaemon(t, path, &syncBuffer{})

	unlock := lockJournal(t, filepath.Join(filepath.Dir(path), "data"))
	bodies := []string{
		`{"reference_id":"r1","status":"FILLED","amount":"5.00"}`,
		`{"reference_id":"r2","status":"FILLED","amount":"5.00"}`,
	}
	first := make(chan int, 1)
	go func() { first <- postSigned(t, d, bodies[0]) }()
	time.Sleep(100 * time.Millisecond) // the writer has taken the first
	start := time.Now()
	if code := postSigned(t, d, bodies[1]); code != http.StatusServiceUnavailable {
		t.Fatalf("a webhook queued behind a stalled journal answered %d, want 503", code)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("the queued webhook's 503 took %s: the daemon's deadline did not cut its wait", el)
	}
	if code := <-first; code != http.StatusServiceUnavailable {
		t.Fatalf("the webhook in the stalled batch answered %d, want 503", code)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("the stalled batch's 503 took %s", el)
	}
	unlock()
	for _, b := range bodies {
		if code := postSigned(t, d, b); code != 200 {
			t.Fatalf("a retry answered %d, want 200", code)
		}
	}
}

// startDaemon runs the daemon on the config at path, logging to logs, until
// the test ends, and waits for its listener.
func startDaemon(t *testing.T, path string, logs *syncBuffer) *Daemon {
	t.Helper()
	d, err := New(Options{Load: LoadOptions{Path: path}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for d.PublicAddr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("daemon did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d
}

// postSigned sends body to the daemon's payram source, signed with the
// secret writeConfig sets, and returns the status code.
func postSigned(t *testing.T, d *Daemon, body string) int {
	t.Helper()
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", "http://"+d.PublicAddr().String()+"/webhooks/payram", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Payram-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// writeHookConfig writes dir/rules.yaml: a payram source (secret "k") whose
// every event runs the http action "hook" calling url. server and hook are
// extra lines for those sections. It returns the file's path.
func writeHookConfig(t *testing.T, dir, server, url, hook string) string {
	t.Helper()
	path := filepath.Join(dir, "rules.yaml")
	cfg := fmt.Sprintf("server:\n  listen: 127.0.0.1:0\n  admin_listen: 127.0.0.1:0\n  data_dir: %s\n%s"+
		"sources:\n  payram:\n    provider: payram\n    secret: k\n"+
		"actions:\n  hook:\n    type: http\n    url: %s\n%s"+
		"rules:\n  - name: all\n    when: \"true\"\n    do: [hook]\n", filepath.Join(dir, "data"), server, url, hook)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAttemptRecordOutlastsStalledJournal: an attempt whose record waits
// behind a stalled journal (its write lock held by another connection) for
// longer than one try's deadline is recorded once the journal recovers, so
// the job's retries still run. The worker used to give up on that deadline
// and leave the job running until the next restart.
func TestAttemptRecordOutlastsStalledJournal(t *testing.T) {
	defer func(old time.Duration) { finishTryTimeout = old }(finishTryTimeout)
	finishTryTimeout = 300 * time.Millisecond

	var hits atomic.Int32
	release := make(chan struct{})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-release
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer sink.Close()

	dir := t.TempDir()
	path := writeHookConfig(t, dir, "", sink.URL, "    retry: {attempts: 3, initial: 50ms, max: 100ms}\n")
	d := startDaemon(t, path, &syncBuffer{})
	if code := postSigned(t, d, `{"reference_id":"r1","status":"FILLED","amount":"5.00"}`); code != 200 {
		t.Fatalf("webhook answered %d", code)
	}
	for hits.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}

	// Stall the journal while the first attempt is in flight, with writes
	// queued ahead of its record.
	unlock := lockJournal(t, filepath.Join(dir, "data"))
	for range 3 {
		go d.store.Ping(context.Background()) //nolint:errcheck // only to queue writes
		time.Sleep(20 * time.Millisecond)
	}
	close(release) // the attempt fails with a 500; its record must wait
	time.Sleep(4 * finishTryTimeout)
	unlock()
	ctx := context.Background()

	// Three attempts in all, then dead: the retries ran.
	deadline := time.Now().Add(20 * time.Second)
	for {
		jobs, err := d.store.Jobs(ctx, journal.JobFilter{})
		if err == nil && len(jobs) == 1 && jobs[0].State == journal.Dead {
			if n := hits.Load(); n != 3 {
				t.Errorf("the sink saw %d attempts, want 3", n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not dead after the journal recovered: %+v, %v; sink hits %d", jobs, err, hits.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBudgetNotSpentWhenHistoryUnreadable: when the attempt history cannot
// be read (here: shutdown has cancelled the context), a job past its
// attempts counter is not declared dead; it is retried or left for the
// next start. It used to be recorded dead.
func TestBudgetNotSpentWhenHistoryUnreadable(t *testing.T) {
	s, err := journal.Open(t.TempDir(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Ingest(context.Background(), &journal.Event{ID: "e1", Source: "payram"},
		&journal.Evaluation{Results: []journal.RuleResult{{Rule: "r", Matched: true}}, Matches: []journal.Match{{Rule: "r", Actions: []string{"a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{store: s, log: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))}
	j := res.Jobs[0]
	j.Attempts = 11 // revived by hand after 10: the first attempt of a fresh budget
	if d.budgetSpent(context.Background(), j, 10) {
		t.Fatal("a revived job's budget is not spent")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d.budgetSpent(ctx, j, 10) {
		t.Error("with its history unreadable, the job was declared out of attempts")
	}
}

// TestShutdownHandsBackUnstartedJobs: jobs claimed but still waiting for a
// worker when the daemon stops go back to pending with no attempt counted;
// the job a worker was running is left for the next start to run again.
func TestShutdownHandsBackUnstartedJobs(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer sink.Close()
	defer close(release)

	dir := t.TempDir()
	path := writeHookConfig(t, dir, "  workers: 1\n  shutdown_timeout: 200ms\n", sink.URL, "    timeout: 30s\n")
	d, err := New(Options{Load: LoadOptions{Path: path}, Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for d.PublicAddr() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 5 {
		if code := postSigned(t, d, fmt.Sprintf(`{"reference_id":"r%d","status":"FILLED","amount":"5.00"}`, i)); code != 200 {
			t.Fatalf("webhook answered %d", code)
		}
	}
	for hits.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // SIGTERM: one job is stuck in its sink, four wait for the worker
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	s, err := journal.Open(filepath.Join(dir, "data"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	jobs, err := s.Jobs(context.Background(), journal.JobFilter{})
	if err != nil || len(jobs) != 5 {
		t.Fatalf("jobs: %d, %v", len(jobs), err)
	}
	var pending, running int
	for _, j := range jobs {
		switch {
		case j.State == journal.Pending && j.Attempts == 0:
			pending++
		case j.State == journal.Running && j.Attempts == 1:
			running++ // started: it may have reached the sink, so it counts
		default:
			t.Errorf("job %d: %s with %d attempts", j.ID, j.State, j.Attempts)
		}
	}
	if pending != 4 || running != 1 || hits.Load() != 1 {
		t.Errorf("after shutdown: %d pending with no attempt, %d running; the sink saw %d requests; want 4, 1, 1", pending, running, hits.Load())
	}
}

// TestLateSubmitHandedBack: a webhook still being accepted when the shutdown
// timeout cut it off can submit its already-claimed jobs after the backlog
// was handed back; they go back to pending at once rather than stay
// "running" until the next start (found by a review session).
func TestLateSubmitHandedBack(t *testing.T) {
	ctx := context.Background()
	s, err := journal.Open(t.TempDir(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := &journal.Event{ID: "late_1", Source: "payram", Provider: "payram", Type: "payment.filled", Body: []byte(`{}`)}
	res, err := s.Ingest(ctx, ev, &journal.Evaluation{Claim: true, Matches: []journal.Match{{Rule: "r", Actions: []string{"a"}}}})
	if err != nil || len(res.Jobs) != 1 || res.Jobs[0].State != journal.Running {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	p := newPool(&Daemon{store: s, log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	p.stopClaiming()
	p.unclaimBacklog() // the shutdown's hand-back, before the late webhook
	p.submit(res.Jobs, nil)
	jobs, err := s.Jobs(ctx, journal.JobFilter{})
	if err != nil || len(jobs) != 1 || jobs[0].State != journal.Pending || jobs[0].Attempts != 0 {
		t.Fatalf("late job: %+v %v, want pending with no attempt", jobs, err)
	}
}

// TestPermanentFailureLogSaysWhy: a job that fails for good without any
// request being made (here a url template whose value is missing) is logged
// without claiming that a request was refused, and with the template's
// error. The line used to say "the request itself was refused" for every
// permanent failure: a bad template, a missing program, an SMTP 550.
func TestPermanentFailureLogSaysWhy(t *testing.T) {
	dir := t.TempDir()
	path := writeHookConfig(t, dir, "", `"http://127.0.0.1:1/orders/{{ urlpath(invoice_id) }}/paid"`, "")
	logs := &syncBuffer{}
	d := startDaemon(t, path, logs)
	if code := postSigned(t, d, `{"reference_id":"r1","status":"FILLED","amount":"5.00"}`); code != 200 {
		t.Fatalf("webhook answered %d, want 200", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "will not be retried") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the failed job:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	if strings.Contains(out, "request itself was refused") {
		t.Errorf("a template error is logged as a refused request:\n%s", out)
	}
	if !strings.Contains(out, "urlpath") {
		t.Errorf("the log line does not carry the template's error:\n%s", out)
	}
}
