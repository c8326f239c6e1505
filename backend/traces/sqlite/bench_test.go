package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"opentracy/backend/traces"
)

// warmUp traces are written before a write benchmark's timer starts.
const warmUp = 1000

// genBatch returns fixture traces [from, from+n), generated before the timer runs.
func genBatch(from, n int) []*traces.Trace {
	out := make([]*traces.Trace, n)
	for i := range out {
		out[i] = genTrace(from + i)
	}
	return out
}

// writeBench writes b.N traces in batches of 500 (the Writer's batch size) and reports the
// throughput and the CPU time per trace.
func writeBench(b *testing.B, s *Store, first int) {
	ctx := context.Background()
	const batch = 500
	// A warm-up fills the caches, as in a process that has been writing for a while.
	if err := s.Write(ctx, genBatch(first, warmUp)); err != nil {
		b.Fatal(err)
	}
	all := genBatch(first+warmUp, b.N)
	// Write runs on this thread, SQLite included: its CPU time is the writing goroutine's cost
	// whatever else the machine runs (the background checkpoints are on another thread).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	cpu, thread := cpuTime(b), threadCPUTime()
	for i := 0; i < len(all); i += batch {
		if err := s.Write(ctx, all[i:min(i+batch, len(all))]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/trace")
	if t := threadCPUTime(); t > 0 {
		b.ReportMetric(float64(t-thread)/float64(time.Microsecond)/float64(b.N), "write-µs/trace")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "traces/s")
}

// BenchmarkWrite is Store.Write into an empty database; one op is one trace.
func BenchmarkWrite(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "traces.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	writeBench(b, s, 0)
}

// Benchmark1MWrite is Store.Write into a copy of the 1M-trace database.
func Benchmark1MWrite(b *testing.B) {
	s, err := Open(context.Background(), copyFixture(b, b.TempDir()), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	writeBench(b, s, fixtureTraces)
}

// Benchmark1MIngest is the gateway's path: Record into a Writer with its journal, in front of a
// copy of the 1M-trace database. One op is one trace; the time runs until the store has written
// them all, so traces/s is the sustained rate and nothing may be dropped.
func Benchmark1MIngest(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	s, err := Open(ctx, copyFixture(b, dir), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	w, err := traces.NewWriter(s, traces.WriterOptions{JournalDir: filepath.Join(dir, "journal")})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for _, t := range genBatch(fixtureTraces, warmUp) {
		w.Record(t)
	}
	for w.Stats().Written < warmUp {
		time.Sleep(5 * time.Millisecond)
	}
	all := genBatch(fixtureTraces+warmUp, b.N)
	b.ResetTimer()
	cpu := cpuTime(b)
	for _, t := range all {
		w.Record(t)
	}
	recorded := b.Elapsed()
	for w.Stats().Written < uint64(warmUp+b.N) {
		if st := w.Stats(); st.Dropped > 0 || st.Rejected > 0 {
			b.Fatalf("dropped %d traces, rejected %d", st.Dropped, st.Rejected)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	st := w.Stats()
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if st.Dropped > 0 {
		b.Fatalf("dropped %d traces", st.Dropped)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "traces/s")
	b.ReportMetric(float64(b.N)/recorded.Seconds(), "recorded/s")
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/trace")
	b.ReportMetric(float64(st.Dropped), "dropped")
}

// open1M opens the shared 1M-trace fixture once per process, for the read benchmarks.
func open1M(b *testing.B) *Store {
	b.Helper()
	path := fixture(b)
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// reportMillis prints the mean time per op in milliseconds, the unit of the targets.
func reportMillis(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

// cursorAt is a cursor that continues a listing from the traces started before t: a deep page.
func cursorAt(b *testing.B, s *Store, q traces.Query, t time.Time) string {
	b.Helper()
	q.To, q.Limit = t, 1
	p, err := s.List(context.Background(), q)
	if err != nil || len(p.Traces) == 0 {
		b.Fatalf("cursor at %v: %v (%d traces)", t, err, len(p.Traces))
	}
	return traces.EncodeCursor(p.Traces[0].StartedAt.UnixNano(), p.Traces[0].ID)
}

// Benchmark1MList is one page of 50 summaries over 1M traces, for each common filter.
func Benchmark1MList(b *testing.B) {
	s := open1M(b)
	ctx := context.Background()
	end := fixtureEnd
	md := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name  string
		q     traces.Query
		empty bool // no trace matches
	}{
		{name: "none", q: traces.Query{}},
		{name: "model", q: traces.Query{Models: []string{"gpt-4o"}}},
		{name: "model-rare", q: traces.Query{Models: []string{"o3-mini"}}},
		{name: "models-2", q: traces.Query{Models: []string{"gpt-4o", "claude-sonnet-4"}}},
		{name: "provider", q: traces.Query{Providers: []string{"anthropic"}}},
		{name: "alias", q: traces.Query{Aliases: []string{"smart"}}},
		{name: "endpoint-rare", q: traces.Query{Endpoints: []string{"completions"}}},
		{name: "status-error", q: traces.Query{Status: "error"}},
		{name: "status-ok", q: traces.Query{Status: "ok"}},
		{name: "metadata", q: traces.Query{Metadata: md("team", "billing")}},
		{name: "metadata-2", q: traces.Query{Metadata: md("team", "billing", "env", "dev")}},
		{name: "cost-range", q: traces.Query{MinCostUSD: new(0.02), MaxCostUSD: new(0.03)}},
		{name: "cost-top", q: traces.Query{MinCostUSD: new(0.025)}},
		{name: "cost-low", q: traces.Query{MaxCostUSD: new(0.0001)}},
		{name: "latency-slow", q: traces.Query{MinLatency: new(20_000.0)}},
		{name: "tokens-range", q: traces.Query{MinTokens: new(4000), MaxTokens: new(4100)}},
		{name: "time-day", q: traces.Query{From: end.Add(-8 * 24 * time.Hour), To: end.Add(-7 * 24 * time.Hour)}},
		{name: "time-hour+model", q: traces.Query{From: end.Add(-49 * time.Hour), To: end.Add(-48 * time.Hour), Models: []string{"gpt-4o"}}},
		{name: "text-common", q: traces.Query{Text: termCommon}},
		{name: "text-uncommon", q: traces.Query{Text: termUncommon}},
		{name: "text-rare", q: traces.Query{Text: termRare}},
		{name: "text-system", q: traces.Query{Text: termSystem}},
		{name: "text-none", q: traces.Query{Text: termNone}, empty: true},
		{name: "text-2-common", q: traces.Query{Text: termCommon + " report"}},
		{name: "model+metadata", q: traces.Query{Models: []string{"claude-sonnet-4"}, Metadata: md("team", "search")}},
		{name: "model+text-common", q: traces.Query{Models: []string{"gpt-4o"}, Text: termCommon}},
		{name: "model+text-uncommon", q: traces.Query{Models: []string{"gpt-4o"}, Text: termUncommon}},
		{name: "error+metadata", q: traces.Query{Status: "error", Metadata: md("team", "ads")}},
		{name: "metadata+text-common", q: traces.Query{Metadata: md("team", "legal"), Text: termCommon}},
		{name: "time-week+text-common", q: traces.Query{From: end.Add(-14 * 24 * time.Hour), To: end.Add(-7 * 24 * time.Hour), Text: termCommon}},
	}
	deep := end.Add(-15 * 24 * time.Hour)
	for _, base := range []string{"none", "model", "metadata", "status-error", "text-common"} {
		for _, c := range cases {
			if c.name == base {
				q := c.q
				q.Cursor = cursorAt(b, s, q, deep)
				cases = append(cases, struct {
					name  string
					q     traces.Query
					empty bool
				}{name: "deep-" + base, q: q})
			}
		}
	}
	for _, c := range cases {
		c.q.Limit = 50
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				p, err := s.List(ctx, c.q)
				if err != nil {
					b.Fatal(err)
				}
				if (len(p.Traces) == 0) != c.empty {
					b.Fatalf("%d traces", len(p.Traces))
				}
			}
			reportMillis(b)
		})
	}
}

// Benchmark1MAggregate is the Overview's charts over 1M traces.
func Benchmark1MAggregate(b *testing.B) {
	s := open1M(b)
	ctx := context.Background()
	end := fixtureEnd
	cases := []struct {
		name string
		q    traces.AggregateQuery
	}{
		{"24h-1h", traces.AggregateQuery{Query: traces.Query{From: end.Add(-24 * time.Hour), To: end}, Bucket: time.Hour}},
		{"24h-1h-model", traces.AggregateQuery{Query: traces.Query{From: end.Add(-24 * time.Hour), To: end}, Bucket: time.Hour, GroupBy: "model"}},
		{"24h-1h-provider", traces.AggregateQuery{Query: traces.Query{From: end.Add(-24 * time.Hour), To: end}, Bucket: time.Hour, GroupBy: "provider"}},
		{"7d-1h", traces.AggregateQuery{Query: traces.Query{From: end.Add(-7 * 24 * time.Hour), To: end}, Bucket: time.Hour}},
		{"7d-1h-model", traces.AggregateQuery{Query: traces.Query{From: end.Add(-7 * 24 * time.Hour), To: end}, Bucket: time.Hour, GroupBy: "model"}},
		{"7d-1h-provider", traces.AggregateQuery{Query: traces.Query{From: end.Add(-7 * 24 * time.Hour), To: end}, Bucket: time.Hour, GroupBy: "provider"}},
		{"7d-1h-filtered", traces.AggregateQuery{Query: traces.Query{From: end.Add(-7 * 24 * time.Hour), To: end, Models: []string{"gpt-4o"}}, Bucket: time.Hour}},
		{"7d-1h-metadata", traces.AggregateQuery{Query: traces.Query{From: end.Add(-7 * 24 * time.Hour), To: end, Metadata: map[string]string{"team": "billing"}}, Bucket: time.Hour}},
		{"30d-1d", traces.AggregateQuery{Query: traces.Query{From: end.Add(-30 * 24 * time.Hour), To: end}, Bucket: 24 * time.Hour}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				a, err := s.Aggregate(ctx, c.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(a.Series) == 0 {
					b.Fatal("no series")
				}
			}
			reportMillis(b)
		})
	}
}
