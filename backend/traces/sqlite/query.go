package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"opentracy/backend/traces"
)

// Get returns one trace with its messages reassembled byte for byte.
func (s *Store) Get(ctx context.Context, id string) (*traces.Trace, error) {
	var (
		t                                   traces.Trace
		rowid, startedAt                    int64
		inputKind                           int
		attempts, hashes, outHash, toolHash []byte
		toolCalls                           []byte
	)
	err := s.r.QueryRowContext(ctx, `SELECT rowid, id, started_at, endpoint, requested_model, alias,
		model, provider, attempts, status, error, stream, ttft_ms, latency_ms, prompt_tokens,
		completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
		finish_reason, input_kind, input_hashes, output_hash, tools_hash, tool_calls, user, user_agent
		FROM traces WHERE id = ?`, id).Scan(&rowid, &t.ID, &startedAt, &t.Endpoint, &t.RequestedModel,
		&t.Alias, &t.Model, &t.Provider, &attempts, &t.Status, &t.Error, &t.Stream, &t.TTFTMillis,
		&t.LatencyMillis, &t.Usage.PromptTokens, &t.Usage.CompletionTokens, &t.Usage.CachedTokens,
		&t.Usage.CacheWriteTokens, &t.Usage.ReasoningTokens, &t.CostUSD, &t.FinishReason, &inputKind,
		&hashes, &outHash, &toolHash, &toolCalls, &t.User, &t.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get trace %q: %w", id, traces.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get trace %q: %w", id, err)
	}
	t.StartedAt = time.Unix(0, startedAt).UTC()
	if len(attempts) > 0 {
		if err := json.Unmarshal(attempts, &t.Attempts); err != nil {
			return nil, fmt.Errorf("get trace %q: decode attempts: %w", id, err)
		}
	}
	if len(toolCalls) > 0 {
		t.ToolCalls = toolCalls
	}
	body := func(hash []byte) ([]byte, error) {
		var b []byte
		if err := s.r.QueryRowContext(ctx, `SELECT body FROM blobs WHERE hash = ?`, hash).Scan(&b); err != nil {
			return nil, fmt.Errorf("get trace %q: message %x: %w", id, hash, err)
		}
		return b, nil
	}
	if inputKind != inputNone {
		if len(hashes)%sha256.Size != 0 {
			return nil, fmt.Errorf("get trace %q: corrupt input hashes", id)
		}
		var elems [][]byte
		for i := 0; i < len(hashes); i += sha256.Size {
			b, err := body(hashes[i : i+sha256.Size])
			if err != nil {
				return nil, err
			}
			elems = append(elems, b)
		}
		switch {
		case inputKind == inputArray:
			t.Input = traces.JoinArray(elems)
		case len(elems) == 1:
			t.Input = elems[0]
		default:
			return nil, fmt.Errorf("get trace %q: corrupt input", id)
		}
	}
	if outHash != nil {
		if t.Output, err = body(outHash); err != nil {
			return nil, err
		}
	}
	if toolHash != nil {
		if t.Tools, err = body(toolHash); err != nil {
			return nil, err
		}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT key, value FROM trace_metadata WHERE trace_rowid = ?`, rowid)
	if err != nil {
		return nil, fmt.Errorf("get trace %q: metadata: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("get trace %q: metadata: %w", id, err)
		}
		if t.Metadata == nil {
			t.Metadata = map[string]string{}
		}
		t.Metadata[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get trace %q: metadata: %w", id, err)
	}
	return &t, nil
}

// plan is what List learns about q's filters before it builds its SQL: which filters match so
// many traces that walking the traces in time order and checking each beats collecting the
// matches and sorting them. The zero plan collects for every filter.
type plan struct {
	// metadata and text name the common metadata keys and text terms.
	metadata, text map[string]bool
	// columns names the scalar columns (model, provider, alias, endpoint) whose IN filter is
	// common: through the column's own index SQLite would collect and sort every match.
	columns map[string]bool
	// match is the FTS query of each term that could be expanded into the exact words it is a
	// prefix of: unlike a prefix query, it checks one message without reading every match.
	match map[string]string
	// empty is set when a term is in no message: then nothing matches.
	empty bool
}

// where builds the WHERE clause of q's filters (not its cursor) over traces aliased t. Common
// text terms with FTS are left out: List checks them while it walks (see walk.go).
func (s *Store) where(q traces.Query, p plan) (string, []any) {
	var w traces.Where
	w.AddScalar(q, traces.Columns{StartedAt: "t.started_at", Status: "t.status", CostUSD: "t.cost_usd",
		LatencyMillis: "t.latency_ms", Tokens: "t.total_tokens"})
	for _, f := range columnFilters(q) {
		c := "t." + f.col
		if p.columns[f.col] {
			// The unary + keeps SQLite off the column's index: it walks the time index, which
			// holds the column, and stops at a page.
			c = "+" + c
		}
		w.In(c, f.vals)
	}
	for _, k := range q.MetadataKeys() {
		if p.metadata[k] {
			// Many traces match: walk the time index and probe each trace, stopping at a page.
			w.Add("EXISTS (SELECT 1 FROM trace_metadata m WHERE m.trace_rowid = t.rowid AND m.key = ? AND m.value = ?)", k, q.Metadata[k])
		} else {
			// Few traces match: collect them from the (key, value) index and sort them.
			w.Add("t.rowid IN (SELECT trace_rowid FROM trace_metadata WHERE key = ? AND value = ?)", k, q.Metadata[k])
		}
	}
	// Every term must occur in the trace's messages, not necessarily in the same one.
	for _, term := range textTerms(q.Text) {
		switch {
		case p.text[term] && s.fts:
			continue // checked by the walk
		case p.text[term]:
			w.Add(`EXISTS (SELECT 1 FROM trace_blobs tb JOIN blobs b ON b.rowid = tb.blob_rowid
				WHERE tb.trace_rowid = t.rowid AND b.text LIKE ? ESCAPE '\')`, likePattern(term))
		default:
			match, arg := s.textMatch(term, p)
			w.Add(`t.rowid IN (SELECT trace_rowid FROM trace_blobs WHERE blob_rowid IN (`+match+`))`, arg)
		}
	}
	return w.SQL(), w.Args
}

