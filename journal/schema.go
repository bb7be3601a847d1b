package journal

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// applicationID marks the file as a payramd journal ("pyrm") so that
// pointing payramd at some other SQLite database fails loudly instead of
// adding tables to it. It is stored in the database header and shown by
// `PRAGMA application_id` in the sqlite3 CLI.
const applicationID = 0x7079726d

// migrations[i] upgrades the schema from version i to i+1; PRAGMA
// user_version holds the current version. Migrations only ever get appended:
// a released migration is never edited, because databases in the field have
// already run it.
//
// Design notes, so the file stays easy to inspect with the stock sqlite3 CLI:
//   - Times are INTEGER unix nanoseconds (UTC), 0 meaning "unset". The *_v
//     views render them as ISO-8601 text (NULL when unset).
//   - headers and payload are JSON text, so json_extract() works on them;
//     body is the raw BLOB as received.
//   - Foreign keys (enforced: the DSN sets foreign_keys(1)) cascade deletes
//     from events to rule_results, jobs and attempts, which is what Prune
//     relies on.
//   - jobs.id is AUTOINCREMENT so an ID is never reused after pruning; the
//     job ID is sent downstream as an idempotency key.
var migrations = []string{
	// 0 -> 1: initial schema.
	`
CREATE TABLE events (
	id          TEXT    NOT NULL PRIMARY KEY,
	source      TEXT    NOT NULL,
	provider    TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	headers     TEXT    NOT NULL DEFAULT '{}',
	body        BLOB,
	payload     TEXT
);
CREATE INDEX events_received_at ON events(received_at);
CREATE INDEX events_source_received_at ON events(source, received_at);

CREATE TABLE rule_results (
	event_id   TEXT    NOT NULL REFERENCES events(id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	rule       TEXT    NOT NULL,
	matched    INTEGER NOT NULL,
	error      TEXT    NOT NULL DEFAULT '',
	suppressed INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (event_id, seq)
) WITHOUT ROWID;

CREATE TABLE jobs (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id   TEXT    NOT NULL REFERENCES events(id) ON DELETE CASCADE,
	source     TEXT    NOT NULL,
	rule       TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	-- Not "state IN (...)": SQLite builds a temporary table for an IN list
	-- of three or more values on every row, which made job inserts 50% slower.
	state      TEXT    NOT NULL CHECK (state = 'pending' OR state = 'running' OR state = 'succeeded' OR state = 'dead'),
	attempts   INTEGER NOT NULL DEFAULT 0,
	run_at     INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	last_error TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX jobs_state_run_at ON jobs(state, run_at);
CREATE INDEX jobs_event_id ON jobs(event_id);

CREATE TABLE attempts (
	id          INTEGER PRIMARY KEY,
	job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	n           INTEGER NOT NULL,
	started_at  INTEGER NOT NULL,
	duration_ns INTEGER NOT NULL,
	outcome     TEXT    NOT NULL,
	error       TEXT    NOT NULL DEFAULT '',
	output      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX attempts_job_id ON attempts(job_id, n);

CREATE TABLE once_keys (
	rule       TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	event_id   TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (rule, key)
) WITHOUT ROWID;
CREATE INDEX once_keys_created_at ON once_keys(created_at);

CREATE TABLE meta (
	k TEXT NOT NULL PRIMARY KEY,
	v TEXT NOT NULL
) WITHOUT ROWID;

CREATE VIEW events_v AS
SELECT id, source, provider, type,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(received_at, 0) / 1e9, 'unixepoch') AS received,
       headers, length(body) AS body_bytes, payload
FROM events;

CREATE VIEW jobs_v AS
SELECT id, event_id, source, rule, action, state, attempts,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(run_at, 0) / 1e9, 'unixepoch')     AS run_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(created_at, 0) / 1e9, 'unixepoch') AS created,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(updated_at, 0) / 1e9, 'unixepoch') AS updated,
       last_error
FROM jobs;

CREATE VIEW attempts_v AS
SELECT job_id, n,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(started_at, 0) / 1e9, 'unixepoch') AS started,
       duration_ns / 1e6 AS duration_ms, outcome, error, output
FROM attempts;
`,

	// 1 -> 2: keys that append instead of scattering. Version 1 keyed
	// rule_results and the jobs-by-event index on the event's 64-character
	// hash id, so every event inserted into three B-trees at random places
	// (its id, its results, its jobs), and each of those leaf pages had to be
	// written to the WAL and fsynced with the batch. Now events carry an
	// INTEGER PRIMARY KEY (seq, their arrival order) that rule_results and
	// jobs refer to, so only the events.id uniqueness index, which dedup
	// needs, is still random; the rest are appends to pages the batch
	// already writes. The index of due jobs is partial: succeeded jobs,
	// nearly all of the table, leave it instead of piling up in it, and
	// queries that want it repeat its WHERE term so that SQLite can prove
	// they may use it. The (source, received_at) index is gone: listing
	// one source's events walks the received_at index and filters, which
	// costs an operator little and saved a write per webhook.
	//
	// SQLite cannot change keys in place, so each table is rebuilt as
	// SQLite's documentation describes: create the new tables, copy, drop
	// the old ones (children first, so no cascade runs), rename. RENAME
	// also rewrites the REFERENCES clauses that name the new tables.
	`
DROP VIEW events_v;
DROP VIEW jobs_v;
DROP VIEW attempts_v;

CREATE TABLE events_new (
	seq         INTEGER PRIMARY KEY,
	id          TEXT    NOT NULL UNIQUE,
	source      TEXT    NOT NULL,
	provider    TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	headers     TEXT    NOT NULL DEFAULT '{}',
	body        BLOB,
	payload     TEXT
);
INSERT INTO events_new (seq, id, source, provider, type, received_at, headers, body, payload)
	SELECT rowid, id, source, provider, type, received_at, headers, body, payload FROM events ORDER BY rowid;

CREATE TABLE rule_results_new (
	event_seq  INTEGER NOT NULL REFERENCES events_new(seq) ON DELETE CASCADE,
	n          INTEGER NOT NULL,
	rule       TEXT    NOT NULL,
	matched    INTEGER NOT NULL,
	error      TEXT    NOT NULL DEFAULT '',
	suppressed INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (event_seq, n)
) WITHOUT ROWID;
INSERT INTO rule_results_new (event_seq, n, rule, matched, error, suppressed)
	SELECT e.rowid, r.seq, r.rule, r.matched, r.error, r.suppressed
	FROM rule_results r JOIN events e ON e.id = r.event_id;

CREATE TABLE jobs_new (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	event_seq  INTEGER NOT NULL REFERENCES events_new(seq) ON DELETE CASCADE,
	event_id   TEXT    NOT NULL, -- events.id, repeated for reading jobs without a join
	source     TEXT    NOT NULL,
	rule       TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	state      TEXT    NOT NULL CHECK (state = 'pending' OR state = 'running' OR state = 'succeeded' OR state = 'dead'),
	attempts   INTEGER NOT NULL DEFAULT 0,
	run_at     INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	last_error TEXT    NOT NULL DEFAULT ''
);
INSERT INTO jobs_new (id, event_seq, event_id, source, rule, action, state, attempts, run_at, created_at, updated_at, last_error)
	SELECT j.id, e.rowid, j.event_id, j.source, j.rule, j.action, j.state, j.attempts, j.run_at, j.created_at, j.updated_at, j.last_error
	FROM jobs j JOIN events e ON e.id = j.event_id ORDER BY j.id;
-- Job ids are idempotency keys and must never be reused, even the ids of
-- jobs pruned before this migration.
INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs_new', 0
	WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs_new');
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0))
	WHERE name = 'jobs_new';

CREATE TABLE attempts_new (
	id          INTEGER PRIMARY KEY,
	job_id      INTEGER NOT NULL REFERENCES jobs_new(id) ON DELETE CASCADE,
	n           INTEGER NOT NULL,
	started_at  INTEGER NOT NULL,
	duration_ns INTEGER NOT NULL,
	outcome     TEXT    NOT NULL,
	error       TEXT    NOT NULL DEFAULT '',
	output      TEXT    NOT NULL DEFAULT ''
);
-- Joined like the tables above, so that rows orphaned by hand in version 1
-- (the sqlite3 CLI does not enforce foreign keys unless asked) are left
-- behind instead of failing the migration on every start.
INSERT INTO attempts_new SELECT a.* FROM attempts a JOIN jobs_new j ON j.id = a.job_id ORDER BY a.id;

DROP TABLE attempts;
DROP TABLE jobs;
DROP TABLE rule_results;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
ALTER TABLE rule_results_new RENAME TO rule_results;
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE attempts_new RENAME TO attempts;

CREATE INDEX events_received_at ON events(received_at);
CREATE INDEX jobs_due ON jobs(state, run_at) WHERE state <> 'succeeded';
CREATE INDEX jobs_event_seq ON jobs(event_seq);
CREATE INDEX attempts_job_id ON attempts(job_id, n);

CREATE VIEW events_v AS
SELECT seq, id, source, provider, type,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(received_at, 0) / 1e9, 'unixepoch') AS received,
       headers, length(body) AS body_bytes, payload
FROM events;

CREATE VIEW jobs_v AS
SELECT id, event_id, source, rule, action, state, attempts,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(run_at, 0) / 1e9, 'unixepoch')     AS run_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(created_at, 0) / 1e9, 'unixepoch') AS created,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(updated_at, 0) / 1e9, 'unixepoch') AS updated,
       last_error
FROM jobs;

CREATE VIEW attempts_v AS
SELECT job_id, n,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(started_at, 0) / 1e9, 'unixepoch') AS started,
       duration_ns / 1e6 AS duration_ms, outcome, error, output
FROM attempts;
`,

	// 2 -> 3: dedup per source. Version 2 made events.id unique across all
	// sources, so when two sources were fed by one provider account (two
	// Stripe endpoints, two Svix endpoints of one app), which send the same
	// delivery id to both, the second source's copy was answered
	// "duplicate" and its rules never ran. Events are now unique by
	// (id, source); id comes first so that a lookup by id alone, which the
	// admin API still allows, uses the same index.
	//
	// Whether a rule already ran for a provider id on another source is read
	// from the copies' rule results (ranElsewhere in ops.go), so events
	// journaled before the upgrade count as they are; nothing else is
	// written.
	//
	// Only events is rebuilt: the other tables refer to events.seq, which
	// is copied unchanged. This relies on migrations running with foreign
	// keys off (see migrateDSN); with them on, DROP TABLE events would
	// cascade into every result, job and attempt. legacy_alter_table keeps
	// the RENAME from re-checking every view and trigger in the file, which
	// fails on a view an operator added that reads events (no table has
	// that name between the DROP and the RENAME); nothing refers to
	// events_new, so there is nothing for a modern RENAME to rewrite.
	`
DROP VIEW events_v;

CREATE TABLE events_new (
	seq         INTEGER PRIMARY KEY,
	id          TEXT    NOT NULL,
	source      TEXT    NOT NULL,
	provider    TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	headers     TEXT    NOT NULL DEFAULT '{}',
	body        BLOB,
	payload     TEXT,
	UNIQUE (id, source)
);
INSERT INTO events_new (seq, id, source, provider, type, received_at, headers, body, payload)
	SELECT seq, id, source, provider, type, received_at, headers, body, payload FROM events ORDER BY seq;
PRAGMA legacy_alter_table = ON;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
PRAGMA legacy_alter_table = OFF;
CREATE INDEX events_received_at ON events(received_at);

CREATE VIEW events_v AS
SELECT seq, id, source, provider, type,
       strftime('%Y-%m-%dT%H:%M:%fZ', nullif(received_at, 0) / 1e9, 'unixepoch') AS received,
       headers, length(body) AS body_bytes, payload
FROM events;
`,
}

