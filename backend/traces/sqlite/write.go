package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"opentracy/backend/traces"
)

const (
	inputNone  = 0
	inputBlob  = 1 // the whole input is one blob
	inputArray = 2 // the input is a JSON array, one blob per element
)

// blob is one message body to store once.
type blob struct {
	hash [sha256.Size]byte
	body []byte
}

func newBlob(body []byte) blob {
	return blob{hash: sha256.Sum256(body), body: body}
}

// prepared is a trace turned into column values.
type prepared struct {
	t          *traces.Trace
	inputKind  int
	input      []blob
	output     *blob
	tools      *blob
	attempts   []byte
	preview    string
	hashesBlob []byte
}

func prepare(t *traces.Trace) (*prepared, error) {
	if t == nil {
		return nil, errors.New("nil trace")
	}
	if t.ID == "" {
		return nil, errors.New("trace without id")
	}
	p := &prepared{t: t}
	var elems [][]byte
	if len(t.Input) > 0 {
		var ok bool
		if elems, ok = traces.SplitArray(t.Input); ok && len(elems) > 0 {
			p.inputKind = inputArray
			p.input = make([]blob, len(elems))
			for i, e := range elems {
				p.input[i] = newBlob(e)
			}
		} else {
			elems = nil
			p.inputKind = inputBlob
			p.input = []blob{newBlob(t.Input)}
		}
		p.hashesBlob = make([]byte, 0, len(p.input)*sha256.Size)
		for _, b := range p.input {
			p.hashesBlob = append(p.hashesBlob, b.hash[:]...)
		}
	}
	if len(t.Output) > 0 {
		b := newBlob(t.Output)
		p.output = &b
	}
	if len(t.Tools) > 0 {
		b := newBlob(t.Tools)
		p.tools = &b
	}
	if len(t.Attempts) > 0 {
		a, err := json.Marshal(t.Attempts)
		if err != nil {
			return nil, fmt.Errorf("encode attempts of %q: %w", t.ID, err)
		}
		p.attempts = a
	}
	p.preview = traces.PreviewOf(t.Input, elems)
	return p, nil
}

