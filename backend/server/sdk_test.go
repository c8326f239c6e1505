package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/sashabaranov/go-openai/jsonschema"
	"github.com/tidwall/gjson"

	"opentracy/backend/config"
	"opentracy/backend/providers/openai/openaitest"
	"opentracy/backend/traces"
)

// startWithFakeOpenAI runs the server with provider keys from the environment, as a user would:
// OPENAI_API_KEY set, OPENAI_BASE_URL pointing at a fake OpenAI upstream.
func startWithFakeOpenAI(t *testing.T) (*testServer, *openaitest.Server, *traces.MemorySink) {
	t.Helper()
	fake := openaitest.New()
	t.Cleanup(fake.Close)
	sink := traces.NewMemorySink(100)
	ts := startServer(t, func(o *Options) {
		o.Sink = sink
		o.Env = envOf(map[string]string{"OPENAI_API_KEY": "sk-upstream", "OPENAI_BASE_URL": fake.BaseURL()})
	})
	return ts, fake, sink
}

// waitTraces waits until the sink holds n traces: a trace is recorded just after its response is
// written, so a client can see the response first.
func waitTraces(t *testing.T, sink *traces.MemorySink, n int) []*traces.Trace {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for sink.Total() < uint64(n) {
		select {
		case <-sink.Changed():
		case <-deadline:
			t.Fatalf("%d traces recorded, want %d", sink.Total(), n)
		}
	}
	return sink.Recent(n)
}

