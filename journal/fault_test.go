package journal

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// execWriter runs raw SQL on the writer connection, inside the group commit.
func execWriter(t *testing.T, s *SQLite, q string) {
	t.Helper()
	err := s.write(context.Background(), func(w *wtx) error {
		_, err := w.wc.conn.(driver.ExecerContext).ExecContext(w.ctx, q, nil)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// holdWriter blocks the writer goroutine inside an op until the returned
// release function is called, so that ops submitted meanwhile are queued and
// end up in the same batch as the blocker.
func holdWriter(t *testing.T, s *SQLite) (release func()) {
	t.Helper()
	started, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		done <- s.write(context.Background(), func(*wtx) error {
			once.Do(func() { close(started) }) // ops must be re-runnable
			<-unblock
			return nil
		})
	}()
	<-started
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("blocker op: %v", err)
		}
	}
}

// waitQueued waits until n ops are waiting for the writer.
func waitQueued(t *testing.T, s *SQLite, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.ops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d ops queued", len(s.ops), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCommitFailureIsNeverAcked injects a COMMIT failure: every write in the
// batch must fail with ErrUnavailable and none may be visible afterwards.
func TestCommitFailureIsNeverAcked(t *testing.T) {
	ctx := context.Background()
	fail, fault := switchableFault("injected: disk I/O error")
	s, _ := openTest(t, Options{faultCommit: fault})
	mustIngest(t, s, testEvent("before"), evalFor("r", "a"))

	fail.Store(true)
	const n = 32
	for i, err := range ingestConcurrently(s, "lost", n) {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("ingest %d during commit failure: %v, want ErrUnavailable", i, err)
		}
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping during commit failure: %v", err)
	}
	if _, err := s.ClaimDue(ctx, time.Now(), 10); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ClaimDue during commit failure: %v", err)
	}

	fail.Store(false)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
	for i := range n {
		if _, err := s.Event(ctx, "", idOf("lost", i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("event of a failed commit is visible: %v", err)
		}
		// Not a duplicate either: nothing of it was written.
		if res := mustIngest(t, s, testEvent(idOf("lost", i)), evalFor("r", "a")); res.Duplicate {
			t.Fatal("retried event reported as duplicate")
		}
	}
	if got := count(t, s, `SELECT count(*) FROM jobs WHERE state = 'pending'`); got != n+1 {
		t.Errorf("%d pending jobs, want %d", got, n+1)
	}
	if st := s.Stats(); st.Failures == 0 {
		t.Errorf("stats did not count the failures: %+v", st)
	}
}

// TestDiskFull makes SQLite itself run out of space (max_page_count), which
// works even as root: Ingest must fail with ErrUnavailable, write nothing,
// and work again once there is room.
func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	mustIngest(t, s, testEvent("before"), evalFor("r", "a"))
	execWriter(t, s, `PRAGMA max_page_count = 1`) // clamps to the current size

	big := testEvent("too-big")
	big.Body = make([]byte, 64<<10)
	_, err := s.Ingest(ctx, big, evalFor("r", "a"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ingest on a full database: %v, want ErrUnavailable", err)
	}
	t.Logf("disk full error: %v", err)
	if _, err := s.Event(ctx, "", "too-big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("event written despite the error: %v", err)
	}

	execWriter(t, s, `PRAGMA max_page_count = 1073741823`)
	if res := mustIngest(t, s, big, evalFor("r", "a")); res.Duplicate || len(res.Jobs) != 1 {
		t.Fatalf("after freeing space: %+v", res)
	}
}

// TestReadOnlyDatabase is the real read-only case: the database file and its
// directory lose write permission. Root ignores permission bits, so it cannot
// be tested as root; TestDiskFull and TestCommitFailureIsNeverAcked cover the
// same code paths there.
func TestReadOnlyDatabase(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: file permissions do not stop root from writing, so a read-only journal cannot be simulated; covered by TestDiskFull and TestCommitFailureIsNeverAcked")
	}
	for _, tt := range []struct {
		name     string
		readOnly func(dir string) []string // paths made read-only
	}{
		{"database file", func(dir string) []string { return []string{filepath.Join(dir, FileName)} }},
		{"data dir and files", func(dir string) []string {
			return []string{filepath.Join(dir, FileName), filepath.Join(dir, "payramd.lock"), dir}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := closedJournal(t)
			for _, p := range tt.readOnly(dir) {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, fi.Mode().Perm()&^0o222); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(p, fi.Mode().Perm()) })
			}

			s, err := Open(dir, Options{})
			if err != nil {
				// Refusing to start is also acceptable: nothing can be acked.
				t.Logf("Open of a read-only journal failed (acceptable): %v", err)
				return
			}
			defer s.Close()
			_, err = s.Ingest(ctx, testEvent("after"), evalFor("r", "a"))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Ingest into a read-only journal: %v, want ErrUnavailable", err)
			}
			t.Logf("Ingest: %v", err)
			if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Ping of a read-only journal: %v, want ErrUnavailable", err)
			}
			if _, err := s.Event(ctx, "", "before"); err != nil {
				t.Logf("reads fail too: %v", err)
			}
			if _, err := s.Event(ctx, "", "after"); err == nil {
				t.Errorf("failed ingest is visible")
			}
		})
	}
}

