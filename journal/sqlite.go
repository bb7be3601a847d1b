package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the journal's file name inside the data directory. SQLite keeps
// FileName+"-wal" and FileName+"-shm" next to it while the database is open,
// so copying the file of a running daemon is not a backup; use
// `sqlite3 payramd.db ".backup copy.db"` (or VACUUM INTO) instead.
const FileName = "payramd.db"

// Options tunes a [SQLite] journal. The zero value is ready to use.
type Options struct {
	// MaxBatch caps how many writes are group-committed in one transaction.
	// Default 256.
	MaxBatch int
	// ReadConns is the size of the read-only connection pool used by the
	// query methods. Default max(4, GOMAXPROCS).
	ReadConns int
	// Now is the clock used for created_at/updated_at, for events with a
	// zero ReceivedAt, and for Retry's "run now". Default time.Now.
	Now func() time.Time
	// Fdatasync syncs commits with fdatasync(2) instead of fsync(2): the
	// syncer's WAL flushes, and SQLite's own syncs at checkpoints. Durability
	// is the same (the stock SQLite build on Linux does this by default;
	// modernc.org/sqlite keeps fsync unless asked), and a sync can be faster
	// on ext4 because the inode timestamp update is not forced through the
	// file-system journal. SQLite's part of the setting is process-wide
	// (modernc.org/sqlite.Fdatasync) and is left on at Close.
	// A seccomp filter must allow fdatasync (systemd's @sync group has it).
	Fdatasync bool

	// faultCommit, when set, runs just before each COMMIT; an error aborts
	// the batch as if COMMIT had failed. Tests use it to prove that a failed
	// commit is never reported as success.
	faultCommit func() error
	// faultSync, when set, runs before each WAL fsync; an
	// error is treated as a failed fsync.
	faultSync func() error
}

// SQLite is the embedded [Store]. It is safe for concurrent use.
//
// It opens the database file twice: one write connection, used only by the
// group-commit goroutine (SQLite allows a single writer at a time anyway, and
// owning the connection lets its prepared statements live for the life of
// the store), and a database/sql pool of read connections opened with
// query_only(1), which in WAL mode read a consistent snapshot without ever
// blocking or waiting for the writer.
type SQLite struct {
	path     string
	wc       *writerConn // owned by the writer goroutine while it runs
	rdb      *sql.DB
	now      func() time.Time
	maxBatch int
	stats    writerStats

	faultCommit func() error
	lock        *os.File // flock on <dir>/payramd.lock, see lockDir

	mu      sync.RWMutex // guards closed against sends on ops
	closed  bool
	ops     chan *op
	carry   *op           // writer goroutine only: the op that starts its next batch
	toSync  chan *batch   // writer -> syncer: batches waiting for a WAL fsync
	stopped chan struct{} // closed when the syncer has acknowledged everything
	ckpt    *checkpointer

	syncing   atomic.Bool   // the syncer is fsyncing and acknowledging
	syncFree  chan struct{} // signalled (buffered 1) each time syncing ends
	batchPool sync.Pool
	wal       *os.File // the syncer's descriptor of the -wal file
	fdatasync bool     // sync it with fdatasync(2)
	faultSync func() error
	poisonErr atomic.Pointer[error] // set by the first failed WAL fsync
	// refused is the size of the last event the database could not take
	// (a full disk), until an event or a Ping of that size is written: see
	// Ping.
	refused atomic.Pointer[int]
}

var _ Store = (*SQLite)(nil)

