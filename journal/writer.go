package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Group commit
//
// A durable commit waits for an fsync, which costs from a fraction of a
// millisecond to tens of milliseconds depending on the disk. One
// transaction per webhook would therefore cap payramd at a few thousand
// events per second no matter how many cores it has. Instead, all writes go
// through a single writer goroutine that owns the only write connection:
//
//  1. A caller wraps its write in an op (a closure over the transaction),
//     queues it and blocks.
//  2. The writer opens a transaction, runs the first queued op, then keeps
//     taking ops that are already queued (including ones that arrive while
//     it executes) until the queue is momentarily empty or MaxBatch ops are
//     in. It never sleeps: a lone request is never delayed by a timer, and
//     under load the batch naturally grows to what arrived meanwhile.
//  3. It commits once and hands the batch to the syncer goroutine, which
//     fsyncs the WAL once for every batch committed since its last fsync
//     (see "Pipelined fsync" in syncwal.go) while the writer goes on.
//  4. Only after that fsync has returned does the syncer tell each caller
//     the outcome.
//
// Acknowledging only after the fsync is the whole point: a webhook is
// answered 2xx only once its event and jobs are on stable storage, so a
// crash or power cut can lose nothing the provider believes was delivered.
//
// Failure isolation with savepoints. One op failing (Retry of a missing job,
// say) must not fail the others sharing its transaction, nor leave half of
// its own writes behind. Each op therefore runs inside its own SAVEPOINT:
// on error, ROLLBACK TO undoes just that op, it gets its own error, and the
// rest of the batch still commits. Savepoints are not free, though: SQLite
// copies every page an op touches into a statement journal, and the two
// extra statements per op cost about a fifth of the writer's time on the
// ingest path. Because ops almost never fail, a batch is first run
// optimistically without savepoints; only if an op fails is the transaction
// rolled back and the whole batch re-run with one SAVEPOINT per op. Nothing
// is committed or acknowledged in between, so callers observe exactly the
// per-op savepoint semantics, at the cost of running op closures twice in
// that rare case (every op is written to be re-runnable).
//
// If BEGIN, savepoint bookkeeping, or COMMIT fails, nothing in the batch is
// durable, so every op that had not already failed on its own gets an error
// wrapping ErrUnavailable. The writer rolls back and carries on with the next
// batch, so the journal recovers by itself once the disk has space again.
//
// The writer talks to the modernc.org/sqlite driver connection directly
// rather than through database/sql: with a single connection owned by a
// single goroutine the pool, its locks and its argument conversion buy
// nothing, and skipping them saves roughly a microsecond per statement,
// which at six statements per event is a sizeable share of the budget.

// stmtID names a prepared statement of the writer.
type stmtID int

const (
	stBegin stmtID = iota
	stCommit
	stRollback
	stSavepoint
	stRelease
	stRollbackTo
	stInsEvent
	stInsResult
	stDelResults
	stInsOnce
	stRanElsewhere
	stInsJob
	stInsJobClaimed
	stEventSource
	stClaim
	stFinish
	stFinishN
	stInsAttempt
	stRetry
	stRecover
	stUnclaim
	stPruneEvents
	stPruneOnce
	stPing
	numStmts
)

