package journal

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openOldJournal writes a journal with setup (the old schema's
// migrations and rows, run one statement at a time with foreign keys on, as
// the daemon ran them), opens it with this binary, which migrates it, and
// checks what every migration must leave: the current version, an intact
// file and no dangling foreign keys.
func openOldJournal(t *testing.T, setup []string) *SQLite {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), "_pragma=journal_mode(WAL)", "_pragma=foreign_keys(1)"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // a PRAGMA foreign_keys in setup must apply to every statement
	for _, q := range setup {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("old journal setup: %v\n%s", err, q)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open an old journal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if got := count(t, s, `PRAGMA user_version`); got != schemaVersion {
		t.Errorf("user_version = %d, want %d", got, schemaVersion)
	}
	var check string
	if err := s.rdb.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
	if got := count(t, s, `SELECT count(*) FROM pragma_foreign_key_check`); got != 0 {
		t.Errorf("%d foreign key violations", got)
	}
	return s
}

// TestMigrateV1ToV2 writes a journal the way version 1 of the schema laid
// it out, opens it with this binary, and checks that the rebuild kept every
// event, result, job and attempt with its links, that job ids keep counting
// from where they were (they are idempotency keys), and that the cascades
// and the dedup constraint still hold.
func TestMigrateV1ToV2(t *testing.T) {
	v1 := []string{
		migrations[0],
		fmt.Sprintf(`PRAGMA application_id = %d; PRAGMA user_version = 1`, applicationID),
		`INSERT INTO events (id, source, provider, type, received_at, headers, body, payload) VALUES
			('ev-a', 'payram', 'payram', 'payment.filled', 1700000000000000000, '{"content-type":"application/json"}', x'7b7d', '{"status":"FILLED"}'),
			('ev-b', 'shop', 'hmac', 'order.paid', 1700000001000000000, '{}', x'7b7d', NULL)`,
		`INSERT INTO rule_results (event_id, seq, rule, matched, error, suppressed) VALUES
			('ev-a', 0, 'paid', 1, '', 0), ('ev-a', 1, 'big', 0, 'division by zero', 0), ('ev-b', 0, 'paid', 1, '', 1)`,
		// Job 9 existed and was pruned: its id must never come back.
		`INSERT INTO jobs (id, event_id, source, rule, action, state, attempts, run_at, created_at, updated_at, last_error) VALUES
			(5, 'ev-a', 'payram', 'paid', 'slack', 'succeeded', 1, 1, 1, 1, ''),
			(7, 'ev-a', 'payram', 'paid', 'email', 'dead', 3, 2, 2, 2, 'smtp: 550'),
			(9, 'ev-b', 'shop', 'paid', 'slack', 'succeeded', 1, 3, 3, 3, '')`,
		`DELETE FROM jobs WHERE id = 9`,
		`INSERT INTO attempts (job_id, n, started_at, duration_ns, outcome, error, output) VALUES
			(5, 1, 10, 1000, 'succeeded', '', ''), (7, 1, 11, 1000, 'retry', 'smtp: 451', ''),
			(7, 2, 12, 1000, 'retry', 'smtp: 451', ''), (7, 3, 13, 1000, 'dead', 'smtp: 550', 'out')`,
		// Rows orphaned by hand, as the sqlite3 CLI allows (it does not
		// enforce foreign keys unless asked): the migration must leave them
		// behind, not fail on them at every start.
		`PRAGMA foreign_keys = OFF`,
		`INSERT INTO rule_results (event_id, seq, rule, matched) VALUES ('deleted-by-hand', 0, 'paid', 1)`,
		`INSERT INTO jobs (id, event_id, source, rule, action, state, attempts, run_at, created_at, updated_at) VALUES
			(8, 'deleted-by-hand', 'payram', 'paid', 'slack', 'dead', 1, 4, 4, 4)`,
		`INSERT INTO attempts (job_id, n, started_at, duration_ns, outcome) VALUES (8, 1, 14, 1000, 'dead'), (404, 1, 15, 1000, 'dead')`,
		`PRAGMA foreign_keys = ON`,
	}
	s := openOldJournal(t, v1)
	ctx := context.Background()

	d, err := s.Event(ctx, "", "ev-a")
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Event.Payload) != `{"status":"FILLED"}` || d.Event.Headers["content-type"] != "application/json" ||
		!d.Event.ReceivedAt.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("event: %+v", d.Event)
	}
	if len(d.Results) != 2 || d.Results[0] != (RuleResult{Rule: "paid", Matched: true}) ||
		d.Results[1] != (RuleResult{Rule: "big", Error: "division by zero"}) {
		t.Errorf("results: %+v", d.Results)
	}
	if len(d.Jobs) != 2 || d.Jobs[0].ID != 5 || d.Jobs[1].ID != 7 || d.Jobs[1].State != Dead ||
		d.Jobs[1].LastError != "smtp: 550" || len(d.Jobs[1].Attempts) != 3 || d.Jobs[1].Attempts[2].Output != "out" {
		t.Errorf("jobs: %+v", d.Jobs)
	}
	if d, err := s.Event(ctx, "", "ev-b"); err != nil || len(d.Results) != 1 || !d.Results[0].Suppressed || len(d.Jobs) != 0 {
		t.Errorf("ev-b: %+v, %v", d, err)
	}
	if got := count(t, s, `SELECT count(*) FROM attempts WHERE job_id IN (8, 404)`); got != 0 {
		t.Errorf("%d orphaned attempts carried over", got)
	}
	if dead, err := s.Jobs(ctx, JobFilter{State: Dead}); err != nil || len(dead) != 1 || dead[0].ID != 7 {
		t.Errorf("dead jobs: %+v, %v", dead, err)
	}

	// Dedup still holds, and new jobs continue after the pruned job 9.
	if res := mustIngest(t, s, testEvent("ev-a"), evalFor("r", "a")); !res.Duplicate {
		t.Error("an event from before the migration is not a duplicate")
	}
	if j := mustIngest(t, s, testEvent("ev-c"), evalFor("r", "a")).Jobs[0]; j.ID <= 9 {
		t.Errorf("new job id %d reuses an id from before the migration", j.ID)
	}

	// Cascades follow the new keys: pruning ev-b (no unfinished jobs)
	// removes its results; ev-a keeps its dead job and stays.
	if n, err := s.Prune(ctx, time.Unix(1800000000, 0)); err != nil || n != 1 {
		t.Errorf("Prune = %d, %v; want 1", n, err)
	}
	if got := count(t, s, `SELECT count(*) FROM rule_results WHERE event_seq NOT IN (SELECT seq FROM events)`); got != 0 {
		t.Errorf("%d orphaned results after prune", got)
	}
	if got := count(t, s, `SELECT count(*) FROM events_v`); got != 2 {
		t.Errorf("events_v has %d rows, want 2", got)
	}
}

