package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"opentracy/backend/traces"
)

// A search for a common word cannot collect its matches (hundreds of thousands of messages) and
// FTS5 cannot cheaply tell whether one given message matches a prefix query (it reads every
// matching doclist each time). walk goes through the traces newest first, with the other filters
// in SQL, and checks each trace's messages against a stream of the word's matches read newest
// first alongside: a trace's new messages were written about when it started, so the stream
// only moves as far back as the page does.

const (
	// streamSlack is how far above the first trace's messages a stream starts, for traces
	// written after newer ones (a journal replayed after an outage).
	streamSlack = 1000
	// streamStep is how many matches a stream reads to reach one message before asking FTS5
	// about that message directly: an old message (a system prompt) would need all the matches
	// written since.
	streamStep = 256
)

// walk lists the page of q whose SQL filters are where/args and whose common terms (p.text) are
// checked here.
func (s *Store) walk(ctx context.Context, q traces.Query, p plan, where string, args []any, limit int) (traces.Page, error) {
	// One connection: the streams and probes interleave with the walk.
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return traces.Page{}, err
	}
	defer conn.Close()
	var terms []*termStream
	defer func() {
		for _, t := range terms {
			t.close()
		}
	}()
	for _, term := range textTerms(q.Text) {
		if p.text[term] {
			terms = append(terms, &termStream{conn: conn, match: ftsQuery(term, p)})
		}
	}
	type found struct {
		rowid, ts int64
		id        string
	}
	var (
		hits  []found
		cur   found
		blobs []int64
		have  bool
	)
	// check decides the trace in cur, whose messages are blobs.
	check := func() error {
		slices.Sort(blobs)
		slices.Reverse(blobs) // newest first, so that the streams only move forward
		for _, t := range terms {
			ok := false
			for _, b := range blobs {
				var err error
				if ok, err = t.has(ctx, b); err != nil {
					return err
				} else if ok {
					break
				}
			}
			if !ok {
				return nil
			}
		}
		hits = append(hits, cur)
		return nil
	}
	rows, err := conn.QueryContext(ctx, `SELECT t.rowid, t.started_at, t.id, tb.blob_rowid
		FROM traces t LEFT JOIN trace_blobs tb ON tb.trace_rowid = t.rowid
		WHERE `+where+` ORDER BY t.started_at DESC, t.id DESC`, args...)
	if err != nil {
		return traces.Page{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var next found
		var blob sql.NullInt64
		if err := rows.Scan(&next.rowid, &next.ts, &next.id, &blob); err != nil {
			return traces.Page{}, err
		}
		if have && next.rowid != cur.rowid {
			if err := check(); err != nil {
				return traces.Page{}, err
			}
			blobs, have = blobs[:0], false
			if len(hits) > limit {
				break
			}
		}
		if !have {
			cur, have = next, true
		}
		if blob.Valid {
			blobs = append(blobs, blob.Int64)
		}
	}
	if err := rows.Err(); err != nil {
		return traces.Page{}, err
	}
	if have {
		if err := check(); err != nil {
			return traces.Page{}, err
		}
	}
	rows.Close()

	var page traces.Page
	if len(hits) > limit {
		hits = hits[:limit]
		last := hits[limit-1]
		page.NextCursor = traces.EncodeCursor(last.ts, last.id)
	}
	if len(hits) == 0 {
		return page, nil
	}
	ids := make([]any, len(hits))
	for i, h := range hits {
		ids[i] = h.rowid
	}
	srows, err := conn.QueryContext(ctx, `SELECT `+summaryColumns+` FROM traces t WHERE t.rowid IN (`+
		strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`, ids...)
	if err != nil {
		return traces.Page{}, err
	}
	defer srows.Close()
	byID := make(map[string]traces.Summary, len(hits))
	for srows.Next() {
		sm, _, err := scanSummary(srows)
		if err != nil {
			return traces.Page{}, err
		}
		byID[sm.ID] = sm
	}
	if err := srows.Err(); err != nil {
		return traces.Page{}, err
	}
	for _, h := range hits {
		sm, ok := byID[h.id]
		if !ok {
			return traces.Page{}, fmt.Errorf("trace %q vanished while listing", h.id)
		}
		page.Traces = append(page.Traces, sm)
	}
	return page, nil
}

// termStream answers whether messages match one FTS query, for messages asked about from the
// newest down: it reads the query's matches in descending rowid order, as far as needed.
type termStream struct {
	conn  *sql.Conn
	match string
	rows  *sql.Rows
	// hi bounds the stream: it holds the matches with rowid <= hi. head is the next match not
	// read yet (-1 at the end), and seen the matches in (head, hi].
	hi, head int64
	seen     map[int64]bool
	probed   map[int64]bool // messages asked about directly
}

func (t *termStream) has(ctx context.Context, b int64) (bool, error) {
	if t.rows == nil {
		t.hi = b + streamSlack
		rows, err := t.conn.QueryContext(ctx, `SELECT rowid FROM blob_fts WHERE blob_fts MATCH ? AND rowid <= ? ORDER BY rowid DESC`, t.match, t.hi)
		if err != nil {
			return false, fmt.Errorf("search %s: %w", t.match, err)
		}
		t.rows, t.seen, t.probed = rows, map[int64]bool{}, map[int64]bool{}
		if err := t.next(); err != nil {
			return false, err
		}
	}
	switch {
	case b > t.hi:
		return t.probe(ctx, b)
	case b > t.head:
		return t.seen[b], nil
	case b == t.head:
		return true, nil
	}
	for range streamStep {
		t.seen[t.head] = true
		if err := t.next(); err != nil {
			return false, err
		}
		if t.head <= b {
			return t.head == b, nil
		}
	}
	return t.probe(ctx, b)
}

func (t *termStream) next() error {
	if t.rows.Next() {
		return t.rows.Scan(&t.head)
	}
	t.head = -1
	if err := t.rows.Err(); err != nil {
		return fmt.Errorf("search %s: %w", t.match, err)
	}
	return nil
}

// probe asks FTS5 about one message.
func (t *termStream) probe(ctx context.Context, b int64) (bool, error) {
	if ok, done := t.probed[b]; done {
		return ok, nil
	}
	var n int
	if err := t.conn.QueryRowContext(ctx, `SELECT count(*) FROM blob_fts WHERE blob_fts MATCH ? AND rowid = ?`, t.match, b).Scan(&n); err != nil {
		return false, fmt.Errorf("search %s: %w", t.match, err)
	}
	t.probed[b] = n > 0
	return n > 0, nil
}

func (t *termStream) close() {
	if t.rows != nil {
		t.rows.Close()
	}
}