// writerSQL holds the text of every writer statement. They are prepared
// once, when the writer connection is opened, and reused by every batch.
var writerSQL = [numStmts]string{
	stBegin:      `BEGIN IMMEDIATE`,
	stCommit:     `COMMIT`,
	stRollback:   `ROLLBACK`,
	stSavepoint:  `SAVEPOINT op`,
	stRelease:    `RELEASE op`,
	stRollbackTo: `ROLLBACK TO op`,
	stInsEvent: `INSERT INTO events (id, source, provider, type, received_at, headers, body, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id, source) DO NOTHING`,
	stInsResult:  `INSERT INTO rule_results (event_seq, n, rule, matched, error, suppressed) VALUES (?, ?, ?, ?, ?, ?)`,
	stDelResults: `DELETE FROM rule_results WHERE event_seq = ?`,
	stInsOnce: `INSERT INTO once_keys (rule, key, event_id, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (rule, key) DO NOTHING`,
	// The rules that ran for copies of an event that other sources received
	// from the same provider: their results say so (matched, not held
	// back), or, after a replay rewrote the results, the jobs they made
	// still do. A probe of the (id, source) index at the leaf the event's
	// own insert just wrote.
	stRanElsewhere: `SELECT r.rule FROM events e JOIN rule_results r ON r.event_seq = e.seq
			WHERE e.id = ?1 AND e.source <> ?2 AND e.provider = ?3 AND r.matched AND r.suppressed = 0
		UNION SELECT j.rule FROM events e JOIN jobs j ON j.event_seq = e.seq
			WHERE e.id = ?1 AND e.source <> ?2 AND e.provider = ?3`,
	stInsJob: `INSERT INTO jobs (event_seq, event_id, source, rule, action, state, attempts, run_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
	// A job inserted already claimed (running, first attempt) by a daemon
	// that runs it at once from memory; see Evaluation.Claim.
	stInsJobClaimed: `INSERT INTO jobs (event_seq, event_id, source, rule, action, state, attempts, run_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'running', 1, ?, ?, ?)`,
	stEventSource: `SELECT seq, source FROM events WHERE id = ?`,
	// "state <> 'succeeded'" repeats the WHERE of the partial index jobs_due,
	// which is how SQLite learns that the query may use it.
	stClaim: `UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?
		WHERE id IN (SELECT id FROM jobs WHERE state <> 'succeeded' AND state = 'pending' AND run_at <= ?
			ORDER BY run_at, id LIMIT ?)
		RETURNING ` + jobColumns,
	stFinish: `UPDATE jobs SET state = ?1, run_at = CASE WHEN ?1 = 'pending' THEN ?2 ELSE run_at END,
		last_error = ?3, updated_at = ?4 WHERE id = ?5 AND state = 'running' RETURNING attempts`,
	// stFinish without RETURNING, for callers that know the attempt number:
	// a plain step is cheaper than a query, and this runs once per job.
	stFinishN: `UPDATE jobs SET state = ?1, run_at = CASE WHEN ?1 = 'pending' THEN ?2 ELSE run_at END,
		last_error = ?3, updated_at = ?4 WHERE id = ?5 AND state = 'running'`,
	stInsAttempt: `INSERT INTO attempts (job_id, n, started_at, duration_ns, outcome, error, output) VALUES (?, ?, ?, ?, ?, ?, ?)`,
	stRetry: `UPDATE jobs SET state = 'pending', run_at = ?1, updated_at = ?1
		WHERE id = ?2 AND state IN ('dead', 'pending') RETURNING ` + jobColumns,
	stRecover: `UPDATE jobs SET state = 'pending', updated_at = ? WHERE state <> 'succeeded' AND state = 'running'`,
	// The claim's attempts + 1 is undone: the job never started.
	stUnclaim: `UPDATE jobs SET state = 'pending', attempts = max(attempts - 1, 0), updated_at = ?
		WHERE id = ? AND state <> 'succeeded' AND state = 'running'`,
	// An event is prunable when it is old enough and every job it has (if
	// any) has succeeded; the foreign-key cascade removes its results, jobs
	// and attempts.
	stPruneEvents: `DELETE FROM events WHERE seq IN (
		SELECT e.seq FROM events e WHERE e.received_at < ?1
		AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_seq = e.seq AND j.state <> 'succeeded')
		ORDER BY e.received_at LIMIT ?2)`,
	stPruneOnce: `DELETE FROM once_keys WHERE (rule, key) IN (
		SELECT rule, key FROM once_keys WHERE created_at < ?1 LIMIT ?2)`,
	stPing: `INSERT INTO meta (k, v) VALUES ('ping', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`,
}

// rawStmt is what the modernc.org/sqlite driver's statements implement.
type rawStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// writerConn is the single write connection and its prepared statements.
// Only the writer goroutine (and Open/Close, before and after it runs) use it.
type writerConn struct {
	conn  driver.Conn
	stmts [numStmts]rawStmt
}

func openWriterConn(dsn string) (*writerConn, error) {
	c, err := (&sqlite.Driver{}).Open(dsn)
	if err != nil {
		return nil, err
	}
	wc := &writerConn{conn: c}
	pc, ok := c.(driver.ConnPrepareContext)
	if !ok {
		c.Close()
		return nil, errors.New("journal: sqlite driver connection cannot prepare with a context")
	}
	for id, q := range writerSQL {
		st, err := pc.PrepareContext(context.Background(), q)
		if err != nil {
			wc.close()
			return nil, fmt.Errorf("journal: prepare %q: %w", firstLine(q), err)
		}
		rs, ok := st.(rawStmt)
		if !ok {
			st.Close()
			wc.close()
			return nil, errors.New("journal: sqlite driver statement lacks ExecContext/QueryContext")
		}
		wc.stmts[id] = rs
	}
	return wc, nil
}

func (wc *writerConn) close() error {
	var errs []error
	for i, st := range wc.stmts {
		if st != nil {
			errs = append(errs, st.Close())
			wc.stmts[i] = nil
		}
	}
	if wc.conn != nil {
		errs = append(errs, wc.conn.Close())
		wc.conn = nil
	}
	return errors.Join(errs...)
}

// wtx is what an op sees: helpers to run the writer's prepared statements
// inside the current batch transaction.
type wtx struct {
	ctx  context.Context // the writer's own context, never a caller's
	wc   *writerConn
	args [16]driver.NamedValue // scratch, reused by every statement
	vals [16]driver.Value      // scratch row for queries
}

func (w *wtx) bind(args []driver.Value) []driver.NamedValue {
	nv := w.args[:0]
	for i, a := range args {
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	return nv
}

func (w *wtx) exec(id stmtID, args ...driver.Value) (driver.Result, error) {
	return w.wc.stmts[id].ExecContext(w.ctx, w.bind(args))
}

// execN runs id and returns the number of rows it changed.
func (w *wtx) execN(id stmtID, args ...driver.Value) (int64, error) {
	res, err := w.exec(id, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// query runs id and calls fn for each result row. The row slice is reused;
// fn must copy what it keeps. Statements with RETURNING make all their
// changes on the first step, so reading the rows is only about results.
func (w *wtx) query(id stmtID, fn func(row []driver.Value) error, args ...driver.Value) error {
	rows, err := w.wc.stmts[id].QueryContext(w.ctx, w.bind(args))
	if err != nil {
		return err
	}
	row := w.vals[:]
	if n := len(rows.Columns()); n <= len(row) {
		row = row[:n]
	} else {
		row = make([]driver.Value, n)
	}
	for {
		if err := rows.Next(row); err != nil {
			cerr := rows.Close()
			if err == io.EOF {
				return cerr
			}
			return err
		}
		if err := fn(row); err != nil {
			rows.Close()
			return err
		}
	}
}

// op is one queued write. fn must not retain w after returning, must report
// through variables it closes over (read by the caller only when the op's
// result is nil), and must reset those variables first, because the writer
// may run it twice (see "Failure isolation" above).
type op struct {
	ctx   context.Context
	fn    func(w *wtx) error
	state atomic.Int32 // opQueued -> opRunning (writer) or opQueued -> opAbandoned (caller)
	done  chan error   // buffered(1): the writer never blocks on a departed caller
	alone bool         // runs in a transaction of its own: see writeAlone
}

// Op states. The compare-and-swap between them decides, exactly once,
// whether an op whose caller's context ended is still executed: if the
// caller wins, the writer skips the op and never touches the caller's data
// again (so the caller may reuse its buffers); if the writer wins, the caller
// waits for the real outcome instead of guessing.
const (
	opQueued int32 = iota
	opRunning
	opAbandoned
)

var opPool = sync.Pool{New: func() any { return &op{done: make(chan error, 1)} }}

// errSkipped marks, inside a batch, an op the writer will not run.
var errSkipped = errors.New("journal: op abandoned by caller")

// write queues fn and waits until the batch containing it is committed. A nil
// return means fn's writes are durable. If ctx ends before the writer has
// started the op, write returns ctx.Err() and the op is never run; once the
// op has started, write waits for its real outcome (one batch, normally a
// few milliseconds) so that the result is never ambiguous.
func (s *SQLite) write(ctx context.Context, fn func(w *wtx) error) error {
	return s.submit(ctx, fn, false)
}

// writeAlone is write for an op that must not share its transaction: one
// whose failure is expected and would take the batch with it, because it
// fails at COMMIT (a write too large for the disk's free space fails only
// when its pages go to the WAL, and then the whole transaction does).
func (s *SQLite) writeAlone(ctx context.Context, fn func(w *wtx) error) error {
	return s.submit(ctx, fn, true)
}

func (s *SQLite) submit(ctx context.Context, fn func(w *wtx) error, alone bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := opPool.Get().(*op)
	o.ctx, o.fn, o.alone = ctx, fn, alone
	o.state.Store(opQueued)

	// The read lock only guards against sending on s.ops after Close has
	// closed it; Close takes the write lock, which waits for senders in flight.
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		o.ctx, o.fn = nil, nil
		opPool.Put(o)
		return ErrClosed
	}
	select {
	case s.ops <- o:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		o.ctx, o.fn = nil, nil
		opPool.Put(o)
		return ctx.Err()
	}

	select {
	case err := <-o.done:
		o.ctx, o.fn = nil, nil
		opPool.Put(o)
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			// The writer will skip o and send to o.done (buffered); o is
			// simply not recycled.
			return ctx.Err()
		}
		// Already running: its outcome will be known within one batch.
		err := <-o.done
		o.ctx, o.fn = nil, nil
		opPool.Put(o)
		return err
	}
}

// run is the writer goroutine. It executes and commits batches back to
// back and hands each one to the syncer, which acknowledges it once the WAL
// is on stable storage (see "Pipelined fsync" above).
func (s *SQLite) run() {
	defer close(s.toSync)
	w := &wtx{ctx: context.Background(), wc: s.wc}
	for {
		// An op taken while a batch was being filled but that must run
		// alone (see writeAlone) starts the next batch.
		first := s.carry
		s.carry = nil
		if first == nil {
			var ok bool
			if first, ok = <-s.ops; !ok {
				break
			}
		}
		b := s.newBatch()
		if err := s.poisoned(); err != nil {
			// The WAL could not be synced once: nothing written since can
			// be promised durable, so nothing more is written.
			b.add(first)
			for len(b.ops) < s.maxBatch {
				o := s.next()
				if o == nil {
					break
				}
				b.add(o)
			}
			failOK(b.errs, err)
		} else {
			s.commitBatch(w, b, first)
		}
		s.toSync <- b
	}
}

// syncLoop is the syncer goroutine. It takes every batch the writer has
// finished so far, makes the WAL durable with one fsync if any of them
// committed, and only then tells their callers the outcome. Because the
// fsync starts after those COMMITs returned, it covers them all; the writer
// meanwhile executes the next batches, so executing SQL and waiting for the
// disk overlap instead of alternating.
func (s *SQLite) syncLoop() {
	defer close(s.stopped)
	var pending []*batch
	for b := range s.toSync {
		pending = append(pending[:0], b)
	drain:
		for {
			select {
			case b, ok := <-s.toSync:
				if !ok {
					break drain
				}
				pending = append(pending, b)
			default:
				break drain
			}
		}
		s.syncing.Store(true)
		// After a failed fsync, commits made since cannot be made durable
		// by syncing again: Linux reports a writeback error once, so the
		// next fsync could succeed over frames that never reached the disk,
		// and WAL recovery stops at the first missing frame, taking every
		// later commit with it. They fail like the ones the failed fsync
		// was for.
		serr := s.poisoned()
		if serr == nil && slices.ContainsFunc(pending, func(b *batch) bool { return b.committed }) {
			if fatal, err := s.syncWAL(); err != nil {
				serr = unavailable("sync WAL", err)
				if fatal {
					serr = s.poison(err)
				}
			}
			s.stats.syncs.Add(1)
		}
		for _, b := range pending {
			if serr != nil && b.committed {
				failOK(b.errs, serr)
				s.stats.failures.Add(1)
			}
			s.complete(b)
		}
		clear(pending)
		s.syncing.Store(false)
		select {
		case s.syncFree <- struct{}{}:
		default:
		}
	}
}

// complete tells every caller of b its outcome and recycles b.
func (s *SQLite) complete(b *batch) {
	for i, o := range b.ops {
		err := b.errs[i]
		if err == errSkipped {
			err = o.ctx.Err()
			if err == nil {
				err = context.Canceled
			}
		}
		o.done <- err
		b.ops[i], b.errs[i] = nil, nil
	}
	s.stats.batches.Add(1)
	s.stats.ops.Add(uint64(len(b.ops)))
	b.ops, b.errs, b.committed = b.ops[:0], b.errs[:0], false
	s.batchPool.Put(b)
}

func (s *SQLite) newBatch() *batch {
	if b, ok := s.batchPool.Get().(*batch); ok {
		return b
	}
	return &batch{ops: make([]*op, 0, s.maxBatch), errs: make([]error, 0, s.maxBatch)}
}

// batch is the set of ops sharing one transaction. errs[i] is op i's
// outcome; nil only if its writes were committed (and, once the syncer has
// run, synced).
type batch struct {
	ops       []*op
	errs      []error
	committed bool // COMMIT returned success: durable after the next WAL fsync
}

// add appends o, deciding once whether it runs at all: an op whose caller
// has already given up is skipped, since nobody would learn its outcome.
// The decision must survive a re-run, so it is recorded in errs.
func (b *batch) add(o *op) {
	var err error
	if !o.state.CompareAndSwap(opQueued, opRunning) || o.ctx.Err() != nil {
		err = errSkipped
	}
	b.ops = append(b.ops, o)
	b.errs = append(b.errs, err)
}

// next returns an op that is already queued, or nil if there is none (or
// the queue is closed). It never waits: the batch ends, and is committed, as
// soon as the queue is momentarily empty.
func (s *SQLite) next() *op {
	select {
	case o := <-s.ops:
		return o
	default:
		return nil
	}
}

// nextWhileSyncing waits for the next op for as long as the syncer is busy
// with an fsync, and returns nil once it is free (or the queue is closed).
// A batch committed now would wait for the next fsync anyway, so the
// transaction stays open and takes in the ops that arrive meanwhile: fewer,
// larger commits write the pages every batch touches (the tails of the
// tables and indexes) to the WAL fewer times, and the commit still happens
// the moment the syncer can take it.
func (s *SQLite) nextWhileSyncing() *op {
	for s.syncing.Load() {
		select {
		case o, ok := <-s.ops:
			if ok {
				return o
			}
			return nil
		case <-s.syncFree:
			// Loop: the signal may be stale, from an earlier fsync.
		}
	}
	return nil
}

// commitBatch runs one group commit, starting with first. Rather than
// draining the queue once up front, it keeps taking ops that are already
// queued while it executes, so writes arriving during the batch join it
// instead of waiting for the next fsync. It commits when the queue is empty
// or the batch is full.
func (s *SQLite) commitBatch(w *wtx, b *batch, first *op) {
	b.add(first)
	savepoints := false
restart:
	if _, err := w.exec(stBegin); err != nil {
		s.rollback(w)
		failOK(b.errs, unavailable("begin", err))
		s.stats.failures.Add(1)
		return
	}
	committed := 0
	for i := 0; ; i++ {
		if i == len(b.ops) {
			if len(b.ops) >= s.maxBatch || b.ops[0].alone {
				break
			}
			o := s.next()
			if o == nil {
				o = s.nextWhileSyncing()
			}
			if o == nil {
				break
			}
			if o.alone {
				s.carry = o
				break
			}
			b.add(o)
		}
		if b.errs[i] == errSkipped {
			continue
		}
		o := b.ops[i]
		if !savepoints {
			if err := o.fn(w); err != nil {
				// Re-run everything collected so far, one SAVEPOINT per op.
				s.rollback(w)
				s.stats.reruns.Add(1)
				savepoints = true
				for j := range b.errs {
					if b.errs[j] != errSkipped {
						b.errs[j] = nil
					}
				}
				goto restart
			}
			committed++
			continue
		}
		if _, err := w.exec(stSavepoint); err != nil {
			s.abort(w, b.errs, unavailable("savepoint", err))
			return
		}
		if err := o.fn(w); err != nil {
			b.errs[i] = classify(err)
			if _, rerr := w.exec(stRollbackTo); rerr != nil {
				// ROLLBACK TO fails only if the savepoint is gone, which
				// means SQLite rolled back the whole transaction after an
				// I/O-type error. Committing now would silently drop the
				// earlier ops, so the whole batch fails.
				s.abort(w, b.errs, unavailable("rollback to savepoint", rerr))
				return
			}
		} else {
			committed++
		}
		// RELEASE also proves the transaction is still open: it fails with
		// "no such savepoint" if SQLite has rolled everything back.
		if _, err := w.exec(stRelease); err != nil {
			s.abort(w, b.errs, unavailable("release savepoint", err))
			return
		}
	}
	if committed == 0 {
		// Nothing to make durable; skip the fsync.
		s.rollback(w)
		return
	}
	if s.faultCommit != nil {
		if err := s.faultCommit(); err != nil {
			s.abort(w, b.errs, unavailable("commit", err))
			return
		}
	}
	if _, err := w.exec(stCommit); err != nil {
		// A failed COMMIT may leave the transaction open (SQLITE_BUSY) or
		// already rolled back (I/O errors); either way roll back so the next
		// batch starts clean, and report every op as not written.
		s.abort(w, b.errs, unavailable("commit", err))
		return
	}
	b.committed = true
}

// rollback ends the current transaction, if any. Its error is ignored on
// purpose: "no transaction is active" is expected after SQLite has rolled
// back by itself, and any real trouble resurfaces at the next BEGIN.
func (s *SQLite) rollback(w *wtx) {
	_, _ = w.exec(stRollback)
}

// abort rolls back and fails every op that had not failed on its own.
func (s *SQLite) abort(w *wtx, errs []error, err error) {
	s.rollback(w)
	failOK(errs, err)
	s.stats.failures.Add(1)
}

// failOK sets err for every op whose outcome was still success.
func failOK(errs []error, err error) {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
}

// WriterStats are cumulative counters of the group-commit writer, for
// metrics: Ops/Batches is the mean batch size.
type WriterStats struct {
	Batches  uint64 // transactions attempted
	Syncs    uint64 // WAL fsyncs (each covers one or more batches)
	Ops      uint64 // writes submitted to those transactions
	Reruns   uint64 // batches re-run with per-op savepoints because an op failed
	Failures uint64 // batches that failed as a whole (BEGIN/COMMIT/savepoint errors)
	// SyncFailed is set once a WAL fsync has failed: the journal refuses
	// writes until the process restarts (see "Pipelined fsync").
	SyncFailed bool
}

type writerStats struct{ batches, syncs, ops, reruns, failures atomic.Uint64 }

// Stats returns the writer's counters.
func (s *SQLite) Stats() WriterStats {
	return WriterStats{
		Batches:    s.stats.batches.Load(),
		Syncs:      s.stats.syncs.Load(),
		Ops:        s.stats.ops.Load(),
		Reruns:     s.stats.reruns.Load(),
		Failures:   s.stats.failures.Load(),
		SyncFailed: s.poisoned() != nil,
	}
}

// unavailable wraps a database failure so that it matches ErrUnavailable
// while keeping the cause visible.
func unavailable(what string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// classify turns errors that mean "the database cannot take writes right
// now" (disk full, I/O error, read-only file, lock trouble, lost connection)
// into ErrUnavailable, and leaves logical errors (ErrNotFound, constraint
// violations, bugs) alone.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if isUnavailable(err) {
		return unavailable("write", err)
	}
	return err
}

func isUnavailable(err error) bool {
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // primary result code; extended codes are enabled
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM,
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// IsNoSpace reports whether err is the disk having no room for a write: a
// condition a restart does not cure, unlike a wedged or failed journal. A
// failed WAL fsync is not, whatever its errno: only a restart clears it.
func IsNoSpace(err error) bool {
	if errors.As(err, new(syncFailure)) {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_FULL || se.Code() == sqlite3.SQLITE_IOERR_SHMSIZE) {
		return true // SHMSIZE: the -shm index could not grow, which a full disk causes
	}
	return errors.Is(err, syscall.ENOSPC)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
