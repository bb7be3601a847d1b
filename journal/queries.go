package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file holds the read methods. They use the read-only pool, never the
// writer: in WAL mode readers see the last committed snapshot and neither
// block nor are blocked by the group commit. Everything a write method has
// acknowledged is visible to a read started after it returned.

const jobColumns = `id, event_id, source, rule, action, state, attempts, run_at, created_at, updated_at, last_error`

const eventColumns = `id, source, provider, type, received_at, headers, body, payload`

const (
	defaultLimit = 100
	maxLimit     = 10000
)

// sincePage is the page size of EventsSince. Paging keeps each read
// transaction short: a read held open for a whole backtest would stop WAL
// checkpoints from completing and let the -wal file grow. (A variable only so
// tests can exercise paging with few events.)
var sincePage = 500

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

type scanner interface{ Scan(dest ...any) error }

func scanJob(r scanner, j *Job) error {
	var state string
	var runAt, created, updated int64
	if err := r.Scan(&j.ID, &j.EventID, &j.Source, &j.Rule, &j.Action, &state, &j.Attempts,
		&runAt, &created, &updated, &j.LastError); err != nil {
		return err
	}
	j.State = JobState(state)
	j.RunAt, j.CreatedAt, j.UpdatedAt = fromNanos(runAt), fromNanos(created), fromNanos(updated)
	return nil
}

// scanEvent scans eventColumns, plus any extra destinations appended after them.
func scanEvent(r scanner, ev *Event, extra ...any) error {
	var received int64
	var headers string
	dest := append([]any{&ev.ID, &ev.Source, &ev.Provider, &ev.Type, &received, &headers, &ev.Body, &ev.Payload}, extra...)
	if err := r.Scan(dest...); err != nil {
		return err
	}
	ev.ReceivedAt = fromNanos(received)
	ev.Headers = nil
	if headers != "" && headers != "{}" {
		if err := json.Unmarshal([]byte(headers), &ev.Headers); err != nil {
			return fmt.Errorf("journal: event %q: decode headers: %w", ev.ID, err)
		}
	}
	return nil
}

// readErr marks failures of the read pool as ErrUnavailable too, except for
// the caller's own cancellation.
func readErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return classify(err)
}

// Event implements [Store.Event]. The four queries run in one read
// transaction so that the detail is a consistent snapshot.
func (s *SQLite) Event(ctx context.Context, source, id string) (*EventDetail, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, readErr(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	d := &EventDetail{}
	var seq int64
	q, args := `SELECT `+eventColumns+`, seq FROM events WHERE id = ?`, []any{id}
	if source != "" {
		q, args = q+` AND source = ?`, append(args, source)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, readErr(err)
	}
	var sources []string
	for rows.Next() {
		if err := scanEvent(rows, &d.Event, &seq); err != nil {
			rows.Close()
			return nil, readErr(err)
		}
		sources = append(sources, d.Event.Source)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	if err := oneEvent(source, id, sources); err != nil {
		return nil, err
	}

	rows, err = tx.QueryContext(ctx, `SELECT rule, matched, error, suppressed FROM rule_results WHERE event_seq = ? ORDER BY n`, seq)
	if err != nil {
		return nil, readErr(err)
	}
	for rows.Next() {
		var r RuleResult
		var supp int
		if err := rows.Scan(&r.Rule, &r.Matched, &r.Error, &supp); err != nil {
			rows.Close()
			return nil, readErr(err)
		}
		r.Suppressed, r.RanElsewhere = supp != 0, supp == suppressedRanElsewhere
		d.Results = append(d.Results, r)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = tx.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE event_seq = ? ORDER BY id`, seq)
	if err != nil {
		return nil, readErr(err)
	}
	index := map[int64]int{}
	for rows.Next() {
		var jd JobDetail
		if err := scanJob(rows, &jd.Job); err != nil {
			rows.Close()
			return nil, readErr(err)
		}
		index[jd.ID] = len(d.Jobs)
		d.Jobs = append(d.Jobs, jd)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	if len(d.Jobs) == 0 {
		return d, nil
	}

	rows, err = tx.QueryContext(ctx, `SELECT job_id, n, started_at, duration_ns, outcome, error, output FROM attempts
		WHERE job_id IN (SELECT id FROM jobs WHERE event_seq = ?) ORDER BY job_id, n, id`, seq)
	if err != nil {
		return nil, readErr(err)
	}
	for rows.Next() {
		var a Attempt
		var started, dur int64
		if err := rows.Scan(&a.JobID, &a.N, &started, &dur, &a.Outcome, &a.Error, &a.Output); err != nil {
			rows.Close()
			return nil, readErr(err)
		}
		a.StartedAt, a.Duration = fromNanos(started), time.Duration(dur)
		if i, ok := index[a.JobID]; ok {
			d.Jobs[i].Attempts = append(d.Jobs[i].Attempts, a)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	return d, nil
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return readErr(err)
}

// Events implements [Store.Events].
func (s *SQLite) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	var where []string
	var args []any
	if f.Source != "" {
		where = append(where, "source = ?")
		args = append(args, f.Source)
	}
	if !f.Since.IsZero() {
		where = append(where, "received_at >= ?")
		args = append(args, f.Since.UnixNano())
	}
	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY received_at DESC, seq DESC LIMIT ?`
	args = append(args, clampLimit(f.Limit))

	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, readErr(err)
	}
	var out []Event
	for rows.Next() {
		var ev Event
		if err := scanEvent(rows, &ev); err != nil {
			rows.Close()
			return nil, readErr(err)
		}
		out = append(out, ev)
	}
	return out, closeRows(rows)
}

// Jobs implements [Store.Jobs].
func (s *SQLite) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	var where []string
	var args []any
	switch f.State {
	case "":
	case Succeeded:
		// Succeeded jobs are most of the table and are not in the partial
		// index jobs_due: walking IDs backwards and filtering reaches
		// `limit` rows quickly.
		where = append(where, "state = ?")
		args = append(args, string(f.State))
	default:
		// The first term lets SQLite use the partial index jobs_due.
		where = append(where, "state <> 'succeeded' AND state = ?")
		args = append(args, string(f.State))
	}
	if f.EventID != "" {
		where = append(where, "event_seq IN (SELECT seq FROM events WHERE id = ?)")
		args = append(args, f.EventID)
	}
	if f.Source != "" {
		where = append(where, "source = ?")
		args = append(args, f.Source)
	}
	if f.Action != "" {
		where = append(where, "action = ?")
		args = append(args, f.Action)
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	q := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, clampLimit(f.Limit))

	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, readErr(err)
	}
	var out []Job
	for rows.Next() {
		var j Job
		if err := scanJob(rows, &j); err != nil {
			rows.Close()
			return nil, readErr(err)
		}
		out = append(out, j)
	}
	return out, closeRows(rows)
}

