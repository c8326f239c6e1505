package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"opentracy/backend/traces"
)

// benchTrace is a typical chat trace: a system prompt and a question in, an answer out, one
// attempt, metadata, spread over models, providers and statuses; about 1 KB.
func benchTrace(i int, start time.Time) *traces.Trace {
	started := start.Add(time.Duration(i) * time.Millisecond)
	model := []string{"gpt-4o", "claude-sonnet-4", "llama-3.3-70b", "mistral-large"}[i%4]
	provider := []string{"openai", "anthropic", "groq"}[i%3]
	status := 200
	if i%17 == 0 {
		status = 500
	}
	id := uuid.Must(uuid.NewV7())
	return &traces.Trace{
		ID:             id.String(),
		StartedAt:      started,
		Endpoint:       "chat.completions",
		RequestedModel: model,
		Model:          model,
		Provider:       provider,
		Attempts: []traces.Attempt{{Provider: provider, Model: model, StartedAt: started,
			LatencyMillis: float64(i % 3000), Status: status}},
		Status:        status,
		LatencyMillis: float64(i % 3000),
		TTFTMillis:    float64(i % 300),
		Stream:        i%2 == 0,
		Usage:         traces.Usage{PromptTokens: 40 + i%500, CompletionTokens: 20 + i%300, CachedTokens: i % 40},
		CostUSD:       float64(i%100) / 1000,
		FinishReason:  "stop",
		Input: json.RawMessage(fmt.Sprintf(`[{"role":"system","content":"You are a helpful assistant that answers briefly and cites sources."},`+
			`{"role":"user","content":"Summarise document %d in three bullet points, please. Focus on the financial figures and the risks."}]`, i)),
		Output:    json.RawMessage(fmt.Sprintf(`[{"index":0,"message":{"role":"assistant","content":"- Revenue for document %d grew 12%% year over year.\n- Margins narrowed on higher input costs.\n- The main risk is currency exposure in the second half."},"finish_reason":"stop"}]`, i)),
		Metadata:  map[string]string{"team": fmt.Sprint("team-", i%10), "env": "prod", "session": fmt.Sprint("s-", i/20)},
		User:      fmt.Sprint("user-", i%1000),
		UserAgent: "openai-python/1.54.0",
	}
}

// BenchmarkInsert writes batches of 10,000 new traces, as a busy gateway's writer (or an import)
// would, and reports rows/s; the target is at least 100,000.
func BenchmarkInsert(b *testing.B) {
	for _, c := range []struct {
		name string
		m    ch.CompressionMethod
	}{{"lz4", ch.CompressionLZ4}, {"none", ch.CompressionNone}} {
		b.Run(c.name, func(b *testing.B) {
			s := openTest(b, Options{Compression: c.m})
			defer s.Close()
			ctx := context.Background()
			const batch = 10_000
			start := time.Now().UTC()
			next := 0
			for b.Loop() {
				b.StopTimer()
				tr := make([]*traces.Trace, batch)
				for i := range tr {
					tr[i] = benchTrace(next, start)
					next++
				}
				b.StartTimer()
				if err := s.Write(ctx, tr); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
