package journal

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// count runs a COUNT query on the read pool.
func count(t *testing.T, s *SQLite, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestOpenCreatesPrivateFilesAndLocks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "journal")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustIngest(t, s, testEvent("e1"), evalFor("r", "a"))

	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, FileName+"-wal")); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("-wal mode %v, want 0600", fi.Mode().Perm())
	}

	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("second Open of the same dir succeeded; want an in-use error")
	}

	var version, appID int
	if err := s.rdb.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow(`PRAGMA application_id`).Scan(&appID); err != nil {
		t.Fatal(err)
	}
	if version != schemaVersion || appID != applicationID {
		t.Errorf("user_version=%d application_id=%#x, want %d %#x", version, appID, schemaVersion, applicationID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Reopen: data survives, no migration runs again.
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Event(context.Background(), "", "e1"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestOpenRefusesForeignDatabases(t *testing.T) {
	tests := []struct {
		name  string
		setup string
	}{
		{"other application's tables", `CREATE TABLE users (id INTEGER)`},
		{"other application_id", `PRAGMA application_id = 42`},
		{"newer payramd", fmt.Sprintf(`PRAGMA application_id = %d; PRAGMA user_version = %d`, applicationID, schemaVersion+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(tt.setup); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if s, err := Open(dir, Options{}); err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			} else {
				t.Logf("Open: %v", err)
			}
		})
	}
}

func TestIngestAndDuplicate(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})

	ev := testEvent("evt_1")
	ev.Headers["X-Html"] = "<a&b>"
	res := mustIngest(t, s, ev, evalFor("overfilled", "slack", "email"))
	if res.Duplicate || len(res.Jobs) != 2 {
		t.Fatalf("first ingest: %+v", res)
	}
	for i, want := range []string{"slack", "email"} {
		j := res.Jobs[i]
		if j.ID == 0 || j.Action != want || j.EventID != "evt_1" || j.Rule != "overfilled" || j.Source != "payram" ||
			j.State != Pending || j.Attempts != 0 || !j.RunAt.Equal(clk.Now()) {
			t.Errorf("job %d: %+v", i, j)
		}
	}
	if res.Jobs[1].ID <= res.Jobs[0].ID {
		t.Errorf("job IDs not increasing: %d, %d", res.Jobs[0].ID, res.Jobs[1].ID)
	}

	d, err := s.Event(ctx, "", "evt_1")
	if err != nil {
		t.Fatal(err)
	}
	got := d.Event
	if got.ID != ev.ID || got.Source != ev.Source || got.Provider != ev.Provider || got.Type != ev.Type ||
		!got.ReceivedAt.Equal(ev.ReceivedAt) || !bytes.Equal(got.Body, ev.Body) || !bytes.Equal(got.Payload, ev.Payload) ||
		len(got.Headers) != len(ev.Headers) || got.Headers["X-Html"] != "<a&b>" {
		t.Errorf("stored event differs:\n got %+v\nwant %+v", got, *ev)
	}
	wantResults := []RuleResult{{Rule: "overfilled", Matched: true}, {Rule: "other"}}
	if !slices.Equal(d.Results, wantResults) {
		t.Errorf("results %+v, want %+v", d.Results, wantResults)
	}
	if len(d.Jobs) != 2 || d.Jobs[0].ID != res.Jobs[0].ID || d.Jobs[1].ID != res.Jobs[1].ID {
		t.Errorf("detail jobs %+v", d.Jobs)
	}

	// The raw columns are readable with the sqlite3 CLI: JSON text, not blobs.
	var headers, payload, typ string
	if err := s.rdb.QueryRow(`SELECT headers, payload, typeof(payload) FROM events WHERE id = 'evt_1'`).Scan(&headers, &payload, &typ); err != nil {
		t.Fatal(err)
	}
	if typ != "text" || headers != `{"Content-Type":"application/json","X-Html":"<a&b>","X-Request-Id":"evt_1"}` {
		t.Errorf("headers %s, payload type %s", headers, typ)
	}
	var status string
	if err := s.rdb.QueryRow(`SELECT json_extract(payload, '$.status') FROM events`).Scan(&status); err != nil || status != "OVER_FILLED" {
		t.Errorf("json_extract: %q, %v", status, err)
	}

	dup := mustIngest(t, s, testEvent("evt_1"), evalFor("overfilled", "slack", "email", "pager"))
	if !dup.Duplicate || len(dup.Jobs) != 0 {
		t.Fatalf("duplicate ingest: %+v", dup)
	}
	counts, err := s.CountJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[JobState]int{Pending: 2, Running: 0, Succeeded: 0, Dead: 0}; !mapsEqual(counts, want) {
		t.Errorf("CountJobs %v, want %v", counts, want)
	}

	// Edge cases: no evaluation, empty body and headers, zero ReceivedAt.
	bare := &Event{ID: "bare", Source: "s"}
	if res := mustIngest(t, s, bare, nil); res.Duplicate || len(res.Jobs) != 0 {
		t.Errorf("bare ingest: %+v", res)
	}
	d, err = s.Event(ctx, "", "bare")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Event.ReceivedAt.Equal(clk.Now()) || d.Event.Body != nil || d.Event.Headers != nil || len(d.Results) != 0 {
		t.Errorf("bare event: %+v", d)
	}
	if _, err := s.Ingest(ctx, &Event{}, nil); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("event without ID: %v", err)
	}
	if _, err := s.Event(ctx, "", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Event(nope): %v", err)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestOncePer(t *testing.T) {
	type step struct {
		event    string
		eval     *Evaluation
		wantJobs int
		wantSupp []string
	}
	twoMatches := &Evaluation{
		Results: []RuleResult{{Rule: "a", Matched: true}, {Rule: "b", Matched: true}},
		Matches: []Match{
			{Rule: "a", HasOnce: true, OnceKey: "k", Actions: []string{"x"}},
			{Rule: "b", HasOnce: true, OnceKey: "k", Actions: []string{"y"}},
		},
	}
	sameKeyTwice := &Evaluation{
		Results: []RuleResult{{Rule: "a", Matched: true}},
		Matches: []Match{
			{Rule: "a", HasOnce: true, OnceKey: "k", Actions: []string{"x"}},
			{Rule: "a", HasOnce: true, OnceKey: "k", Actions: []string{"y"}},
		},
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"second event with same key is suppressed", []step{
			{"e1", onceEval("r", "order-1", "slack", "email"), 2, nil},
			{"e2", onceEval("r", "order-1", "slack", "email"), 0, []string{"r"}},
			{"e3", onceEval("r", "order-2", "slack"), 1, nil},
		}},
		{"key is per rule", []step{
			{"e1", twoMatches, 2, nil},
			{"e2", twoMatches, 0, []string{"a", "b"}},
		}},
		{"same key twice in one evaluation", []step{
			{"e1", sameKeyTwice, 1, []string{"a"}},
		}},
		{"rules without once are never suppressed", []step{
			{"e1", evalFor("r", "x"), 1, nil},
			{"e2", evalFor("r", "x"), 1, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, Options{})
			for _, st := range tt.steps {
				res := mustIngest(t, s, testEvent(st.event), st.eval)
				if len(res.Jobs) != st.wantJobs || !slices.Equal(res.Suppressed, st.wantSupp) {
					t.Fatalf("%s: %d jobs, suppressed %v; want %d, %v", st.event, len(res.Jobs), res.Suppressed, st.wantJobs, st.wantSupp)
				}
				d, err := s.Event(context.Background(), "", st.event)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range d.Results {
					if want := r.Matched && slices.Contains(st.wantSupp, r.Rule); r.Suppressed != want {
						t.Errorf("%s: result %+v, want Suppressed=%v", st.event, r, want)
					}
				}
				if len(d.Jobs) != st.wantJobs {
					t.Errorf("%s: %d stored jobs, want %d", st.event, len(d.Jobs), st.wantJobs)
				}
			}
		})
	}
}

