package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"opentracy/backend/traces"
	"opentracy/backend/traces/storetest"
)

// benchTrace is a small chat trace spread over models, providers, statuses and metadata.
func benchTrace(i int) *traces.Trace {
	tr := storetest.Trace(i)
	tr.ID = fmt.Sprintf("bench-%09d", i)
	tr.Model = []string{"gpt-4o", "claude", "llama", "mistral"}[i%4]
	tr.Provider = []string{"openai", "anthropic", "groq"}[i%3]
	if i%17 == 0 {
		tr.Status = 500
	}
	tr.LatencyMillis = float64(i % 3000)
	tr.CostUSD = float64(i%100) / 1000
	tr.Metadata = map[string]string{"team": fmt.Sprint("team-", i%10)}
	tr.Input = json.RawMessage(fmt.Sprintf(`[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise document %d in three bullet points, please."}]`, i))
	return tr
}

func BenchmarkWrite(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "traces.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 500
	next := 0
	for b.Loop() {
		tr := make([]*traces.Trace, batch)
		for i := range tr {
			tr[i] = benchTrace(next)
			next++
		}
		if err := s.Write(context.Background(), tr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next), "ns/trace")
}

func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "traces.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n, batch = 100_000, 2000
	start := time.Now()
	for i := 0; i < n; i += batch {
		tr := make([]*traces.Trace, batch)
		for j := range tr {
			tr[j] = benchTrace(i + j)
		}
		if err := s.Write(ctx, tr); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("setup: %d traces in %v", n, time.Since(start))
	base := storetest.Trace(0).StartedAt
	queries := map[string]traces.Query{
		"model+status": {Models: []string{"claude"}, Status: "ok", Limit: 50},
		"time+latency": {From: base.Add(10 * time.Hour), To: base.Add(20 * time.Hour), MinLatency: new(2500.0), Limit: 50},
		"metadata":     {Metadata: map[string]string{"team": "team-3"}, Limit: 50},
		// A term in every trace, and one in a few.
		"text-common": {Text: "document", Limit: 50},
		"text-rare":   {Text: "4242", Limit: 50},
	}
	for _, name := range []string{"model+status", "time+latency", "metadata", "text-common", "text-rare"} {
		q := queries[name]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				p, err := s.List(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Traces) == 0 {
					b.Fatal("empty page")
				}
			}
		})
	}
}
