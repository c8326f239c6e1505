// Package storetest is the contract every traces.Store passes: each store's tests call Run.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"opentracy/backend/traces"
)

// Base is the start time of the generated traces.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Run runs the contract suite; open returns an empty store, closed by the suite.
func Run(t *testing.T, open func(t *testing.T) traces.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s traces.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"NotFound", testNotFound},
		{"Idempotent", testIdempotent},
		{"BatchAtomic", testBatchAtomic},
		{"Filters", testFilters},
		{"Metadata", testMetadata},
		{"FullText", testFullText},
		{"Pagination", testPagination},
		{"Preview", testPreview},
		{"Aggregate", testAggregate},
		{"AggregateGroupBy", testAggregateGroupBy},
		{"Concurrent", testConcurrent},
		{"LargePrompt", testLargePrompt},
		{"InvalidUTF8", testInvalidUTF8},
		{"DeleteBefore", testDeleteBefore},
		{"Scan", testScan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// Trace returns a plausible chat trace with a distinct ID, started i seconds after base.
func Trace(i int) *traces.Trace {
	started := base.Add(time.Duration(i) * time.Second)
	return &traces.Trace{
		ID:             fmt.Sprintf("tr-%06d", i),
		StartedAt:      started,
		Endpoint:       "chat.completions",
		RequestedModel: "gpt-4o",
		Model:          "gpt-4o",
		Provider:       "openai",
		Attempts: []traces.Attempt{{
			Provider: "openai", Model: "gpt-4o", StartedAt: started, LatencyMillis: 120.5, Status: 200,
		}},
		Status:        200,
		LatencyMillis: 120.5,
		Usage:         traces.Usage{PromptTokens: 10, CompletionTokens: 5},
		CostUSD:       0.001,
		FinishReason:  "stop",
		Input:         json.RawMessage(fmt.Sprintf(`[{"role":"system","content":"You are terse."},{"role":"user","content":"question number %d"}]`, i)),
		Output:        json.RawMessage(fmt.Sprintf(`[{"index":0,"message":{"role":"assistant","content":"answer number %d"},"finish_reason":"stop"}]`, i)),
	}
}

func write(t *testing.T, s traces.Store, batch ...*traces.Trace) {
	t.Helper()
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func get(t *testing.T, s traces.Store, id string) *traces.Trace {
	t.Helper()
	got, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return got
}

// ids lists every matching trace across all pages.
func ids(t *testing.T, s traces.Store, q traces.Query) []string {
	t.Helper()
	var out []string
	for range 1000 {
		p, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatalf("List(%+v): %v", q, err)
		}
		for _, sm := range p.Traces {
			out = append(out, sm.ID)
		}
		if p.NextCursor == "" {
			return out
		}
		q.Cursor = p.NextCursor
	}
	t.Fatal("List did not finish after 1000 pages")
	return nil
}

// rawJSON compares json.RawMessage byte for byte, treating nil and empty alike.
// Other empty slices and maps equal nil.
var rawJSON = cmp.Options{
	cmp.Comparer(func(a, b json.RawMessage) bool { return string(a) == string(b) }),
	cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().Type() != reflect.TypeFor[json.RawMessage]()
	}, cmpopts.EquateEmpty()),
}

