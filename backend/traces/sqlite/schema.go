package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migrations upgrade the schema one version at a time; migrations[i] takes version i to i+1.
// Append new steps, never edit shipped ones.
var migrations = []string{
	// 1: traces, metadata, deduplicated message bodies.
	`
CREATE TABLE traces (
	rowid INTEGER PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	started_at INTEGER NOT NULL, -- unix nanoseconds
	endpoint TEXT NOT NULL,
	requested_model TEXT NOT NULL,
	alias TEXT NOT NULL,
	model TEXT NOT NULL,
	provider TEXT NOT NULL,
	attempts BLOB, -- JSON array
	status INTEGER NOT NULL,
	error TEXT NOT NULL,
	stream INTEGER NOT NULL,
	ttft_ms REAL NOT NULL,
	latency_ms REAL NOT NULL,
	prompt_tokens INTEGER NOT NULL,
	completion_tokens INTEGER NOT NULL,
	total_tokens INTEGER NOT NULL,
	cached_tokens INTEGER NOT NULL,
	cache_write_tokens INTEGER NOT NULL,
	reasoning_tokens INTEGER NOT NULL,
	cost_usd REAL NOT NULL,
	finish_reason TEXT NOT NULL,
	input_kind INTEGER NOT NULL, -- 0 none, 1 one blob, 2 array of message blobs
	input_hashes BLOB, -- concatenated 32-byte sha256 hashes, in order
	output_hash BLOB,
	tools_hash BLOB,
	tool_calls BLOB,
	user TEXT NOT NULL,
	user_agent TEXT NOT NULL,
	preview TEXT NOT NULL
);
-- No status index: "ok" matches most traces and "error" is a NOT BETWEEN; both scan by time.
CREATE INDEX traces_time ON traces(started_at, id);
CREATE INDEX traces_model ON traces(model, started_at);
CREATE INDEX traces_provider ON traces(provider, started_at);
CREATE INDEX traces_alias ON traces(alias, started_at);
CREATE INDEX traces_endpoint ON traces(endpoint, started_at);

CREATE TABLE trace_metadata (
	trace_rowid INTEGER NOT NULL REFERENCES traces(rowid),
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (trace_rowid, key)
) WITHOUT ROWID;
CREATE INDEX trace_metadata_kv ON trace_metadata(key, value, trace_rowid);

-- text is the searchable text extracted from body; the FTS index, when present, indexes it.
CREATE TABLE blobs (
	hash BLOB PRIMARY KEY,
	body BLOB NOT NULL,
	text TEXT NOT NULL
);

-- Which traces contain which blobs, for full-text search from a message back to its traces.
CREATE TABLE trace_blobs (
	blob_rowid INTEGER NOT NULL,
	trace_rowid INTEGER NOT NULL,
	PRIMARY KEY (blob_rowid, trace_rowid)
) WITHOUT ROWID;
-- From a trace to its messages, for probing traces in time order.
CREATE INDEX trace_blobs_trace ON trace_blobs(trace_rowid, blob_rowid);

-- Settings kept in the file, such as whether the FTS index missed writes.
CREATE TABLE store_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`,
	// 2: retention deletes a trace's tools blob when no other trace uses it.
	`CREATE INDEX traces_tools ON traces(tools_hash) WHERE tools_hash IS NOT NULL;`,
	// 3: one index in time order that also holds every column the scalar filters and the
	// aggregates read, so that a listing checks its filters and Aggregate sums without reading
	// the rows (wide: preview, attempts, hashes). It replaces traces_time, its prefix.
	`
CREATE INDEX traces_time_cover ON traces(started_at, id, model, provider, alias, endpoint, status,
	cost_usd, latency_ms, total_tokens, prompt_tokens, completion_tokens);
DROP INDEX traces_time;
`,
}

// migrate brings db to len(migrations), one transaction per step, so that a crash leaves a
// consistent version and reopening resumes where it stopped.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	for {
		var v int
		err := db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		switch {
		case err == sql.ErrNoRows:
			if _, err := db.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
				return fmt.Errorf("init schema_version: %w", err)
			}
			continue
		case err != nil:
			return fmt.Errorf("read schema_version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this build knows (%d)", v, len(migrations))
		}
		if v == len(migrations) {
			return nil
		}
		if err := migrateStep(ctx, db, v); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
	}
}

func migrateStep(ctx context.Context, db *sql.DB, from int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Re-check inside the write transaction: another process may have migrated meanwhile.
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v != from {
		return nil
	}
	if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, from+1); err != nil {
		return err
	}
	return tx.Commit()
}

// ftsAvailable reports whether the linked SQLite has FTS5 (the bundled build needs the
// sqlite_fts5 tag; system libraries usually have it).
func ftsAvailable(ctx context.Context, db *sql.DB) bool {
	rows, err := db.QueryContext(ctx, `PRAGMA compile_options`)
	if err != nil {
		return false
	}
	defer rows.Close()
	for rows.Next() {
		var opt string
		if rows.Scan(&opt) == nil && strings.EqualFold(opt, "ENABLE_FTS5") {
			return true
		}
	}
	// FTS5 may also be loaded without the compile option; ask the module directly.
	var n int
	return db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_module_list WHERE name = 'fts5'`).Scan(&n) == nil && n > 0
}

// setupFTS creates the FTS index when FTS5 is available and rebuilds it when a build without
// FTS5 wrote to the file since (FTS is not a versioned migration because the same file may be
// opened by builds with and without it). Without FTS5 it marks the index stale.
func setupFTS(ctx context.Context, db *sql.DB, fts bool) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set up full-text index: %w", err)
	}
	defer tx.Rollback()
	if !fts {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO store_state (key, value) VALUES ('fts_stale', '1')`); err != nil {
			return fmt.Errorf("mark full-text index stale: %w", err)
		}
		return tx.Commit()
	}
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'blob_fts'`).Scan(&exists); err != nil {
		return fmt.Errorf("set up full-text index: %w", err)
	}
	var stale int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM store_state WHERE key = 'fts_stale'`).Scan(&stale); err != nil {
		return fmt.Errorf("set up full-text index: %w", err)
	}
	if exists == 0 {
		// External content: the index reads text from blobs, so the text is stored once.
		if _, err := tx.ExecContext(ctx, `CREATE VIRTUAL TABLE blob_fts USING fts5(text, content='blobs', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')`); err != nil {
			return fmt.Errorf("create full-text index: %w", err)
		}
	}
	// Merging the index's segments 8 at a time rather than 4 rewrites each entry in about a
	// third fewer merges as the index grows, for a few more segments to read per search.
	if _, err := tx.ExecContext(ctx, `INSERT INTO blob_fts (blob_fts, rank) VALUES ('automerge', 8)`); err != nil {
		return fmt.Errorf("configure full-text index: %w", err)
	}
	if exists == 0 || stale > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO blob_fts (blob_fts) VALUES ('rebuild')`); err != nil {
			return fmt.Errorf("rebuild full-text index: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM store_state WHERE key = 'fts_stale'`); err != nil {
			return fmt.Errorf("rebuild full-text index: %w", err)
		}
	}
	return tx.Commit()
}
