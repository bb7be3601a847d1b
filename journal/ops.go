package journal

import (
	"bytes"
	"cmp"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds the write methods. Each one prepares its arguments in the
// caller's goroutine (JSON encoding, time conversion, validation) and hands
// the writer only the statements to run, because the single writer
// goroutine is the throughput bottleneck and the callers are many.

// Ingest implements [Store.Ingest].
func (s *SQLite) Ingest(ctx context.Context, ev *Event, eval *Evaluation) (IngestResult, error) {
	if ev == nil || ev.ID == "" {
		return IngestResult{}, errors.New("journal: event has no ID")
	}
	if eval == nil {
		eval = &Evaluation{}
	}
	headers, err := encodeHeaders(ev.Headers)
	if err != nil {
		return IngestResult{}, err
	}
	received := ev.ReceivedAt
	if received.IsZero() {
		received = s.now()
	}
	var body, payload driver.Value // nil binds NULL
	if len(ev.Body) > 0 {
		body = ev.Body
	}
	if len(ev.Payload) > 0 {
		payload = string(ev.Payload) // TEXT, so json_extract() works in the CLI
	}
	id, source, provider, typ, recv, providerID := ev.ID, ev.Source, ev.Provider, ev.Type, received.UnixNano(), ev.ProviderID

	var res IngestResult
	err = s.write(ctx, func(w *wtx) error {
		res = IngestResult{} // the writer may run an op twice
		r, err := w.exec(stInsEvent, id, source, provider, typ, recv, headers, body, payload)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			res.Duplicate = err == nil
			return err
		}
		seq, err := r.LastInsertId()
		if err != nil {
			return err
		}
		t := evalTarget{seq: seq, id: id, source: source, provider: provider, idFromProvider: providerID}
		res.Jobs, res.Suppressed, res.RanElsewhere, err = s.applyEval(w, t, eval)
		return err
	})
	if err != nil {
		if IsNoSpace(err) {
			// The largest event refused since one was written: Ping must
			// find room for that one, not for whichever failed last.
			size := len(ev.Body) + len(ev.Payload) + len(headers)
			for old := s.refused.Load(); old == nil || *old < size; old = s.refused.Load() {
				if s.refused.CompareAndSwap(old, &size) {
					break
				}
			}
		}
		return IngestResult{}, err
	}
	// A duplicate wrote nothing: it proves no room. Read first: a store on
	// every webhook would bounce the word between cores for nothing.
	if !res.Duplicate && s.refused.Load() != nil {
		s.refused.Store(nil)
	}
	return res, nil
}

// Replay implements [Store.Replay].
func (s *SQLite) Replay(ctx context.Context, source, eventID string, eval *Evaluation) (IngestResult, error) {
	if eval == nil {
		eval = &Evaluation{}
	}
	var res IngestResult
	err := s.write(ctx, func(w *wtx) error {
		res = IngestResult{} // the writer may run an op twice
		var found []evalTarget
		var sources []string
		err := w.query(stEventSource, func(row []driver.Value) error {
			if src := asString(row[1]); source == "" || src == source {
				// A replay is an operator's request to run the event's rules
				// again: it does not look at what ran for other copies.
				found = append(found, evalTarget{seq: asInt64(row[0]), id: eventID, source: src})
				sources = append(sources, src)
			}
			return nil
		}, eventID)
		if err != nil {
			return err
		}
		if err := oneEvent(source, eventID, sources); err != nil {
			return err
		}
		if _, err := w.exec(stDelResults, found[0].seq); err != nil {
			return err
		}
		res.Jobs, res.Suppressed, res.RanElsewhere, err = s.applyEval(w, found[0], eval)
		return err
	})
	if err != nil {
		return IngestResult{}, err
	}
	return res, nil
}

// oneEvent checks that a lookup of id (in source, or in any source when
// source is empty) found exactly one event, given the sources of the events
// it found: ErrNotFound for none, an *AmbiguousError for several.
func oneEvent(source, id string, found []string) error {
	switch len(found) {
	case 1:
		return nil
	case 0:
		if source != "" {
			return fmt.Errorf("journal: event %q in source %q: %w", id, source, ErrNotFound)
		}
		return fmt.Errorf("journal: event %q: %w", id, ErrNotFound)
	}
	sorted := slices.Clone(found)
	slices.Sort(sorted)
	return &AmbiguousError{ID: id, Sources: sorted}
}

// evalTarget is the event an evaluation is recorded for.
type evalTarget struct {
	seq                  int64
	id, source, provider string
	// idFromProvider: the id is the provider's, so copies may be on other
	// sources, and a rule that ran for one of them does not run again.
	idFromProvider bool
}

// Values of rule_results.suppressed.
const (
	suppressedByOncePer    = 1
	suppressedRanElsewhere = 2
)