// Write stores the batch in one transaction; traces whose ID is already stored are skipped.
func (s *Store) Write(ctx context.Context, batch []*traces.Trace) error {
	ps := make([]*prepared, 0, len(batch))
	for i, t := range batch {
		p, err := prepare(t)
		if err != nil {
			return fmt.Errorf("write traces: trace %d: %w: %w", i, traces.ErrRejected, err)
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.prepareWrites(ctx); err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	defer tx.Rollback()
	// The driver watches a cancellable context with a goroutine per statement: the statements
	// run without it, and the transaction still ends with ctx.
	ectx := context.WithoutCancel(ctx)
	w, err := s.newWriter(ectx, tx)
	if err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	if err := w.write(ectx, ps); err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write traces: commit: %w", err)
	}
	s.ckpt.poke()
	// Only now do the new messages exist for the next batches.
	for h, id := range w.pending {
		s.blobIDs.put(h, id)
	}
	// The planner's statistics follow the table's growth; optimize re-analyses only what
	// changed enough, in milliseconds. Its failure costs plan quality, not the batch.
	if s.written += int64(len(ps)); s.written >= optimizeEvery {
		s.written = 0
		s.w.ExecContext(ectx, `PRAGMA optimize`)
	}
	return nil
}

// optimizeEvery is how many written traces trigger PRAGMA optimize.
const optimizeEvery = 100_000

// The write path inserts many rows per statement: one statement per row spent more in the
// driver and in opening the table's and indexes' cursors than in the rows themselves. Each kind
// of insert is prepared once for every power-of-two row count up to its most (chunks splits a
// batch into those), within SQLite's historical limit of 999 parameters.
type rowsInsert struct {
	head, row, tail string
	most            int // rows per statement, a power of two
}

var (
	insertTraces = rowsInsert{`INSERT OR IGNORE INTO traces (id, started_at, endpoint, requested_model, alias,
		model, provider, attempts, status, error, stream, ttft_ms, latency_ms, prompt_tokens,
		completion_tokens, total_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
		cost_usd, finish_reason, input_kind, input_hashes, output_hash, tools_hash, tool_calls,
		user, user_agent, preview) VALUES `, `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		` RETURNING rowid, id`, 32}
	insertBlobs = rowsInsert{`INSERT OR IGNORE INTO blobs (hash, body, text) VALUES `, `(?, ?, ?)`,
		` RETURNING rowid, hash`, 128}
	selectBlobs = rowsInsert{`SELECT rowid, hash FROM blobs WHERE hash IN (`, `?`, `)`, 256}
	// One row per statement, and last in the transaction: a statement that may fail halfway
	// opens a savepoint on every virtual table the transaction wrote, and FTS5 then writes its
	// pending terms out as a segment; several small segments per batch cost many merges.
	insertFTS   = rowsInsert{`INSERT INTO blob_fts (rowid, text) VALUES `, `(?, ?)`, ``, 1}
	insertLinks = rowsInsert{`INSERT OR IGNORE INTO trace_blobs (blob_rowid, trace_rowid) VALUES `, `(?, ?)`, ``, 256}
	insertMeta  = rowsInsert{`INSERT OR REPLACE INTO trace_metadata (trace_rowid, key, value) VALUES `, `(?, ?, ?)`, ``, 256}
)

const selectVersion = `PRAGMA data_version`

func (r rowsInsert) sql(n int) string {
	var sb strings.Builder
	sb.WriteString(r.head)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(r.row)
	}
	sb.WriteString(r.tail)
	return sb.String()
}

// chunks splits n rows into statements of power-of-two sizes, at most most each.
func chunks(n, most int) []int {
	var out []int
	for n > 0 {
		c := most
		for c > n {
			c /= 2
		}
		out = append(out, c)
		n -= c
	}
	return out
}

// prepareWrites prepares the write path's statements unless done. It must run outside a
// transaction: the one writer connection would be busy. The caller holds wmu.
func (s *Store) prepareWrites(ctx context.Context) error {
	if s.stmts != nil {
		return nil
	}
	queries := []string{selectVersion}
	for _, r := range []rowsInsert{insertTraces, insertBlobs, selectBlobs, insertFTS, insertLinks, insertMeta} {
		if r == insertFTS && !s.fts {
			continue
		}
		for n := 1; n <= r.most; n *= 2 {
			queries = append(queries, r.sql(n))
		}
	}
	stmts := map[string]*sql.Stmt{}
	for _, q := range queries {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range stmts {
				st.Close()
			}
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		stmts[q] = st
	}
	s.stmts = stmts
	return nil
}

// writer is one batch's transaction.
type writer struct {
	s     *Store
	tx    *sql.Tx
	cache *blobCache
	// pending are the messages this transaction inserted: cached only once it commits.
	pending map[[sha256.Size]byte]int64
}

// newWriter starts on tx, and forgets the cached message ids when another connection (another
// process) changed the file since this one last wrote: it may have deleted messages. The
// caller holds wmu.
func (s *Store) newWriter(ctx context.Context, tx *sql.Tx) (*writer, error) {
	var v int64
	// With one writer connection, StmtContext reuses the statements prepared on it.
	if err := tx.StmtContext(ctx, s.stmts[selectVersion]).QueryRowContext(ctx).Scan(&v); err != nil {
		return nil, fmt.Errorf("read data version: %w", err)
	}
	if v != s.dataVersion {
		s.blobIDs.clear()
		s.dataVersion = v
	}
	return &writer{s: s, tx: tx, cache: &s.blobIDs, pending: map[[sha256.Size]byte]int64{}}, nil
}

// each runs r for rows rows of width arguments each, args holding them all in order, one
// statement per chunk; scan, when set, reads each statement's result rows.
func (w *writer) each(ctx context.Context, r rowsInsert, args []any, width int, scan func(*sql.Rows) error) error {
	for _, n := range chunks(len(args)/width, r.most) {
		st := w.tx.StmtContext(ctx, w.s.stmts[r.sql(n)])
		part := args[:n*width]
		args = args[n*width:]
		if scan == nil {
			if _, err := st.ExecContext(ctx, part...); err != nil {
				return err
			}
			continue
		}
		rows, err := st.QueryContext(ctx, part...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// nullBytes keeps nil as NULL and stores an empty slice as an empty blob.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func (w *writer) write(ctx context.Context, ps []*prepared) error {
	// The traces, of which those already stored (or repeated in the batch) are ignored.
	args := make([]any, 0, len(ps)*29)
	for _, p := range ps {
		t := p.t
		var outHash, toolsHash []byte
		if p.output != nil {
			outHash = p.output.hash[:]
		}
		if p.tools != nil {
			toolsHash = p.tools.hash[:]
		}
		var toolCalls []byte
		if len(t.ToolCalls) > 0 {
			toolCalls = t.ToolCalls
		}
		args = append(args, t.ID, t.StartedAt.UnixNano(), t.Endpoint, t.RequestedModel,
			t.Alias, t.Model, t.Provider, nullBytes(p.attempts), t.Status, t.Error, t.Stream, t.TTFTMillis,
			t.LatencyMillis, t.Usage.PromptTokens, t.Usage.CompletionTokens,
			t.Usage.PromptTokens+t.Usage.CompletionTokens, t.Usage.CachedTokens,
			t.Usage.CacheWriteTokens, t.Usage.ReasoningTokens, t.CostUSD, t.FinishReason, p.inputKind,
			nullBytes(p.hashesBlob), nullBytes(outHash), nullBytes(toolsHash), nullBytes(toolCalls),
			t.User, t.UserAgent, p.preview)
	}
	inserted := map[string]int64{}
	err := w.each(ctx, insertTraces, args, 29, func(rows *sql.Rows) error {
		var rowid int64
		var id string
		if err := rows.Scan(&rowid, &id); err != nil {
			return err
		}
		inserted[id] = rowid
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert traces: %w", err)
	}
	// The new traces, each once: a repeated ID in the batch was ignored like a stored one.
	type newTrace struct {
		p     *prepared
		rowid int64
	}
	var fresh []newTrace
	for _, p := range ps {
		if rowid, ok := inserted[p.t.ID]; ok {
			delete(inserted, p.t.ID)
			fresh = append(fresh, newTrace{p, rowid})
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	// Their messages (searched) and tools (deduplicated, not searched), each once.
	searched := map[[sha256.Size]byte]bool{}
	var blobs []blob
	for _, f := range fresh {
		add := func(b blob, search bool) {
			seen, ok := searched[b.hash]
			if !ok {
				blobs = append(blobs, b)
			}
			searched[b.hash] = seen || search
		}
		for _, b := range f.p.input {
			add(b, true)
		}
		if f.p.output != nil {
			add(*f.p.output, true)
		}
		if f.p.tools != nil {
			add(*f.p.tools, false)
		}
	}
	ids, fts, err := w.putBlobs(ctx, blobs, searched)
	if err != nil {
		return err
	}
	// Which traces hold which messages, and the metadata.
	var links, meta []any
	for _, f := range fresh {
		for _, b := range f.p.input {
			links = append(links, ids[b.hash], f.rowid)
		}
		if f.p.output != nil {
			links = append(links, ids[f.p.output.hash], f.rowid)
		}
		for k, v := range f.p.t.Metadata {
			meta = append(meta, f.rowid, k, v)
		}
	}
	if err := w.each(ctx, insertLinks, links, 2, nil); err != nil {
		return fmt.Errorf("link messages: %w", err)
	}
	if err := w.each(ctx, insertMeta, meta, 3, nil); err != nil {
		return fmt.Errorf("insert metadata: %w", err)
	}
	if err := w.each(ctx, insertFTS, fts, 2, nil); err != nil {
		return fmt.Errorf("index messages: %w", err)
	}
	return nil
}

// putBlobs stores the blobs not stored yet and returns the rowid of each, and the rows (rowid,
// text) the full-text index needs for the new ones. Known messages (system prompts, tools, the
// history an agent resends every turn) come from the cache, and the text of a message is
// extracted only when it is not known.
func (w *writer) putBlobs(ctx context.Context, blobs []blob, searched map[[sha256.Size]byte]bool) (map[[sha256.Size]byte]int64, []any, error) {
	ids := make(map[[sha256.Size]byte]int64, len(blobs))
	var (
		args  []any
		texts = map[[sha256.Size]byte]string{}
	)
	for _, b := range blobs {
		if rowid, ok := w.cache.get(b.hash); ok {
			ids[b.hash] = rowid
			continue
		}
		text := ""
		if searched[b.hash] {
			text = traces.SearchText(b.body)
		}
		texts[b.hash] = text
		args = append(args, b.hash[:], b.body, text)
	}
	var fts []any
	err := w.each(ctx, insertBlobs, args, 3, func(rows *sql.Rows) error {
		var rowid int64
		var hash []byte
		if err := rows.Scan(&rowid, &hash); err != nil {
			return err
		}
		h := [sha256.Size]byte(hash)
		ids[h], w.pending[h] = rowid, rowid
		if t := texts[h]; t != "" && w.s.fts {
			fts = append(fts, rowid, t)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("insert messages: %w", err)
	}
	// Those the insert ignored were stored before this transaction: they stay whether or not
	// it commits, and can be cached now.
	var missing []any
	for h := range texts {
		if _, ok := ids[h]; !ok {
			missing = append(missing, h[:])
		}
	}
	err = w.each(ctx, selectBlobs, missing, 1, func(rows *sql.Rows) error {
		var rowid int64
		var hash []byte
		if err := rows.Scan(&rowid, &hash); err != nil {
			return err
		}
		h := [sha256.Size]byte(hash)
		ids[h] = rowid
		w.cache.put(h, rowid)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("find messages: %w", err)
	}
	if len(ids) != len(blobs) {
		return nil, nil, fmt.Errorf("found %d of %d messages", len(ids), len(blobs))
	}
	return ids, fts, nil
}

// blobCacheSize bounds each of the two generations of blobCache.
const blobCacheSize = 1 << 14

// blobCache maps the hashes of recently written messages to their rowids. Two generations
// approximate LRU at the price of two map lookups: a hit in the old generation moves to the new
// one, and a full new generation replaces the old.
type blobCache struct {
	cur, old map[[sha256.Size]byte]int64
}

func (c *blobCache) get(h [sha256.Size]byte) (int64, bool) {
	if id, ok := c.cur[h]; ok {
		return id, true
	}
	if id, ok := c.old[h]; ok {
		c.put(h, id)
		return id, true
	}
	return 0, false
}

func (c *blobCache) put(h [sha256.Size]byte, id int64) {
	if c.cur == nil || len(c.cur) >= blobCacheSize {
		c.old, c.cur = c.cur, make(map[[sha256.Size]byte]int64, blobCacheSize)
	}
	c.cur[h] = id
}

func (c *blobCache) clear() { c.cur, c.old = nil, nil }