// columnFilter is one of q's IN filters on a scalar column.
type columnFilter struct {
	col  string
	vals []string
}

func columnFilters(q traces.Query) []columnFilter {
	return []columnFilter{{"model", q.Models}, {"provider", q.Providers}, {"alias", q.Aliases}, {"endpoint", q.Endpoints}}
}

// textTerms are the distinct words of a search, in order.
func textTerms(text string) []string {
	var out []string
	for _, t := range strings.Fields(text) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func likePattern(term string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(term) + "%"
}

// textMatch returns a query for the rowids of the blobs whose text contains term, and its
// argument.
func (s *Store) textMatch(term string, p plan) (string, string) {
	if s.fts {
		return `SELECT rowid FROM blob_fts WHERE blob_fts MATCH ?`, ftsQuery(term, p)
	}
	return `SELECT rowid FROM blobs WHERE text LIKE ? ESCAPE '\'`, likePattern(term)
}

// ftsQuery is the FTS5 query for term: its expansion when planned, else a quoted prefix query,
// in which punctuation cannot be FTS syntax.
func ftsQuery(term string, p plan) string {
	if m, ok := p.match[term]; ok {
		return m
	}
	return `"` + strings.ReplaceAll(term, `"`, `""`) + `"*`
}

// commonRows is where probing each trace in time order starts to beat sorting the matches: a
// page of 50 is usually found long before that many probes.
const commonRows = 2000

// maxExpansion bounds the words a search term may expand to before the plan keeps the prefix
// query (short prefixes of common words).
const maxExpansion = 64

// plan counts, up to commonRows, the traces matching each IN, metadata and text filter.
func (s *Store) plan(ctx context.Context, q traces.Query) (plan, error) {
	var p plan
	count := func(query string, args ...any) (bool, error) {
		var n int
		err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM (`+query+` LIMIT ?)`, append(args, commonRows)...).Scan(&n)
		return n >= commonRows, err
	}
	set := func(m *map[string]bool, k string) {
		if *m == nil {
			*m = map[string]bool{}
		}
		(*m)[k] = true
	}
	for _, f := range columnFilters(q) {
		if len(f.vals) == 0 {
			continue
		}
		args := make([]any, len(f.vals))
		for i, v := range f.vals {
			args[i] = v
		}
		common, err := count(`SELECT 1 FROM traces WHERE `+f.col+` IN (`+strings.TrimSuffix(strings.Repeat("?,", len(f.vals)), ",")+`)`, args...)
		if err != nil {
			return plan{}, fmt.Errorf("count %s: %w", f.col, err)
		}
		if common {
			set(&p.columns, f.col)
		}
	}
	for k, v := range q.Metadata {
		common, err := count(`SELECT 1 FROM trace_metadata WHERE key = ? AND value = ?`, k, v)
		if err != nil {
			return plan{}, fmt.Errorf("count metadata %q: %w", k, err)
		}
		if common {
			set(&p.metadata, k)
		}
	}
	for _, term := range textTerms(q.Text) {
		if !s.fts {
			match, arg := s.textMatch(term, p)
			common, err := count(match, arg)
			if err != nil {
				return plan{}, fmt.Errorf("count text %q: %w", term, err)
			}
			if common {
				set(&p.text, term)
			}
			continue
		}
		words, ok, err := s.expand(ctx, term)
		if err != nil {
			return plan{}, fmt.Errorf("expand %q: %w", term, err)
		}
		if ok {
			if len(words) == 0 {
				return plan{empty: true}, nil
			}
			if p.match == nil {
				p.match = map[string]string{}
			}
			p.match[term] = `"` + strings.Join(words, `" OR "`) + `"`
		}
		// Counted in traces, not messages: one system prompt can be in most of them.
		common, err := count(`SELECT 1 FROM blob_fts f JOIN trace_blobs tb ON tb.blob_rowid = f.rowid WHERE blob_fts MATCH ?`, ftsQuery(term, p))
		if err != nil {
			return plan{}, fmt.Errorf("count text %q: %w", term, err)
		}
		if common {
			set(&p.text, term)
		}
	}
	return p, nil
}

// expand returns the indexed words that term is a prefix of, when term is one plain word (ASCII
// letters and digits, which the unicode61 tokenizer keeps as one token, lower-cased) and there
// are at most maxExpansion of them; ok is false otherwise.
func (s *Store) expand(ctx context.Context, term string) (words []string, ok bool, err error) {
	lower := strings.ToLower(term)
	for i := 0; i < len(lower); i++ {
		if c := lower[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return nil, false, nil
		}
	}
	next := lower[:len(lower)-1] + string(lower[len(lower)-1]+1)
	rows, err := s.r.QueryContext(ctx, `SELECT term FROM temp.blob_vocab WHERE term >= ? AND term < ? LIMIT ?`, lower, next, maxExpansion+1)
	if err != nil {
		return nil, false, err
	}
	words, err = collect[string](rows)
	if err != nil || len(words) > maxExpansion {
		return nil, false, err
	}
	return words, true, nil
}

// summaryColumns are what a Summary is read from, in scanSummary's order.
const summaryColumns = `t.id, t.started_at, t.endpoint, t.requested_model, t.alias, t.model,
	t.provider, t.status, t.error, t.stream, t.latency_ms, t.ttft_ms, t.prompt_tokens,
	t.completion_tokens, t.cached_tokens, t.cache_write_tokens, t.reasoning_tokens, t.cost_usd,
	t.preview`

func scanSummary(rows *sql.Rows) (traces.Summary, int64, error) {
	var sm traces.Summary
	var ts int64
	err := rows.Scan(&sm.ID, &ts, &sm.Endpoint, &sm.RequestedModel, &sm.Alias, &sm.Model,
		&sm.Provider, &sm.Status, &sm.Error, &sm.Stream, &sm.LatencyMillis, &sm.TTFTMillis,
		&sm.Usage.PromptTokens, &sm.Usage.CompletionTokens, &sm.Usage.CachedTokens,
		&sm.Usage.CacheWriteTokens, &sm.Usage.ReasoningTokens, &sm.CostUSD, &sm.Preview)
	sm.StartedAt = time.Unix(0, ts).UTC()
	return sm, ts, err
}

// List returns one page of summaries, newest first.
func (s *Store) List(ctx context.Context, q traces.Query) (traces.Page, error) {
	limit := q.PageSize()
	var cursorTS int64
	var cursorID string
	if q.Cursor != "" {
		var err error
		if cursorTS, cursorID, err = traces.DecodeCursor(q.Cursor); err != nil {
			return traces.Page{}, fmt.Errorf("list traces: %w", err)
		}
	}
	p, err := s.plan(ctx, q)
	if err != nil {
		return traces.Page{}, fmt.Errorf("list traces: %w", err)
	}
	return s.list(ctx, q, p, limit, cursorTS, cursorID)
}

// list is List once planned.
func (s *Store) list(ctx context.Context, q traces.Query, p plan, limit int, cursorTS int64, cursorID string) (traces.Page, error) {
	if p.empty {
		return traces.Page{}, nil
	}
	where, args := s.where(q, p)
	if q.Cursor != "" {
		// Written so that the (started_at, id) index bounds the scan.
		where += " AND t.started_at <= ? AND (t.started_at < ? OR t.id < ?)"
		args = append(args, cursorTS, cursorTS, cursorID)
	}
	if s.fts && len(p.text) > 0 {
		page, err := s.walk(ctx, q, p, where, args, limit)
		if err != nil {
			return traces.Page{}, fmt.Errorf("list traces: %w", err)
		}
		return page, nil
	}
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, `SELECT `+summaryColumns+` FROM traces t WHERE `+where+
		` ORDER BY t.started_at DESC, t.id DESC LIMIT ?`, args...)
	if err != nil {
		return traces.Page{}, fmt.Errorf("list traces: %w", err)
	}
	defer rows.Close()
	var page traces.Page
	var lastTS int64
	for rows.Next() {
		if len(page.Traces) == limit {
			page.NextCursor = traces.EncodeCursor(lastTS, page.Traces[limit-1].ID)
			break
		}
		sm, ts, err := scanSummary(rows)
		if err != nil {
			return traces.Page{}, fmt.Errorf("list traces: %w", err)
		}
		lastTS = ts
		page.Traces = append(page.Traces, sm)
	}
	if err := rows.Err(); err != nil {
		return traces.Page{}, fmt.Errorf("list traces: %w", err)
	}
	return page, nil
}
