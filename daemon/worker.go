package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payramd/payramd/actions"
	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/journal"
	"github.com/sethvargo/go-retry"
)

// pool runs due jobs, at most server.workers at once. Jobs live in the
// journal, not in memory: the pool claims what is due, and a job's next
// attempt time is a column, so a restart loses no retry.
type pool struct {
	d       *Daemon
	running atomic.Int64
	freed   chan struct{}
	wg      sync.WaitGroup
	// mu orders claiming (which adds to wg) before stopClaiming returns,
	// so that waiting for the running jobs never races a new one starting.
	// It also guards backlog.
	mu       sync.Mutex
	claiming bool
	// pending is set when the journal may hold pending jobs the
	// dispatcher does not know of (see Daemon.jobsPending). Without it, a
	// wake-up only starts jobs queued in memory: asking the journal after
	// every webhook would cost a write and a read each time for nothing.
	pending atomic.Bool
	// backlog holds claimed jobs waiting for a free worker: those claimed
	// from the journal, and those inserted already claimed at ingest, which
	// carry their event so it need not be read back.
	backlog []queued
	// handedBack is set by unclaimBacklog: jobs a webhook still being
	// accepted submits later (the shutdown timeout cut it off) are handed
	// back at once instead of waiting in a backlog nobody reads.
	handedBack bool
}

type queued struct {
	job *journal.Job
	ev  *engine.Event // nil: read it from the journal
}

// maxBacklog bounds the jobs claimed ahead of the workers. Beyond it,
// ingest stores new jobs as pending and the dispatcher claims them later.
var maxBacklog = 4096 // a variable only so tests can fill the backlog

// canTake reports whether ingest may insert jobs already claimed for this
// pool (see journal.Evaluation.Claim).
func (p *pool) canTake() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.claiming && len(p.backlog) < maxBacklog
}

// submit queues jobs that ingest inserted already claimed.
func (p *pool) submit(jobs []*journal.Job, ev *engine.Event) {
	p.mu.Lock()
	for _, j := range jobs {
		p.backlog = append(p.backlog, queued{job: j, ev: ev})
	}
	late := p.handedBack
	p.mu.Unlock()
	if late {
		p.unclaimBacklog()
	}
}

func newPool(d *Daemon) *pool {
	return &pool{d: d, freed: make(chan struct{}, 1), claiming: true}
}

// size is how many jobs may run at once: server.workers of the config in
// force, read each time so that it follows reloads. A reload that raises it
// wakes the dispatcher, which starts more jobs; one that lowers it lets the
// running jobs finish and starts new ones only below the new size.
func (p *pool) size() int {
	return p.d.Snapshot().Config.Server.Workers
}

func (p *pool) stopClaiming() {
	p.mu.Lock()
	p.claiming = false
	p.mu.Unlock()
}

// idle is closed once every running job has finished.
func (p *pool) idle() <-chan struct{} {
	ch := make(chan struct{})
	go func() { p.wg.Wait(); close(ch) }()
	return ch
}

// claimBatch is how many jobs one claim may take. Claiming is a journal
// write that waits for a group commit, so claiming a few at a time would
// cap the job rate at (workers / commit latency); claimed jobs wait in the
// dispatcher's backlog for a free worker. A crash leaves them "running",
// and RecoverRunning makes them pending again at the next start.
const claimBatch = 256

// dispatcherMaxWait is the dispatcher's safety net: it looks in the journal
// at least this often even when nothing told it to. (A variable only so
// tests can prove that it is told.)
var dispatcherMaxWait = time.Second

// finishTryTimeout bounds one try at recording a job's attempt; the worker
// tries again until the record lands. A variable for tests.
var finishTryTimeout = 10 * time.Second