// applyEval records eval for an event that exists in this transaction:
// once keys first (so a suppressed match creates no jobs), then the rule
// results, then one job per action of every unsuppressed match. Because all
// ops of a batch share the transaction, a key claimed by an earlier op of the
// same batch is already visible here, so exactly one of many concurrent
// events with the same key gets jobs.
//
// When t.idFromProvider is set, a match whose rule already ran for a copy
// of the event on another source (its result matched and was not held
// back, or it has jobs there: a replay may have rewritten the result) is
// suppressed and listed in elsewhere, before its once_per key, which it
// then does not use up. The copies' results are read in this
// transaction, so of two copies in one batch the second sees the first.
// Nothing is stored for it: replays, which rewrite the results, and events
// journaled before schema 3 count as they are.
func (s *SQLite) applyEval(w *wtx, t evalTarget, eval *Evaluation) (jobs []*Job, suppressed, elsewhere []string, err error) {
	now := s.now().UnixNano()
	eventID, source := t.id, t.source
	// Box the values every row repeats once, not once per statement.
	seqV, idV, srcV, nowV := driver.Value(t.seq), driver.Value(eventID), driver.Value(source), driver.Value(now)
	var skip []bool // skip[i]: match i is held back; allocated only when one is
	hold := func(i int, rule string, list *[]string) {
		if skip == nil {
			skip = make([]bool, len(eval.Matches))
		}
		skip[i] = true
		if !slices.Contains(*list, rule) {
			*list = append(*list, rule)
		}
	}
	var ranElsewhere []string
	if t.idFromProvider && len(eval.Matches) > 0 {
		err := w.query(stRanElsewhere, func(row []driver.Value) error {
			ranElsewhere = append(ranElsewhere, asString(row[0]))
			return nil
		}, idV, srcV, t.provider)
		if err != nil {
			return nil, nil, nil, err
		}
	}
	for i, m := range eval.Matches {
		switch {
		case slices.Contains(ranElsewhere, m.Rule):
			hold(i, m.Rule, &elsewhere) // before once_per: its key is not used up
		case m.HasOnce:
			n, err := w.execN(stInsOnce, m.Rule, m.OnceKey, idV, nowV)
			if err != nil {
				return nil, nil, nil, err
			}
			if n == 0 {
				hold(i, m.Rule, &suppressed)
			}
		}
	}
	for i, r := range eval.Results {
		var supp int64
		switch {
		case !r.Matched && !r.Suppressed:
		case slices.Contains(elsewhere, r.Rule):
			supp = suppressedRanElsewhere
		case r.Suppressed || slices.Contains(suppressed, r.Rule):
			supp = suppressedByOncePer
		}
		if _, err := w.exec(stInsResult, seqV, int64(i), r.Rule, r.Matched, r.Error, supp); err != nil {
			return nil, nil, nil, err
		}
	}
	for i, m := range eval.Matches {
		if skip != nil && skip[i] {
			continue
		}
		for _, action := range m.Actions {
			st, state, attempts := stInsJob, Pending, 0
			if eval.Claim {
				st, state, attempts = stInsJobClaimed, Running, 1
			}
			res, err := w.exec(st, seqV, idV, srcV, m.Rule, action, nowV, nowV, nowV)
			if err != nil {
				return nil, nil, nil, err
			}
			jobID, err := res.LastInsertId()
			if err != nil {
				return nil, nil, nil, err
			}
			t := fromNanos(now)
			jobs = append(jobs, &Job{
				ID: jobID, EventID: eventID, Source: source, Rule: m.Rule, Action: action,
				State: state, Attempts: attempts, RunAt: t, CreatedAt: t, UpdatedAt: t,
			})
		}
	}
	return jobs, suppressed, elsewhere, nil
}

