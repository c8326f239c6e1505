package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// deleteChunk bounds one delete transaction, so that retention over millions of traces never
// holds the write lock for long and the gateway's writer keeps flowing between chunks.
const deleteChunk = 2000

// DeleteBefore removes the traces that started before t, their metadata, and every message body
// no remaining trace refers to.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.deleteChunk(ctx, t.UnixNano())
		total += n
		if err != nil {
			return total, fmt.Errorf("delete traces before %s: %w", t.Format(time.RFC3339), err)
		}
		if n < deleteChunk {
			return total, nil
		}
	}
}

func (s *Store) deleteChunk(ctx context.Context, before int64) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// Deleted messages' rowids may be reused: Write must look them up again.
	s.blobIDs.clear()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rowids, toolHashes, err := oldTraces(ctx, tx, before)
	if err != nil || len(rowids) == 0 {
		return 0, err
	}
	in := "(" + strings.Repeat("?,", len(rowids)-1) + "?)"
	args := make([]any, len(rowids))
	for i, r := range rowids {
		args[i] = r
	}
	blobRows, err := tx.QueryContext(ctx, `SELECT DISTINCT blob_rowid FROM trace_blobs WHERE trace_rowid IN `+in, args...)
	if err != nil {
		return 0, fmt.Errorf("find messages: %w", err)
	}
	candidates, err := collect[int64](blobRows)
	if err != nil {
		return 0, fmt.Errorf("find messages: %w", err)
	}
	for _, stmt := range []string{
		`DELETE FROM trace_metadata WHERE trace_rowid IN ` + in,
		`DELETE FROM trace_blobs WHERE trace_rowid IN ` + in,
		`DELETE FROM traces WHERE rowid IN ` + in,
	} {
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return 0, err
		}
	}
	for _, b := range candidates {
		if err := s.dropBlobIf(ctx, tx, `rowid = ? AND NOT EXISTS (SELECT 1 FROM trace_blobs WHERE blob_rowid = blobs.rowid)`, b); err != nil {
			return 0, err
		}
	}
	for _, h := range toolHashes {
		if err := s.dropBlobIf(ctx, tx, `hash = ? AND NOT EXISTS (SELECT 1 FROM traces WHERE tools_hash = blobs.hash)`, h); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	s.ckpt.poke()
	return int64(len(rowids)), nil
}

// oldTraces returns up to deleteChunk traces started before before, with their distinct tools hashes.
func oldTraces(ctx context.Context, tx *sql.Tx, before int64) ([]int64, [][]byte, error) {
	rows, err := tx.QueryContext(ctx, `SELECT rowid, tools_hash FROM traces WHERE started_at < ? ORDER BY started_at LIMIT ?`, before, deleteChunk)
	if err != nil {
		return nil, nil, fmt.Errorf("find traces: %w", err)
	}
	defer rows.Close()
	var (
		rowids []int64
		tools  [][]byte
		seen   = map[string]bool{}
	)
	for rows.Next() {
		var (
			rowid int64
			hash  []byte
		)
		if err := rows.Scan(&rowid, &hash); err != nil {
			return nil, nil, err
		}
		rowids = append(rowids, rowid)
		if hash != nil && !seen[string(hash)] {
			seen[string(hash)] = true
			tools = append(tools, hash)
		}
	}
	return rowids, tools, rows.Err()
}

// dropBlobIf deletes the blob matching cond (one argument) and its full-text entry.
func (s *Store) dropBlobIf(ctx context.Context, tx *sql.Tx, cond string, arg any) error {
	if s.fts {
		// External-content FTS5 forgets a row only when told its old text.
		if _, err := tx.ExecContext(ctx, `INSERT INTO blob_fts (blob_fts, rowid, text) SELECT 'delete', rowid, text FROM blobs WHERE text != '' AND `+cond, arg); err != nil {
			return fmt.Errorf("unindex message: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE `+cond, arg); err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	return nil
}

func collect[T any](rows *sql.Rows) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