// run is the dispatcher loop. ctx cancels running jobs (shutdown timeout).
// It never holds p.mu across a journal call: ingest takes p.mu for every
// event (canTake, submit), and a claim waits for a group commit.
func (p *pool) run(ctx context.Context) {
	maxWait := dispatcherMaxWait
	timer := time.NewTimer(0)
	defer timer.Stop()
	// check: the journal may hold due jobs, so claim at the next chance.
	// It starts true for the jobs a previous run left pending, and is set
	// by jobsPending, by the timer (the next known run_at, or maxWait as a
	// safety net) and when a claim came back full.
	check := true
	nextCheck := time.Now().Add(maxWait)
	var failures claimFailures
	for {
		p.mu.Lock()
		claiming := p.claiming
		room := 0
		if claiming {
			p.startQueued(ctx)
			room = claimBatch - len(p.backlog)
		}
		p.mu.Unlock()
		if check && room > 0 {
			check = false
			nextCheck = time.Now().Add(maxWait)
			jobs, err := p.d.store.ClaimDue(ctx, time.Now(), room)
			switch {
			case err != nil && ctx.Err() == nil:
				failures.failed(p.d, err)
			case err == nil:
				failures.recovered(p.d)
			}
			p.mu.Lock()
			for _, j := range jobs {
				p.backlog = append(p.backlog, queued{job: j})
			}
			if p.claiming {
				p.startQueued(ctx)
			}
			p.mu.Unlock()
			switch {
			case err != nil:
				// The journal cannot take writes (disk full, read-only):
				// due jobs stay due, so asking again at once would spin
				// and flood the log; the timer asks again in maxWait.
			case len(jobs) == room:
				check = true // more may be due: claim again when there is room
			default:
				if t, ok, err := p.d.store.NextRunAt(ctx); err == nil && ok {
					nextCheck = time.Now().Add(min(max(time.Until(t), 0), maxWait))
				}
			}
		}
		wait := max(time.Until(nextCheck), 0)
		switch {
		case check && room > 0 && int(p.running.Load()) < p.size():
			wait = 0 // more may be due and there are free workers
		case check:
			wait = maxWait // the backlog or the workers are full: p.freed wakes us
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			p.wg.Wait()
			return
		case <-p.d.wake:
		case <-p.freed:
		case <-timer.C:
			check = true
		}
		if p.pending.Swap(false) {
			check = true
		}
	}
}

// claimFailures keeps the dispatcher's log readable while the journal
// refuses writes: the first failed claim is logged, then one line a minute
// with the count, and one when claims work again. A journal file deleted
// while payramd runs is said once, in words, with what to do.
type claimFailures struct {
	n      int
	logged time.Time
	gone   bool
}

// claimLogEvery is how often a run of failed claims is logged again.
const claimLogEvery = time.Minute

func (c *claimFailures) failed(d *Daemon, err error) {
	c.n++
	if c.n == 1 || time.Since(c.logged) >= claimLogEvery {
		c.logged = time.Now()
		d.log.Error("claiming jobs failed; due jobs wait until the journal takes writes again", "err", err, "failed_claims", c.n)
	}
	path := filepath.Join(d.server.DataDir, journal.FileName)
	if _, serr := os.Stat(path); !c.gone && errors.Is(serr, fs.ErrNotExist) {
		c.gone = true
		d.log.Error("the journal file was deleted while payramd runs: webhooks get 503 until it restarts and creates a new, empty journal; the deleted file's events, pending jobs and once_per keys are gone unless you restore it first", "path", path)
	}
}

func (c *claimFailures) recovered(d *Daemon) {
	if c.n > 0 {
		d.log.Info("claiming jobs works again", "failed_claims", c.n)
	}
	*c = claimFailures{}
}

// unclaimBacklog hands the jobs claimed but never started back to the
// journal as pending, so that a shutdown neither leaves them "running" in
// the API until the next start nor counts an attempt that never ran. Call
// it once the dispatcher has stopped; submit calls it again for jobs that
// arrive later.
func (p *pool) unclaimBacklog() {
	p.mu.Lock()
	p.handedBack = true
	ids := make([]int64, 0, len(p.backlog))
	for _, q := range p.backlog {
		ids = append(ids, q.job.ID)
	}
	p.backlog = nil
	p.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), finishTryTimeout)
	defer cancel()
	n, err := p.d.store.Unclaim(ctx, ids)
	if err != nil {
		p.d.log.Warn("could not hand back jobs that were claimed but not started: they show as running until the next start, which runs them", "jobs", len(ids), "err", err)
		return
	}
	p.d.log.Info("jobs waiting for a worker handed back as pending; they run at the next start", "jobs", n)
}

// startQueued starts backlog jobs while workers are free. p.mu is held.
func (p *pool) startQueued(ctx context.Context) {
	size := p.size()
	for len(p.backlog) > 0 && int(p.running.Load()) < size {
		q := p.backlog[0]
		p.backlog[0] = queued{}
		p.backlog = p.backlog[1:]
		p.running.Add(1)
		p.wg.Add(1)
		go p.exec(ctx, q.job, q.ev)
	}
	if len(p.backlog) == 0 {
		p.backlog = nil // let the array go
	}
}

