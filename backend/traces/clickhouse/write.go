package clickhouse

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"opentracy/backend/traces"
)

// insertColumns is the column list of every insert: old servers need it explicit, and rows are
// appended column by column in this order (see rows.appendTo).
const insertColumns = `id, started_at, endpoint, requested_model, alias, model, provider, attempts,
	status, error, stream, ttft_ms, latency_ms, prompt_tokens, completion_tokens, cached_tokens,
	cache_write_tokens, reasoning_tokens, cost_usd, finish_reason, input, tools, output, tool_calls,
	metadata_keys, metadata_values, user, user_agent, preview, search_text, version`

// Write stores the batch; traces whose ID is already stored, or repeated within the batch, are
// skipped. A nil trace or one without an ID fails the whole batch before anything is sent.
func (s *Store) Write(ctx context.Context, batch []*traces.Trace) error {
	seen := make(map[string]bool, len(batch))
	todo := make([]*traces.Trace, 0, len(batch))
	for i, t := range batch {
		switch {
		case t == nil:
			return fmt.Errorf("write traces: trace %d: %w: nil trace", i, traces.ErrRejected)
		case t.ID == "":
			return fmt.Errorf("write traces: trace %d: %w: trace without id", i, traces.ErrRejected)
		case seen[t.ID]:
			continue // the first copy in the batch wins, as the first stored copy does
		}
		seen[t.ID] = true
		todo = append(todo, t)
	}
	if len(todo) == 0 {
		return nil
	}
	// Encoding (most of the CPU a write costs) overlaps the lookup of stored IDs.
	type prepared struct {
		r   *rows
		err error
	}
	prep := make(chan prepared, 1)
	go func() {
		r, err := prepareRows(todo)
		prep <- prepared{r, err}
	}()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	stored, lookupErr := s.storedIDs(ctx, todo)
	p := <-prep
	if p.err != nil {
		// Only a trace itself makes encoding fail (a NaN in its attempts): retrying cannot help.
		return fmt.Errorf("write traces: %w: %w", traces.ErrRejected, p.err)
	}
	if lookupErr != nil {
		return fmt.Errorf("write traces: %w", lookupErr)
	}
	r := p.r
	if len(stored) > 0 {
		r = r.filter(func(i int) bool { return !stored[r.id[i]] })
		if r.len() == 0 {
			return nil
		}
	}
	if err := s.insert(ctx, r); err != nil {
		return fmt.Errorf("write traces: insert %d traces: %w", r.len(), err)
	}
	return nil
}

// lookupChunk is how many IDs one lookup asks about: the traces are sorted by time first, so each
// chunk's time range stays narrow however wide the batch.
const lookupChunk = 5000

// storedIDs returns which of batch's IDs are already stored. It reads only the time range of
// the IDs it asks about, through the primary key (see the package comment), and sends the IDs as
// an external table rather than in the query text, which the server would have to parse.
func (s *Store) storedIDs(ctx context.Context, batch []*traces.Trace) (map[string]bool, error) {
	sorted := slices.Clone(batch)
	slices.SortFunc(sorted, func(a, b *traces.Trace) int {
		return cmp.Compare(a.StartedAt.UnixNano(), b.StartedAt.UnixNano())
	})
	stored := map[string]bool{}
	for chunk := range slices.Chunk(sorted, lookupChunk) {
		ids, err := ext.NewTable("batch_ids", ext.Column("id", "String"))
		if err != nil {
			return nil, fmt.Errorf("look up stored ids: %w", err)
		}
		for _, t := range chunk {
			if err := ids.Append(t.ID); err != nil {
				return nil, fmt.Errorf("look up stored ids: %w", err)
			}
		}
		rows, err := s.conn.Query(ch.Context(ctx, ch.WithExternalTable(ids)), `SELECT id FROM `+s.table("traces")+`
			WHERE started_at >= ? AND started_at <= ? AND id IN batch_ids`,
			chunk[0].StartedAt.UnixNano(), chunk[len(chunk)-1].StartedAt.UnixNano())
		if err != nil {
			return nil, fmt.Errorf("look up stored ids: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up stored ids: %w", err)
			}
			stored[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("look up stored ids: %w", err)
		}
	}
	return stored, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// insert sends r as one INSERT: one block, applied whole by the server.
func (s *Store) insert(ctx context.Context, r *rows) error {
	b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.table("traces")+` (`+insertColumns+`)`)
	if err != nil {
		return err
	}
	defer b.Close()
	// Larger for earlier writes, so that ReplacingMergeTree keeps the first copy of an ID that
	// two processes raced in.
	version := math.MaxUint64 - uint64(time.Now().UnixNano())
	if err := r.appendTo(b, version); err != nil {
		return err
	}
	return b.Send()
}

