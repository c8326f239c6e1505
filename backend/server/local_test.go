package server

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"opentracy/backend/pricing"
	"opentracy/backend/providers/local"
	"opentracy/backend/providers/local/localtest"
	"opentracy/backend/traces"
	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/tokenizer"
)

// startWithLocalModel runs the server over a data dir holding the tiny model as models/tiny, on
// GoMLX's CPU backend.
func startWithLocalModel(t *testing.T) (*testServer, *traces.MemorySink, *local.Provider, string) {
	t.Helper()
	data := t.TempDir()
	dir := localtest.WriteModel(t, data, "tiny", 0)
	sink := traces.NewMemorySink(100)
	ts := startServer(t, func(o *Options) {
		o.Config.DataDir = data
		o.Sink = sink
		o.Env = envOf(map[string]string{"GOMLX_BACKEND": "go"})
	})
	var lp *local.Provider
	for _, p := range ts.providers.list() {
		if p, ok := p.provider.(*local.Provider); ok {
			lp = p
		}
	}
	if lp == nil {
		t.Fatal("no local provider")
	}
	t.Cleanup(lp.Close) // before the server shuts down: no request runs by then
	return ts, sink, lp, dir
}

// promptTokens counts the tokens of msgs as the Qwen3 template renders them with thinking off.
func promptTokens(t *testing.T, dir string, msgs []chat.Message) int {
	t.Helper()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	off := false
	text, err := chat.Qwen3().Render(msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: &off})
	if err != nil {
		t.Fatal(err)
	}
	return len(tok.Encode(text, false))
}

func TestLocalModelThroughTheGateway(t *testing.T) {
	ts, sink, lp, dir := startWithLocalModel(t)
	client := sdkClient(ts, testKey)
	ctx := t.Context()
	msgs := []goopenai.ChatCompletionMessage{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Say hello"}}
	wantPrompt := promptTokens(t, dir, []chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Say hello"}})
	seed := 7
	req := goopenai.ChatCompletionRequest{Model: "local/tiny", Messages: msgs, MaxTokens: 6, Seed: &seed}

	models, err := client.ListModels(ctx)
	if err != nil || !slices.ContainsFunc(models.Models, func(m goopenai.Model) bool { return m.ID == "local/tiny" && m.OwnedBy == "local" }) {
		t.Fatalf("models %+v, %v", models, err)
	}

	resp, err := client.CreateChatCompletion(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	text := resp.Choices[0].Message.Content
	finish := resp.Choices[0].FinishReason
	u := resp.Usage
	if text == "" || u.PromptTokens != wantPrompt || u.TotalTokens != u.PromptTokens+u.CompletionTokens ||
		!(finish == goopenai.FinishReasonLength && u.CompletionTokens == 6 || finish == goopenai.FinishReasonStop && u.CompletionTokens <= 6) {
		t.Errorf("answer %q finish %s usage %+v; want %d prompt tokens", text, finish, u, wantPrompt)
	}
	if resp.Header().Get("X-OpenTracy-Provider") != "local" || resp.Header().Get("X-OpenTracy-Model") != "tiny" {
		t.Errorf("headers %v", resp.Header())
	}

	req.Stream, req.StreamOptions = true, &goopenai.StreamOptions{IncludeUsage: true}
	stream, err := client.CreateChatCompletionStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var streamed strings.Builder
	var usage *goopenai.Usage
	var streamedFinish goopenai.FinishReason
	for _, chunk := range readChatStream(t, stream) {
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		for _, c := range chunk.Choices {
			streamed.WriteString(c.Delta.Content)
			if c.FinishReason != "" {
				streamedFinish = c.FinishReason
			}
		}
	}
	stream.Close()
	if streamed.String() != text || streamedFinish != finish || usage == nil || *usage != u {
		t.Errorf("streamed %q finish %s usage %+v; the same seed gave %q %s %+v", streamed.String(), streamedFinish, usage, text, finish, u)
	}

	_, err = client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "local/nope", Messages: msgs})
	var apiErr *goopenai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 || apiErr.Code != "model_not_found" || apiErr.Type != "invalid_request_error" {
		t.Errorf("unknown local model: %v", err)
	}

	// Each call left a trace like any provider's, priced at zero. A trace is recorded after its
	// response, so the order of the three is not known.
	var served []*traces.Trace
	for _, tr := range waitTraces(t, sink, 3) {
		if tr.RequestedModel == "local/nope" {
			if tr.Provider != "local" || tr.Status != 404 {
				t.Errorf("trace of the unknown model %+v", tr)
			}
			continue
		}
		served = append(served, tr)
		if tr.Provider != "local" || tr.Model != "tiny" || tr.RequestedModel != "local/tiny" || tr.Status != 200 || tr.CostUSD != 0 ||
			tr.Usage.PromptTokens != wantPrompt || tr.Usage.CompletionTokens != u.CompletionTokens || tr.FinishReason != string(finish) ||
			gjson.GetBytes(tr.Output, "0.message.content").String() != text {
			t.Errorf("trace %+v output %s", tr, tr.Output)
		}
	}
	if len(served) != 2 || served[0].Stream == served[1].Stream {
		t.Errorf("%d traces of local/tiny, want one streamed and one not", len(served))
	}
	if price, ok := ts.parts.priceOf("local", "tiny"); !ok || price != (pricing.Price{}) {
		t.Errorf("local price %+v %v", price, ok)
	}

	_, body := ts.send(t, "GET", "/api/providers", "")
	if p := gjson.Get(body, `#(name=="local")`); p.Get("type").String() != local.Type || p.Get("source").String() != sourceBuiltin {
		t.Errorf("providers %s", body)
	}
	if loaded := lp.Loaded(); len(loaded) != 1 || loaded[0].Requests != 2 {
		t.Errorf("loaded %+v", loaded)
	}

	// The server is reused: writing and loading the model is most of this test's time.
	t.Run("client leaves mid-stream", func(t *testing.T) { testLocalStreamCancelled(t, client, sink, lp) })
}

// testLocalStreamCancelled: a client that leaves mid-stream stops the generation. The sink holds
// three traces already.
func testLocalStreamCancelled(t *testing.T, client *goopenai.Client, sink *traces.MemorySink, lp *local.Provider) {
	before := lp.Loaded()[0].CompletionTokens
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := client.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
		Model: "local/tiny", Stream: true, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Tell me a long story"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	stream.Close()

	// The trace is recorded once the handler is done, and the handler is done once the stream it
	// relayed has stopped generating.
	tr := waitTraces(t, sink, 4)[0]
	if tr.Provider != "local" || !tr.Stream || tr.Error == "" {
		t.Errorf("trace %+v", tr)
	}
	st := lp.Loaded()
	generated := st[0].CompletionTokens - before
	// The three chunks read were the role and two tokens' text: at least 2 tokens, however
	// quickly the cancel landed.
	if len(st) != 1 || st[0].Busy || generated < 2 || generated >= localtest.MaxPositions/2 {
		t.Fatalf("after the client left: %d tokens generated, %+v", generated, st)
	}
	time.Sleep(100 * time.Millisecond)
	if again := lp.Loaded(); again[0].CompletionTokens != st[0].CompletionTokens {
		t.Errorf("generation went on after the client left: %d, then %d tokens", st[0].CompletionTokens, again[0].CompletionTokens)
	}
}
