package journal

import (
	"fmt"
	"os"
	"path/filepath"
)

// Pipelined fsync
//
// The writer connection runs with synchronous(NORMAL): in WAL mode its
// COMMIT writes the batch's pages to the -wal file and returns without
// waiting for the disk. Durability comes from the syncer goroutine instead,
// which fsyncs the -wal file through a descriptor of its own and only then
// acknowledges the batches committed before that fsync started. The writer
// has meanwhile gone on to execute the next batch, so SQL execution and the
// disk flush overlap instead of taking turns, and one fsync covers however
// many batches committed while the previous one ran.
//
// What a caller is told is unchanged: a nil error means its writes are on
// stable storage. Why this is as safe as synchronous(FULL):
//   - SQLite guarantees that a WAL database survives power loss consistent
//     in NORMAL mode; what it may lose is the most recent commits, those
//     whose frames were not yet on disk. Frames are appended in order and
//     recovery keeps the longest valid prefix, so once an fsync has returned,
//     every commit written before it began survives.
//   - Nothing is acknowledged before that fsync, including answers that
//     depend on earlier commits ("duplicate", "already claimed"): those ops
//     are in later batches, and the fsync that releases them covers the
//     earlier batches too.
//   - Checkpoints sync the WAL before copying it into the database, and the
//     database before the WAL may be rewound, in NORMAL mode as in FULL; and
//     when the writer rewinds the WAL, NORMAL still syncs the new WAL header
//     before frames are written after it. So a rewound WAL never holds the
//     only copy of anything. This holds for NORMAL and FULL only: the writer
//     must never run with synchronous(OFF).
//
// An fsync that fails is not retried. After a failed fsync Linux may
// already have dropped the dirty pages it could not write and will report
// the next fsync as a success, so the commits involved may be lost
// whatever happens next. The journal therefore poisons itself: the batches
// waiting for that fsync, and every write after it, fail with
// ErrUnavailable (so webhooks get 503 and providers retry, and /readyz
// fails through Ping), until payramd is restarted. Nothing acknowledged
// depends on the failed flush; what it covered was answered 503, and its
// provider delivers it again.

// syncWAL fsyncs the -wal file. The descriptor is opened on first use,
// because SQLite creates the file lazily, and reopened if the path now names
// another file (SQLite never replaces the WAL of an open database, but the
// check costs a stat next to a disk flush); each time, the directory is
// fsynced too, so that the file's directory entry is as durable as its
// contents. fatal reports a failed fsync, which poisons the journal; a
// failure to open the file flushed nothing and lost nothing, so the batches
// waiting fail but the next sync may succeed for real.
func (s *SQLite) syncWAL() (fatal bool, err error) {
	if s.faultSync != nil {
		if err := s.faultSync(); err != nil {
			return true, err
		}
	}
	name := s.path + "-wal"
	if s.wal != nil && !sameFile(s.wal, name) {
		s.wal.Close()
		s.wal = nil
	}
	if s.wal == nil {
		f, err := os.Open(name)
		if err != nil {
			return false, fmt.Errorf("open WAL for fsync: %w", err)
		}
		if err := syncDir(filepath.Dir(name)); err != nil {
			f.Close()
			return false, fmt.Errorf("fsync data directory: %w", err)
		}
		s.wal = f
	}
	sync := (*os.File).Sync
	if s.fdatasync {
		sync = datasync
	}
	if err := sync(s.wal); err != nil {
		return true, fmt.Errorf("fsync WAL: %w", err)
	}
	return false, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func sameFile(f *os.File, name string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(name)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}

// poison records the first sync failure and returns the error every
// affected write reports.
func (s *SQLite) poison(err error) error {
	perr := fmt.Errorf("%w: %w (journal writes stopped until payramd restarts: after a failed disk flush, recent writes may not be on disk; check the disk and the kernel log)", ErrUnavailable, syncFailure{err})
	s.poisonErr.CompareAndSwap(nil, &perr)
	return *s.poisonErr.Load()
}

// syncFailure marks the error of a failed WAL fsync, which only a restart
// clears, even when it says ENOSPC (see IsNoSpace).
type syncFailure struct{ error }

func (e syncFailure) Unwrap() error { return e.error }

// poisoned returns the error set by poison, or nil.
func (s *SQLite) poisoned() error {
	if p := s.poisonErr.Load(); p != nil {
		return *p
	}
	return nil
}
