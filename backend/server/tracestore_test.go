package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"opentracy/backend/providers/openai/openaitest"
	"opentracy/backend/traces"
	"opentracy/backend/traces/sqlite"
)

// TestEveryRequestIsStoredDurably: N requests through the gateway give exactly N traces in the
// data dir's SQLite store once the server has shut down (the writer drains on shutdown).
func TestEveryRequestIsStoredDurably(t *testing.T) {
	fake := openaitest.New()
	defer fake.Close()
	dataDir := t.TempDir()
	ts := startServer(t, func(o *Options) {
		o.Config.DataDir = dataDir
		o.Env = envOf(map[string]string{"OPENAI_API_KEY": "sk-upstream", "OPENAI_BASE_URL": fake.BaseURL()})
	})
	const n = 40
	ids := map[string]bool{}
	client := sdkClient(ts, testKey)
	for i := range n {
		req := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Hello"}}}
		req.Stream = i%2 == 1
		if req.Stream {
			stream, err := client.CreateChatCompletionStream(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := stream.Recv(); err != nil {
					break
				}
			}
			ids[stream.Header().Get("X-OpenTracy-Trace-Id")] = true
			stream.Close()
			continue
		}
		resp, err := client.CreateChatCompletion(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		ids[resp.Header().Get("X-OpenTracy-Trace-Id")] = true
	}
	// /api/stats accounts for every trace handed to the writer, and none was dropped.
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := readBody(t, ts.do(t, "GET", "/api/stats", TokenHeader, testToken))
		if gjson.Get(body, "traces.recorded").Int() == n && gjson.Get(body, "traces.written").Int() == n {
			if !gjson.Get(body, "traces.durable").Bool() || gjson.Get(body, "traces.dropped").Int() != 0 {
				t.Errorf("stats %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never reached %d written: %s", n, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	store, err := sqlite.Open(context.Background(), filepath.Join(dataDir, TracesFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	page, err := store.List(context.Background(), traces.Query{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Traces) != n || len(ids) != n {
		t.Fatalf("%d traces stored, %d distinct trace ids answered; want %d", len(page.Traces), len(ids), n)
	}
	for _, s := range page.Traces {
		if !ids[s.ID] || s.Usage.PromptTokens != 19 || s.CostUSD <= 0 || s.Preview != "Hello" {
			t.Errorf("stored trace %+v", s)
		}
	}
}