// Open opens (creating if needed) the journal in dir, migrates its schema and
// starts the group-commit writer. dir is created with mode 0700 and the
// database file with mode 0600, since events may carry personal data. Only
// one process may have a journal directory open at a time.
//
// Open does not require the database to be writable once the schema is
// current: a journal on a read-only or full disk opens, serves reads, and
// fails writes with ErrUnavailable, which /readyz reports through Ping.
func Open(dir string, opts Options) (*SQLite, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Fdatasync {
		if _, err := sqlite.Fdatasync(true); err != nil && !errors.Is(err, sqlite.ErrFdatasyncUnavailable) {
			return nil, fmt.Errorf("journal: enable fdatasync: %w", err)
		}
	}
	abs, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: create data dir: %w", err)
	}
	s := &SQLite{
		path:        abs,
		now:         opts.Now,
		maxBatch:    opts.MaxBatch,
		faultCommit: opts.faultCommit,
		faultSync:   opts.faultSync,
		fdatasync:   opts.Fdatasync,
		ops:         make(chan *op, opts.MaxBatch),
		toSync:      make(chan *batch, 4),
		syncFree:    make(chan struct{}, 1),
		stopped:     make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			s.closeDBs()
		}
	}()
	if s.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	// Create the file ourselves so it gets 0600; SQLite would use 0644 and
	// then copy that mode to the -wal and -shm files.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("journal: create database file: %w", err)
	}

	// PRAGMAs go in the DSN so that every connection gets them (a PRAGMA run
	// with Exec applies to one pooled connection only). WAL lets readers run
	// concurrently with the writer; the writer's COMMIT does not wait for the
	// disk (synchronous(NORMAL)) because the syncer goroutine fsyncs the WAL
	// before anything is acknowledged (see "Pipelined fsync" in syncwal.go);
	// temp_store(MEMORY) keeps savepoint journals off the disk.
	writerDSN := func(foreignKeys string) string {
		return dsn(abs,
			"_pragma=busy_timeout(5000)",
			"_pragma=journal_mode(WAL)",
			"_pragma=synchronous(NORMAL)", // the syncer fsyncs; see "Pipelined fsync"
			"_pragma=foreign_keys("+foreignKeys+")",
			"_pragma=journal_size_limit(67108864)",
			"_pragma=temp_store(MEMORY)",
			"_pragma=wal_autocheckpoint(0)", // see checkpointer
			"_txlock=immediate")
	}
	if err := migrateDSN(writerDSN("0")); err != nil {
		return nil, readOnlyHint(err, dir)
	}
	if s.wc, err = openWriterConn(writerDSN("1")); err != nil {
		return nil, readOnlyHint(fmt.Errorf("journal: open writer: %w", err), dir)
	}

	s.rdb, err = sql.Open("sqlite", dsn(abs,
		"_pragma=busy_timeout(5000)",
		"_pragma=foreign_keys(1)",
		"_pragma=query_only(1)"))
	if err != nil {
		return nil, fmt.Errorf("journal: open readers: %w", err)
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	s.rdb.SetMaxIdleConns(opts.ReadConns)
	if err := s.rdb.PingContext(context.Background()); err != nil {
		return nil, fmt.Errorf("journal: open readers: %w", err)
	}

	if s.ckpt, err = startCheckpointer(dsn(abs, "_pragma=busy_timeout(5000)", "_pragma=synchronous(FULL)"), func() bool { return s.poisoned() != nil }); err != nil {
		return nil, fmt.Errorf("journal: open checkpointer: %w", err)
	}

	go s.run()
	go s.syncLoop()
	ok = true
	return s, nil
}

// readOnlyHint adds what an operator needs to an error from opening the
// journal for writing when its files cannot be written or created ("attempt
// to write a readonly database", "unable to open database file" say
// neither where nor what to do). The data dir exists and is locked by now,
// so that is what those codes mean here.
func readOnlyHint(err error, dir string) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
		return fmt.Errorf("%w (the journal in %s cannot be written: the user payramd runs as needs write access to that directory and the %s* files in it)", err, dir, FileName)
	}
	return err
}

// migrateDSN runs the schema migration over a short-lived database/sql
// handle, which is simpler than driving DDL through the raw writer
// connection. dsn must turn foreign keys off: rebuilding a parent table the
// way SQLite documents (create, copy, drop, rename) would otherwise cascade
// the DROP into its children. (PRAGMA foreign_keys cannot be changed inside
// the migration's transaction, hence the DSN.)
func migrateDSN(dsn string) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("journal: open: %w", err)
	}
	db.SetMaxOpenConns(1)
	err = migrate(context.Background(), db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("journal: close after migration: %w", cerr)
	}
	return err
}

// Path returns the absolute path of the database file.
func (s *SQLite) Path() string { return s.path }

// Close stops accepting writes, lets the writer commit everything already
// queued, and closes both pools. Calls after the first return nil.
func (s *SQLite) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.stopped
	return s.closeDBs()
}

// closeDBs closes the read pool first so that the writer connection is the
// last one: SQLite then checkpoints the WAL into the main file and removes
// the -wal and -shm files.
func (s *SQLite) closeDBs() error {
	var errs []error
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wc != nil {
		errs = append(errs, s.wc.close())
	}
	if s.wal != nil {
		errs = append(errs, s.wal.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// dsn builds a modernc.org/sqlite URI for path. Characters that are special
// in a URI are percent-escaped so any directory name works.
func dsn(path string, params ...string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + strings.Join(params, "&")
}

// Times are stored as unix nanoseconds; 0 stands for the zero time.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
