package journal

import (
	"context"
	"database/sql"
	"time"
)

// checkpointEvery is how often the background checkpointer copies the WAL
// into the database file.
const checkpointEvery = 100 * time.Millisecond

// checkpointer moves WAL checkpoints off the writer. SQLite's automatic
// checkpoint runs inside the COMMIT that crosses its threshold, copying
// pages into the database file and fsyncing it while every webhook of the
// batch waits for its acknowledgement. The writer therefore runs with
// wal_autocheckpoint(0), and this goroutine checkpoints on a connection of
// its own in PASSIVE mode, which never waits for the writer or readers.
// The writer still rewinds the WAL once a checkpoint has caught up, and
// journal_size_limit truncates it. A checkpoint that fails (a full disk)
// is simply tried again: a late checkpoint only lets the WAL grow, it
// never loses a commit.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	// hold reports that checkpoints must stop: after a failed WAL fsync,
	// frames in the WAL may never have reached the disk, and copying them
	// into the database file would spread the damage beyond what WAL
	// recovery, which checks every frame, can contain at the next start.
	hold func() bool
}

func startCheckpointer(dsn string, hold func() bool) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{}), hold: hold}
	go c.loop()
	return c, nil
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if c.hold() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var busy, log, moved int
			_ = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &moved)
			cancel()
		}
	}
}

func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
