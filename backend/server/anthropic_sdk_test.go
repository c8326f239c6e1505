package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/tidwall/gjson"

	"opentracy/backend/traces"
)

func anthropicClient(ts *testServer) anthropicsdk.Client {
	return anthropicsdk.NewClient(option.WithBaseURL(ts.base+"/anthropic"), option.WithAPIKey(testKey), option.WithMaxRetries(0))
}

func hello(model string) anthropicsdk.MessageNewParams {
	return anthropicsdk.MessageNewParams{
		Model: anthropicsdk.Model(model), MaxTokens: 256,
		System:   []anthropicsdk.TextBlockParam{{Text: "Be brief."}},
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hello"))},
	}
}

// streamText runs a streamed message and returns the accumulated message.
func streamText(t *testing.T, client anthropicsdk.Client, params anthropicsdk.MessageNewParams) anthropicsdk.Message {
	t.Helper()
	stream := client.Messages.NewStreaming(t.Context(), params)
	var msg anthropicsdk.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestAnthropicSDKTranslatedToAnOpenAIProvider(t *testing.T) {
	ts, fake, sink := startWithFakeOpenAI(t)
	client := anthropicClient(ts)

	msg, err := client.Messages.New(t.Context(), hello("gpt-4o-mini"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "Hello! How can I assist you today?" || msg.StopReason != "end_turn" || msg.Usage.InputTokens != 19 {
		t.Errorf("message %+v", msg)
	}
	sent := fake.Requests()[0].Body
	if gjson.GetBytes(sent, "messages.0.role").String() != "system" || gjson.GetBytes(sent, "messages.1.content").String() != "Hello" {
		t.Errorf("translated request %s", sent)
	}

	streamed := streamText(t, client, hello("gpt-4o-mini"))
	if len(streamed.Content) != 1 || streamed.Content[0].Text != "Hello! How can I assist you today?" || streamed.Usage.OutputTokens != 10 {
		t.Errorf("streamed message %+v", streamed)
	}

	recent := waitTraces(t, sink, 2)
	for _, tr := range recent {
		if tr.Endpoint != "anthropic.messages" || tr.Provider != "openai" || tr.Usage.PromptTokens != 19 || tr.CostUSD <= 0 || tr.FinishReason != "end_turn" {
			t.Errorf("trace %+v", tr)
		}
	}
	if !recent[0].Stream || recent[1].Stream {
		t.Error("stream flags wrong")
	}
}

// fakeAnthropic serves Anthropic's documented responses (the adapter's fixtures).
type fakeAnthropic struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
}

func newFakeAnthropic(t *testing.T) *fakeAnthropic {
	t.Helper()
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "providers", "anthropic", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	message, stream := fixture("message.json"), fixture("stream_text.sse")
	f := &fakeAnthropic{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests, f.bodies = append(f.requests, r), append(f.bodies, body)
		f.mu.Unlock()
		if gjson.GetBytes(body, "stream").Bool() {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write(stream)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(message)
	}))
	t.Cleanup(f.Close)
	return f
}

func TestAnthropicSDKNativeToAnthropic(t *testing.T) {
	fake := newFakeAnthropic(t)
	sink := traces.NewMemorySink(10)
	ts := startServer(t, func(o *Options) {
		o.Sink = sink
		o.Env = envOf(map[string]string{"ANTHROPIC_API_KEY": "sk-ant-upstream", "ANTHROPIC_BASE_URL": fake.URL})
	})
	client := anthropicClient(ts)
	msg, err := client.Messages.New(t.Context(), hello("claude-sonnet-4-5"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) == 0 || msg.Content[0].Text == "" {
		t.Errorf("message %+v", msg)
	}
	streamed := streamText(t, client, hello("claude-sonnet-4-5"))
	if len(streamed.Content) == 0 || streamed.Content[0].Text == "" {
		t.Errorf("streamed %+v", streamed)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.requests) != 2 || fake.requests[0].Header.Get("X-Api-Key") != "sk-ant-upstream" {
		t.Fatalf("upstream saw %d requests, key %q", len(fake.requests), fake.requests[0].Header.Get("X-Api-Key"))
	}
	if gjson.GetBytes(fake.bodies[0], "system.0.text").String() != "Be brief." {
		t.Errorf("native body changed: %s", fake.bodies[0])
	}
	for _, tr := range waitTraces(t, sink, 2) {
		if tr.Provider != "anthropic" || tr.Usage.PromptTokens == 0 || tr.Usage.CompletionTokens == 0 || tr.CostUSD <= 0 || len(tr.Output) == 0 {
			t.Errorf("native trace %+v", tr)
		}
	}
}
