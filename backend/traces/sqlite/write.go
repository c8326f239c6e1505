package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

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

func joinArray(elems [][]byte) []byte {
	n := 2 + len(elems)
	for _, e := range elems {
		n += len(e)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
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
		if elems, ok = splitArray(t.Input); ok && len(elems) > 0 {
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
	p.preview = preview(t.Input, elems)
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
	// The driver watches a cancellable context with a goroutine per statement, which costs more
	// than most of these statements: they run without it, the transaction still ends with ctx,
	// and the loop below checks ctx between traces.
	ectx := context.WithoutCancel(ctx)
	w, err := s.newWriter(ectx, tx)
	if err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	for _, p := range ps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write traces: %w", err)
		}
		if err := w.write(ectx, p); err != nil {
			return fmt.Errorf("write trace %q: %w", p.t.ID, err)
		}
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

// Statements of the write path, prepared once on the writer connection.
const (
	insertTrace = `INSERT OR IGNORE INTO traces (id, started_at, endpoint, requested_model, alias, model,
		provider, attempts, status, error, stream, ttft_ms, latency_ms, prompt_tokens,
		completion_tokens, total_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
		cost_usd, finish_reason, input_kind, input_hashes, output_hash, tools_hash, tool_calls,
		user, user_agent, preview)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertBlob    = `INSERT OR IGNORE INTO blobs (hash, body, text) VALUES (?, ?, ?)`
	selectBlobID  = `SELECT rowid FROM blobs WHERE hash = ?`
	insertLink    = `INSERT OR IGNORE INTO trace_blobs (blob_rowid, trace_rowid) VALUES (?, ?)`
	insertMeta    = `INSERT OR REPLACE INTO trace_metadata (trace_rowid, key, value) VALUES (?, ?, ?)`
	insertFTS     = `INSERT INTO blob_fts (rowid, text) VALUES (?, ?)`
	selectVersion = `PRAGMA data_version`
)

// writeQueries are prepared once on the writer connection: preparing them for every batch
// cost more than a small batch's rows.
var writeQueries = []string{insertTrace, insertBlob, selectBlobID, insertLink, insertMeta, insertFTS, selectVersion}

// prepareWrites prepares writeQueries unless done. It must run outside a transaction: the one
// writer connection would be busy. The caller holds wmu.
func (s *Store) prepareWrites(ctx context.Context) error {
	if s.stmts != nil {
		return nil
	}
	stmts := map[string]*sql.Stmt{}
	for _, q := range writeQueries {
		if q == insertFTS && !s.fts {
			continue
		}
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

// writer holds the statements of one batch and the messages it inserted.
type writer struct {
	trace, blob, blobRowid, fts, link, meta *sql.Stmt
	cache                                   *blobCache
	// pending are the messages this transaction inserted: cached only once it commits.
	pending map[[sha256.Size]byte]int64
}

// newWriter binds the write statements to tx, and forgets the cached message ids when another
// connection (another process) changed the file since this one last wrote: it may have deleted
// messages. The caller holds wmu.
func (s *Store) newWriter(ctx context.Context, tx *sql.Tx) (*writer, error) {
	w := &writer{cache: &s.blobIDs, pending: map[[sha256.Size]byte]int64{}}
	// With one writer connection, StmtContext reuses the statements prepared on it.
	var v int64
	if err := tx.StmtContext(ctx, s.stmts[selectVersion]).QueryRowContext(ctx).Scan(&v); err != nil {
		return nil, fmt.Errorf("read data version: %w", err)
	}
	if v != s.dataVersion {
		s.blobIDs.clear()
		s.dataVersion = v
	}
	stmts := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.trace, insertTrace},
		{&w.blob, insertBlob},
		{&w.blobRowid, selectBlobID},
		{&w.link, insertLink},
		{&w.meta, insertMeta},
	}
	if s.fts {
		stmts = append(stmts, struct {
			dst   **sql.Stmt
			query string
		}{&w.fts, insertFTS})
	}
	for _, st := range stmts {
		*st.dst = tx.StmtContext(ctx, s.stmts[st.query])
	}
	return w, nil
}

// nullBytes keeps nil as NULL and stores an empty slice as an empty blob.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func (w *writer) write(ctx context.Context, p *prepared) error {
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
	res, err := w.trace.ExecContext(ctx, t.ID, t.StartedAt.UnixNano(), t.Endpoint, t.RequestedModel,
		t.Alias, t.Model, t.Provider, nullBytes(p.attempts), t.Status, t.Error, t.Stream, t.TTFTMillis,
		t.LatencyMillis, t.Usage.PromptTokens, t.Usage.CompletionTokens,
		t.Usage.PromptTokens+t.Usage.CompletionTokens, t.Usage.CachedTokens,
		t.Usage.CacheWriteTokens, t.Usage.ReasoningTokens, t.CostUSD, t.FinishReason, p.inputKind,
		nullBytes(p.hashesBlob), nullBytes(outHash), nullBytes(toolsHash), nullBytes(toolCalls),
		t.User, t.UserAgent, p.preview)
	if err != nil {
		return fmt.Errorf("insert trace: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return nil // already stored: writes are idempotent by ID
	}
	traceRowid, err := res.LastInsertId()
	if err != nil {
		return err
	}
	blobs := p.input
	if p.output != nil {
		blobs = append(blobs[:len(blobs):len(blobs)], *p.output)
	}
	for _, b := range blobs {
		rowid, err := w.putBlob(ctx, b, true)
		if err != nil {
			return err
		}
		if _, err := w.link.ExecContext(ctx, rowid, traceRowid); err != nil {
			return fmt.Errorf("link message: %w", err)
		}
	}
	if p.tools != nil {
		// Tools are deduplicated but not searched.
		if _, err := w.putBlob(ctx, *p.tools, false); err != nil {
			return err
		}
	}
	for k, v := range t.Metadata {
		if _, err := w.meta.ExecContext(ctx, traceRowid, k, v); err != nil {
			return fmt.Errorf("insert metadata: %w", err)
		}
	}
	return nil
}

// putBlob stores b unless present and returns its rowid. Known messages (system prompts, tools,
// the history an agent resends every turn) come from the cache without a statement, and the
// text of a message is extracted only when it is new.
func (w *writer) putBlob(ctx context.Context, b blob, searchable bool) (int64, error) {
	if rowid, ok := w.pending[b.hash]; ok {
		return rowid, nil
	}
	if rowid, ok := w.cache.get(b.hash); ok {
		return rowid, nil
	}
	text := ""
	if searchable {
		text = searchText(b.body)
	}
	res, err := w.blob.ExecContext(ctx, b.hash[:], b.body, text)
	if err != nil {
		return 0, fmt.Errorf("insert message: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 1 {
		rowid, err := res.LastInsertId()
		if err != nil {
			return 0, err
		}
		if w.fts != nil && text != "" {
			if _, err := w.fts.ExecContext(ctx, rowid, text); err != nil {
				return 0, fmt.Errorf("index message: %w", err)
			}
		}
		w.pending[b.hash] = rowid
		return rowid, nil
	}
	var rowid int64
	if err := w.blobRowid.QueryRowContext(ctx, b.hash[:]).Scan(&rowid); err != nil {
		return 0, fmt.Errorf("find message: %w", err)
	}
	// Stored before this transaction: it stays whether or not this one commits.
	w.cache.put(b.hash, rowid)
	return rowid, nil
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