func (p *pool) exec(ctx context.Context, j *journal.Job, ev *engine.Event) {
	// The worker slot is released as soon as the action is done; recording
	// the attempt (a journal write waiting for a group commit) continues in
	// this goroutine without holding up the next job.
	var once sync.Once
	release := func() {
		once.Do(func() {
			p.running.Add(-1)
			select {
			case p.freed <- struct{}{}:
			default:
			}
		})
	}
	defer p.wg.Done()
	defer release()
	d := p.d
	snap := d.Snapshot()
	start := time.Now()
	cfgAct := snap.Config.Action(j.Action)
	act := snap.Actions[j.Action]
	finish := func(next journal.JobState, runAt time.Time, outcome, errMsg, output string) {
		if next != journal.Pending {
			d.events.done(j.Source, j.EventID) // no retry of this job will need the event
		}
		a := journal.Attempt{JobID: j.ID, N: j.Attempts, StartedAt: start, Duration: time.Since(start), Outcome: outcome, Error: errMsg, Output: output}
		release()
		d.metrics.ActionAttempts.WithLabelValues(j.Action, outcome).Inc()
		// Until the record lands the job is "running" in the journal, and
		// nothing but a restart would run it again. So while the journal
		// cannot take writes (disk full, read-only), keep the worker and
		// keep trying; only shutdown gives up, leaving the job for
		// RecoverRunning at the next start.
		wait := 100 * time.Millisecond
		for try := 1; ; try++ {
			// The record must land even while shutting down, or the
			// attempt would silently repeat; it gets its own deadline.
			fctx, cancel := context.WithTimeout(context.Background(), finishTryTimeout)
			err := d.store.Finish(fctx, j.ID, a, next, runAt)
			cancel()
			if err == nil {
				if try > 1 {
					d.log.Info("job attempt recorded after the journal recovered", "job", j.ID, "tries", try)
				}
				if next == journal.Pending {
					d.jobsPending() // so the dispatcher learns its run_at
				}
				return
			}
			// Only "no such running job" is final: there is nothing left to
			// record. A full disk, a read-only journal, or a try that ran
			// out of time behind a stalled writer all pass.
			if errors.Is(err, journal.ErrNotFound) || ctx.Err() != nil {
				d.log.Error("recording a job attempt failed; the job will run again at the next start", "job", j.ID, "err", err)
				return
			}
			if try == 1 {
				d.log.Error("recording a job attempt failed; retrying until the journal is writable", "job", j.ID, "outcome", outcome, "err", err)
			}
			select {
			case <-ctx.Done():
				d.log.Error("shutting down before a job attempt could be recorded; the job will run again at the next start", "job", j.ID)
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
		}
	}
	if cfgAct == nil || act == nil {
		msg := fmt.Sprintf("action %q is no longer in the config", j.Action)
		d.log.Error("job is dead", "job", j.ID, "event", j.EventID, "rule", j.Rule, "action", j.Action, "reason", msg)
		finish(journal.Dead, time.Time{}, "dead", msg, "")
		return
	}
	if !cfgAct.Enabled {
		msg := fmt.Sprintf("action %q is disabled in the config", j.Action)
		d.log.Warn("job is dead", "job", j.ID, "event", j.EventID, "rule", j.Rule, "action", j.Action, "reason", msg)
		finish(journal.Dead, time.Time{}, "dead", msg, "")
		return
	}
	var err error
	if ev == nil {
		ev, err = d.loadEvent(ctx, j.Source, j.EventID)
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if j.Attempts >= cfgAct.Retry.Attempts && d.budgetSpent(ctx, j, cfgAct.Retry.Attempts) {
			d.log.Error("loading a job's event failed on its last attempt; the job is dead", "job", j.ID, "event", j.EventID, "err", err)
			finish(journal.Dead, time.Time{}, "dead", err.Error(), "")
			return
		}
		d.log.Error("loading a job's event failed; will retry", "job", j.ID, "event", j.EventID, "err", err)
		finish(journal.Pending, time.Now().Add(backoff(cfgAct.Retry, j.Attempts)), "retry", err.Error(), "")
		return
	}
	actx, cancel := context.WithTimeout(ctx, cfgAct.Timeout)
	res := act.Run(actx, &actions.Job{ID: jobKey(j), Event: ev, Rule: j.Rule, Action: j.Action, Attempt: j.Attempts})
	cancel()
	dur := time.Since(start)
	if ctx.Err() != nil {
		// Shutdown cut the attempt short: leave the job running, so the
		// next start runs it again rather than counting a failure.
		return
	}
	d.metrics.ActionDuration.WithLabelValues(j.Action).Observe(dur.Seconds())
	if res.Err == nil {
		d.logJob(slog.LevelInfo, "action succeeded", j, dur)
		finish(journal.Succeeded, time.Time{}, "succeeded", "", res.Output)
		return
	}
	if !res.Retryable {
		d.logJob(slog.LevelError, "action failed and will not be retried (another attempt would fail the same way); fix the cause in err, then payramd retry the job", j, dur, slog.Any("err", res.Err))
		finish(journal.Dead, time.Time{}, "failed", res.Err.Error(), res.Output)
		return
	}
	if j.Attempts >= cfgAct.Retry.Attempts && d.budgetSpent(ctx, j, cfgAct.Retry.Attempts) {
		d.logJob(slog.LevelError, "action failed on its last attempt; the job is dead (payramd retry can revive it)", j, dur, slog.Any("err", res.Err), slog.Int("attempts", j.Attempts))
		finish(journal.Dead, time.Time{}, "dead", res.Err.Error(), res.Output)
		return
	}
	if ctx.Err() != nil {
		return // shutdown: the job stays running and runs again at the next start
	}
	// Retry-After is capped by the actions already; capped here too, since
	// a delay past year 2262 would wrap run_at around to the past.
	delay := max(backoff(cfgAct.Retry, j.Attempts), min(res.RetryAfter, 24*time.Hour))
	d.logJob(slog.LevelWarn, "action failed; will retry", j, dur, slog.Any("err", res.Err), slog.String("retry_in", delay.Round(time.Millisecond).String()))
	finish(journal.Pending, time.Now().Add(delay), "retry", res.Err.Error(), res.Output)
}

// logJob writes the line about one attempt of a job: the job, its event,
// rule and action, the attempt number and its duration, then extra. One is
// written for every job, so it is built directly, without a child logger
// (With formats its attributes again on every call) or a caller lookup.
func (d *Daemon) logJob(level slog.Level, msg string, j *journal.Job, dur time.Duration, extra ...slog.Attr) {
	h := d.log.Handler()
	if !h.Enabled(context.Background(), level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(slog.Int64("job", j.ID), slog.String("event", j.EventID), slog.String("source", j.Source), slog.String("rule", j.Rule),
		slog.String("action", j.Action), slog.Int("attempt", j.Attempts), slog.String("duration", dur.Round(time.Millisecond).String()))
	r.AddAttrs(extra...)
	_ = h.Handle(context.Background(), r)
}

// budgetSpent reports whether a job has used its retry.attempts since it
// last went dead: a job revived by hand (payramd retry) gets a fresh set of
// attempts, not a single one. It reads the attempt history, which only
// happens for jobs at or past their budget.
//
// When the history cannot be read it says the budget is not spent: the job
// is then retried later (with backoff) rather than declared dead on a read
// error, or on shutdown cancelling ctx.
func (d *Daemon) budgetSpent(ctx context.Context, j *journal.Job, budget int) bool {
	det, err := d.store.Event(ctx, j.Source, j.EventID)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("could not read a job's attempts to check its retry budget; retrying it", "job", j.ID, "err", err)
		}
		return false
	}
	for _, jd := range det.Jobs {
		if jd.ID != j.ID {
			continue
		}
		since := 1 // this attempt, not yet recorded
		for i := len(jd.Attempts) - 1; i >= 0; i-- {
			if o := jd.Attempts[i].Outcome; o == "dead" || o == "failed" {
				break
			}
			since++
		}
		return since >= budget
	}
	return true
}