// sinceStartSQL finds where EventsSince starts: the first event journaled
// among those received since ?. "+seq" keeps SQLite from answering min(seq)
// by walking the table in seq order until an event is recent enough, which
// reads every event older than the window (most of a journal, for a
// backtest of the last week under a 30-day retention); it walks the
// window's part of the received_at index instead.
const sinceStartSQL = `SELECT min(+seq) FROM events WHERE received_at >= ?`

// EventsSince implements [Store.EventsSince]. Events come in the order
// they were committed (seq), which is the order the daemon evaluated them
// in: a backtest must see which of two copies of one provider event
// claimed a rule first, and concurrent requests can commit in another
// order than their receive times. It pages by seq, so that each page is
// its own short read and fn may take as long as it likes (or call back into
// the Store) without pinning a snapshot. Events ingested during the walk
// may or may not be seen.
func (s *SQLite) EventsSince(ctx context.Context, since time.Time, fn func(Event) error) error {
	if s.isClosed() {
		return ErrClosed
	}
	from := toNanos(since)
	if since.IsZero() {
		from = -1 << 63
	}
	var first sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, sinceStartSQL, from).Scan(&first); err != nil {
		return readErr(err)
	}
	if !first.Valid {
		return nil
	}
	lastRow := first.Int64 - 1
	page := make([]Event, 0, sincePage)
	for {
		page = page[:0]
		// received_at is filtered here rather than in SQL, so that a page
		// is short only at the end (after a clock step back, an event can
		// follow the first one in seq and still be older than since).
		rows, err := s.rdb.QueryContext(ctx, `SELECT `+eventColumns+`, seq FROM events
			WHERE seq > ? ORDER BY seq LIMIT ?`, lastRow, sincePage)
		if err != nil {
			return readErr(err)
		}
		n := 0
		for rows.Next() {
			var ev Event
			if err := scanEvent(rows, &ev, &lastRow); err != nil {
				rows.Close()
				return readErr(err)
			}
			n++
			if toNanos(ev.ReceivedAt) >= from {
				page = append(page, ev)
			}
		}
		if err := closeRows(rows); err != nil {
			return err
		}
		for _, ev := range page {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if n < sincePage {
			return nil
		}
	}
}

// CountJobs implements [Store.CountJobs].
func (s *SQLite) CountJobs(ctx context.Context) (map[JobState]int, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT state, count(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, readErr(err)
	}
	out := map[JobState]int{Pending: 0, Running: 0, Succeeded: 0, Dead: 0}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			rows.Close()
			return nil, readErr(err)
		}
		out[JobState(state)] = n
	}
	return out, closeRows(rows)
}

// nextRunAtSQL repeats the WHERE of the partial index jobs_due so that
// SQLite may use it (TestQueriesUseDueIndex checks that it does).
const nextRunAtSQL = `SELECT min(run_at) FROM jobs WHERE state <> 'succeeded' AND state = 'pending'`

// NextRunAt implements [Store.NextRunAt].
func (s *SQLite) NextRunAt(ctx context.Context) (time.Time, bool, error) {
	if s.isClosed() {
		return time.Time{}, false, ErrClosed
	}
	var t sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, nextRunAtSQL).Scan(&t); err != nil {
		return time.Time{}, false, readErr(err)
	}
	if !t.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, t.Int64).UTC(), true, nil
}

func (s *SQLite) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}
