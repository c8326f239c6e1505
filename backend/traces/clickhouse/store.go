// Package clickhouse stores traces in a ClickHouse server: the optional traces.Store for volumes
// that outgrow one SQLite file.
//
// It speaks the native protocol (clickhouse-go v2) and uses a schema that old servers (18.16, as
// Debian ships it) and current ones both accept: no DateTime64, Map, JSON, Bool or LowCardinality
// columns, no TTL. One table, traces, holds one row per trace: the start time as Int64 unix
// nanoseconds, the raw JSON fields (messages, tools, attempts) as String, the metadata as two
// parallel Array(String) columns, and the lower-cased text of the messages for Query.Text. It is
// partitioned by month and ordered by (started_at, id), which serves time ranges and the newest
// first listing; other filters are scans of the few columns they name, which is what ClickHouse
// is built for. Query.Text matches each term as a substring of the lower-cased text (the SQLite
// store's FTS matches word prefixes). Get looks a gateway trace up near the time in its UUIDv7 ID
// first, and scans the id column only when that misses (old servers have no skipping indexes).
// Strings are stored byte for byte: invalid UTF-8 comes back exactly as written.
//
// Idempotent writes: ClickHouse has no unique constraint, so Write looks up the batch's IDs among
// the stored traces whose start time falls inside the batch's own time range (a primary-key range
// read) and inserts only the new ones; the first stored version of a trace wins. A trace's
// (started_at, id) never changes (the writer's journal replays traces byte for byte), so the lookup
// by time range finds every earlier copy (the same ID written again with another start time
// would be stored twice: no writer does that). Writes of one Store are serialised so that concurrent
// batches cannot both miss each other; the table is a ReplacingMergeTree whose version prefers the
// first write, so copies that two processes race in are still merged away in the background.
//
// Atomic batches: the batch is validated before anything is sent and inserted as one block, which
// ClickHouse applies whole per partition; a batch that spans months and fails half-way is healed
// by the retry, which skips what already landed.
//
// DeleteBefore is an ALTER TABLE … DELETE mutation, asynchronous on every server version; it polls
// system.mutations until the mutation is done (mutations_sync does not exist on old servers).
package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Options say which server and database to use; zero fields take the defaults shown.
type Options struct {
	// Addr is the host:port of the native protocol (127.0.0.1:9000).
	Addr string
	// Database is created when missing ("opentracy"); letters, digits and underscores only.
	Database string
	// User and Password authenticate ("default", no password).
	User     string
	Password string
	// DialTimeout bounds connecting (5s); ReadTimeout bounds waiting for any reply from the
	// server (60s), so that a hung server fails a call instead of blocking it forever.
	DialTimeout time.Duration
	ReadTimeout time.Duration
	// Compression of the blocks sent and received; the default, LZ4, is cheap and pays off as soon
	// as the server is not on this machine. Tests and benchmarks vary it.
	Compression ch.CompressionMethod
	// Logger may be nil.
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultAddr     = "127.0.0.1:9000"
	DefaultDatabase = "opentracy"
	DefaultUser     = "default"
)

var validDatabase = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Store is a traces.Store backed by one ClickHouse database. It is safe for concurrent use.
type Store struct {
	conn driver.Conn
	db   string // validated identifier, safe to splice into SQL
	log  *slog.Logger

	// writeMu serialises the check-then-insert of Write (and DeleteBefore's count-then-delete)
	// within this process: ClickHouse would not stop two batches from inserting the same ID.
	writeMu sync.Mutex
	// failReason reports whether system.mutations has latest_fail_reason (servers after 18.16),
	// so that a failed mutation ends DeleteBefore instead of being waited on until ctx ends.
	failReason bool
}

// Open connects, creates the database if needed and migrates it to the current schema. Opening
// an existing database again is fine.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Database == "" {
		opts.Database = DefaultDatabase
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 60 * time.Second
	}
	if opts.Compression == 0 {
		opts.Compression = ch.CompressionLZ4
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !validDatabase.MatchString(opts.Database) {
		return nil, fmt.Errorf("open clickhouse: database %q: use letters, digits and underscores", opts.Database)
	}
	conn, err := ch.Open(&ch.Options{
		Protocol: ch.Native,
		Addr:     []string{opts.Addr},
		// The database is created below: connect to the always-present default one.
		Auth:        ch.Auth{Database: "default", Username: opts.User, Password: opts.Password},
		DialTimeout: opts.DialTimeout,
		ReadTimeout: opts.ReadTimeout,
		Compression: &ch.Compression{Method: opts.Compression},
		// The writer is one goroutine; the rest serve the UI's queries.
		MaxOpenConns:    10,
		MaxIdleConns:    5,
		ConnMaxLifetime: time.Hour,
		ClientInfo:      ch.ClientInfo{Products: []struct{ Name, Version string }{{Name: "opentracy"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", opts.Addr, err)
	}
	s := &Store{conn: conn, db: opts.Database, log: log}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open clickhouse %s: %w", opts.Addr, err)
	}
	if v, err := conn.ServerVersion(); err == nil {
		log.Debug("clickhouse connected", "addr", opts.Addr, "database", opts.Database, "version", v.Version.String())
	}
	if err := s.migrate(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open clickhouse %s: %w", opts.Addr, err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM system.columns
		WHERE database = 'system' AND table = 'mutations' AND name = 'latest_fail_reason'`).Scan(&n); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open clickhouse %s: %w", opts.Addr, err)
	}
	s.failReason = n > 0
	return s, nil
}

// table names a table of this store's database for SQL.
func (s *Store) table(name string) string { return "`" + s.db + "`." + name }

// Close closes the connection pool.
func (s *Store) Close() error {
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("close clickhouse: %w", err)
	}
	return nil
}