func testRoundTrip(t *testing.T, s traces.Store) {
	full := Trace(1)
	full.Alias = "smart"
	full.Stream = true
	full.TTFTMillis = 33.25
	full.Error = ""
	full.Usage = traces.Usage{PromptTokens: 100, CompletionTokens: 20, CachedTokens: 50, CacheWriteTokens: 7, ReasoningTokens: 3}
	full.CostUSD = 0.012345
	full.Attempts = append([]traces.Attempt{{Provider: "anthropic", Model: "claude", StartedAt: full.StartedAt.Add(-time.Second), LatencyMillis: 10, Status: 0, Error: "dial tcp: refused"}}, full.Attempts...)
	// Whitespace and key order must survive: Get returns the exact bytes.
	full.Input = json.RawMessage(`[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}, {"content":"x","role":"user"}]`)
	full.Tools = json.RawMessage(`[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`)
	full.Output = json.RawMessage(`[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}]`)
	full.ToolCalls = json.RawMessage(`[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]`)
	full.FinishReason = "tool_calls"
	full.Metadata = map[string]string{"team": "search", "env": "prod", "empty": ""}
	full.User = "u-1"
	full.UserAgent = "openai-python/1.0"

	compact := Trace(2)
	prompt := Trace(3)
	prompt.Endpoint = "completions"
	prompt.Input = json.RawMessage(`"Once upon a time"`)
	prompt.Output = nil
	prompt.Attempts = nil
	bare := &traces.Trace{ID: "bare", StartedAt: base.Add(time.Hour), Status: 502, Error: "no provider"}
	emptyArray := Trace(4)
	emptyArray.Input = json.RawMessage(`[]`)

	in := []*traces.Trace{full, compact, prompt, bare, emptyArray}
	write(t, s, in...)
	for _, want := range in {
		got := get(t, s, want.ID)
		if diff := cmp.Diff(want, got, rawJSON); diff != "" {
			t.Errorf("Get(%q) mismatch (-want +got):\n%s", want.ID, diff)
		}
	}
}

func testNotFound(t *testing.T, s traces.Store) {
	write(t, s, Trace(1))
	_, err := s.Get(context.Background(), "nope")
	if !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
	}
}

func testIdempotent(t *testing.T, s traces.Store) {
	a, b := Trace(1), Trace(2)
	write(t, s, a, b)
	changed := *a
	changed.Model = "other"
	write(t, s, &changed, b, Trace(3), Trace(3))
	if got := get(t, s, a.ID); got.Model != "gpt-4o" {
		t.Errorf("re-write replaced the stored trace: model %q", got.Model)
	}
	if got := ids(t, s, traces.Query{}); !cmp.Equal(got, []string{"tr-000003", "tr-000002", "tr-000001"}) {
		t.Errorf("List after re-write = %v", got)
	}
}

func testBatchAtomic(t *testing.T, s traces.Store) {
	for _, bad := range []*traces.Trace{{ID: "", StartedAt: base}, nil} {
		err := s.Write(context.Background(), []*traces.Trace{Trace(1), bad, Trace(2)})
		if !errors.Is(err, traces.ErrRejected) {
			t.Errorf("Write with bad trace %v = %v, want an ErrRejected (no retry can fix it)", bad, err)
		}
	}
	for _, id := range []string{"tr-000001", "tr-000002"} {
		if _, err := s.Get(context.Background(), id); !errors.Is(err, traces.ErrNotFound) {
			t.Errorf("Get(%q) after failed batch: %v, want ErrNotFound", id, err)
		}
	}
	if got := ids(t, s, traces.Query{}); len(got) != 0 {
		t.Errorf("failed batch left %v", got)
	}
	write(t, s) // an empty batch is fine
}

func ptr[T any](v T) *T { return &v }

