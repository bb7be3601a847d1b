// Package journal is payramd's durable event journal and job queue.
//
// Every webhook payramd accepts is written here, together with the outcome of
// evaluating the rules against it and one job per action to run, before the
// webhook is acknowledged. The dispatcher then claims due jobs, runs them and
// records each attempt. Because the event, its rule results and its jobs are
// written in a single transaction, a crash can never leave an acknowledged
// event without its jobs, or jobs without their event.
//
// The only implementation today is [SQLite]: an embedded SQLite database in
// WAL mode with synchronous=FULL, so a commit is on stable storage when it
// returns. A single fsync per webhook would cap throughput at a few thousand
// events per second, so writes are group-committed: one writer goroutine
// gathers the writes that arrive while the previous commit is syncing and
// commits them together (see [SQLite] for the details). The [Store]
// interface keeps the rest of payramd independent of SQLite, so a PostgreSQL
// backend (claiming jobs with FOR UPDATE SKIP LOCKED) can be added for
// multi-node deployments.
//
// Errors: any error wrapping [ErrUnavailable] means the journal could not
// durably record the write (disk full, read-only file system, I/O error,
// store closed). The caller must treat the write as not having happened and
// must never report success for it; the webhook layer answers 503 so the
// provider retries. Such a write may still have reached the disk in rare
// cases (for example when the caller's context ended while the commit was
// in flight), which is why [Store.Ingest] is idempotent on the event's
// source and ID.
package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// JobState is the lifecycle state of a job.
type JobState string

// Job states. A job is created Pending, moved to Running when a worker claims
// it, and ends Succeeded or Dead; a failed attempt that will be retried moves
// it back to Pending with a later run_at.
const (
	Pending   JobState = "pending"
	Running   JobState = "running"
	Succeeded JobState = "succeeded"
	Dead      JobState = "dead"
)

// Valid reports whether s is one of the four known states.
func (s JobState) Valid() bool {
	switch s {
	case Pending, Running, Succeeded, Dead:
		return true
	}
	return false
}

var (
	// ErrUnavailable is wrapped by every error that means "the journal could
	// not durably commit this write right now". Callers must not acknowledge
	// anything that failed with it; the webhook layer maps it to 503.
	ErrUnavailable = errors.New("journal unavailable")

	// ErrNotFound is returned when an event or job does not exist (or, for
	// Finish and Retry, is not in a state the operation applies to).
	ErrNotFound = errors.New("not found")

	// ErrAmbiguous is wrapped by the error of a lookup by event id alone
	// (no source given) that finds events of several sources: dedup is per
	// source, so two sources fed by one provider account may both hold a
	// delivery with the same id. The error is an [*AmbiguousError].
	ErrAmbiguous = errors.New("event id in several sources")

	// ErrClosed is returned by every method after Close. It wraps
	// ErrUnavailable, because to a webhook caller a closing journal is
	// simply one that cannot accept writes.
	ErrClosed = fmt.Errorf("%w: journal closed", ErrUnavailable)
)

// AmbiguousError names the sources that hold an event id looked up without
// one. It wraps [ErrAmbiguous].
type AmbiguousError struct {
	ID      string
	Sources []string // sorted
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("journal: event %q is in sources %s; name the source", e.ID, strings.Join(e.Sources, ", "))
}

func (e *AmbiguousError) Unwrap() error { return ErrAmbiguous }

// Event is one received webhook. Events are unique by (Source, ID): a
// delivery id repeated on the same source is a duplicate, the same id on
// another source is another event.
type Event struct {
	ID, Source, Provider, Type string
	ReceivedAt                 time.Time
	Headers                    map[string]string // already redacted by the caller
	Body                       []byte            // raw body as received (may be empty for GET)
	Payload                    []byte            // normalized payload as JSON (opaque to the journal)
	// ProviderID marks an ID the provider chose (and may send to several
	// sources), as opposed to one derived from the source and body. Ingest
	// runs each rule at most once per such ID across sources; see
	// [RuleResult.RanElsewhere].
	ProviderID bool
}

// RuleResult is the outcome of evaluating one rule against an event.
type RuleResult struct {
	Rule    string
	Matched bool
	Error   string
	// Suppressed is set by the journal (callers leave it false) when the rule
	// matched but no jobs were made: its once_per key had already fired, or
	// (RanElsewhere) the rule already ran for this event id on another source.
	Suppressed bool
	// RanElsewhere, set with Suppressed, means the rule had already run for
	// an event with the same provider ID received on another source: two
	// endpoints fed by one provider account (during a migration, say) must
	// not fulfil an order twice, while rules limited to one of the sources
	// still each run.
	RanElsewhere bool
}

// Match is a rule that matched and the actions it asks for.
type Match struct {
	Rule    string
	OnceKey string // used only when HasOnce
	HasOnce bool
	Actions []string // action names; one job per name
}

// Evaluation is the result of running the rule set against one event.
type Evaluation struct {
	Results []RuleResult
	Matches []Match
	// Claim inserts the jobs already claimed (running, attempt 1) for a
	// caller that runs them straight away from memory. It saves a claim
	// write per job; a crash before they finish leaves them running, and
	// RecoverRunning makes them pending at the next start, as for any
	// claimed job.
	Claim bool
}

// Job is one action to run for one event.
type Job struct {
	ID                            int64
	EventID, Source, Rule, Action string
	State                         JobState
	Attempts                      int
	RunAt, CreatedAt, UpdatedAt   time.Time
	LastError                     string
}

// Attempt records one execution of a job.
type Attempt struct {
	JobID     int64
	N         int
	StartedAt time.Time
	Duration  time.Duration
	Outcome   string // "succeeded", "retry", "failed", "dead"
	Error     string
	Output    string
}

