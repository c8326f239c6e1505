package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"opentracy/backend/config"
	"opentracy/backend/traces"
	"opentracy/backend/traces/clickhouse"
	"opentracy/backend/traces/sqlite"
)

// Where traces live in the data dir.
const (
	TracesFile = "traces.db"
	JournalDir = "journal"
)

// traceSink is the durable default: a write-ahead journal in front of the store (SQLite, or
// ClickHouse when configured), so a request never waits on the database and no acknowledged
// trace is lost in a crash or while the store is down.
type traceSink struct {
	store  traces.Store
	writer *traces.Writer

	closeOnce sync.Once
	closeErr  error
}

// openTraceSink opens the store and the writer in front of it; onWritten sees every committed batch.
func openTraceSink(ctx context.Context, opts Options, onWritten func([]*traces.Trace)) (*traceSink, error) {
	log := opts.Logger.With(LogKeySubsystem, "traces")
	store, err := openStore(ctx, opts.Config, log)
	if err != nil {
		return nil, err
	}
	writer, err := traces.NewWriter(store, traces.WriterOptions{
		JournalDir: filepath.Join(opts.Config.DataDir, JournalDir),
		Logger:     log,
		OnWritten:  onWritten,
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("trace writer: %w", err)
	}
	return &traceSink{store: store, writer: writer}, nil
}

// openStore opens the configured trace store.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (traces.Store, error) {
	switch cfg.StorageBackend() {
	case config.StorageSQLite:
		s, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, TracesFile), log)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return s, nil
	case config.StorageClickHouse:
		ch := cfg.ClickHouse.WithDefaults()
		s, err := clickhouse.Open(ctx, clickhouse.Options{
			Addr: ch.Address, Database: ch.Database, User: ch.User, Password: ch.Password.Reveal(), Logger: log,
		})
		if err != nil {
			return nil, err
		}
		log.Info("traces go to ClickHouse", "address", ch.Address, "database", ch.Database)
		return s, nil
	default:
		return nil, cfg.ValidateStorage()
	}
}

// start replays what a previous run left in the journal and begins writing.
func (t *traceSink) start(ctx context.Context) error {
	if err := t.writer.Start(ctx); err != nil {
		return fmt.Errorf("start trace writer: %w", err)
	}
	return nil
}

// close drains the queue into the store (bounded by ctx; what is left stays in the journal for
// the next start) and closes the database.
func (t *traceSink) close(ctx context.Context) error {
	t.closeOnce.Do(func() {
		t.closeErr = t.writer.Close(ctx)
		if err := t.store.Close(); err != nil && t.closeErr == nil {
			t.closeErr = fmt.Errorf("close trace db: %w", err)
		}
	})
	return t.closeErr
}

// enforceRetention deletes traces older than keep now and then every interval, until ctx ends.
func (s *Server) enforceRetention(ctx context.Context, store traces.Store, keep, interval time.Duration) {
	log := s.log.With(LogKeySubsystem, "retention")
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		cutoff := time.Now().Add(-keep)
		n, err := store.DeleteBefore(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("deleting old traces failed; retrying at the next round", "before", cutoff, "deleted", n, "err", err)
		case n > 0:
			log.Info("deleted old traces", "before", cutoff, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