// TestOncePerConcurrent: many events with the same once key, ingested
// concurrently so that most share a group-commit batch; exactly one may get
// jobs.
func TestOncePerConcurrent(t *testing.T) {
	s, _ := openTest(t, Options{})
	const n = 64
	var wg sync.WaitGroup
	results := make([]IngestResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = s.Ingest(context.Background(), testEvent(idOf("once", i)), onceEval("paid", "order-42", "slack", "email"))
		}()
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("ingest %d: %v", i, errs[i])
		}
		switch len(results[i].Jobs) {
		case 2:
			winners++
		case 0:
			if !slices.Equal(results[i].Suppressed, []string{"paid"}) {
				t.Errorf("loser %d: suppressed %v", i, results[i].Suppressed)
			}
		default:
			t.Errorf("ingest %d: %d jobs", i, len(results[i].Jobs))
		}
	}
	if winners != 1 {
		t.Fatalf("%d events got jobs, want exactly 1", winners)
	}
	if got := count(t, s, `SELECT count(*) FROM jobs`); got != 2 {
		t.Errorf("%d jobs stored, want 2", got)
	}
	if got := count(t, s, `SELECT count(*) FROM rule_results WHERE suppressed`); got != n-1 {
		t.Errorf("%d suppressed results, want %d", got, n-1)
	}
	t.Logf("writer stats: %+v", s.Stats())
}

func TestJobLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	job := mustIngest(t, s, testEvent("e1"), evalFor("r", "webhook")).Jobs[0]

	t0 := clk.Now()
	if next, ok, err := s.NextRunAt(ctx); err != nil || !ok || !next.Equal(t0) {
		t.Fatalf("NextRunAt = %v %v %v, want %v", next, ok, err, t0)
	}
	// Not yet due.
	if got, err := s.ClaimDue(ctx, t0.Add(-time.Second), 10); err != nil || len(got) != 0 {
		t.Fatalf("early claim: %v %v", got, err)
	}

	claim := func(wantAttempts int) *Job {
		t.Helper()
		got, err := s.ClaimDue(ctx, clk.Now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != job.ID || got[0].State != Running || got[0].Attempts != wantAttempts {
			t.Fatalf("claim: %+v, want job %d running attempt %d", got, job.ID, wantAttempts)
		}
		if again, err := s.ClaimDue(ctx, clk.Now(), 10); err != nil || len(again) != 0 {
			t.Fatalf("claimed twice: %v %v", again, err)
		}
		return got[0]
	}
	attempt := func(n int, outcome, errText string) Attempt {
		return Attempt{N: n, StartedAt: clk.Now(), Duration: 150 * time.Millisecond, Outcome: outcome, Error: errText, Output: "HTTP " + outcome}
	}

	// 1: fails, retry in a minute.
	claim(1)
	retryAt := clk.Now().Add(time.Minute)
	if err := s.Finish(ctx, job.ID, attempt(1, "retry", "HTTP 502"), Pending, retryAt); err != nil {
		t.Fatal(err)
	}
	if next, ok, _ := s.NextRunAt(ctx); !ok || !next.Equal(retryAt) {
		t.Fatalf("NextRunAt after retry = %v, want %v", next, retryAt)
	}
	if got, _ := s.ClaimDue(ctx, clk.Now(), 10); len(got) != 0 {
		t.Fatalf("claimed before run_at: %+v", got)
	}
	clk.Add(time.Minute)

	// 2: fails for good.
	claim(2)
	if err := s.Finish(ctx, job.ID, attempt(2, "dead", "HTTP 400"), Dead, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.NextRunAt(ctx); ok {
		t.Fatal("NextRunAt reports a pending job after Dead")
	}
	// Finishing a job that is not running is refused.
	if err := s.Finish(ctx, job.ID, attempt(3, "succeeded", ""), Succeeded, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Finish of dead job: %v", err)
	}

	// Operator retries the dead job: pending, due now, attempts kept.
	clk.Add(time.Hour)
	r, err := s.Retry(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != Pending || r.Attempts != 2 || !r.RunAt.Equal(clk.Now()) || r.LastError != "HTTP 400" {
		t.Fatalf("Retry: %+v", r)
	}

	// 3: succeeds. N defaults to the attempts counter.
	claim(3)
	if err := s.Finish(ctx, job.ID, attempt(0, "succeeded", ""), Succeeded, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Retry(ctx, job.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Retry of succeeded job: %v", err)
	}
	if _, err := s.Retry(ctx, 999999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Retry of missing job: %v", err)
	}
	if err := s.Finish(ctx, job.ID, Attempt{}, Running, time.Time{}); err == nil {
		t.Fatal("Finish to Running accepted")
	}

	d, err := s.Event(ctx, "", "e1")
	if err != nil {
		t.Fatal(err)
	}
	jd := d.Jobs[0]
	if jd.State != Succeeded || jd.Job.Attempts != 3 || jd.LastError != "" {
		t.Errorf("final job %+v", jd.Job)
	}
	var outcomes []string
	for i, a := range jd.Attempts {
		if a.N != i+1 || a.JobID != job.ID || a.Duration != 150*time.Millisecond || a.StartedAt.IsZero() {
			t.Errorf("attempt %d: %+v", i, a)
		}
		outcomes = append(outcomes, a.Outcome)
	}
	if want := []string{"retry", "dead", "succeeded"}; !slices.Equal(outcomes, want) {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}
}

func TestClaimDueOrderAndLimit(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	var ids []int64
	for i := range 5 {
		ids = append(ids, mustIngest(t, s, testEvent(idOf("e", i)), evalFor("r", "a")).Jobs[0].ID)
		clk.Add(time.Second)
	}
	// Job 0 is pushed after everything else.
	got, _ := s.ClaimDue(ctx, clk.Now(), 1)
	if len(got) != 1 || got[0].ID != ids[0] {
		t.Fatalf("first claim %+v", got)
	}
	if err := s.Finish(ctx, ids[0], Attempt{Outcome: "retry"}, Pending, clk.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimDue(ctx, clk.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var order []int64
	for _, j := range got {
		order = append(order, j.ID)
	}
	if want := append(slices.Clone(ids[1:]), ids[0]); !slices.Equal(order, want) {
		t.Errorf("claim order %v, want %v", order, want)
	}
	if got, _ := s.ClaimDue(ctx, clk.Now(), 0); got != nil {
		t.Errorf("limit 0 claimed %v", got)
	}
}

func TestRecoverRunning(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustIngest(t, s, testEvent(idOf("e", i)), evalFor("r", "a"))
	}
	claimed, err := s.ClaimDue(ctx, time.Now(), 2)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	s.Close() // "crash" with two jobs running

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.RecoverRunning(ctx)
	if err != nil || n != 2 {
		t.Fatalf("RecoverRunning = %d, %v; want 2", n, err)
	}
	counts, _ := s.CountJobs(ctx)
	if counts[Pending] != 3 || counts[Running] != 0 {
		t.Fatalf("counts after recovery: %v", counts)
	}
	again, _ := s.ClaimDue(ctx, time.Now(), 10)
	for _, j := range again {
		if slices.ContainsFunc(claimed, func(c *Job) bool { return c.ID == j.ID }) && j.Attempts != 2 {
			t.Errorf("recovered job %d: attempts %d, want 2 (the crashed run counts)", j.ID, j.Attempts)
		}
	}
	if n, _ := s.RecoverRunning(ctx); n != 3 {
		t.Errorf("second RecoverRunning = %d, want 3", n)
	}
}

func TestUnclaim(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		mustIngest(t, s, testEvent(idOf("e", i)), evalFor("r", "a"))
	}
	claimed, err := s.ClaimDue(ctx, time.Now(), 3)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	// The first one finishes; the other two never started.
	if err := s.Finish(ctx, claimed[0].ID, Attempt{N: 1, StartedAt: time.Now(), Outcome: "succeeded"}, Succeeded, time.Time{}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Unclaim(ctx, []int64{claimed[0].ID, claimed[1].ID, claimed[2].ID, 999})
	if err != nil || n != 2 {
		t.Fatalf("Unclaim = %d, %v; want 2 (a finished job and an unknown one are left alone)", n, err)
	}
	again, _ := s.ClaimDue(ctx, time.Now(), 10)
	if len(again) != 2 {
		t.Fatalf("claimed %d after Unclaim, want 2", len(again))
	}
	for _, j := range again {
		if j.Attempts != 1 {
			t.Errorf("job %d: attempts %d after unclaim and a new claim, want 1", j.ID, j.Attempts)
		}
	}
	if counts, _ := s.CountJobs(ctx); counts[Succeeded] != 1 {
		t.Errorf("counts: %v", counts)
	}
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	first := mustIngest(t, s, testEvent("e1"), onceEval("r", "k", "a"))

	// New rule set: r no longer matches, q does and has a once key.
	eval := &Evaluation{
		Results: []RuleResult{{Rule: "r"}, {Rule: "q", Matched: true}, {Rule: "z", Error: "boom"}},
		Matches: []Match{{Rule: "q", HasOnce: true, OnceKey: "k", Actions: []string{"b", "c"}}},
	}
	res, err := s.Replay(ctx, "", "e1", eval)
	if err != nil || len(res.Jobs) != 2 || len(res.Suppressed) != 0 {
		t.Fatalf("Replay: %+v %v", res, err)
	}
	d, _ := s.Event(ctx, "", "e1")
	if !slices.Equal(d.Results, eval.Results) {
		t.Errorf("results after replay %+v, want %+v", d.Results, eval.Results)
	}
	if len(d.Jobs) != 3 || d.Jobs[0].ID != first.Jobs[0].ID {
		t.Errorf("jobs after replay %+v", d.Jobs)
	}

	// Replaying the same evaluation again: q's once key has fired.
	// The caller hears which rule was held back, to tell the operator.
	res, err = s.Replay(ctx, "", "e1", eval)
	if err != nil || len(res.Jobs) != 0 || !slices.Equal(res.Suppressed, []string{"q"}) || res.Duplicate {
		t.Fatalf("second Replay: %+v %v; want no job and q held back by once_per", res, err)
	}
	d, _ = s.Event(ctx, "", "e1")
	if !d.Results[1].Suppressed {
		t.Errorf("second replay result not suppressed: %+v", d.Results)
	}
	if _, err := s.Replay(ctx, "", "missing", eval); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Replay(missing): %v", err)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	old := clk.Now().Add(-48 * time.Hour)
	mk := func(id string, at time.Time, eval *Evaluation) *Job {
		ev := testEvent(id)
		ev.ReceivedAt = at
		res := mustIngest(t, s, ev, eval)
		if len(res.Jobs) == 0 {
			return nil
		}
		return res.Jobs[0]
	}
	finish := func(j *Job, next JobState) {
		if _, err := s.ClaimDue(ctx, clk.Now(), 100); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, j.ID, Attempt{Outcome: string(next)}, next, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("old-nojobs", old, evalFor("r"))
	finish(mk("old-done", old, evalFor("r", "a")), Succeeded)
	finish(mk("old-dead", old, evalFor("r", "a")), Dead)
	mk("old-running", old, evalFor("r", "a"))
	if got, err := s.ClaimDue(ctx, clk.Now(), 100); err != nil || len(got) != 1 {
		t.Fatalf("claim old-running: %v %v", got, err)
	}
	mk("old-pending", old.Add(time.Hour), evalFor("r", "a"))
	mk("new", clk.Now(), onceEval("r", "fresh", "a"))
	// An old once key, written with an old clock.
	clk.Add(-48 * time.Hour)
	mk("old-once", old, onceEval("o", "stale", "a"))
	clk.Add(48 * time.Hour)

	n, err := s.Prune(ctx, clk.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Prune deleted %d events, want 2 (old-nojobs, old-done)", n)
	}
	for _, id := range []string{"old-nojobs", "old-done"} {
		if _, err := s.Event(ctx, "", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s still present: %v", id, err)
		}
	}
	for _, id := range []string{"old-dead", "old-pending", "old-running", "old-once", "new"} {
		if _, err := s.Event(ctx, "", id); err != nil {
			t.Errorf("%s pruned: %v", id, err)
		}
	}
	// Cascades: nothing dangling.
	for _, q := range []string{
		`SELECT count(*) FROM rule_results WHERE event_seq NOT IN (SELECT seq FROM events)`,
		`SELECT count(*) FROM jobs WHERE event_seq NOT IN (SELECT seq FROM events)`,
		`SELECT count(*) FROM attempts WHERE job_id NOT IN (SELECT id FROM jobs)`,
	} {
		if got := count(t, s, q); got != 0 {
			t.Errorf("%s = %d", q, got)
		}
	}
	var keys []string
	rows, _ := s.rdb.Query(`SELECT key FROM once_keys ORDER BY key`)
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys = append(keys, k)
	}
	rows.Close()
	if !slices.Equal(keys, []string{"fresh"}) {
		t.Errorf("once keys after prune %v, want [fresh]", keys)
	}

}

// TestJobIDsNotReused: job IDs are idempotency keys downstream, so pruning
// the newest jobs must not let their IDs be handed out again.
func TestJobIDsNotReused(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	j := mustIngest(t, s, testEvent("e1"), evalFor("r", "a")).Jobs[0]
	if _, err := s.ClaimDue(ctx, time.Now(), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, j.ID, Attempt{Outcome: "succeeded"}, Succeeded, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if got := count(t, s, `SELECT count(*) FROM jobs`); got != 0 {
		t.Fatalf("%d jobs left", got)
	}
	j2 := mustIngest(t, s, testEvent("e2"), evalFor("r", "a")).Jobs[0]
	if j2.ID <= j.ID {
		t.Errorf("job ID %d reused (pruned job had %d)", j2.ID, j.ID)
	}
}

func TestPruneChunks(t *testing.T) {
	defer func(old int) { pruneChunk = old }(pruneChunk)
	pruneChunk = 20
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	n := pruneChunk*2 + 17
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				ev := testEvent(idOf("p", i))
				ev.ReceivedAt = clk.Now().Add(-time.Hour)
				mustIngest(t, s, ev, nil)
			}
		}()
	}
	wg.Wait()
	got, err := s.Prune(context.Background(), clk.Now())
	if err != nil || got != n {
		t.Fatalf("Prune = %d, %v; want %d", got, err, n)
	}
}

func TestConcurrentIngest64(t *testing.T) {
	s, _ := openTest(t, Options{})
	const callers, each = 64, 10
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				res, err := s.Ingest(context.Background(), testEvent(fmt.Sprintf("c-%02d-%03d", g, i)), evalFor("r", "a", "b"))
				if err == nil && len(res.Jobs) != 2 {
					err = fmt.Errorf("%d jobs", len(res.Jobs))
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := count(t, s, `SELECT count(*) FROM events`); got != callers*each {
		t.Errorf("%d events, want %d", got, callers*each)
	}
	if got := count(t, s, `SELECT count(*) FROM jobs`); got != 2*callers*each {
		t.Errorf("%d jobs, want %d", got, 2*callers*each)
	}
	if got := count(t, s, `SELECT count(DISTINCT id) FROM jobs`); got != 2*callers*each {
		t.Errorf("%d distinct job IDs", got)
	}
	st := s.Stats()
	t.Logf("writer stats: %+v (%.1f ops/batch)", st, float64(st.Ops)/float64(st.Batches))
	if st.Batches >= st.Ops {
		t.Errorf("no group commit happened: %+v", st)
	}
}

func TestQueries(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	base := clk.Now()
	defer func(old int) { sincePage = old }(sincePage)
	sincePage = 10
	n := sincePage*2 + 3 // EventsSince must page
	for i := range n {
		ev := testEvent(idOf("q", i))
		ev.ReceivedAt = base.Add(time.Duration(i) * time.Second)
		if i%3 == 0 {
			ev.Source = "stripe"
		}
		action := "a"
		if i%2 == 1 {
			action = "b"
		}
		mustIngest(t, s, ev, evalFor("r", action))
	}

	evs, err := s.Events(ctx, EventFilter{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(evs); !slices.Equal(got, []string{idOf("q", n-1), idOf("q", n-2), idOf("q", n-3)}) {
		t.Errorf("Events newest first: %v", got)
	}
	evs, _ = s.Events(ctx, EventFilter{Source: "stripe", Since: base.Add(time.Duration(n-7) * time.Second), Limit: 100})
	for _, ev := range evs {
		if ev.Source != "stripe" || ev.ReceivedAt.Before(base.Add(time.Duration(n-7)*time.Second)) {
			t.Errorf("filtered event %s %s %v", ev.ID, ev.Source, ev.ReceivedAt)
		}
	}
	var want []string
	for i := n - 1; i >= n-7; i-- {
		if i%3 == 0 {
			want = append(want, idOf("q", i))
		}
	}
	if !slices.Equal(ids(evs), want) {
		t.Errorf("source+since filter: %v, want %v", ids(evs), want)
	}
	if evs, _ := s.Events(ctx, EventFilter{}); len(evs) != min(n, defaultLimit) {
		t.Errorf("default limit: %d", len(evs))
	}

	var seen []string
	err = s.EventsSince(ctx, base.Add(2*time.Second), func(ev Event) error {
		seen = append(seen, ev.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n-2 || seen[0] != idOf("q", 2) || seen[len(seen)-1] != idOf("q", n-1) || !slices.IsSorted(seen) {
		t.Errorf("EventsSince: %d events, first %s last %s", len(seen), seen[0], seen[len(seen)-1])
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.EventsSince(ctx, time.Time{}, func(Event) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("EventsSince stop: %v after %d calls", err, calls)
	}
	// Journal order, not receive time: an event received earlier but
	// committed later (concurrent requests) comes after; one received
	// before since (a clock step back) is left out however late it came.
	late := testEvent("late")
	late.ReceivedAt = base.Add(5 * time.Second)
	mustIngest(t, s, late, nil)
	older := testEvent("older-than-since")
	older.ReceivedAt = base
	mustIngest(t, s, older, nil)
	seen = seen[:0]
	if err := s.EventsSince(ctx, base.Add(2*time.Second), func(ev Event) error { seen = append(seen, ev.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n-1 || seen[len(seen)-1] != "late" || slices.Contains(seen, "older-than-since") {
		t.Errorf("EventsSince in journal order: %d events, last %s", len(seen), seen[len(seen)-1])
	}

	jobs, _ := s.Jobs(ctx, JobFilter{State: Pending, Limit: 2})
	if len(jobs) != 2 || jobs[0].ID < jobs[1].ID {
		t.Errorf("Jobs newest first: %+v", jobs)
	}
	jobs, _ = s.Jobs(ctx, JobFilter{EventID: idOf("q", 5)})
	if len(jobs) != 1 || jobs[0].EventID != idOf("q", 5) {
		t.Errorf("Jobs by event: %+v", jobs)
	}
	if jobs, _ := s.Jobs(ctx, JobFilter{State: Dead}); len(jobs) != 0 {
		t.Errorf("Jobs dead: %+v", jobs)
	}
	// Paging by id (payramd retry --dead walks every page this way), and
	// one action's jobs.
	var paged []int64
	for before := int64(0); ; {
		page, err := s.Jobs(ctx, JobFilter{Action: "b", Before: before, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, j := range page {
			if j.Action != "b" || (before > 0 && j.ID >= before) {
				t.Fatalf("page below %d of action b: %+v", before, j)
			}
			paged = append(paged, j.ID)
			before = j.ID
		}
	}
	if len(paged) != n/2 || !slices.IsSortedFunc(paged, func(a, b int64) int { return cmp.Compare(b, a) }) {
		t.Errorf("paged through action b's jobs: %v, want %d newest first", paged, n/2)
	}
}

func ids(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

func TestClosed(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Ingest(ctx, testEvent("x"), nil); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ingest after Close: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping after Close: %v", err)
	}
	if _, err := s.Events(ctx, EventFilter{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Events after Close: %v", err)
	}
}

// TestCloseDrainsQueue: writes queued when Close is called are committed,
// not dropped.
func TestCloseDrainsQueue(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := idOf("d", i)
			if _, err := s.Ingest(context.Background(), testEvent(id), evalFor("r", "a")); err == nil {
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			} else if !errors.Is(err, ErrClosed) {
				t.Errorf("Ingest: %v", err)
			}
		}()
	}
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range acked {
		if _, err := s.Event(context.Background(), "", id); err != nil {
			t.Errorf("acked %s lost: %v", id, err)
		}
	}
}

// TestOpenReadOnlyWhileRunning: a backtest can read the journal of a running
// daemon without disturbing it.
func TestOpenReadOnlyWhileRunning(t *testing.T) {
	ctx := context.Background()
	s, dir := openTest(t, Options{})
	for i := range 3 {
		mustIngest(t, s, testEvent(idOf("ro", i)), evalFor("r", "a"))
	}
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var seen []string
	err = r.EventsSince(ctx, time.Time{}, func(ev Event) error {
		seen = append(seen, ev.ID)
		// The daemon keeps writing while the backtest reads.
		_, err := s.Ingest(ctx, testEvent("during-"+ev.ID), nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 3 || seen[0] != idOf("ro", 0) {
		t.Errorf("read-only EventsSince saw %v", seen)
	}
	if _, err := OpenReadOnly(filepath.Join(dir, "missing")); err == nil {
		t.Error("OpenReadOnly of a missing journal succeeded")
	}
}

// TestViews: the *_v views that make the file readable in the sqlite3 CLI
// work and render times as ISO-8601.
func TestViews(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	j := mustIngest(t, s, testEvent("e1"), evalFor("r", "a")).Jobs[0]
	if _, err := s.ClaimDue(context.Background(), clk.Now(), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(context.Background(), j.ID, Attempt{Outcome: "retry"}, Pending, clk.Now()); err != nil {
		t.Fatal(err)
	}
	var received, runAt string
	var started sql.NullString
	if err := s.rdb.QueryRow(`SELECT received FROM events_v`).Scan(&received); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow(`SELECT run_at FROM jobs_v`).Scan(&runAt); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow(`SELECT started FROM attempts_v`).Scan(&started); err != nil {
		t.Fatal(err)
	}
	if received != "2023-11-14T22:13:20.000Z" || runAt != "2026-11-23T12:00:00.000Z" || started.Valid {
		t.Errorf("views: received %q run_at %q started %v", received, runAt, started)
	}
}