// jobKey is the idempotency key actions send: stable across attempts of one
// job, distinct for a replay (a new job).
func jobKey(j *journal.Job) string {
	id := j.EventID
	if len(id) > 16 {
		id = id[:16]
	}
	return fmt.Sprintf("%s-%d", id, j.ID)
}

// backoff is the delay before attempt n+1: exponential from Initial with
// ±20% jitter, capped at Max. go-retry backoffs are stateful, so a fresh
// one is built for every computation.
func backoff(r config.Retry, n int) time.Duration {
	b := retry.WithCappedDuration(r.Max, retry.WithJitterPercent(20, retry.NewExponential(r.Initial)))
	var d time.Duration
	for i := 0; i < max(n, 1); i++ {
		next, stop := b.Next()
		if stop {
			break
		}
		d = next
	}
	return d
}

// loadEvent rebuilds the event a job belongs to from the journal.
func (d *Daemon) loadEvent(ctx context.Context, source, id string) (*engine.Event, error) {
	if ev := d.events.get(source, id); ev != nil {
		return ev, nil
	}
	det, err := d.store.Event(ctx, source, id)
	if err != nil {
		return nil, err
	}
	return eventFromJournal(&det.Event)
}

func eventFromJournal(e *journal.Event) (*engine.Event, error) {
	payload, err := engine.DecodeObject(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("decoding the journaled payload of %s: %w", e.ID, err)
	}
	return &engine.Event{ID: e.ID, Source: e.Source, Provider: e.Provider, Type: e.Type, ReceivedAt: e.ReceivedAt, Headers: e.Headers, Payload: payload, Raw: e.Body}, nil
}