// EventDetail is an event with everything recorded about it.
type EventDetail struct {
	Event   Event
	Results []RuleResult
	Jobs    []JobDetail
}

// JobDetail is a job with its attempts, oldest first.
//
// Beware: the Attempts slice shadows the embedded Job.Attempts counter, so
// write jd.Job.Attempts for the counter, and note that encoding/json
// marshals only the slice under "Attempts" (the shallower field wins).
type JobDetail struct {
	Job
	Attempts []Attempt
}

// IngestResult reports what Ingest wrote.
type IngestResult struct {
	// Duplicate is true when an event with the same ID was already stored
	// for the same source;
	// nothing was written and Jobs is empty.
	Duplicate bool
	// Jobs are the jobs created, in match and action order.
	Jobs []*Job
	// Suppressed lists the rules that matched but whose once_per key had
	// already fired (earlier event, or earlier in the same batch).
	Suppressed []string
	// RanElsewhere lists the rules that matched but had already run for the
	// same provider ID on another source; they are not in Suppressed.
	RanElsewhere []string
}

// EventFilter selects events for [Store.Events]. Zero fields do not filter.
type EventFilter struct {
	Source string
	Since  time.Time // received_at >= Since
	Limit  int       // default 100, capped at 10000
}

// JobFilter selects jobs for [Store.Jobs]. Zero fields do not filter.
type JobFilter struct {
	State   JobState
	EventID string // jobs of the events with this id, in any source unless Source is set
	Source  string // jobs of events from this source
	Action  string // the action's name, as jobs record it
	Before  int64  // only jobs with a lower id: the cursor for the next page
	Limit   int    // default 100, capped at 10000
}

// Store is the journal as the rest of payramd sees it. Every write method
// returns only after its write is durably committed; an error wrapping
// ErrUnavailable means it was not.
type Store interface {
	// Ingest writes the event, its rule results and its jobs in one
	// transaction. If an event with ev.ID exists for ev.Source, nothing is
	// written and Duplicate is true. For a Match with HasOnce the (rule,
	// OnceKey) pair is claimed in the once table first; if it was already
	// claimed (by an earlier event, or earlier in the same batch) no jobs
	// are created for that match and its result is recorded with
	// Suppressed=true. Before that, when ev.ProviderID is set, a match whose
	// rule already ran for a copy of the event on another source (same ID
	// and provider; its result matched and was not suppressed) is
	// suppressed with RanElsewhere.
	//
	// A nil error means the write is durable and may be acknowledged. ev and
	// eval are not retained: once Ingest returns, even with a context error,
	// the journal no longer reads them.
	Ingest(ctx context.Context, ev *Event, eval *Evaluation) (IngestResult, error)
	// Replay stores a fresh evaluation of an existing event: the new results
	// replace the old ones and the new jobs are added, with the same once_per
	// rules as Ingest. The event is found as by Event (source may be
	// empty); ErrNotFound if it does not exist. The result is Ingest's,
	// never Duplicate, and with no RanElsewhere: a replay does not look at
	// what ran for other copies.
	Replay(ctx context.Context, source, eventID string, eval *Evaluation) (IngestResult, error)
	// ClaimDue moves up to limit pending jobs with run_at <= now to running
	// (attempts+1) and returns them, oldest run_at first.
	ClaimDue(ctx context.Context, now time.Time, limit int) ([]*Job, error)
	// NextRunAt is the earliest run_at of pending jobs (ok=false when none).
	NextRunAt(ctx context.Context) (t time.Time, ok bool, err error)
	// Finish records the attempt and moves a running job to next (Pending
	// with runAt for a retry, Succeeded, or Dead), setting LastError to
	// a.Error. ErrNotFound if no running job has that ID.
	Finish(ctx context.Context, jobID int64, a Attempt, next JobState, runAt time.Time) error
	// Retry moves a dead (or pending) job to pending, to run now, keeping its
	// attempts counter. ErrNotFound otherwise.
	Retry(ctx context.Context, jobID int64) (*Job, error)
	// RecoverRunning moves every running job back to pending. It is called
	// at start-up: a job that was running during a crash runs again.
	RecoverRunning(ctx context.Context) (int, error)
	// Unclaim moves running jobs that were claimed but never started back
	// to pending, taking back the attempt the claim counted. A shutdown
	// calls it for the jobs still waiting for a worker; any other running
	// job is left as it is. It returns how many jobs it moved.
	Unclaim(ctx context.Context, jobIDs []int64) (int, error)
	// Event returns one event with its results, jobs and attempts. An
	// empty source matches any source; if the id is then found in several,
	// the error is an [*AmbiguousError]. ErrNotFound if there is none.
	Event(ctx context.Context, source, id string) (*EventDetail, error)
	// Events lists events, newest first.
	Events(ctx context.Context, f EventFilter) ([]Event, error)
	// Jobs lists jobs, newest (highest ID) first.
	Jobs(ctx context.Context, f JobFilter) ([]Job, error)
	// EventsSince calls fn for every event received at or after since, in
	// the order they were journaled, which is the order rules ran for them
	// (for backtesting). It stops at fn's first error and returns it.
	EventsSince(ctx context.Context, since time.Time, fn func(Event) error) error
	// CountJobs counts jobs per state; all four states are present.
	CountJobs(ctx context.Context) (map[JobState]int, error)
	// Prune deletes events received before cutoff (with their results,
	// attempts and finished jobs) and once keys created before cutoff. An
	// event that still has a pending, running or dead job is kept. It returns
	// the number of events deleted.
	Prune(ctx context.Context, cutoff time.Time) (int, error)
	// Ping checks that the journal can durably commit a write now (/readyz).
	Ping(ctx context.Context) error
	// Close stops accepting writes, finishes those already queued and
	// closes the database.
	Close() error
}
