package journal

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ReadOnly is a journal opened for reading only. It takes no lock and
// starts no writer, so `payramd replay --dry-run` can backtest a candidate
// config against the journal of a running daemon (WAL readers never block
// the writer).
type ReadOnly struct {
	s *SQLite
}

// OpenReadOnly opens the journal in dir for reading. The database must exist.
func OpenReadOnly(dir string) (*ReadOnly, error) {
	abs, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("journal: no journal at %s (has the daemon run with this data_dir?)", abs)
	}
	rdb, err := sql.Open("sqlite", dsn(abs, "_pragma=busy_timeout(5000)", "_pragma=query_only(1)"))
	if err != nil {
		return nil, fmt.Errorf("journal: open readers: %w", err)
	}
	rdb.SetMaxOpenConns(2)
	if err := rdb.PingContext(context.Background()); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("journal: open readers: %w", err)
	}
	return &ReadOnly{s: &SQLite{path: abs, rdb: rdb, now: time.Now}}, nil
}

// EventsSince calls fn for every event received since the given time, oldest first.
func (r *ReadOnly) EventsSince(ctx context.Context, since time.Time, fn func(Event) error) error {
	return r.s.EventsSince(ctx, since, fn)
}

// Close releases the read pool.
func (r *ReadOnly) Close() error { return r.s.rdb.Close() }