// ClaimDue implements [Store.ClaimDue]. Claims go through the writer like
// every other write, so two dispatchers can never claim the same job, and a
// claim is durable before the job runs (a crash then leaves it running, and
// RecoverRunning re-queues it at start-up).
func (s *SQLite) ClaimDue(ctx context.Context, now time.Time, limit int) ([]*Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	due := now.UnixNano()
	var jobs []*Job
	err := s.write(ctx, func(w *wtx) error {
		jobs = jobs[:0]
		return w.query(stClaim, func(row []driver.Value) error {
			j := new(Job)
			jobFromRow(row, j)
			jobs = append(jobs, j)
			return nil
		}, s.now().UnixNano(), due, int64(limit))
	})
	if err != nil {
		return nil, err
	}
	// RETURNING does not promise any order.
	slices.SortFunc(jobs, func(a, b *Job) int {
		if c := a.RunAt.Compare(b.RunAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return jobs, nil
}

// Finish implements [Store.Finish].
func (s *SQLite) Finish(ctx context.Context, jobID int64, a Attempt, next JobState, runAt time.Time) error {
	switch next {
	case Pending, Succeeded, Dead:
	default:
		return fmt.Errorf("journal: Finish: invalid next state %q", next)
	}
	if next == Pending && runAt.IsZero() {
		runAt = s.now()
	}
	started := toNanos(a.StartedAt)
	return s.write(ctx, func(w *wtx) error {
		n := int64(a.N)
		args := []driver.Value{string(next), toNanos(runAt), a.Error, s.now().UnixNano(), jobID}
		if n > 0 {
			if changed, err := w.execN(stFinishN, args...); err != nil || changed == 0 {
				if err == nil {
					err = fmt.Errorf("journal: no running job %d: %w", jobID, ErrNotFound)
				}
				return err
			}
		} else {
			n = -1
			err := w.query(stFinish, func(row []driver.Value) error {
				n = asInt64(row[0])
				return nil
			}, args...)
			if err != nil {
				return err
			}
			if n < 0 {
				return fmt.Errorf("journal: no running job %d: %w", jobID, ErrNotFound)
			}
		}
		_, err := w.exec(stInsAttempt, jobID, n, started, int64(a.Duration), a.Outcome, a.Error, a.Output)
		return err
	})
}

// Retry implements [Store.Retry].
func (s *SQLite) Retry(ctx context.Context, jobID int64) (*Job, error) {
	var j Job
	err := s.write(ctx, func(w *wtx) error {
		found := false
		err := w.query(stRetry, func(row []driver.Value) error {
			jobFromRow(row, &j)
			found = true
			return nil
		}, s.now().UnixNano(), jobID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("journal: no dead or pending job %d: %w", jobID, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// RecoverRunning implements [Store.RecoverRunning].
func (s *SQLite) RecoverRunning(ctx context.Context) (int, error) {
	var n int64
	err := s.write(ctx, func(w *wtx) error {
		var err error
		n, err = w.execN(stRecover, s.now().UnixNano())
		return err
	})
	return int(n), err
}

// Unclaim implements [Store.Unclaim].
func (s *SQLite) Unclaim(ctx context.Context, jobIDs []int64) (int, error) {
	var n int64
	err := s.write(ctx, func(w *wtx) error {
		now := s.now().UnixNano()
		for _, id := range jobIDs {
			c, err := w.execN(stUnclaim, now, id)
			if err != nil {
				return err
			}
			n += c
		}
		return nil
	})
	return int(n), err
}

// pruneChunk bounds the rows one Prune op deletes, so that pruning a large
// backlog is many short transactions interleaved with ingestion rather than
// one long one that stalls every webhook behind it.
var pruneChunk = 500 // a variable only so tests can exercise chunking cheaply

// Prune implements [Store.Prune].
func (s *SQLite) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	before := cutoff.UnixNano()
	total := 0
	for {
		var events, keys int64
		err := s.write(ctx, func(w *wtx) error {
			var err error
			if events, err = w.execN(stPruneEvents, before, int64(pruneChunk)); err != nil {
				return err
			}
			keys, err = w.execN(stPruneOnce, before, int64(pruneChunk))
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(events)
		if events < int64(pruneChunk) && keys < int64(pruneChunk) {
			return total, nil
		}
	}
}

// Ping implements [Store.Ping]. It commits a real write through the
// group-commit path, as Ingest does. A tiny one may fit on a nearly full
// disk where no event does, so after Ingest was refused for want of room
// Ping writes as much as that event held, and says ready only once that
// fits (or an event was journaled since).
func (s *SQLite) Ping(ctx context.Context) error {
	v := s.now().UTC().Format(time.RFC3339Nano)
	refused := s.refused.Load()
	if refused != nil {
		v += strings.Repeat(" ", *refused)
	}
	write := s.write
	if refused != nil {
		// Expected to fail at COMMIT while the disk is short of room, which
		// fails the whole transaction: webhooks that fit must not be in it.
		write = s.writeAlone
	}
	err := write(ctx, func(w *wtx) error {
		_, err := w.exec(stPing, v)
		return err
	})
	if err == nil && refused != nil {
		s.refused.CompareAndSwap(refused, nil)
	}
	return err
}

// encodeHeaders renders headers as a JSON object with sorted keys and
// without HTML escaping, so it reads naturally in the sqlite3 CLI.
func encodeHeaders(h map[string]string) (string, error) {
	if len(h) == 0 {
		return "{}", nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return "", fmt.Errorf("journal: encode headers: %w", err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})), nil
}

// jobFromRow fills j from a row of jobColumns as returned by the driver.
func jobFromRow(row []driver.Value, j *Job) {
	j.ID = asInt64(row[0])
	j.EventID, j.Source, j.Rule, j.Action = asString(row[1]), asString(row[2]), asString(row[3]), asString(row[4])
	j.State = JobState(asString(row[5]))
	j.Attempts = int(asInt64(row[6]))
	j.RunAt, j.CreatedAt, j.UpdatedAt = fromNanos(asInt64(row[7])), fromNanos(asInt64(row[8])), fromNanos(asInt64(row[9]))
	j.LastError = asString(row[10])
}

func asInt64(v driver.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}

func asString(v driver.Value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}
