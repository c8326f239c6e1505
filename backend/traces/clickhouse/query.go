package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"opentracy/backend/traces"
)

const (
	// hintWindow is how far from the time in a UUIDv7 trace ID Get first looks for the trace.
	hintWindow = time.Minute
)

const getColumns = `id, started_at, endpoint, requested_model, alias, model, provider, attempts,
	status, error, stream, ttft_ms, latency_ms, prompt_tokens, completion_tokens, cached_tokens,
	cache_write_tokens, reasoning_tokens, cost_usd, finish_reason, input, tools, output, tool_calls,
	metadata_keys, metadata_values, user, user_agent`

// Get returns one trace with its messages byte for byte.
func (s *Store) Get(ctx context.Context, id string) (*traces.Trace, error) {
	// The table is ordered by time, so an ID alone is found by scanning the id column. The
	// gateway's IDs are UUIDv7, which carry their creation time: look near it first, through the
	// primary key, and scan only when that misses (an ID from elsewhere, or a skewed clock).
	if ms, ok := uuidV7Millis(id); ok {
		at := time.UnixMilli(ms)
		t, err := s.get(ctx, id, `AND started_at >= ? AND started_at <= ?`,
			at.Add(-hintWindow).UnixNano(), at.Add(hintWindow).UnixNano())
		if err == nil || !errors.Is(err, traces.ErrNotFound) {
			return t, err
		}
	}
	return s.get(ctx, id, "")
}

// uuidV7Millis returns the unix milliseconds in a UUIDv7.
func uuidV7Millis(id string) (int64, bool) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return 0, false
	}
	var ms int64
	for _, b := range u[:6] {
		ms = ms<<8 | int64(b)
	}
	return ms, true
}

