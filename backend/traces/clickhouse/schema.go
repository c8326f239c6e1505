package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// migrations upgrade the schema one version at a time; migrations[i] takes version i to i+1 and
// is a list of statements (ClickHouse runs one per query). {db} is the database. Append new steps,
// never edit shipped ones. Each statement must be safe to run twice (IF NOT EXISTS): a crash
// between a step and its schema_migrations row, or two processes opening at once, repeat it.
var migrations = [][]string{
	// 1: the traces table.
	{`
CREATE TABLE IF NOT EXISTS {db}.traces (
	id String,
	started_at Int64, -- unix nanoseconds: DateTime64 does not exist on old servers
	endpoint String,
	requested_model String,
	alias String,
	model String,
	provider String,
	attempts String, -- JSON array, '' when none
	status Int32,
	error String,
	stream UInt8,
	ttft_ms Float64,
	latency_ms Float64,
	prompt_tokens Int64,
	completion_tokens Int64,
	cached_tokens Int64,
	cache_write_tokens Int64,
	reasoning_tokens Int64,
	cost_usd Float64,
	finish_reason String,
	input String, -- raw JSON, byte for byte
	tools String,
	output String,
	tool_calls String,
	metadata_keys Array(String), -- metadata as parallel arrays: Map does not exist on old servers
	metadata_values Array(String),
	user String,
	user_agent String,
	preview String,
	search_text String, -- lower-cased text of input and output, for Query.Text
	version UInt64 -- larger for earlier writes: ReplacingMergeTree keeps the first copy of an ID
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(started_at, 1000000000)))
ORDER BY (started_at, id)`},
}

// migrate creates the database and brings it to len(migrations).
func (s *Store) migrate(ctx context.Context) error {
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS `" + s.db + "`",
		`CREATE TABLE IF NOT EXISTS ` + s.table("schema_migrations") + ` (version UInt32, applied_at DateTime)
			ENGINE = MergeTree ORDER BY version`,
	} {
		if err := s.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
	}
	var v uint32
	if err := s.conn.QueryRow(ctx, `SELECT max(version) FROM `+s.table("schema_migrations")).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if int(v) > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this build knows (%d)", v, len(migrations))
	}
	for from := int(v); from < len(migrations); from++ {
		for _, stmt := range migrations[from] {
			if err := s.conn.Exec(ctx, strings.ReplaceAll(stmt, "{db}", "`"+s.db+"`")); err != nil {
				return fmt.Errorf("migrate to version %d: %w", from+1, err)
			}
		}
		// INSERT … VALUES through Exec is not answered by old servers: a one-row batch is.
		b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.table("schema_migrations")+` (version, applied_at)`)
		if err != nil {
			return fmt.Errorf("migrate to version %d: %w", from+1, err)
		}
		err = b.Append(uint32(from+1), time.Now())
		if err == nil {
			err = b.Send()
		}
		b.Close()
		if err != nil {
			return fmt.Errorf("migrate to version %d: record: %w", from+1, err)
		}
	}
	return nil
}
