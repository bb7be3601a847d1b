package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payramd/payramd/journal"
)

// watchNotifier counts watchdog pings at a short interval.
type watchNotifier struct {
	nopNotifier
	pings atomic.Int32
}

func (n *watchNotifier) Watchdog()                       { n.pings.Add(1) }
func (n *watchNotifier) WatchdogInterval() time.Duration { return 5 * time.Millisecond }

// pingStore is a journal whose Ping answers err.
type pingStore struct {
	journal.Store
	err error
}

func (s pingStore) Ping(context.Context) error { return s.err }

// TestWatchdogThroughFullDisk: the watchdog is not pinged while the
// journal fails, so systemd restarts a wedged daemon, except when the disk
// is full: a restart frees no space and would only interrupt running jobs.
func TestWatchdogThroughFullDisk(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		pings bool
	}{
		{"healthy", nil, true},
		{"disk full", fmt.Errorf("%w: write: %w", journal.ErrUnavailable, syscall.ENOSPC), true},
		{"failed journal", fmt.Errorf("%w: fsync failed", journal.ErrUnavailable), false},
		{"wedged journal", context.DeadlineExceeded, false},
	} {
		n := &watchNotifier{}
		d := &Daemon{store: pingStore{err: tt.err}, notify: n, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		d.watchdog(ctx)
		cancel()
		if got := n.pings.Load() > 0; got != tt.pings {
			t.Errorf("%s: watchdog pinged %d times, want pings: %v", tt.name, n.pings.Load(), tt.pings)
		}
	}
}