// TestUnwritableNewDataDir is a data dir the service's user cannot write,
// with no journal in it yet (created by root for a dedicated user): Open
// must say that permission is missing, not that payramd.lock does not exist.
func TestUnwritableNewDataDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: file permissions do not stop root from writing")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	s, err := Open(dir, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of an unwritable, empty data dir succeeded")
	}
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "write access to "+dir) {
		t.Errorf("Open: %v, want a permission error naming %s", err, dir)
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open: %v: the missing lock file is not the problem", err)
	}
}

// TestOpFailureIsolation puts succeeding and failing ops in one batch: the
// failing ones get their own errors and leave nothing behind, the others
// commit.
func TestOpFailureIsolation(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	release := holdWriter(t, s)
	before := s.Stats()

	boom := errors.New("boom")
	var wg sync.WaitGroup
	results := map[string]error{}
	var mu sync.Mutex
	submit := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f()
			mu.Lock()
			results[name] = err
			mu.Unlock()
		}()
	}
	for i := range 10 {
		submit(idOf("good", i), func() error {
			_, err := s.Ingest(ctx, testEvent(idOf("good", i)), evalFor("r", "a"))
			return err
		})
	}
	submit("half-written", func() error {
		// Writes an event, then fails: the write must be undone.
		return s.write(ctx, func(w *wtx) error {
			if _, err := w.exec(stInsEvent, "half", "s", "p", "t", int64(1), "{}", nil, nil); err != nil {
				return err
			}
			return boom
		})
	})
	submit("retry-missing", func() error {
		_, err := s.Retry(ctx, 424242)
		return err
	})
	submit("finish-missing", func() error {
		return s.Finish(ctx, 424242, Attempt{}, Succeeded, time.Time{})
	})
	waitQueued(t, s, 13)
	release()
	wg.Wait()

	for i := range 10 {
		if err := results[idOf("good", i)]; err != nil {
			t.Errorf("good ingest %d: %v", i, err)
		}
		if _, err := s.Event(ctx, "", idOf("good", i)); err != nil {
			t.Errorf("good event %d missing: %v", i, err)
		}
	}
	if err := results["half-written"]; !errors.Is(err, boom) || errors.Is(err, ErrUnavailable) {
		t.Errorf("failing op: %v, want boom", err)
	}
	if _, err := s.Event(ctx, "", "half"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed op's write survived: %v", err)
	}
	for _, name := range []string{"retry-missing", "finish-missing"} {
		if err := results[name]; !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	after := s.Stats()
	if after.Batches-before.Batches != 1 || after.Reruns-before.Reruns != 1 {
		t.Errorf("want the blocker and all 13 ops in one batch, re-run once with savepoints: before %+v after %+v", before, after)
	}
}