// schemaVersion is the version this binary writes.
var schemaVersion = len(migrations)

// migrate brings the schema up to schemaVersion in one transaction, so a
// crash mid-migration leaves the previous version intact.
func migrate(ctx context.Context, db *sql.DB) error {
	// Check first with plain reads: when the schema is current there is
	// nothing to write, so a journal on a read-only disk still opens.
	version, err := checkVersion(ctx, db)
	if err != nil || version == schemaVersion {
		return err
	}

	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		return fmt.Errorf("journal: begin migration: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit

	// Re-check under the write lock in case another process migrated meanwhile.
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("journal: read user_version: %w", err)
	}
	if v != version {
		return fmt.Errorf("journal: schema version changed during open (%d -> %d); retry", version, v)
	}
	if version == 0 {
		// A brand-new file must be empty; anything else is someone else's data.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
			return fmt.Errorf("journal: inspect schema: %w", err)
		}
		if n != 0 {
			return fmt.Errorf("journal: database is not empty and has no payramd schema version; refusing to touch it")
		}
	}
	// Views an operator added (the README invites them) are set aside while
	// the tables are rebuilt: a RENAME re-checks every view in the file,
	// and one reading a table that the rebuild has just dropped fails the
	// migration, at every start. They are put back as written afterwards
	// (SQLite checks a view's text only when it is used).
	views, err := operatorViews(ctx, tx)
	if err != nil {
		return err
	}
	for _, v := range views {
		if _, err := tx.ExecContext(ctx, `DROP VIEW `+quoteIdent(v.name)); err != nil {
			return fmt.Errorf("journal: set view %s aside for the migration: %w", v.name, err)
		}
	}
	for v := version; v < schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("journal: migrate schema %d -> %d: %w", v, v+1, err)
		}
	}
	for _, v := range views {
		if _, err := tx.ExecContext(ctx, v.sql); err != nil {
			return fmt.Errorf("journal: restore view %s after the migration: %w", v.name, err)
		}
	}
	// PRAGMA arguments cannot be bound parameters; both values are ints we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d; PRAGMA user_version = %d`, applicationID, schemaVersion)); err != nil {
		return fmt.Errorf("journal: set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: commit migration: %w", err)
	}
	return nil
}

