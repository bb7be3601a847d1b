package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Group commit
//
// With synchronous=FULL every COMMIT waits for an fsync, which costs from a
// fraction of a millisecond to tens of milliseconds depending on the disk.
// One transaction per webhook would therefore cap payramd at a few thousand
// events per second no matter how many cores it has. Instead, all writes go
// through a single writer goroutine that owns the only write connection:
//
//  1. A caller wraps its write in an op (a closure over the transaction),
//     queues it and blocks.
//  2. The writer takes the first queued op plus whatever else is already
//     waiting (up to MaxBatch), without sleeping: a lone request is never
//     delayed by a timer, and under load the batch naturally grows to what
//     arrived while the previous commit was syncing.
//  3. It runs every op of the batch in one transaction, each inside its own
//     SAVEPOINT, then commits once: one fsync for the whole batch.
//  4. Only after COMMIT has returned does it tell each caller the outcome.
//
// Acknowledging only after the commit is the whole point: a webhook is
// answered 2xx only once its event and jobs are on stable storage, so a
// crash or power cut can lose nothing the provider believes was delivered.
//
// The per-op SAVEPOINT gives each op its own fate inside the shared
// transaction: if an op fails (say Retry of a missing job) ROLLBACK TO undoes
// just its partial writes, the op gets its own error, and the rest of the
// batch still commits. Without it one bad op would either poison the batch or
// leave half of its writes behind.
//
// If BEGIN, a SAVEPOINT bookkeeping statement, or COMMIT fails, nothing in the
// batch is durable, so every op that had not already failed on its own gets
// an error wrapping ErrUnavailable. The writer rolls back and carries on with
// the next batch, so the journal recovers by itself once the disk has space
// again.

// stmtID names a prepared statement of the writer.
type stmtID int

const (
	stSavepoint stmtID = iota
	stRelease
	stRollbackTo
	stInsEvent
	stInsResult
	stDelResults
	stInsOnce
	stInsJob
	stEventSource
	stClaim
	stFinish
	stInsAttempt
	stRetry
	stRecover
	stPruneEvents
	stPruneOnce
	stPing
	numStmts
)