// TestCanceledBeforeRun: a caller that gives up while its write is still
// queued gets its context error at once, and the write never happens.
func TestCanceledBeforeRun(t *testing.T) {
	s, _ := openTest(t, Options{})
	release := holdWriter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Ingest(ctx, testEvent("canceled"), evalFor("r", "a"))
		done <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Ingest: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ingest did not return after its context was canceled")
	}
	release()
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Event(context.Background(), "", "canceled"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("abandoned write was committed: %v", err)
	}
	if _, err := s.Ingest(context.Background(), testEvent("x"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestClassify checks which errors count as "journal unavailable".
func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{ErrNotFound, false},
		{fmt.Errorf("wrapped: %w", ErrNotFound), false},
		{errors.New("UNIQUE constraint failed"), false},
		{driver.ErrBadConn, true},
		{ErrClosed, true},
	}
	for _, tt := range tests {
		if got := errors.Is(classify(tt.err), ErrUnavailable); got != tt.want {
			t.Errorf("classify(%v) unavailable=%v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestImmutableDataDirSaysWhere opens a journal whose directory cannot be
// written even by root (chattr +i), so SQLite cannot create its -wal and
// -shm files: the error names the data dir and says what is missing, not
// only SQLite's "attempt to write a readonly database".
func TestImmutableDataDirSaysWhere(t *testing.T) {
	dir := closedJournal(t)
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("chattr +i is not available here (needs root and a file system with the immutable flag): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	s, err := Open(dir, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open for writing of a journal in an immutable directory succeeded")
	}
	if !strings.Contains(err.Error(), "the journal in "+dir+" cannot be written") || !strings.Contains(err.Error(), "write access") {
		t.Errorf("Open: %v, want the data dir named and write access asked for", err)
	}
}

// TestPingAfterRefusedEvent: on a nearly full disk a tiny write still fits
// where an event does not. Once an event was refused for want of room, Ping
// (and so /readyz) fails until a write of that event's size fits again,
// instead of saying ready while every webhook gets 503 (found by a QA pass
// on a 3 MB file system). Needs root to mount a small tmpfs.
func TestPingAfterRefusedEvent(t *testing.T) {
	ctx := context.Background()
	dir := smallDisk(t)
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustIngest(t, s, testEvent("small"), evalFor("r", "a"))

	filler, big := refuseForWantOfRoom(t, s, dir)
	// IsNoSpace tells the watchdog this is no reason to restart.
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) || !IsNoSpace(err) {
		t.Errorf("Ping after an event was refused for want of room: %v, want ErrUnavailable for no space", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping once there is room again: %v", err)
	}
	mustIngest(t, s, big, evalFor("r", "a"))
}

// TestPaddedPingSparesItsBatch: the write Ping pads to a refused event's
// size must not share a transaction with webhooks. On a disk with room for
// a small event but not the padding, the COMMIT of a batch holding both
// fails as a whole, and the small webhook, which fits, would get 503 only
// because a /readyz probe or the watchdog's tick came at the same moment.
// Needs root to mount a small tmpfs.
func TestPaddedPingSparesItsBatch(t *testing.T) {
	ctx := context.Background()
	dir := smallDisk(t)
	// The syncer waits on gate while hold is set, so that the writer keeps
	// its next transaction open and takes in every op that arrives.
	var hold atomic.Bool
	gate := make(chan struct{})
	s, err := Open(dir, Options{faultSync: func() error {
		if hold.Load() {
			<-gate
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustIngest(t, s, testEvent("small"), evalFor("r", "a"))

	refuseForWantOfRoom(t, s, dir)

	hold.Store(true)
	first := make(chan error, 1)
	go func() { _, err := s.Ingest(ctx, testEvent("first"), evalFor("r", "a")); first <- err }()
	// Wait until the syncer holds first's batch: the writer then collects.
	for !s.syncing.Load() {
		time.Sleep(time.Millisecond)
	}
	ping := make(chan error, 1)
	go func() { ping <- s.Ping(ctx) }()
	time.Sleep(20 * time.Millisecond)
	small := make(chan error, 1)
	go func() { _, err := s.Ingest(ctx, testEvent("small2"), evalFor("r", "a")); small <- err }()
	time.Sleep(50 * time.Millisecond)
	hold.Store(false)
	close(gate)

	if err := <-first; err != nil {
		t.Fatalf("Ingest(first): %v", err)
	}
	if err := <-ping; !IsNoSpace(err) {
		t.Errorf("padded Ping with 64 KiB free: %v, want no space", err)
	}
	if err := <-small; err != nil {
		t.Errorf("a small webhook queued next to the padded Ping: %v, want journaled (it fits)", err)
	}
}

// smallDisk mounts a 4 MiB tmpfs for a test to fill, skipping the test
// where it cannot (it needs root).
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// refuseForWantOfRoom fills the disk under dir but for 64 KiB (room for a
// ping, not for an event of half a megabyte) and has s refuse such an
// event; it returns the filler file, whose removal makes room again, and
// the refused event.
func refuseForWantOfRoom(t *testing.T, s *SQLite, dir string) (string, *Event) {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	fi, _ := f.Stat()
	if err := f.Truncate(fi.Size() - 64<<10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	big := testEvent("big")
	big.Body = bytes.Repeat([]byte("x"), 512<<10)
	if _, err := s.Ingest(context.Background(), big, evalFor("r", "a")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ingest of 512 KiB with 64 KiB free: %v, want ErrUnavailable", err)
	}
	return filler, big
}
