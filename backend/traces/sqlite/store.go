// Package sqlite stores traces in a local SQLite file: the default traces.Store.
//
// Layout: one row per trace in traces, its metadata in trace_metadata, and every message body
// (each element of the input messages array, the output, the tools array) once in blobs keyed by
// the sha256 of its bytes. Agent conversations resend their whole history every turn, so a trace
// keeps only the ordered hashes of its messages and storage grows with the number of distinct
// messages, not with turns squared. Full-text search uses FTS5 over the text of each blob when the
// linked SQLite has it, and falls back to LIKE otherwise.
//
// Strings are stored byte for byte: invalid UTF-8 in a trace comes back exactly as written.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// Store is a traces.Store backed by one SQLite file. It is safe for concurrent use.
type Store struct {
	// w is the only connection that writes: SQLite serialises writers anyway, and one
	// connection avoids SQLITE_BUSY between our own goroutines.
	w *sql.DB
	// r is a pool of read-only connections; WAL lets them read while w writes.
	r *sql.DB
	// fts reports whether blob_fts (FTS5) is maintained and used for Query.Text.
	fts bool
}

// options are what Open fixes and tests vary.
type options struct {
	disableFTS bool
	log        *slog.Logger
}

// Open opens (creating if needed) the trace database at path and migrates it to the current
// schema. path must be a file: ":memory:" would give each pooled connection its own database.
// log may be nil.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	return open(ctx, path, options{log: log})
}

func open(ctx context.Context, path string, opt options) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("open trace db: need a file path, got %q", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open trace db: %w", err)
	}
	// A file: URI so that mode=ro is honoured; the path is escaped so that '?' and '#' in
	// directory names stay part of the path.
	uri := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath()
	w, err := sql.Open("sqlite3", uri+"?_journal_mode=WAL&_busy_timeout=10000&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open trace db: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open trace db: %w", err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open trace db: %w", err)
	}
	fts := false
	if !opt.disableFTS {
		fts = ftsAvailable(ctx, w)
	}
	if err := setupFTS(ctx, w, fts); err != nil {
		w.Close()
		return nil, fmt.Errorf("open trace db: %w", err)
	}
	s.fts = fts
	if !fts && !opt.disableFTS && opt.log != nil {
		opt.log.Warn("SQLite has no FTS5: full-text search falls back to LIKE scans (build with -tags sqlite_fts5)")
	}
	// The readers open after the writer so that the WAL and shared-memory files exist.
	r, err := sql.Open("sqlite3", uri+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open trace db readers: %w", err)
	}
	r.SetMaxOpenConns(max(4, runtime.NumCPU()))
	r.SetMaxIdleConns(max(4, runtime.NumCPU()))
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open trace db readers: %w", err)
	}
	s.r = r
	return s, nil
}

// FullText reports whether Query.Text is answered by the FTS5 index (true) or by LIKE scans.
func (s *Store) FullText() bool { return s.fts }

// Close closes both connection pools.
func (s *Store) Close() error {
	// Keeps the planner's statistics current; cheap when nothing changed.
	_, err := s.w.Exec(`PRAGMA optimize`)
	return errors.Join(err, s.r.Close(), s.w.Close())
}