type view struct{ name, sql string }

// operatorViews lists the views in the file that are not payramd's own.
func operatorViews(ctx context.Context, tx *sql.Tx) ([]view, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema
		WHERE type = 'view' AND name NOT IN ('events_v', 'jobs_v', 'attempts_v') ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("journal: list views: %w", err)
	}
	defer rows.Close()
	var out []view
	for rows.Next() {
		var v view
		if err := rows.Scan(&v.name, &v.sql); err != nil {
			return nil, fmt.Errorf("journal: list views: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// checkVersion returns the schema version of db, refusing databases that
// belong to another application or to a newer payramd (downgrades are not
// supported).
func checkVersion(ctx context.Context, db *sql.DB) (int, error) {
	var appID, version int
	if err := db.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&appID); err != nil {
		return 0, fmt.Errorf("journal: read application_id: %w", err)
	}
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("journal: read user_version: %w", err)
	}
	switch {
	case appID != 0 && appID != applicationID:
		return 0, fmt.Errorf("journal: database has application_id %#x, not a payramd journal", appID)
	case appID == 0 && version != 0:
		return 0, fmt.Errorf("journal: database has user_version %d but no payramd application_id; refusing to touch it", version)
	case version > schemaVersion:
		return 0, fmt.Errorf("journal: database schema version %d is newer than this payramd supports (%d)", version, schemaVersion)
	}
	return version, nil
}