func testFilters(t *testing.T, s traces.Store) {
	// Ten traces, one second apart, varied along every filtered dimension.
	var batch []*traces.Trace
	for i := range 10 {
		tr := Trace(i)
		tr.Model = []string{"gpt-4o", "claude", "llama"}[i%3]
		tr.Provider = []string{"openai", "anthropic"}[i%2]
		if i%4 == 0 {
			tr.Alias = "smart"
		}
		if i%5 == 4 {
			tr.Status = 500
			tr.Error = "upstream failed"
		}
		if i == 9 {
			tr.Status = 429
		}
		tr.Endpoint = "chat.completions"
		if i == 7 {
			tr.Endpoint = "embeddings"
		}
		tr.CostUSD = float64(i) / 100
		tr.LatencyMillis = float64(i * 100)
		tr.Usage = traces.Usage{PromptTokens: i * 10, CompletionTokens: i}
		batch = append(batch, tr)
	}
	write(t, s, batch...)
	id := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, fmt.Sprintf("tr-%06d", i))
		}
		return out
	}
	tests := []struct {
		name string
		q    traces.Query
		want []string
	}{
		{"all", traces.Query{}, id(9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
		{"time range", traces.Query{From: base.Add(2 * time.Second), To: base.Add(5 * time.Second)}, id(4, 3, 2)},
		{"from only", traces.Query{From: base.Add(8 * time.Second)}, id(9, 8)},
		{"model", traces.Query{Models: []string{"claude"}}, id(7, 4, 1)},
		{"models", traces.Query{Models: []string{"claude", "llama"}}, id(8, 7, 5, 4, 2, 1)},
		{"provider", traces.Query{Providers: []string{"anthropic"}}, id(9, 7, 5, 3, 1)},
		{"alias", traces.Query{Aliases: []string{"smart"}}, id(8, 4, 0)},
		{"endpoint", traces.Query{Endpoints: []string{"embeddings"}}, id(7)},
		{"status ok", traces.Query{Status: "ok"}, id(8, 7, 6, 5, 3, 2, 1, 0)},
		{"status error", traces.Query{Status: "error"}, id(9, 4)},
		{"cost range", traces.Query{MinCostUSD: ptr(0.03), MaxCostUSD: ptr(0.05)}, id(5, 4, 3)},
		{"latency min", traces.Query{MinLatency: ptr(700.0)}, id(9, 8, 7)},
		{"latency max", traces.Query{MaxLatency: ptr(100.0)}, id(1, 0)},
		{"tokens", traces.Query{MinTokens: ptr(22), MaxTokens: ptr(44)}, id(4, 3, 2)},
		{"combined", traces.Query{Models: []string{"gpt-4o"}, Status: "ok", MaxLatency: ptr(500.0)}, id(3, 0)},
		{"none", traces.Query{Models: []string{"unknown"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(t, s, tc.q)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func testMetadata(t *testing.T, s traces.Store) {
	a, b, c := Trace(1), Trace(2), Trace(3)
	a.Metadata = map[string]string{"team": "search", "env": "prod"}
	b.Metadata = map[string]string{"team": "search", "env": "dev"}
	c.Metadata = map[string]string{"team": "ads", "env": "prod", "weird key=": "v'al\"ue"}
	write(t, s, a, b, c)
	tests := []struct {
		name string
		md   map[string]string
		want []string
	}{
		{"one key", map[string]string{"team": "search"}, []string{b.ID, a.ID}},
		{"two keys", map[string]string{"team": "search", "env": "prod"}, []string{a.ID}},
		{"odd characters", map[string]string{"weird key=": "v'al\"ue"}, []string{c.ID}},
		{"no match", map[string]string{"team": "nobody"}, nil},
		{"key missing", map[string]string{"region": "eu"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(t, s, traces.Query{Metadata: tc.md})
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func testFullText(t *testing.T, s traces.Store) {
	a, b, c, d := Trace(1), Trace(2), Trace(3), Trace(4)
	a.Input = json.RawMessage(`[{"role":"user","content":"Tell me about the zebra migration"}]`)
	b.Input = json.RawMessage(`[{"role":"user","content":[{"type":"text","text":"What do giraffes eat?"}]}]`)
	b.Output = json.RawMessage(`[{"index":0,"message":{"role":"assistant","content":"Acacia leaves, mostly."}}]`)
	c.Input = json.RawMessage(`"a plain prompt about volcanoes"`)
	d.Input = json.RawMessage(`[{"role":"user","content":"zebra"},{"role":"assistant","content":"stripes"}]`)
	write(t, s, a, b, c, d)
	tests := []struct {
		text string
		want []string
	}{
		{"zebra", []string{d.ID, a.ID}},
		{"ZEBRA", []string{d.ID, a.ID}},
		{"giraffes", []string{b.ID}},
		{"acacia", []string{b.ID}}, // output text
		{"volcanoes", []string{c.ID}},
		{"zebra migration", []string{a.ID}},
		{"zebra stripes", []string{d.ID}}, // terms in different messages of one trace
		{"unicorn", nil},
		{`"quoted" AND (syntax*`, nil}, // search syntax is text, not an error
		{"terse", nil},                 // Trace's system prompt was replaced everywhere
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			got := ids(t, s, traces.Query{Text: tc.text})
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func testPagination(t *testing.T, s traces.Store) {
	const n = 250
	var batch []*traces.Trace
	for i := range n {
		// Pairs share a start time so that the cursor must break ties by ID.
		tr := Trace(i)
		tr.StartedAt = base.Add(time.Duration(i/2) * time.Second)
		batch = append(batch, tr)
	}
	write(t, s, batch...)
	for _, limit := range []int{1, 7, 50, 0, 500} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			seen := map[string]bool{}
			var prev *traces.Summary
			q := traces.Query{Limit: limit}
			pages := 0
			for {
				p, err := s.List(context.Background(), q)
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				pages++
				want := limit
				if limit == 0 {
					want = 50
				}
				if len(p.Traces) > want {
					t.Fatalf("page of %d traces, limit %d", len(p.Traces), want)
				}
				for i := range p.Traces {
					sm := &p.Traces[i]
					if seen[sm.ID] {
						t.Fatalf("duplicate %s", sm.ID)
					}
					seen[sm.ID] = true
					if prev != nil && (sm.StartedAt.After(prev.StartedAt) || sm.StartedAt.Equal(prev.StartedAt) && sm.ID > prev.ID) {
						t.Fatalf("%s (%v) after %s (%v): not newest first", sm.ID, sm.StartedAt, prev.ID, prev.StartedAt)
					}
					prev = sm
				}
				if p.NextCursor == "" {
					break
				}
				q.Cursor = p.NextCursor
				if pages > n+1 {
					t.Fatal("too many pages")
				}
			}
			if len(seen) != n {
				t.Errorf("saw %d traces, want %d", len(seen), n)
			}
		})
	}
	// Pagination composes with filters.
	got := ids(t, s, traces.Query{From: base.Add(10 * time.Second), To: base.Add(20 * time.Second), Limit: 3})
	if len(got) != 20 {
		t.Errorf("filtered pagination returned %d traces, want 20", len(got))
	}
	if _, err := s.List(context.Background(), traces.Query{Cursor: "!!not a cursor!!"}); err == nil {
		t.Error("List with a bad cursor succeeded")
	}
}

func testPreview(t *testing.T, s traces.Store) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"last user message", `[{"role":"system","content":"sys"},{"role":"user","content":"first"},{"role":"assistant","content":"reply"},{"role":"user","content":"second question"}]`, "second question"},
		{"text parts", `[{"role":"user","content":[{"type":"text","text":"describe"},{"type":"image_url","image_url":{"url":"http://x"}}]}]`, "describe"},
		{"truncated to 200 characters", `[{"role":"user","content":"` + long + `"}]`, strings.Repeat("é", 200)},
		{"prompt string", `"complete this"`, "complete this"},
		{"no input", ``, ""},
	}
	for i, tc := range tests {
		tr := Trace(i)
		tr.Input = json.RawMessage(tc.input)
		write(t, s, tr)
	}
	p, err := s.List(context.Background(), traces.Query{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	byID := map[string]string{}
	for _, sm := range p.Traces {
		byID[sm.ID] = sm.Preview
	}
	for i, tc := range tests {
		if got := byID[Trace(i).ID]; got != tc.want {
			t.Errorf("%s: preview %q, want %q", tc.name, got, tc.want)
		}
	}
}

// near compares floats that stores may sum in different orders.
var near = cmpopts.EquateApprox(0, 1e-9)

func testAggregate(t *testing.T, s traces.Store) {
	// Bucket 0 (minute 0): 100 traces with latencies 1..100, every tenth an error.
	// Bucket 1: empty. Bucket 2: one trace. A trace before From and one at To are excluded.
	var batch []*traces.Trace
	for i := range 100 {
		tr := Trace(i)
		tr.StartedAt = base.Add(time.Duration(i) * 500 * time.Millisecond)
		tr.LatencyMillis = float64(i + 1)
		tr.CostUSD = 0.5
		tr.Usage = traces.Usage{PromptTokens: 3, CompletionTokens: 2}
		if i%10 == 0 {
			tr.Status = 500
		}
		batch = append(batch, tr)
	}
	late := Trace(1000)
	late.StartedAt = base.Add(2*time.Minute + 30*time.Second)
	late.LatencyMillis = 42
	late.CostUSD = 0.25
	late.Usage = traces.Usage{PromptTokens: 7, CompletionTokens: 1}
	before, atTo := Trace(1001), Trace(1002)
	before.StartedAt = base.Add(-time.Nanosecond)
	atTo.StartedAt = base.Add(3 * time.Minute)
	batch = append(batch, late, before, atTo)
	write(t, s, batch...)

	got, err := s.Aggregate(context.Background(), traces.AggregateQuery{
		Query:  traces.Query{From: base, To: base.Add(3 * time.Minute)},
		Bucket: time.Minute,
	})
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	want := traces.Aggregates{Series: []traces.Series{{Group: "", Buckets: []traces.Bucket{
		{Start: base, Requests: 100, Errors: 10, CostUSD: 50, PromptTokens: 300, CompletionTokens: 200, LatencyP50: 50, LatencyP95: 95, LatencyP99: 99},
		{Start: base.Add(time.Minute)},
		{Start: base.Add(2 * time.Minute), Requests: 1, CostUSD: 0.25, PromptTokens: 7, CompletionTokens: 1, LatencyP50: 42, LatencyP95: 42, LatencyP99: 42},
	}}}}
	// Percentile definitions differ between stores by at most one rank.
	isLatency := func(p cmp.Path) bool { return strings.HasPrefix(p.Last().String(), ".LatencyP") }
	opts := cmp.Options{
		cmp.FilterPath(isLatency, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1 })),
		cmp.FilterPath(func(p cmp.Path) bool { return !isLatency(p) }, near),
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("Aggregate (-want +got):\n%s", diff)
	}

	// Filters apply; no matching trace still gives one series of empty buckets.
	got, err = s.Aggregate(context.Background(), traces.AggregateQuery{
		Query:  traces.Query{From: base, To: base.Add(2 * time.Minute), Models: []string{"none"}},
		Bucket: time.Minute,
	})
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	want = traces.Aggregates{Series: []traces.Series{{Buckets: []traces.Bucket{{Start: base}, {Start: base.Add(time.Minute)}}}}}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("Aggregate with no match (-want +got):\n%s", diff)
	}

	for _, bad := range []traces.AggregateQuery{
		{Query: traces.Query{From: base, To: base.Add(time.Hour)}},
		{Query: traces.Query{From: base.Add(time.Hour), To: base}, Bucket: time.Minute},
		{Query: traces.Query{From: base, To: base.Add(time.Hour)}, Bucket: time.Minute, GroupBy: "color"},
	} {
		if _, err := s.Aggregate(context.Background(), bad); err == nil {
			t.Errorf("Aggregate(%+v) succeeded", bad)
		}
	}
}

func testAggregateGroupBy(t *testing.T, s traces.Store) {
	mk := func(i int, model, provider, alias string, status int, latency float64) *traces.Trace {
		tr := Trace(i)
		tr.Model, tr.Provider, tr.Alias, tr.Status, tr.LatencyMillis = model, provider, alias, status, latency
		tr.CostUSD = 1
		tr.Usage = traces.Usage{PromptTokens: 1, CompletionTokens: 1}
		return tr
	}
	write(t, s,
		mk(0, "gpt-4o", "openai", "smart", 200, 10),
		mk(1, "gpt-4o", "azure", "", 500, 20),
		mk(70, "claude", "anthropic", "smart", 200, 30), // second bucket
	)
	q := traces.Query{From: base, To: base.Add(2 * time.Minute)}
	b := func(start int, requests, errors int64, latency float64) traces.Bucket {
		if requests == 0 {
			return traces.Bucket{Start: base.Add(time.Duration(start) * time.Minute)}
		}
		return traces.Bucket{Start: base.Add(time.Duration(start) * time.Minute), Requests: requests, Errors: errors,
			CostUSD: float64(requests), PromptTokens: requests, CompletionTokens: requests,
			LatencyP50: latency, LatencyP95: latency, LatencyP99: latency}
	}
	tests := []struct {
		groupBy string
		want    []traces.Series
	}{
		{"model", []traces.Series{
			{Group: "claude", Buckets: []traces.Bucket{b(0, 0, 0, 0), b(1, 1, 0, 30)}},
			{Group: "gpt-4o", Buckets: []traces.Bucket{{Start: base, Requests: 2, Errors: 1, CostUSD: 2, PromptTokens: 2, CompletionTokens: 2, LatencyP50: 10, LatencyP95: 20, LatencyP99: 20}, b(1, 0, 0, 0)}},
		}},
		{"provider", []traces.Series{
			{Group: "anthropic", Buckets: []traces.Bucket{b(0, 0, 0, 0), b(1, 1, 0, 30)}},
			{Group: "azure", Buckets: []traces.Bucket{b(0, 1, 1, 20), b(1, 0, 0, 0)}},
			{Group: "openai", Buckets: []traces.Bucket{b(0, 1, 0, 10), b(1, 0, 0, 0)}},
		}},
		{"alias", []traces.Series{
			{Group: "", Buckets: []traces.Bucket{b(0, 1, 1, 20), b(1, 0, 0, 0)}},
			{Group: "smart", Buckets: []traces.Bucket{b(0, 1, 0, 10), b(1, 1, 0, 30)}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.groupBy, func(t *testing.T) {
			got, err := s.Aggregate(context.Background(), traces.AggregateQuery{Query: q, Bucket: time.Minute, GroupBy: tc.groupBy})
			if err != nil {
				t.Fatalf("Aggregate: %v", err)
			}
			// Series are ordered by group name.
			if diff := cmp.Diff(traces.Aggregates{Series: tc.want}, got, near); diff != "" {
				t.Errorf("Aggregate (-want +got):\n%s", diff)
			}
		})
	}
}

func testConcurrent(t *testing.T, s traces.Store) {
	const writers, batches, perBatch = 4, 10, 20
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var batch []*traces.Trace
				for i := range perBatch {
					batch = append(batch, Trace(w*batches*perBatch+b*perBatch+i))
				}
				// Overlapping replays from another writer must stay idempotent.
				if w > 0 && b > 0 {
					batch = append(batch, Trace((w-1)*batches*perBatch))
				}
				if err := s.Write(ctx, batch); err != nil {
					errs <- fmt.Errorf("write: %w", err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				p, err := s.List(ctx, traces.Query{Limit: 20, Models: []string{"gpt-4o"}})
				if err != nil {
					errs <- fmt.Errorf("list: %w", err)
					return
				}
				for _, sm := range p.Traces {
					if _, err := s.Get(ctx, sm.ID); err != nil {
						errs <- fmt.Errorf("get listed %s: %w", sm.ID, err)
						return
					}
				}
				if _, err := s.Aggregate(ctx, traces.AggregateQuery{Query: traces.Query{From: base, To: base.Add(time.Hour)}, Bucket: time.Minute}); err != nil {
					errs <- fmt.Errorf("aggregate: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(ids(t, s, traces.Query{Limit: 500})); got != writers*batches*perBatch {
		t.Errorf("%d traces stored, want %d", got, writers*batches*perBatch)
	}
}

func testLargePrompt(t *testing.T, s traces.Store) {
	tr := Trace(1)
	big := strings.Repeat("lorem ipsum dolor sit amet ", 40000) // ~1 MB
	tr.Input = json.RawMessage(`[{"role":"user","content":"` + big + `needle"}]`)
	tr.Output = json.RawMessage(`[{"index":0,"message":{"role":"assistant","content":"` + big + `"}}]`)
	write(t, s, tr)
	got := get(t, s, tr.ID)
	if string(got.Input) != string(tr.Input) || string(got.Output) != string(tr.Output) {
		t.Errorf("1 MB messages changed: input %d bytes, want %d", len(got.Input), len(tr.Input))
	}
	if ids := ids(t, s, traces.Query{Text: "ipsum"}); len(ids) != 1 {
		t.Errorf("search in a 1 MB prompt found %v", ids)
	}
}

func testInvalidUTF8(t *testing.T, s traces.Store) {
	// A store either keeps bytes as written or replaces invalid sequences with U+FFFD.
	tr := Trace(1)
	tr.Model = "bad\xffmodel"
	tr.Error = "err\xc3\x28"
	tr.Metadata = map[string]string{"k\xfe": "v\xff"}
	tr.Input = json.RawMessage("[{\"role\":\"user\",\"content\":\"caf\xe9 bytes\"}]")
	tr.Output = json.RawMessage("[{\"message\":{\"content\":\"\xff\"}}]")
	write(t, s, tr)
	got := get(t, s, tr.ID)
	same := func(got, want string) bool {
		return got == want || got == strings.ToValidUTF8(want, "\uFFFD")
	}
	if !same(got.Model, tr.Model) || !same(got.Error, tr.Error) {
		t.Errorf("strings changed: model %q error %q", got.Model, got.Error)
	}
	if len(got.Metadata) != 1 {
		t.Errorf("metadata = %q", got.Metadata)
	}
	for k, v := range got.Metadata {
		if !same(k, "k\xfe") || !same(v, "v\xff") {
			t.Errorf("metadata = %q", got.Metadata)
		}
	}
	if !same(string(got.Input), string(tr.Input)) || !same(string(got.Output), string(tr.Output)) {
		t.Errorf("messages changed: %q %q", got.Input, got.Output)
	}
	if ids := ids(t, s, traces.Query{Models: []string{got.Model}}); len(ids) != 1 {
		t.Errorf("filter by the returned model found %v", ids)
	}
	if ids := ids(t, s, traces.Query{Text: "bytes"}); len(ids) != 1 {
		t.Errorf("search next to invalid UTF-8 found %v", ids)
	}
}

func testDeleteBefore(t *testing.T, s traces.Store) {
	ctx := context.Background()
	var batch []*traces.Trace
	for i := range 10 {
		tr := Trace(i)
		tr.Metadata = map[string]string{"team": "a"}
		batch = append(batch, tr)
	}
	// Trace 9 shares its messages with trace 1: deleting 1 must not lose 9's bodies.
	batch[9].Input = batch[1].Input
	write(t, s, batch...)
	n, err := s.DeleteBefore(ctx, base.Add(5*time.Second))
	if err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	if n != 5 {
		t.Errorf("DeleteBefore removed %d traces, want 5", n)
	}
	want := []string{"tr-000009", "tr-000008", "tr-000007", "tr-000006", "tr-000005"}
	if got := ids(t, s, traces.Query{}); !cmp.Equal(got, want) {
		t.Errorf("List after DeleteBefore = %v, want %v", got, want)
	}
	if got := ids(t, s, traces.Query{Metadata: map[string]string{"team": "a"}}); !cmp.Equal(got, want) {
		t.Errorf("metadata filter after DeleteBefore = %v, want %v", got, want)
	}
	if _, err := s.Get(ctx, "tr-000001"); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Get(deleted) = %v, want ErrNotFound", err)
	}
	if diff := cmp.Diff(batch[9], get(t, s, "tr-000009"), rawJSON); diff != "" {
		t.Errorf("trace sharing a deleted trace's messages changed (-want +got):\n%s", diff)
	}
	agg, err := s.Aggregate(ctx, traces.AggregateQuery{Query: traces.Query{From: base, To: base.Add(10 * time.Second)}, Bucket: 10 * time.Second})
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	if len(agg.Series) != 1 || len(agg.Series[0].Buckets) != 1 || agg.Series[0].Buckets[0].Requests != 5 {
		t.Errorf("Aggregate after DeleteBefore = %+v, want 5 requests", agg)
	}
	if n, err := s.DeleteBefore(ctx, base.Add(5*time.Second)); err != nil || n != 0 {
		t.Errorf("second DeleteBefore = %d, %v; want 0, nil", n, err)
	}
	// A deleted trace may be written again (an import of an old export).
	write(t, s, Trace(1))
	get(t, s, "tr-000001")
}

func testScan(t *testing.T, s traces.Store) {
	var batch []*traces.Trace
	for i := range 450 {
		tr := Trace(i)
		if i%3 == 0 {
			tr.Model = "claude"
		}
		batch = append(batch, tr)
	}
	write(t, s, batch...)
	var got []*traces.Trace
	err := traces.Scan(context.Background(), s, traces.Query{Models: []string{"claude"}, Limit: 7}, func(tr *traces.Trace) error {
		got = append(got, tr)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(got) != 150 {
		t.Fatalf("Scan gave %d traces, want 150", len(got))
	}
	for i, tr := range got {
		want := batch[447-3*i]
		if diff := cmp.Diff(want, tr, rawJSON); diff != "" {
			t.Fatalf("Scan trace %d (-want +got):\n%s", i, diff)
		}
	}
	stop := errors.New("stop")
	n := 0
	err = traces.Scan(context.Background(), s, traces.Query{}, func(*traces.Trace) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("Scan with failing callback = %v after %d calls, want stop after 3", err, n)
	}
}