// envOf is an environment holding only m.
func envOf(m map[string]string) config.Environment {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func sdkClient(ts *testServer, key string) *goopenai.Client {
	cfg := goopenai.DefaultConfig(key)
	cfg.BaseURL = ts.base + "/v1"
	return goopenai.NewClientWithConfig(cfg)
}

func TestGoOpenAIClientThroughTheGateway(t *testing.T) {
	ts, fake, sink := startWithFakeOpenAI(t)
	client := sdkClient(ts, testKey)
	ctx := t.Context()
	msgs := []goopenai.ChatCompletionMessage{{Role: "user", Content: "Hello"}}

	t.Run("chat", func(t *testing.T) {
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Message.Content != "Hello! How can I assist you today?" || resp.Usage.TotalTokens != 29 {
			t.Errorf("response %+v", resp)
		}
		if resp.Header().Get("X-OpenTracy-Provider") != "openai" {
			t.Errorf("headers %v", resp.Header())
		}
	})

	t.Run("stream", func(t *testing.T) {
		stream, err := client.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
			Model: "gpt-4o-mini", Messages: msgs, Stream: true, StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		var text strings.Builder
		var usage *goopenai.Usage
		for _, chunk := range readChatStream(t, stream) {
			if chunk.Usage != nil {
				usage = chunk.Usage
			}
			for _, c := range chunk.Choices {
				text.WriteString(c.Delta.Content)
			}
		}
		if text.String() != "Hello! How can I assist you today?" || usage == nil || usage.PromptTokens != 19 {
			t.Errorf("streamed %q usage %+v", text.String(), usage)
		}
	})

	t.Run("tools", func(t *testing.T) {
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
			Model: "gpt-4o-mini", Messages: msgs,
			Tools: []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
				Name: "get_current_weather", Parameters: jsonschema.Definition{Type: jsonschema.Object},
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		calls := resp.Choices[0].Message.ToolCalls
		if len(calls) != 2 || calls[1].Function.Arguments != `{"location": "Paris"}` || resp.Choices[0].FinishReason != "tool_calls" {
			t.Errorf("tool calls %+v", calls)
		}
	})

	t.Run("streamed tools", func(t *testing.T) {
		stream, err := client.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
			Model: "gpt-4o-mini", Messages: msgs, Stream: true,
			Tools: []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{Name: "get_current_weather"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		args := map[int]string{}
		for _, chunk := range readChatStream(t, stream) {
			for _, c := range chunk.Choices {
				for _, tc := range c.Delta.ToolCalls {
					args[*tc.Index] += tc.Function.Arguments
				}
			}
		}
		if args[0] != `{"location": "Boston, MA"}` || args[1] != `{"location": "Paris"}` {
			t.Errorf("streamed tool arguments %v", args)
		}
	})

	t.Run("json_schema", func(t *testing.T) {
		schema := json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"],"additionalProperties":false}`)
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
			Model: "gpt-4o-mini", Messages: msgs,
			ResponseFormat: &goopenai.ChatCompletionResponseFormat{Type: goopenai.ChatCompletionResponseFormatTypeJSONSchema,
				JSONSchema: &goopenai.ChatCompletionResponseFormatJSONSchema{Name: "answer", Schema: schema, Strict: true}},
		})
		if err != nil {
			t.Fatal(err)
		}
		reqs := fake.Requests()
		sent := reqs[len(reqs)-1].Body
		if got := gjson.GetBytes(sent, "response_format.json_schema.schema").Raw; got != string(schema) {
			t.Errorf("schema reached the upstream as %s", got)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		resp, err := client.CreateEmbeddings(ctx, goopenai.EmbeddingRequest{Model: goopenai.SmallEmbedding3, Input: []string{"The food was delicious"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 1 || len(resp.Data[0].Embedding) != 3 {
			t.Errorf("embeddings %+v", resp)
		}
	})

	t.Run("models", func(t *testing.T) {
		if _, err := client.ListModels(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		_, err := sdkClient(ts, "ot-wrong").CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs})
		var apiErr *goopenai.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 401 || apiErr.Code != "invalid_api_key" {
			t.Errorf("err = %v", err)
		}
	})

	// Every call through the gateway left a trace, with cost from the built-in price table.
	waitTraces(t, sink, 6)
	if got := sink.Total(); got != 6 {
		t.Errorf("%d traces, want 6 (one per gateway call)", got)
	}
	for _, tr := range sink.Recent(0) {
		if tr.Endpoint == "chat.completions" && tr.CostUSD <= 0 {
			t.Errorf("trace %s has no cost: %+v", tr.ID, tr.Usage)
		}
	}
	// The upstream got the provider key from the environment, never the gateway key.
	for _, r := range fake.Requests() {
		if r.Header.Get("Authorization") != "Bearer sk-upstream" {
			t.Errorf("upstream auth %q", r.Header.Get("Authorization"))
		}
	}
}

func TestProvidersAndAliasesAPI(t *testing.T) {
	ts, fake, _ := startWithFakeOpenAI(t)
	resp := ts.do(t, "GET", "/api/providers", TokenHeader, testToken)
	body := readBody(t, resp)
	if resp.StatusCode != 200 || gjson.Get(body, "0.name").String() != "openai" || !gjson.Get(body, "0.keySet").Bool() ||
		gjson.Get(body, "0.keyFrom").String() != "$OPENAI_API_KEY" || gjson.Get(body, "0.baseURL").String() != fake.BaseURL() {
		t.Fatalf("providers %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "sk-upstream") {
		t.Fatal("a provider key was returned by the API")
	}
	check := readBody(t, ts.do(t, "POST", "/api/providers/openai/check", TokenHeader, testToken))
	if !gjson.Get(check, "ok").Bool() {
		t.Errorf("check %s", check)
	}

	put := func(body string) *http.Response {
		req, _ := http.NewRequest("PUT", ts.base+"/api/aliases/smart", strings.NewReader(body))
		req.Header.Set(TokenHeader, testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := put(`{"strategy":"fallback","targets":[{"model":"openai/gpt-4o-mini"}]}`); resp.StatusCode != 200 {
		t.Fatalf("put alias: %d %s", resp.StatusCode, readBody(t, resp))
	}
	wantError(t, put(`{"targets":[]}`), 400, "invalid_alias")
	wantError(t, put(`{"targets":[{"model":"x"}],"bogus":1}`), 400, "invalid_json")

	// The new alias routes right away.
	chat, err := sdkClient(ts, testKey).CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{
		Model: "smart", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Hi"}}})
	if err != nil || chat.Header().Get("X-OpenTracy-Model") != "gpt-4o-mini" {
		t.Fatalf("chat via alias: %v %v", err, chat.Header())
	}
	hist := readBody(t, ts.do(t, "GET", "/api/aliases/smart/history", TokenHeader, testToken))
	if gjson.Get(hist, "#").Int() != 1 || gjson.Get(hist, "0.by").String() != "ui" {
		t.Errorf("history %s", hist)
	}
	list := readBody(t, ts.do(t, "GET", "/api/aliases", TokenHeader, testToken))
	if gjson.Get(list, "0.name").String() != "smart" || gjson.Get(list, "0.strategy").String() != "fallback" {
		t.Errorf("aliases %s", list)
	}
}

// readChatStream reads a go-openai chat stream to its end and returns its chunks.
func readChatStream(t *testing.T, stream *goopenai.ChatCompletionStream) []goopenai.ChatCompletionStreamResponse {
	t.Helper()
	var chunks []goopenai.ChatCompletionStreamResponse
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return chunks
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, chunk)
	}
}

// gatedSink holds each Record until open is closed.
type gatedSink struct {
	open     chan struct{}
	recorded chan *traces.Trace
}

func (s *gatedSink) Record(t *traces.Trace) {
	<-s.open
	s.recorded <- t
}

// A streamed answer ends for the client before its trace is recorded: a client reading to the end
// of the body (as the openai Node SDK does after [DONE]) does not wait for trace capture.
func TestStreamEndsBeforeItsTraceIsRecorded(t *testing.T) {
	fake := openaitest.New()
	t.Cleanup(fake.Close)
	sink := &gatedSink{open: make(chan struct{}), recorded: make(chan *traces.Trace, 1)}
	ts := startServer(t, func(o *Options) {
		o.Sink = sink
		o.Env = envOf(map[string]string{"OPENAI_API_KEY": "sk-upstream", "OPENAI_BASE_URL": fake.BaseURL()})
	})
	var openOnce sync.Once
	release := func() { openOnce.Do(func() { close(sink.open) }) }
	t.Cleanup(release) // before the server shuts down, even when the test fails early
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", ts.base+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body) // to EOF, while the trace is held
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read the stream to its end while its trace waits: %v", err)
	}
	if !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Errorf("stream %q", body)
	}
	release()
	select {
	case tr := <-sink.recorded:
		if !tr.Stream || tr.Status != 200 {
			t.Errorf("trace: stream %v status %d", tr.Stream, tr.Status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no trace recorded")
	}
}
