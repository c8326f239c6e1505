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
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
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

	// wmu serialises Write and DeleteBefore, and guards what they share below.
	wmu sync.Mutex
	// stmts are the write path's statements, prepared once on w.
	stmts map[string]*sql.Stmt
	// blobIDs caches the rowids of recently written messages; dataVersion is the file's
	// data_version when it was last checked, to notice other processes' writes.
	blobIDs     blobCache
	dataVersion int64
	// written counts traces since the planner's statistics were last refreshed.
	written int64

	ckpt *checkpointer
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
	// The writer's cache holds the pages every batch touches (the ends of the indexes, their
	// inner pages), so that a batch does not read them back from the OS; the leaves of the
	// message-hash index are random and too many to hold anyway.
	// Its own checkpoints only bound the WAL (128 MiB) should the background ones fall behind,
	// and the WAL file shrinks back to 64 MiB after a burst.
	w := sql.OpenDB(connector{dsn: uri + "?_journal_mode=WAL&_busy_timeout=10000&_synchronous=NORMAL&_txlock=immediate",
		pragmas: []string{"PRAGMA cache_size = -16384", "PRAGMA wal_autocheckpoint = 32768", "PRAGMA journal_size_limit = 67108864"}})
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
	// Statistics for the planner from the start, for a file that was never analysed or has
	// changed a lot since (a migration's new index); a no-op otherwise.
	if _, err := w.ExecContext(ctx, `PRAGMA optimize = 0x10002`); err != nil {
		w.Close()
		return nil, fmt.Errorf("open trace db: optimize: %w", err)
	}
	if !fts && !opt.disableFTS && opt.log != nil {
		opt.log.Warn("SQLite has no FTS5: full-text search falls back to LIKE scans (build with -tags sqlite_fts5)")
	}
	// The readers open after the writer so that the WAL and shared-memory files exist.
	// Readers map the file instead of copying its pages into each connection's cache.
	readerInit := []string{"PRAGMA mmap_size = 2147418112", "PRAGMA cache_size = -8192"}
	if fts {
		// The words of the index, for expanding a search prefix (see Store.expand).
		readerInit = append(readerInit, `CREATE VIRTUAL TABLE IF NOT EXISTS temp.blob_vocab USING fts5vocab(main, blob_fts, 'row')`)
	}
	r := sql.OpenDB(connector{dsn: uri + "?mode=ro&_busy_timeout=10000", pragmas: readerInit})
	r.SetMaxOpenConns(max(4, runtime.NumCPU()))
	r.SetMaxIdleConns(max(4, runtime.NumCPU()))
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open trace db readers: %w", err)
	}
	s.r = r
	ck := sql.OpenDB(connector{dsn: uri + "?_busy_timeout=10000&_synchronous=NORMAL"})
	ck.SetMaxOpenConns(1)
	s.ckpt = &checkpointer{db: ck, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.ckpt.run()
	return s, nil
}

// checkpointEvery is the least time between two background checkpoints: the pages that several
// batches touch (index ends, the full-text index's segments) are copied to the file once.
const checkpointEvery = 500 * time.Millisecond

// checkpointer copies the WAL into the database file on its own connection after writes.
// Otherwise SQLite does it inside the Write that crosses its threshold, fsync included, and
// that Write takes several times as long as the others.
type checkpointer struct {
	db   *sql.DB
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// poke asks for a checkpoint; it never blocks.
func (c *checkpointer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		// PASSIVE never waits for readers or the writer. A failure is retried after the next
		// write, and the writer's own threshold bounds the WAL meanwhile.
		c.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		t := time.NewTimer(checkpointEvery)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// close stops the background checkpoints; the last connection to close checkpoints the rest.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}

// FullText reports whether Query.Text is answered by the FTS5 index (true) or by LIKE scans.
func (s *Store) FullText() bool { return s.fts }

// Close closes both connection pools.
func (s *Store) Close() error {
	s.wmu.Lock()
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	s.stmts = nil
	s.wmu.Unlock()
	// Keeps the planner's statistics current; cheap when nothing changed.
	_, err := s.w.Exec(`PRAGMA optimize`)
	// The writer closes last: as the last connection it checkpoints and removes the WAL.
	return errors.Join(append(errs, err, s.ckpt.close(), s.r.Close(), s.w.Close())...)
}

// connector opens SQLite connections with pragmas that the DSN cannot carry.
type connector struct {
	dsn     string
	pragmas []string
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	return c.Driver().Open(c.dsn)
}

func (c connector) Driver() driver.Driver {
	return &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		// Asserted rather than called: a build without cgo has a stub connection (which never
		// opens) and must still compile.
		ex, ok := any(conn).(execer)
		if !ok {
			return errors.New("sqlite connection cannot execute statements")
		}
		for _, p := range c.pragmas {
			if _, err := ex.Exec(p, nil); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	}}
}

type execer interface {
	Exec(query string, args []driver.Value) (driver.Result, error)
}