// writerSQL holds the text of every writer statement. They are prepared once
// on the writer *sql.DB at Open and bound to each batch's transaction with
// Tx.StmtContext, which reuses the already prepared SQLite statement because
// the writer pool has exactly one connection.
var writerSQL = [numStmts]string{
	stSavepoint:  `SAVEPOINT op`,
	stRelease:    `RELEASE op`,
	stRollbackTo: `ROLLBACK TO op`,
	stInsEvent: `INSERT INTO events (id, source, provider, type, received_at, headers, body, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
	stInsResult: `INSERT INTO rule_results (event_id, seq, rule, matched, error, suppressed) VALUES (?, ?, ?, ?, ?, ?)`,
	stDelResults: `DELETE FROM rule_results WHERE event_id = ?`,
	stInsOnce: `INSERT INTO once_keys (rule, key, event_id, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (rule, key) DO NOTHING`,
	stInsJob: `INSERT INTO jobs (event_id, source, rule, action, state, attempts, run_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
	stEventSource: `SELECT source FROM events WHERE id = ?`,
	stClaim: `UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?
		WHERE id IN (SELECT id FROM jobs WHERE state = 'pending' AND run_at <= ? ORDER BY run_at, id LIMIT ?)
		RETURNING ` + jobColumns,
	stFinish: `UPDATE jobs SET state = ?, run_at = CASE WHEN ? = 'pending' THEN ? ELSE run_at END,
		last_error = ?, updated_at = ? WHERE id = ? AND state = 'running' RETURNING attempts`,
	stInsAttempt: `INSERT INTO attempts (job_id, n, started_at, duration_ns, outcome, error, output) VALUES (?, ?, ?, ?, ?, ?, ?)`,
	stRetry: `UPDATE jobs SET state = 'pending', run_at = ?, updated_at = ?
		WHERE id = ? AND state IN ('dead', 'pending') RETURNING ` + jobColumns,
	stRecover: `UPDATE jobs SET state = 'pending', updated_at = ? WHERE state = 'running'`,
	// An event is prunable when it is old enough and every job it has (if
	// any) has succeeded; the cascade removes results, jobs and attempts.
	stPruneEvents: `DELETE FROM events WHERE id IN (
		SELECT e.id FROM events e WHERE e.received_at < ?
		AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id AND j.state <> 'succeeded')
		ORDER BY e.received_at LIMIT ?)`,
	stPruneOnce: `DELETE FROM once_keys WHERE (rule, key) IN (
		SELECT rule, key FROM once_keys WHERE created_at < ? LIMIT ?)`,
	stPing: `INSERT INTO meta (k, v) VALUES ('ping', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`,
}

// wtx is what an op sees: the batch transaction plus lazily bound statements.
type wtx struct {
	ctx  context.Context // the writer's own context, never a caller's
	tx   *sql.Tx
	base *[numStmts]*sql.Stmt
	st   [numStmts]*sql.Stmt
}

// stmt returns statement id bound to the current transaction.
func (w *wtx) stmt(id stmtID) *sql.Stmt {
	if w.st[id] == nil {
		w.st[id] = w.tx.StmtContext(w.ctx, w.base[id])
	}
	return w.st[id]
}

func (w *wtx) exec(id stmtID, args ...any) (sql.Result, error) {
	return w.stmt(id).ExecContext(w.ctx, args...)
}

func (w *wtx) query(id stmtID, args ...any) (*sql.Rows, error) {
	return w.stmt(id).QueryContext(w.ctx, args...)
}

// execN runs id and returns the number of rows it changed.
func (w *wtx) execN(id stmtID, args ...any) (int64, error) {
	res, err := w.exec(id, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// op is one queued write. fn must not retain w after returning, and must
// report through variables it closes over; those are read by the caller only
// when the op's result is nil.
type op struct {
	ctx   context.Context
	fn    func(w *wtx) error
	state atomic.Int32 // opQueued -> opRunning (writer) or opQueued -> opAbandoned (caller)
	done  chan error   // buffered(1): the writer never blocks on a departed caller
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

// write queues fn and waits until the batch containing it is committed. A nil
// return means fn's writes are durable. If ctx ends before the writer has
// started the op, write returns ctx.Err() and the op is never run; once the
// op has started, write waits for its real outcome (one batch, normally a
// few milliseconds) so that the result is never ambiguous.
func (s *SQLite) write(ctx context.Context, fn func(w *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := opPool.Get().(*op)
	o.ctx, o.fn = ctx, fn
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

// run is the writer goroutine.
func (s *SQLite) run() {
	defer close(s.stopped)
	batch := make([]*op, 0, s.maxBatch)
	errs := make([]error, s.maxBatch)
	for o := range s.ops {
		batch = append(batch[:0], o)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		t0 := time.Now()
		s.commitBatch(batch, errs[:len(batch)])
		dbgStats.batches++
		dbgStats.ops += len(batch)
		dbgStats.total += time.Since(t0)
		for i, o := range batch {
			o.done <- errs[i]
			batch[i] = nil
			errs[i] = nil
		}
	}
}

// commitBatch runs batch in one transaction and fills errs with each op's
// outcome. errs[i] == nil only if op i's writes were committed.
func (s *SQLite) commitBatch(batch []*op, errs []error) {
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		failAll(errs, unavailable("begin", err))
		return
	}
	w := &s.w
	w.ctx, w.tx, w.st = ctx, tx, [numStmts]*sql.Stmt{}
	defer func() { w.tx, w.st = nil, [numStmts]*sql.Stmt{} }()

	committed := 0
	for i, o := range batch {
		if !o.state.CompareAndSwap(opQueued, opRunning) {
			// The caller gave up before the op started; do not write
			// something nobody waits for.
			errs[i] = context.Canceled
			continue
		}
		if err := o.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := w.exec(stSavepoint); err != nil {
			s.abort(tx, batch, errs, unavailable("savepoint", err))
			return
		}
		if err := o.fn(w); err != nil {
			errs[i] = classify(err)
			if _, rerr := w.exec(stRollbackTo); rerr != nil {
				// ROLLBACK TO fails only if the savepoint is gone, which
				// means SQLite rolled back the whole transaction after an
				// I/O-type error. Committing now would silently drop the
				// earlier ops, so the whole batch fails.
				s.abort(tx, batch, errs, unavailable("rollback to savepoint", rerr))
				return
			}
		} else {
			committed++
		}
		// RELEASE also proves the transaction is still open: it fails with
		// "no such savepoint" if SQLite has rolled everything back.
		if _, err := w.exec(stRelease); err != nil {
			s.abort(tx, batch, errs, unavailable("release savepoint", err))
			return
		}
	}
	if committed == 0 {
		// Nothing to make durable; skip the fsync.
		_ = tx.Rollback()
		return
	}
	if s.faultCommit != nil {
		if err := s.faultCommit(); err != nil {
			s.abort(tx, batch, errs, unavailable("commit", err))
			return
		}
	}
	tc := time.Now()
	defer func() { dbgStats.commit += time.Since(tc) }()
	if err := tx.Commit(); err != nil {
		// The driver rolls the connection back if COMMIT left it inside the
		// transaction, so the next batch starts clean.
		s.failOK(batch, errs, unavailable("commit", err))
	}
}

// abort rolls tx back and fails every op that had not failed on its own.
func (s *SQLite) abort(tx *sql.Tx, batch []*op, errs []error, err error) {
	_ = tx.Rollback()
	s.failOK(batch, errs, err)
}

// failOK sets err for every op whose outcome was still success.
func (s *SQLite) failOK(batch []*op, errs []error, err error) {
	for i := range batch {
		if errs[i] == nil {
			errs[i] = err
		}
	}
}

func failAll(errs []error, err error) {
	for i := range errs {
		errs[i] = err
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
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrTxDone) {
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

var dbgStats struct{ batches, ops int; total, commit time.Duration }