func (s *Store) get(ctx context.Context, id, extra string, extraArgs ...any) (*traces.Trace, error) {
	var (
		t                                         traces.Trace
		startedAt, pt, ct, cached, cw, reasoning  int64
		status                                    int32
		stream                                    uint8
		attempts, input, tools, output, toolCalls string
		keys, values                              []string
	)
	// The largest version is the first copy written, should two processes have raced one in.
	rows, err := s.conn.Query(ctx, `SELECT `+getColumns+` FROM `+s.table("traces")+`
		WHERE id = ? `+extra+` ORDER BY version DESC LIMIT 1`, append([]any{id}, extraArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("get trace %q: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("get trace %q: %w", id, err)
		}
		return nil, fmt.Errorf("get trace %q: %w", id, traces.ErrNotFound)
	}
	if err := rows.Scan(&t.ID, &startedAt, &t.Endpoint, &t.RequestedModel, &t.Alias, &t.Model,
		&t.Provider, &attempts, &status, &t.Error, &stream, &t.TTFTMillis, &t.LatencyMillis, &pt, &ct,
		&cached, &cw, &reasoning, &t.CostUSD, &t.FinishReason, &input, &tools, &output, &toolCalls,
		&keys, &values, &t.User, &t.UserAgent); err != nil {
		return nil, fmt.Errorf("get trace %q: %w", id, err)
	}
	t.StartedAt = time.Unix(0, startedAt).UTC()
	t.Status, t.Stream = int(status), stream != 0
	t.Usage = traces.Usage{PromptTokens: int(pt), CompletionTokens: int(ct), CachedTokens: int(cached),
		CacheWriteTokens: int(cw), ReasoningTokens: int(reasoning)}
	if attempts != "" {
		if err := json.Unmarshal([]byte(attempts), &t.Attempts); err != nil {
			return nil, fmt.Errorf("get trace %q: decode attempts: %w", id, err)
		}
	}
	t.Input, t.Tools, t.Output, t.ToolCalls = raw(input), raw(tools), raw(output), raw(toolCalls)
	if len(keys) != len(values) {
		return nil, fmt.Errorf("get trace %q: %d metadata keys for %d values", id, len(keys), len(values))
	}
	for i, k := range keys {
		if t.Metadata == nil {
			t.Metadata = make(map[string]string, len(keys))
		}
		t.Metadata[k] = values[i]
	}
	return &t, nil
}

// raw keeps an absent field nil.
func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// where builds the WHERE clause of q's filters (not its cursor).
func where(q traces.Query) (string, []any) {
	var w traces.Where
	w.AddScalar(q, traces.Columns{StartedAt: "started_at", Status: "status", CostUSD: "cost_usd",
		LatencyMillis: "latency_ms", Tokens: "prompt_tokens + completion_tokens"})
	w.In("model", q.Models)
	w.In("provider", q.Providers)
	w.In("alias", q.Aliases)
	w.In("endpoint", q.Endpoints)
	for _, k := range q.MetadataKeys() {
		w.Add("arrayExists((k, v) -> k = ? AND v = ?, metadata_keys, metadata_values)", k, q.Metadata[k])
	}
	// Every term must occur in the trace's text, not necessarily in the same message. Terms are
	// plain substrings: nothing in them is search syntax.
	for _, term := range strings.Fields(q.Text) {
		w.Add("position(search_text, ?) > 0", strings.ToLower(term))
	}
	return w.SQL(), w.Args
}

// List returns one page of summaries, newest first.
func (s *Store) List(ctx context.Context, q traces.Query) (traces.Page, error) {
	limit := q.PageSize()
	cond, args := where(q)
	if q.Cursor != "" {
		ts, id, err := traces.DecodeCursor(q.Cursor)
		if err != nil {
			return traces.Page{}, fmt.Errorf("list traces: %w", err)
		}
		// The first term alone bounds the primary-key range read.
		cond += " AND started_at <= ? AND (started_at < ? OR id < ?)"
		args = append(args, ts, ts, id)
	}
	rows, err := s.conn.Query(ctx, `SELECT id, started_at, endpoint, requested_model, alias, model,
		provider, status, error, stream, latency_ms, ttft_ms, prompt_tokens, completion_tokens,
		cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, preview
		FROM `+s.table("traces")+` WHERE `+cond+`
		ORDER BY started_at DESC, id DESC LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil {
		return traces.Page{}, fmt.Errorf("list traces: %w", err)
	}
	defer rows.Close()
	var page traces.Page
	var lastTS int64
	for rows.Next() {
		var (
			sm                                    traces.Summary
			ts, pt, ct, cached, cacheW, reasoning int64
			status                                int32
			stream                                uint8
		)
		if err := rows.Scan(&sm.ID, &ts, &sm.Endpoint, &sm.RequestedModel, &sm.Alias, &sm.Model,
			&sm.Provider, &status, &sm.Error, &stream, &sm.LatencyMillis, &sm.TTFTMillis, &pt, &ct,
			&cached, &cacheW, &reasoning, &sm.CostUSD, &sm.Preview); err != nil {
			return traces.Page{}, fmt.Errorf("list traces: %w", err)
		}
		if len(page.Traces) == limit {
			page.NextCursor = traces.EncodeCursor(lastTS, page.Traces[limit-1].ID)
			break
		}
		sm.StartedAt = time.Unix(0, ts).UTC()
		sm.Status, sm.Stream = int(status), stream != 0
		sm.Usage = traces.Usage{PromptTokens: int(pt), CompletionTokens: int(ct), CachedTokens: int(cached),
			CacheWriteTokens: int(cacheW), ReasoningTokens: int(reasoning)}
		lastTS = ts
		page.Traces = append(page.Traces, sm)
	}
	if err := rows.Err(); err != nil {
		return traces.Page{}, fmt.Errorf("list traces: %w", err)
	}
	return page, nil
}

// percentileSQL is the nearest-rank percentile p of the sorted array lat, as the SQLite store
// computes it (quantileExact interpolates differently at small counts).
func percentileSQL(p string) string {
	return "toFloat64(lat[toUInt64(greatest(1, ceil(" + p + " * length(lat))))])"
}

// Aggregate buckets the matching traces of [From, To) on the server: totals and nearest-rank
// latency percentiles per (group, bucket); empty buckets are filled in here.
func (s *Store) Aggregate(ctx context.Context, q traces.AggregateQuery) (traces.Aggregates, error) {
	nb, groupBy, err := q.Shape()
	if err != nil {
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
	}
	group := "''"
	if groupBy != "" {
		group = groupBy
	}
	cond, args := where(q.Query)
	from := q.From.UnixNano()
	// The inner query sorts each bucket's latencies; the outer one picks the ranks, so that the
	// arrays themselves never leave the server.
	rows, err := s.conn.Query(ctx, `SELECT g, b, requests, errors, cost, pt, ct,
		`+percentileSQL("0.5")+`, `+percentileSQL("0.95")+`, `+percentileSQL("0.99")+`
		FROM (
			SELECT toString(`+group+`) AS g,
				toInt64(intDiv(started_at - `+strconv.FormatInt(from, 10)+`, `+strconv.FormatInt(int64(q.Bucket), 10)+`)) AS b,
				toInt64(count()) AS requests, toInt64(countIf(NOT (status BETWEEN 200 AND 299))) AS errors,
				toFloat64(sum(cost_usd)) AS cost, toInt64(sum(prompt_tokens)) AS pt,
				toInt64(sum(completion_tokens)) AS ct, arraySort(groupArray(latency_ms)) AS lat
			FROM `+s.table("traces")+` WHERE `+cond+` GROUP BY g, b
		)`, args...)
	if err != nil {
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
	}
	defer rows.Close()
	series := traces.NewSeriesBuilder(q, nb)
	for rows.Next() {
		var (
			g string
			i int64
			b traces.Bucket
		)
		if err := rows.Scan(&g, &i, &b.Requests, &b.Errors, &b.CostUSD, &b.PromptTokens,
			&b.CompletionTokens, &b.LatencyP50, &b.LatencyP95, &b.LatencyP99); err != nil {
			return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
		}
		if i < 0 || i >= int64(nb) {
			return traces.Aggregates{}, fmt.Errorf("aggregate traces: bucket %d out of range", i)
		}
		bs := series.Buckets(g)
		b.Start = bs[i].Start
		bs[i] = b
	}
	if err := rows.Err(); err != nil {
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
	}
	return series.Result(), nil
}