// TestMigrateV1WithOperatorView: a version 1 journal holding a view an
// operator added over events (the README invites them) upgrades, and the
// view is still there and reads the rebuilt table. The 1 -> 2 rebuild
// renames tables, which makes SQLite re-check every view; this one read a
// table dropped a moment before, so the migration failed and the daemon
// could not start on that journal at all.
func TestMigrateV1WithOperatorView(t *testing.T) {
	s := openOldJournal(t, []string{
		migrations[0],
		fmt.Sprintf(`PRAGMA application_id = %d; PRAGMA user_version = 1`, applicationID),
		`INSERT INTO events (id, source, provider, type, received_at) VALUES ('ev-a', 'payram', 'payram', 'payment.filled', 1)`,
		`CREATE VIEW "my ""filled"" events" AS SELECT id, source FROM events WHERE type = 'payment.filled'`,
		`CREATE VIEW my_jobs AS SELECT j.id, e.source FROM jobs j JOIN events e ON e.id = j.event_id`,
	})
	if got := count(t, s, `SELECT count(*) FROM "my ""filled"" events"`); got != 1 {
		t.Errorf("the operator's view reads %d events after the upgrade, want 1", got)
	}
	if got := count(t, s, `SELECT count(*) FROM sqlite_schema WHERE name = 'my_jobs'`); got != 1 {
		t.Errorf("the operator's view over a column the upgrade removed is gone")
	}
}

// TestQueriesUseDueIndex: the dispatcher's queries repeat the WHERE term of
// the partial index jobs_due, which is the only way SQLite lets them use it;
// without it each would scan every job ever run.
func TestQueriesUseDueIndex(t *testing.T) {
	s, _ := openTest(t, Options{})
	for name, q := range map[string]string{
		"claim":       writerSQL[stClaim],
		"recover":     writerSQL[stRecover],
		"next run at": nextRunAtSQL,
	} {
		if plan := queryPlan(t, s, q, 1, 2, 3); !strings.Contains(plan, "jobs_due") {
			t.Errorf("%s does not use the index jobs_due:\n%s", name, plan)
		}
	}
}

// TestEventsSinceStartUsesIndex: the backtest finds the first event of
// its window through the received_at index. Answered by walking events in
// seq order instead (SQLite's plan for a bare min(seq)), it read every event
// older than the window first: seconds of disk reads on a large journal,
// beside the running daemon, before the first event of the window.
func TestEventsSinceStartUsesIndex(t *testing.T) {
	s, _ := openTest(t, Options{})
	if plan := queryPlan(t, s, sinceStartSQL, 1); !strings.Contains(plan, "events_received_at") {
		t.Errorf("the start of EventsSince does not use the received_at index:\n%s", plan)
	}
}

// queryPlan returns SQLite's plan for q, one step per line.
func queryPlan(t *testing.T, s *SQLite, q string, args ...any) string {
	t.Helper()
	rows, err := s.rdb.Query(`EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "\n")
}
