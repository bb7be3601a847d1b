package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestNoAckBeforeWALSync holds the syncer inside its fsync: writes that
// have committed to SQLite must still not be acknowledged, and the writer
// must go on executing (and queueing) the next batches meanwhile.
func TestNoAckBeforeWALSync(t *testing.T) {
	ctx := context.Background()
	var hold atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s, _ := openTest(t, Options{faultSync: func() error {
		if hold.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		return nil
	}})
	mustIngest(t, s, testEvent("warm-up"), evalFor("r", "a"))

	hold.Store(true)
	const n = 16
	done := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.Ingest(ctx, testEvent(idOf("held", i)), evalFor("r", "a"))
			done <- err
		}()
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the syncer never started an fsync")
	}
	// The first batch is committed and its fsync is stuck: no caller may
	// have heard back, whatever else the writer has done meanwhile.
	select {
	case err := <-done:
		t.Fatalf("a write was acknowledged while its fsync had not returned (err=%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	hold.Store(false)
	close(release)
	for range n {
		if err := <-done; err != nil {
			t.Errorf("ingest after the fsync returned: %v", err)
		}
	}
	if st := s.Stats(); st.Syncs == 0 || st.Syncs > st.Batches {
		t.Errorf("stats: %+v", st)
	}
}

// TestWALSyncFailurePoisons injects a failed fsync. The writes waiting for
// it fail with ErrUnavailable, and so does every write after it, even once
// fsync would work again: Linux may have dropped the pages it could not
// write, so nothing since can be promised durable. Reads keep working, and
// reopening the journal (a restart) recovers.
func TestWALSyncFailurePoisons(t *testing.T) {
	ctx := context.Background()
	fail, fault := switchableFault("injected: EIO")
	dir := t.TempDir()
	s, err := Open(dir, Options{faultSync: fault})
	if err != nil {
		t.Fatal(err)
	}
	mustIngest(t, s, testEvent("before"), evalFor("r", "a"))

	fail.Store(true)
	for i, err := range ingestConcurrently(s, "unsynced", 8) {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("ingest %d during the failed fsync: %v, want ErrUnavailable", i, err)
		}
	}

	fail.Store(false)
	if _, err := s.Ingest(ctx, testEvent("after"), evalFor("r", "a")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ingest after a failed fsync: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping after a failed fsync: %v, want ErrUnavailable", err)
	}
	if _, err := s.Event(ctx, "", "before"); err != nil {
		t.Errorf("reads must keep working: %v", err)
	}
	if st := s.Stats(); !st.SyncFailed || st.Failures == 0 {
		t.Errorf("stats after a failed fsync: %+v, want SyncFailed and failures counted", st)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after reopening: %v", err)
	}
	mustIngest(t, s, testEvent("after-restart"), evalFor("r", "a"))
	// A webhook refused with 503 is retried by its provider; whether or not
	// its first attempt reached the disk, the retry is then acknowledged
	// (as new, or as a duplicate of a now durable event).
	if _, err := s.Ingest(ctx, testEvent(idOf("unsynced", 0)), evalFor("r", "a")); err != nil {
		t.Errorf("provider retry after restart: %v", err)
	}
}

// TestCommitDuringFailedSyncIsNotAcked: a batch that commits while the
// fsync before it is failing must fail too, even though the next fsync
// succeeds. Linux reports a writeback error only once, and WAL recovery
// stops at the first frame that never reached the disk, so a later
// "successful" fsync proves nothing for it.
func TestCommitDuringFailedSyncIsNotAcked(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	var calls atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	s, _ := openTest(t, Options{faultSync: func() error {
		if armed.Load() && calls.Add(1) == 1 {
			close(entered)
			<-release
			return errors.New("injected: EIO, reported once")
		}
		return nil
	}})
	mustIngest(t, s, testEvent("warm-up"), evalFor("r", "a"))

	armed.Store(true)
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { _, err := s.Ingest(ctx, testEvent("first"), evalFor("r", "a")); first <- err }()
	<-entered // first is committed; its fsync is failing
	go func() { _, err := s.Ingest(ctx, testEvent("second"), evalFor("r", "a")); second <- err }()
	// Let the writer take the second write into a batch of its own.
	time.Sleep(100 * time.Millisecond)
	close(release)
	for name, ch := range map[string]chan error{"first": first, "second": second} {
		if err := <-ch; !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s ingest: %v, want ErrUnavailable", name, err)
		}
	}
	if _, err := s.Ingest(ctx, testEvent("third"), evalFor("r", "a")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ingest after the failed fsync: %v, want ErrUnavailable", err)
	}
}

// TestNoCheckpointAfterFailedSync: once an fsync has failed, the WAL may
// hold frames that never reached the disk, and the checkpointer must not
// copy them into the database file.
func TestNoCheckpointAfterFailedSync(t *testing.T) {
	fail, fault := switchableFault("injected: EIO")
	s, _ := openTest(t, Options{faultSync: fault})
	mustIngest(t, s, testEvent("before"), evalFor("r", "a"))
	time.Sleep(3 * checkpointEvery) // let the checkpointer catch up
	before := fileSize(t, s.path)

	fail.Store(true)
	big := testEvent("big")
	big.Body = bytes.Repeat([]byte("x"), 256<<10) // committed to the WAL, then its fsync fails
	if _, err := s.Ingest(context.Background(), big, evalFor("r", "a")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ingest during the failed fsync: %v", err)
	}
	time.Sleep(5 * checkpointEvery)
	if after := fileSize(t, s.path); after != before {
		t.Errorf("database file grew from %d to %d bytes after a failed fsync: the WAL was checkpointed", before, after)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestWALSyncFailureIsNoSpaceNever: an fsync that failed with ENOSPC still
// poisons the journal, and IsNoSpace says no, so that the watchdog lets
// systemd restart payramd (a full disk that fsync reports is a lost
// write, not a write refused).
func TestWALSyncFailureIsNoSpaceNever(t *testing.T) {
	var fail atomic.Bool
	s, _ := openTest(t, Options{faultSync: func() error {
		if fail.Load() {
			return fmt.Errorf("fsync: %w", syscall.ENOSPC)
		}
		return nil
	}})
	mustIngest(t, s, testEvent("before"), evalFor("r", "a"))
	fail.Store(true)
	_, _ = s.Ingest(context.Background(), testEvent("lost"), evalFor("r", "a"))
	fail.Store(false)
	err := s.Ping(context.Background())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) || IsNoSpace(err) {
		t.Errorf("Ping after an fsync failed with ENOSPC: %v; want unavailable, ENOSPC inside, and IsNoSpace false", err)
	}
}
