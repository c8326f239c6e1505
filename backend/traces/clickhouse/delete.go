package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// DeleteBefore removes the traces that started before t. ClickHouse deletes by a mutation that
// rewrites the affected parts in the background; this waits until it is done, so that callers
// (and the next List) see the traces gone.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	before := t.UnixNano()
	fail := func(err error) (int64, error) {
		return 0, fmt.Errorf("delete traces before %s: %w", t.Format(time.RFC3339), err)
	}
	// Held throughout so that this process's writes cannot change what is counted.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM `+s.table("traces")+` WHERE started_at < ?`, before).Scan(&n); err != nil {
		return fail(fmt.Errorf("count: %w", err))
	}
	if n == 0 {
		return 0, nil // a mutation rewrites parts even when nothing matches: skip it
	}
	if err := s.conn.Exec(ctx, `ALTER TABLE `+s.table("traces")+` DELETE WHERE started_at < ?`, before); err != nil {
		return fail(err)
	}
	if err := s.waitMutations(ctx); err != nil {
		return fail(err)
	}
	return int64(n), nil
}

// waitMutations polls system.mutations until the traces table has none pending; mutations_sync,
// which would make the ALTER itself wait, does not exist on old servers.
func (s *Store) waitMutations(ctx context.Context) error {
	query := `SELECT count(), '' FROM system.mutations WHERE database = ? AND table = 'traces' AND is_done = 0`
	if s.failReason {
		query = `SELECT count(), any(latest_fail_reason) FROM system.mutations
			WHERE database = ? AND table = 'traces' AND is_done = 0`
	}
	delay := 10 * time.Millisecond
	for {
		var (
			pending uint64
			reason  string
		)
		if err := s.conn.QueryRow(ctx, query, s.db).Scan(&pending, &reason); err != nil {
			return fmt.Errorf("wait for the delete mutation: %w", err)
		}
		if pending == 0 {
			return nil
		}
		if reason != "" {
			return fmt.Errorf("delete mutation failed: %s", reason)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the delete mutation (it goes on in the server): %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}
