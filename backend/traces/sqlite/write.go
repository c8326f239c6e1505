package sqlite

import (
	"bytes"
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

// splitArray returns the elements of a JSON array when the array is exactly "[" + elements
// joined by "," + "]", so that joining them back gives the same bytes. Anything else (an object,
// a string, whitespace between elements, invalid JSON) returns false and is stored whole.
func splitArray(raw []byte) ([][]byte, bool) {
	if len(raw) < 2 || raw[0] != '[' || raw[len(raw)-1] != ']' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, false
	}
	var elems [][]byte
	for dec.More() {
		var m json.RawMessage
		if err := dec.Decode(&m); err != nil {
			return nil, false
		}
		elems = append(elems, m)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false // trailing data
	}
	n := 2
	for i, e := range elems {
		n += len(e)
		if i > 0 {
			n++
		}
	}
	if n != len(raw) {
		return nil, false
	}
	// The lengths match, and the decoder saw the elements in order, so only separators could
	// differ: compare exactly to be sure.
	if !bytes.Equal(joinArray(elems), raw) {
		return nil, false
	}
	// Decoder slices alias its buffer, which it reuses: copy them out of raw instead.
	out := make([][]byte, len(elems))
	off := 1
	for i, e := range elems {
		out[i] = raw[off : off+len(e) : off+len(e)]
		off += len(e) + 1
	}
	return out, true
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
	if len(t.Input) > 0 {
		if elems, ok := splitArray(t.Input); ok && len(elems) > 0 {
			p.inputKind = inputArray
			for _, e := range elems {
				p.input = append(p.input, newBlob(e))
			}
		} else {
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
	p.preview = traces.Preview(t.Input)
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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	defer tx.Rollback()
	w, err := s.newWriter(ctx, tx)
	if err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	defer w.close()
	for _, p := range ps {
		if err := w.write(ctx, p); err != nil {
			return fmt.Errorf("write trace %q: %w", p.t.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write traces: commit: %w", err)
	}
	return nil
}

// writer holds the statements of one batch.
type writer struct {
	trace, blob, blobRowid, fts, link, meta *sql.Stmt
}

func (s *Store) newWriter(ctx context.Context, tx *sql.Tx) (*writer, error) {
	w := &writer{}
	stmts := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.trace, `INSERT OR IGNORE INTO traces (id, started_at, endpoint, requested_model, alias, model,
			provider, attempts, status, error, stream, ttft_ms, latency_ms, prompt_tokens,
			completion_tokens, total_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
			cost_usd, finish_reason, input_kind, input_hashes, output_hash, tools_hash, tool_calls,
			user, user_agent, preview)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.blob, `INSERT OR IGNORE INTO blobs (hash, body, text) VALUES (?, ?, ?)`},
		{&w.blobRowid, `SELECT rowid FROM blobs WHERE hash = ?`},
		{&w.link, `INSERT OR IGNORE INTO trace_blobs (blob_rowid, trace_rowid) VALUES (?, ?)`},
		{&w.meta, `INSERT OR REPLACE INTO trace_metadata (trace_rowid, key, value) VALUES (?, ?, ?)`},
	}
	if s.fts {
		stmts = append(stmts, struct {
			dst   **sql.Stmt
			query string
		}{&w.fts, `INSERT INTO blob_fts (rowid, text) VALUES (?, ?)`})
	}
	for _, st := range stmts {
		stmt, err := tx.PrepareContext(ctx, st.query)
		if err != nil {
			w.close()
			return nil, err
		}
		*st.dst = stmt
	}
	return w, nil
}

func (w *writer) close() {
	for _, st := range []*sql.Stmt{w.trace, w.blob, w.blobRowid, w.fts, w.link, w.meta} {
		if st != nil {
			st.Close()
		}
	}
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

// putBlob stores b unless present and returns its rowid.
func (w *writer) putBlob(ctx context.Context, b blob, searchable bool) (int64, error) {
	text := ""
	if searchable {
		text = traces.SearchText(b.body)
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
		return rowid, nil
	}
	var rowid int64
	if err := w.blobRowid.QueryRowContext(ctx, b.hash[:]).Scan(&rowid); err != nil {
		return 0, fmt.Errorf("find message: %w", err)
	}
	return rowid, nil
}