// rows are traces turned into column values, one slice per column of insertColumns.
type rows struct {
	id, endpoint, requestedModel, alias, model, provider, attempts []string
	errMsg, finishReason, user, userAgent, preview, searchText     []string
	// The raw JSON fields go to the driver as the trace's own bytes, not copied into strings.
	input, tools, output, toolCalls                         [][]byte
	startedAt, promptTokens, completionTokens, cachedTokens []int64
	cacheWriteTokens, reasoningTokens                       []int64
	status                                                  []int32
	stream                                                  []uint8
	ttft, latency, cost                                     []float64
	metaKeys, metaValues                                    [][]string
}

func (r *rows) len() int { return len(r.id) }

// prepareRows encodes ts, spreading the JSON work over the CPUs for large batches.
func prepareRows(ts []*traces.Trace) (*rows, error) {
	n := len(ts)
	r := &rows{
		id: make([]string, n), endpoint: make([]string, n), requestedModel: make([]string, n),
		alias: make([]string, n), model: make([]string, n), provider: make([]string, n),
		attempts: make([]string, n), errMsg: make([]string, n), finishReason: make([]string, n),
		input: make([][]byte, n), tools: make([][]byte, n), output: make([][]byte, n),
		toolCalls: make([][]byte, n), user: make([]string, n), userAgent: make([]string, n),
		preview: make([]string, n), searchText: make([]string, n),
		startedAt: make([]int64, n), promptTokens: make([]int64, n), completionTokens: make([]int64, n),
		cachedTokens: make([]int64, n), cacheWriteTokens: make([]int64, n), reasoningTokens: make([]int64, n),
		status: make([]int32, n), stream: make([]uint8, n),
		ttft: make([]float64, n), latency: make([]float64, n), cost: make([]float64, n),
		metaKeys: make([][]string, n), metaValues: make([][]string, n),
	}
	const perWorker = 256
	workers := min(runtime.GOMAXPROCS(0), (n+perWorker-1)/perWorker)
	if workers <= 1 {
		for i, t := range ts {
			if err := r.set(i, t); err != nil {
				return nil, err
			}
		}
		return r, nil
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := r.set(i, ts[i]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// set fills row i from t; rows of different i may be set concurrently.
func (r *rows) set(i int, t *traces.Trace) error {
	if len(t.Attempts) > 0 {
		a, err := json.Marshal(t.Attempts)
		if err != nil {
			return fmt.Errorf("encode attempts of %q: %w", t.ID, err)
		}
		r.attempts[i] = string(a)
	}
	r.id[i], r.endpoint[i], r.requestedModel[i] = t.ID, t.Endpoint, t.RequestedModel
	r.alias[i], r.model[i], r.provider[i] = t.Alias, t.Model, t.Provider
	r.errMsg[i], r.finishReason[i], r.user[i], r.userAgent[i] = t.Error, t.FinishReason, t.User, t.UserAgent
	r.input[i], r.tools[i], r.output[i], r.toolCalls[i] = t.Input, t.Tools, t.Output, t.ToolCalls
	r.startedAt[i] = t.StartedAt.UnixNano()
	r.promptTokens[i], r.completionTokens[i] = int64(t.Usage.PromptTokens), int64(t.Usage.CompletionTokens)
	r.cachedTokens[i], r.cacheWriteTokens[i] = int64(t.Usage.CachedTokens), int64(t.Usage.CacheWriteTokens)
	r.reasoningTokens[i] = int64(t.Usage.ReasoningTokens)
	r.status[i] = int32(t.Status)
	if t.Stream {
		r.stream[i] = 1
	}
	r.ttft[i], r.latency[i], r.cost[i] = t.TTFTMillis, t.LatencyMillis, t.CostUSD
	if len(t.Metadata) > 0 {
		keys := make([]string, 0, len(t.Metadata))
		for k := range t.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		vals := make([]string, len(keys))
		for j, k := range keys {
			vals[j] = t.Metadata[k]
		}
		r.metaKeys[i], r.metaValues[i] = keys, vals
	} else {
		// Array columns take no nil.
		r.metaKeys[i], r.metaValues[i] = []string{}, []string{}
	}
	r.preview[i], r.searchText[i] = previewAndSearch(t.Input, t.Output)
	return nil
}

// columns are r's slices in insertColumns' order, with version as the last column.
func (r *rows) columns(version uint64) []any {
	versions := make([]uint64, r.len())
	for i := range versions {
		versions[i] = version
	}
	return []any{r.id, r.startedAt, r.endpoint, r.requestedModel, r.alias, r.model, r.provider,
		r.attempts, r.status, r.errMsg, r.stream, r.ttft, r.latency, r.promptTokens,
		r.completionTokens, r.cachedTokens, r.cacheWriteTokens, r.reasoningTokens, r.cost,
		r.finishReason, r.input, r.tools, r.output, r.toolCalls, r.metaKeys, r.metaValues, r.user,
		r.userAgent, r.preview, r.searchText, versions}
}

// appendTo adds every row to b, one whole column at a time: the driver copies each slice into
// that column's own buffer instead of converting row by row. The columns are appended
// concurrently: copying tens of megabytes into fresh buffers is most of what an insert costs the
// client, and each column's buffer is touched by its own Append only.
func (r *rows) appendTo(b driver.Batch, version uint64) error {
	cols := r.columns(version)
	targets := make([]driver.BatchColumn, len(cols))
	for i := range cols {
		targets[i] = b.Column(i)
	}
	errs := make([]error, len(cols))
	var wg sync.WaitGroup
	for i, col := range cols {
		wg.Go(func() {
			if err := targets[i].Append(col); err != nil {
				errs[i] = fmt.Errorf("column %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// filter returns the rows for which keep is true (the rest were stored already).
func (r *rows) filter(keep func(i int) bool) *rows {
	mask := make([]bool, r.len())
	for i := range mask {
		mask[i] = keep(i)
	}
	return &rows{
		id: pick(r.id, mask), endpoint: pick(r.endpoint, mask), requestedModel: pick(r.requestedModel, mask),
		alias: pick(r.alias, mask), model: pick(r.model, mask), provider: pick(r.provider, mask),
		attempts: pick(r.attempts, mask), errMsg: pick(r.errMsg, mask), finishReason: pick(r.finishReason, mask),
		user: pick(r.user, mask), userAgent: pick(r.userAgent, mask), preview: pick(r.preview, mask),
		searchText: pick(r.searchText, mask), input: pick(r.input, mask), tools: pick(r.tools, mask),
		output: pick(r.output, mask), toolCalls: pick(r.toolCalls, mask), startedAt: pick(r.startedAt, mask),
		promptTokens: pick(r.promptTokens, mask), completionTokens: pick(r.completionTokens, mask),
		cachedTokens: pick(r.cachedTokens, mask), cacheWriteTokens: pick(r.cacheWriteTokens, mask),
		reasoningTokens: pick(r.reasoningTokens, mask), status: pick(r.status, mask), stream: pick(r.stream, mask),
		ttft: pick(r.ttft, mask), latency: pick(r.latency, mask), cost: pick(r.cost, mask),
		metaKeys: pick(r.metaKeys, mask), metaValues: pick(r.metaValues, mask),
	}
}

func pick[T any](s []T, mask []bool) []T {
	out := make([]T, 0, len(s))
	for i, v := range s {
		if mask[i] {
			out = append(out, v)
		}
	}
	return out
}
