package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"opentracy/backend/traces"
)

const (
	defaultLimit = 50
	maxLimit     = 500
	// maxBuckets bounds Aggregate's output so that a tiny Bucket over a long range cannot
	// allocate without limit.
	maxBuckets = 10000
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
			t.Input = joinArray(elems)
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

// plan names the metadata keys and text terms that match so many traces that walking traces in
// time order and probing each beats collecting the matches and sorting them. The zero plan
// collects for every filter.
type plan struct {
	metadata, text map[string]bool
}

// where builds the WHERE clause of q's filters (not its cursor) over traces aliased t.
func (s *Store) where(q traces.Query, p plan) (string, []any) {
	var conds []string
	var args []any
	if !q.From.IsZero() {
		conds = append(conds, "t.started_at >= ?")
		args = append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		conds = append(conds, "t.started_at < ?")
		args = append(args, q.To.UnixNano())
	}
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		conds = append(conds, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("t.model", q.Models)
	in("t.provider", q.Providers)
	in("t.alias", q.Aliases)
	in("t.endpoint", q.Endpoints)
	switch q.Status {
	case "ok":
		conds = append(conds, "t.status BETWEEN 200 AND 299")
	case "error":
		conds = append(conds, "t.status NOT BETWEEN 200 AND 299")
	}
	bound(&conds, &args, "t.cost_usd >= ?", q.MinCostUSD)
	bound(&conds, &args, "t.cost_usd <= ?", q.MaxCostUSD)
	bound(&conds, &args, "t.latency_ms >= ?", q.MinLatency)
	bound(&conds, &args, "t.latency_ms <= ?", q.MaxLatency)
	bound(&conds, &args, "t.total_tokens >= ?", q.MinTokens)
	bound(&conds, &args, "t.total_tokens <= ?", q.MaxTokens)
	keys := make([]string, 0, len(q.Metadata))
	for k := range q.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same query always gives the same SQL
	for _, k := range keys {
		if p.metadata[k] {
			// Many traces match: walk the time index and probe each trace, stopping at a page.
			conds = append(conds, "EXISTS (SELECT 1 FROM trace_metadata m WHERE m.trace_rowid = t.rowid AND m.key = ? AND m.value = ?)")
		} else {
			// Few traces match: collect them from the (key, value) index and sort them.
			conds = append(conds, "t.rowid IN (SELECT trace_rowid FROM trace_metadata WHERE key = ? AND value = ?)")
		}
		args = append(args, k, q.Metadata[k])
	}
	// Every term must occur in the trace's messages, not necessarily in the same one.
	for _, term := range strings.Fields(q.Text) {
		match, arg := s.textMatch(term)
		switch {
		case p.text[term] && s.fts:
			// FTS cannot probe one message cheaply (a common term's doclist is read whole every
			// time), so collect the matches once into a set and walk the time index against it;
			// the unary + keeps the planner from driving the scan from the set.
			conds = append(conds, `+t.rowid IN (SELECT trace_rowid FROM trace_blobs WHERE blob_rowid IN (`+match+`))`)
		case p.text[term]:
			conds = append(conds, `EXISTS (SELECT 1 FROM trace_blobs tb JOIN blobs b ON b.rowid = tb.blob_rowid
				WHERE tb.trace_rowid = t.rowid AND b.text LIKE ? ESCAPE '\')`)
		default:
			conds = append(conds, `t.rowid IN (SELECT trace_rowid FROM trace_blobs WHERE blob_rowid IN (`+match+`))`)
		}
		args = append(args, arg)
	}
	if len(conds) == 0 {
		return "1", nil
	}
	return strings.Join(conds, " AND "), args
}

// textMatch returns a query for the rowids of the blobs whose text contains term, and its argument.
// bound adds a range condition on one column when the query sets that bound.
func bound[T any](conds *[]string, args *[]any, cond string, v *T) {
	if v != nil {
		*conds = append(*conds, cond)
		*args = append(*args, *v)
	}
}

func (s *Store) textMatch(term string) (string, string) {
	if s.fts {
		// A quoted prefix query: punctuation in the term cannot be FTS syntax.
		return `SELECT rowid FROM blob_fts WHERE blob_fts MATCH ?`, `"` + strings.ReplaceAll(term, `"`, `""`) + `"*`
	}
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(term)
	return `SELECT rowid FROM blobs WHERE text LIKE ? ESCAPE '\'`, "%" + esc + "%"
}

// commonRows is where probing each trace in time order starts to beat sorting the matches: a
// page of 50 is usually found long before that many probes.
const commonRows = 2000

// plan counts, up to commonRows, the rows matching each metadata and text filter.
func (s *Store) plan(ctx context.Context, q traces.Query) (plan, error) {
	var p plan
	count := func(query string, args ...any) (bool, error) {
		var n int
		err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM (`+query+` LIMIT ?)`, append(args, commonRows)...).Scan(&n)
		return n >= commonRows, err
	}
	for k, v := range q.Metadata {
		common, err := count(`SELECT 1 FROM trace_metadata WHERE key = ? AND value = ?`, k, v)
		if err != nil {
			return plan{}, fmt.Errorf("count metadata %q: %w", k, err)
		}
		if common {
			if p.metadata == nil {
				p.metadata = map[string]bool{}
			}
			p.metadata[k] = true
		}
	}
	for _, term := range strings.Fields(q.Text) {
		match, arg := s.textMatch(term)
		common, err := count(match, arg)
		if err != nil {
			return plan{}, fmt.Errorf("count text %q: %w", term, err)
		}
		if common {
			if p.text == nil {
				p.text = map[string]bool{}
			}
			p.text[term] = true
		}
	}
	return p, nil
}

// A cursor is the (started_at, id) of the last trace of a page, opaque to clients.
func encodeCursor(startedAt int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(startedAt, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", fmt.Errorf("bad cursor: %w", err)
	}
	ts, id, ok := strings.Cut(string(b), ":")
	if !ok {
		return 0, "", errors.New("bad cursor")
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("bad cursor: %w", err)
	}
	return n, id, nil
}

// List returns one page of summaries, newest first.
func (s *Store) List(ctx context.Context, q traces.Query) (traces.Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	p, err := s.plan(ctx, q)
	if err != nil {
		return traces.Page{}, fmt.Errorf("list traces: %w", err)
	}
	where, args := s.where(q, p)
	if q.Cursor != "" {
		ts, id, err := decodeCursor(q.Cursor)
		if err != nil {
			return traces.Page{}, fmt.Errorf("list traces: %w", err)
		}
		// Written so that the (started_at, id) index bounds the scan.
		where += " AND t.started_at <= ? AND (t.started_at < ? OR t.id < ?)"
		args = append(args, ts, ts, id)
	}
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, `SELECT t.id, t.started_at, t.endpoint, t.requested_model,
		t.alias, t.model, t.provider, t.status, t.error, t.stream, t.latency_ms, t.ttft_ms,
		t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.cache_write_tokens,
		t.reasoning_tokens, t.cost_usd, t.preview
		FROM traces t WHERE `+where+` ORDER BY t.started_at DESC, t.id DESC LIMIT ?`, args...)
	if err != nil {
		return traces.Page{}, fmt.Errorf("list traces: %w", err)
	}
	defer rows.Close()
	var page traces.Page
	var lastTS int64
	for rows.Next() {
		var sm traces.Summary
		var ts int64
		if err := rows.Scan(&sm.ID, &ts, &sm.Endpoint, &sm.RequestedModel, &sm.Alias, &sm.Model,
			&sm.Provider, &sm.Status, &sm.Error, &sm.Stream, &sm.LatencyMillis, &sm.TTFTMillis,
			&sm.Usage.PromptTokens, &sm.Usage.CompletionTokens, &sm.Usage.CachedTokens,
			&sm.Usage.CacheWriteTokens, &sm.Usage.ReasoningTokens, &sm.CostUSD, &sm.Preview); err != nil {
			return traces.Page{}, fmt.Errorf("list traces: %w", err)
		}
		if len(page.Traces) == limit {
			last := page.Traces[limit-1]
			page.NextCursor = encodeCursor(lastTS, last.ID)
			break
		}
		sm.StartedAt = time.Unix(0, ts).UTC()
		lastTS = ts
		page.Traces = append(page.Traces, sm)
	}
	if err := rows.Err(); err != nil {
		return traces.Page{}, fmt.Errorf("list traces: %w", err)
	}
	return page, nil
}

// Aggregate buckets the matching traces of [From, To) and computes latency percentiles in Go.
func (s *Store) Aggregate(ctx context.Context, q traces.AggregateQuery) (traces.Aggregates, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return traces.Aggregates{}, errors.New("aggregate traces: need From before To")
	}
	if q.Bucket <= 0 {
		return traces.Aggregates{}, errors.New("aggregate traces: need a positive Bucket")
	}
	span := q.To.Sub(q.From)
	nb := int64(span / q.Bucket)
	if span%q.Bucket != 0 {
		nb++
	}
	if nb > maxBuckets {
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: %d buckets, at most %d", nb, maxBuckets)
	}
	group := "''"
	switch q.GroupBy {
	case "":
	case "model", "provider", "alias":
		group = "t." + q.GroupBy
	default:
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: cannot group by %q", q.GroupBy)
	}
	where, args := s.where(q.Query, plan{})
	rows, err := s.r.QueryContext(ctx, `SELECT `+group+`, t.started_at, t.status, t.cost_usd,
		t.prompt_tokens, t.completion_tokens, t.latency_ms FROM traces t WHERE `+where, args...)
	if err != nil {
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
	}
	defer rows.Close()
	type acc struct {
		buckets   []traces.Bucket
		latencies [][]float64
	}
	from := q.From.UnixNano()
	bucketNanos := int64(q.Bucket)
	groups := map[string]*acc{}
	newAcc := func() *acc {
		a := &acc{buckets: make([]traces.Bucket, nb), latencies: make([][]float64, nb)}
		for i := range a.buckets {
			a.buckets[i].Start = q.From.Add(time.Duration(i) * q.Bucket).UTC()
		}
		return a
	}
	for rows.Next() {
		var g string
		var ts int64
		var status int
		var cost, latency float64
		var pt, ct int64
		if err := rows.Scan(&g, &ts, &status, &cost, &pt, &ct, &latency); err != nil {
			return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
		}
		a := groups[g]
		if a == nil {
			a = newAcc()
			groups[g] = a
		}
		i := (ts - from) / bucketNanos
		b := &a.buckets[i]
		b.Requests++
		if status < 200 || status > 299 {
			b.Errors++
		}
		b.CostUSD += cost
		b.PromptTokens += pt
		b.CompletionTokens += ct
		a.latencies[i] = append(a.latencies[i], latency)
	}
	if err := rows.Err(); err != nil {
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
	}
	if q.GroupBy == "" && len(groups) == 0 {
		groups[""] = newAcc() // one series, all zeros
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	out := traces.Aggregates{Series: make([]traces.Series, 0, len(names))}
	for _, g := range names {
		a := groups[g]
		for i, l := range a.latencies {
			slices.Sort(l)
			a.buckets[i].LatencyP50 = percentile(l, 50)
			a.buckets[i].LatencyP95 = percentile(l, 95)
			a.buckets[i].LatencyP99 = percentile(l, 99)
		}
		out.Series = append(out.Series, traces.Series{Group: g, Buckets: a.buckets})
	}
	return out, nil
}

// percentile is the nearest-rank percentile of sorted values (0 when empty).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
