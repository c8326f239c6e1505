package local_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/compute"
	"github.com/tidwall/gjson"

	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
	"opentracy/backend/providers/local"
	"opentracy/backend/providers/local/localtest"
	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/generate"
	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/tokenizer"
	"opentracy/gpu/worker"
)

// goEnv selects GoMLX's CPU backend explicitly, as a test must (the provider defaults to it too).
func goEnv(extra ...string) config.Environment {
	m := map[string]string{compute.ConfigEnvVar: "go"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func newProvider(t *testing.T, dataDir string, maxLoaded int) *local.Provider {
	t.Helper()
	p, err := local.New(local.Options{DataDir: dataDir, MaxLoaded: maxLoaded, Env: goEnv()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// envWorker makes the test binary an engine worker: the child-mode tests run it as one.
const envWorker = "OPENTRACY_LOCAL_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(envWorker) == "1" {
		os.Exit(worker.Main(context.Background(), nil, os.Stderr))
	}
	os.Setenv(envWorker, "1") // inherited by the workers the tests start, and only by them
	code := m.Run()
	shared.close()
	os.Exit(code)
}

// shared is what most tests use: the tiny model written once as "tiny", one provider serving it
// and the engine's own copy of it for reference answers. Writing the model and loading its
// 151k-token tokenizer take seconds under -race, so they happen once per test binary.
var shared fixture

type fixture struct {
	mu    sync.Mutex
	root  string
	data  string // the data dir
	dir   string // models/tiny
	p     *local.Provider
	model *lm.Model
	tok   *tokenizer.Tokenizer
}

func (f *fixture) get(t *testing.T) *fixture {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok != nil {
		return f
	}
	f.close()
	var err error
	if f.root, err = os.MkdirTemp("", "local-provider-test-"); err != nil {
		t.Fatal(err)
	}
	f.data = filepath.Join(f.root, "data")
	f.dir = localtest.WriteModel(t, f.data, "tiny", 0)
	if f.p, err = local.New(local.Options{DataDir: f.data, MaxLoaded: 2, Env: goEnv()}); err != nil {
		t.Fatal(err)
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	if f.model, err = lm.Load(t.Context(), b, f.dir, lm.Options{}); err != nil {
		t.Fatal(err)
	}
	if f.tok, err = tokenizer.Load(f.dir); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) close() {
	if f.p != nil {
		f.p.Close()
	}
	if f.model != nil {
		f.model.Close()
	}
	if f.root != "" {
		os.RemoveAll(f.root)
	}
	f.root, f.data, f.dir, f.p, f.model, f.tok = "", "", "", nil, nil, nil
}

// loaded returns the provider's record of one loaded model.
func loaded(t *testing.T, p *local.Provider, name string) local.LoadedModel {
	t.Helper()
	for _, m := range p.Loaded() {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("%s is not loaded: %+v", name, p.Loaded())
	return local.LoadedModel{}
}

const hello = `[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello"}]`

var helloMsgs = []chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Say hello"}}

func send(ctx context.Context, p *local.Provider, model, body string) (*providers.Response, error) {
	return p.Chat(ctx, &providers.Request{Body: []byte(body), Model: model, Stream: gjson.Get(body, "stream").Bool()})
}

// complete sends a non-streaming request and returns the parsed answer.
func complete(t *testing.T, p *local.Provider, model, body string) gjson.Result {
	t.Helper()
	resp, err := send(t.Context(), p, model, body)
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || !json.Valid(data) {
		t.Fatalf("status %d body %s", resp.Status, data)
	}
	return gjson.ParseBytes(data)
}

// reference generates what the provider should answer, straight from the engine: the messages
// rendered by the Qwen3 template, greedy decoding.
func (f *fixture) reference(t *testing.T, msgs []chat.Message, thinking bool, maxTokens int) generate.Result {
	t.Helper()
	text, err := chat.Qwen3().Render(msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: &thinking})
	if err != nil {
		t.Fatal(err)
	}
	res, err := generate.GenerateText(t.Context(), generate.FromModel(f.model), f.tok, []string{text}, generate.Params{MaxTokens: maxTokens}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func TestChatMatchesTheEngine(t *testing.T) {
	f := shared.get(t)
	p := f.p
	want := f.reference(t, helloMsgs, false, 6)
	before := p.Loaded()
	if want.Text == "" || want.FinishReason != generate.FinishLength {
		t.Fatalf("the tiny model's greedy answer %q (%s) proves little", want.Text, want.FinishReason)
	}
	got := complete(t, p, "tiny", `{"model":"local/tiny","messages":`+hello+`,"max_tokens":6,"temperature":0}`)

	if got.Get("object").String() != "chat.completion" || !strings.HasPrefix(got.Get("id").String(), "chatcmpl-") ||
		got.Get("model").String() != "tiny" || got.Get("created").Int() == 0 {
		t.Errorf("envelope %s", got.Raw)
	}
	choice := got.Get("choices.0")
	if choice.Get("message.role").String() != "assistant" || choice.Get("message.content").String() != want.Text ||
		choice.Get("finish_reason").String() != string(want.FinishReason) {
		t.Errorf("choice %s, want content %q finish %s", choice.Raw, want.Text, want.FinishReason)
	}
	u := got.Get("usage")
	if u.Get("prompt_tokens").Int() != int64(want.PromptTokens) || u.Get("completion_tokens").Int() != int64(want.CompletionTokens) ||
		u.Get("total_tokens").Int() != int64(want.PromptTokens+want.CompletionTokens) {
		t.Errorf("usage %s, want prompt %d completion %d", u.Raw, want.PromptTokens, want.CompletionTokens)
	}
	if want.CompletionTokens != 6 {
		t.Errorf("finished by length after %d tokens", want.CompletionTokens)
	}

	// max_completion_tokens works too, and a seed does not matter to greedy decoding.
	again := complete(t, p, "tiny", `{"messages":`+hello+`,"max_completion_tokens":6,"temperature":0,"seed":3}`)
	if again.Get("choices.0.message.content").String() != want.Text {
		t.Errorf("second answer %s", again.Raw)
	}
	st := loaded(t, p, "tiny")
	if len(before) > 0 {
		b := before[slices.IndexFunc(before, func(m local.LoadedModel) bool { return m.Name == "tiny" })]
		st.Requests -= b.Requests
		st.CompletionTokens -= b.CompletionTokens
	}
	if st.Requests != 2 || st.CompletionTokens != int64(2*want.CompletionTokens) {
		t.Errorf("loaded %+v", st)
	}
}

func TestThinkingIsOffUnlessAsked(t *testing.T) {
	f := shared.get(t)
	p := f.p
	off := f.reference(t, helloMsgs, false, 1)
	on := f.reference(t, helloMsgs, true, 1)
	if off.PromptTokens == on.PromptTokens {
		t.Fatal("the renderings with and without thinking have the same length")
	}
	for body, want := range map[string]int{
		`{"messages":` + hello + `,"max_tokens":1}`:                                                 off.PromptTokens,
		`{"messages":` + hello + `,"max_tokens":1,"reasoning_effort":"none"}`:                       off.PromptTokens,
		`{"messages":` + hello + `,"max_tokens":1,"reasoning_effort":"low"}`:                        on.PromptTokens,
		`{"messages":` + hello + `,"max_tokens":1,"chat_template_kwargs":{"enable_thinking":true}}`: on.PromptTokens,
	} {
		if got := complete(t, p, "tiny", body).Get("usage.prompt_tokens").Int(); got != int64(want) {
			t.Errorf("%s: prompt_tokens %d, want %d", body, got, want)
		}
	}
}

// TestPromptRendering checks the prompt a request becomes by its length in tokens, against the
// template rendering it should be: tools, tool calls and results, developer messages and
// response_format all reach the template.
func TestPromptRendering(t *testing.T) {
	f := shared.get(t)
	off := false
	tool := json.RawMessage(`{"type":"function","function":{"name":"weather","description":"Weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}`)
	call := []chat.ToolCall{{ID: "call_1", Type: "function", Function: chat.FunctionCall{Name: "weather", Arguments: json.RawMessage(`"{\"city\":\"Paris\"}"`)}}}
	for name, tc := range map[string]struct {
		body  string
		msgs  []chat.Message
		tools []json.RawMessage
	}{
		"tools":            {`{"messages":` + hello + `,"tools":[` + string(tool) + `]}`, helloMsgs, []json.RawMessage{tool}},
		"tool_choice none": {`{"messages":` + hello + `,"tools":[` + string(tool) + `],"tool_choice":"none"}`, helloMsgs, nil},
		"tool round trip": {`{"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"sunny"}],"tools":[` + string(tool) + `]}`,
			[]chat.Message{{Role: "user", Content: "Weather?"}, {Role: "assistant", ToolCalls: call}, {Role: "tool", ToolCallID: "call_1", Content: "sunny"}}, []json.RawMessage{tool}},
		"developer and parts": {`{"messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Say"},{"type":"text","text":"hello"}]}]}`,
			[]chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Say\nhello"}}, nil},
		"json mode": {`{"messages":` + hello + `,"response_format":{"type":"json_object"}}`,
			[]chat.Message{{Role: "system", Content: "Be brief.\n\n" + chatwire.ResponseFormatInstruction(&chatwire.ResponseFormat{Type: "json_object"})}, helloMsgs[1]}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			text, err := chat.Qwen3().Render(tc.msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: &off, Tools: tc.tools})
			if err != nil {
				t.Fatal(err)
			}
			want := len(f.tok.Encode(text, false))
			body := strings.Replace(tc.body, `{"messages"`, `{"max_tokens":1,"messages"`, 1)
			if got := complete(t, f.p, "tiny", body).Get("usage.prompt_tokens").Int(); got != int64(want) {
				t.Errorf("prompt_tokens %d, want %d for\n%s", got, want, text)
			}
		})
	}
}

func TestStopSequence(t *testing.T) {
	p := shared.get(t).p
	full := complete(t, p, "tiny", `{"messages":`+hello+`,"max_tokens":8,"temperature":0}`).Get("choices.0.message.content").String()
	runes := []rune(full)
	if len(runes) < 6 {
		t.Fatalf("greedy answer %q is too short to cut", full)
	}
	stop := string(runes[3:5])
	want := full[:strings.Index(full, stop)]
	body, _ := json.Marshal(map[string]any{"messages": json.RawMessage(hello), "max_tokens": 8, "temperature": 0, "stop": []string{stop}})
	got := complete(t, p, "tiny", string(body))
	if got.Get("choices.0.message.content").String() != want || got.Get("choices.0.finish_reason").String() != "stop" {
		t.Errorf("stop %q: got %s, want content %q", stop, got.Get("choices.0").Raw, want)
	}
}

// events splits an SSE body into its events' data, checking every event is one data line.
func events(t *testing.T, body []byte) []string {
	t.Helper()
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		t.Fatalf("stream does not end with a blank line: %q", body)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("event %q is not a single data line", ev)
		}
		out = append(out, data)
	}
	return out
}

func TestStreamBytes(t *testing.T) {
	p := shared.get(t).p
	whole := complete(t, p, "tiny", `{"messages":`+hello+`,"max_tokens":8,"temperature":0}`)
	resp, err := send(t.Context(), p, "tiny", `{"messages":`+hello+`,"max_tokens":8,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	evs := events(t, body)
	if len(evs) < 4 {
		t.Fatalf("%d events: %s", len(evs), body)
	}
	first := gjson.Parse(evs[0])
	id, created := first.Get("id").String(), first.Get("created").Int()
	// OpenAI's first chunk, byte for byte: the role, empty content, no finish_reason.
	wantFirst := fmt.Sprintf(`{"id":"%s","object":"chat.completion.chunk","created":%d,"model":"tiny","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`, id, created)
	if evs[0] != wantFirst || !strings.HasPrefix(id, "chatcmpl-") {
		t.Errorf("first event\n%s\nwant\n%s", evs[0], wantFirst)
	}
	n := len(evs)
	if evs[n-1] != "[DONE]" {
		t.Errorf("last event %q", evs[n-1])
	}
	wantUsage := fmt.Sprintf(`{"id":"%s","object":"chat.completion.chunk","created":%d,"model":"tiny","choices":[],"usage":%s}`, id, created, whole.Get("usage").Raw)
	if evs[n-2] != wantUsage {
		t.Errorf("usage event\n%s\nwant\n%s", evs[n-2], wantUsage)
	}
	finish := whole.Get("choices.0.finish_reason").String()
	wantFinish := fmt.Sprintf(`{"id":"%s","object":"chat.completion.chunk","created":%d,"model":"tiny","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"%s"}]}`, id, created, finish)
	if evs[n-3] != wantFinish {
		t.Errorf("finish event\n%s\nwant\n%s", evs[n-3], wantFinish)
	}
	var text strings.Builder
	for _, ev := range evs[1 : n-3] {
		c := gjson.Parse(ev)
		delta := c.Get("choices.0.delta")
		if c.Get("id").String() != id || c.Get("object").String() != "chat.completion.chunk" || c.Get("choices.0.finish_reason").Type != gjson.Null ||
			len(delta.Map()) != 1 || !delta.Get("content").Exists() || c.Get("usage").Exists() {
			t.Errorf("content event %s", ev)
		}
		text.WriteString(delta.Get("content").String())
	}
	if text.String() == "" || text.String() != whole.Get("choices.0.message.content").String() {
		t.Errorf("streamed %q, whole answer %q", text.String(), whole.Get("choices.0.message.content").String())
	}

	// Without include_usage, no usage chunk.
	resp, err = send(t.Context(), p, "tiny", `{"messages":`+hello+`,"max_tokens":2,"stream":true}`)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	evs = events(t, body)
	if strings.Contains(string(body), `"usage"`) || evs[len(evs)-1] != "[DONE]" || gjson.Get(evs[len(evs)-2], "choices.0.finish_reason").String() == "" {
		t.Errorf("stream without usage: %s", body)
	}
}

// wantError checks a refusal: its status and OpenAI-shaped body with code.
func wantError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var perr *providers.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v (%T), want a *providers.Error", err, err)
	}
	b := gjson.ParseBytes(perr.Body)
	if perr.Status != status || b.Get("error.code").String() != code || b.Get("error.message").String() == "" || b.Get("error.type").String() == "" {
		t.Errorf("error %d %s, want %d %s", perr.Status, perr.Body, status, code)
	}
}

func TestRefusals(t *testing.T) {
	p := shared.get(t).p
	long := strings.Repeat("word ", localtest.MaxPositions+10)
	for name, tc := range map[string]struct {
		model, body string
		status      int
		code        string
	}{
		"unknown model":    {"nope", `{"messages":` + hello + `}`, 404, "model_not_found"},
		"path in the name": {"../tiny", `{"messages":` + hello + `}`, 404, "model_not_found"},
		"n > 1":            {"tiny", `{"messages":` + hello + `,"n":2}`, 400, ""},
		"logprobs":         {"tiny", `{"messages":` + hello + `,"logprobs":true}`, 400, ""},
		"image":            {"tiny", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`, 400, ""},
		"no messages":      {"tiny", `{"messages":[]}`, 400, ""},
		"temperature":      {"tiny", `{"messages":` + hello + `,"temperature":3}`, 400, ""},
		"bad role":         {"tiny", `{"messages":[{"role":"function","content":"x"}]}`, 400, ""},
		"too long":         {"tiny", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "context_length_exceeded"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := send(t.Context(), p, tc.model, tc.body)
			wantError(t, err, tc.status, tc.code)
		})
	}
}

func TestModelsThatCannotBeServed(t *testing.T) {
	data := t.TempDir()
	p := newProvider(t, data, 1)
	models := filepath.Join(data, "models")

	// A download that has not finished (no manifest).
	if err := lm.InitTiny(filepath.Join(models, "partial"), lm.Qwen3); err != nil {
		t.Fatal(err)
	}
	// A family the engine does not run.
	gpt2 := filepath.Join(models, "gpt2")
	os.MkdirAll(gpt2, 0o755)
	os.WriteFile(filepath.Join(gpt2, "config.json"), []byte(`{"model_type":"gpt2"}`), 0o644)
	localtest.WriteManifest(t, gpt2)
	// Weights that do not load.
	broken := localtest.LinkModel(t, shared.get(t).dir, data, "broken")
	weights := filepath.Join(broken, "model.safetensors")
	if err := os.Remove(weights); err != nil { // a link: the shared model must stay intact
		t.Fatal(err)
	}
	if err := os.WriteFile(weights, make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	localtest.WriteManifest(t, broken)
	// A model under its repository's folder name.
	localtest.LinkModel(t, shared.get(t).dir, data, "Org--tiny")

	body := `{"messages":` + hello + `,"max_tokens":1}`
	_, err := send(t.Context(), p, "partial", body)
	wantError(t, err, 503, "model_not_ready")
	_, err = send(t.Context(), p, "gpt2", body)
	wantError(t, err, 404, "model_not_supported")
	_, err = send(t.Context(), p, "broken", body)
	wantError(t, err, 503, "model_load_failed")
	// The failure is remembered: the gateway's retries do not load the model again.
	start := time.Now()
	_, err2 := send(t.Context(), p, "broken", body)
	if err2 == nil || err2.Error() != err.Error() || time.Since(start) > time.Second {
		t.Errorf("second try: %v after %s", err2, time.Since(start))
	}
	if names, err := p.ListModels(t.Context()); err != nil || strings.Join(names, ",") != "Org--tiny,broken" {
		t.Errorf("servable models %q, %v", names, err) // broken looks ready until it is loaded
	}
	list, err := p.Registry().List()
	if err != nil || len(list) != 4 {
		t.Fatalf("list %+v %v", list, err)
	}
	for _, m := range list {
		if m.Kind != local.KindModel || (m.Name == "partial") != (m.Problem == "download not finished") ||
			(m.Name == "gpt2") != strings.Contains(m.Problem, "gpt2") || (m.Family == "qwen3") == (m.Name == "gpt2") {
			t.Errorf("%+v", m)
		}
	}
	if m, err := p.Registry().Get("Org/tiny"); err != nil || m.Name != "Org--tiny" || !m.Ready() || m.Params == 0 {
		t.Errorf("by repository: %+v %v", m, err)
	}
}

// readEvents reads n SSE events from a stream.
func readEvents(t *testing.T, br *bufio.Reader, n int) {
	t.Helper()
	for i := 0; i < n; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", i, err)
		}
		if line == "\n" {
			i++
		}
	}
}

func TestClosingTheStreamStopsGeneration(t *testing.T) {
	p := shared.get(t).p
	complete(t, p, "tiny", `{"messages":`+hello+`,"max_tokens":1}`) // loaded
	for _, how := range []string{"close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			before := loaded(t, p, "tiny")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			resp, err := send(ctx, p, "tiny", `{"messages":`+hello+`,"temperature":0,"stream":true}`)
			if err != nil {
				t.Fatal(err)
			}
			readEvents(t, bufio.NewReader(resp.Body), 3)
			if how == "cancel" {
				cancel()
			}
			resp.Body.Close() // returns once the generation has stopped
			st := loaded(t, p, "tiny")
			generated := st.CompletionTokens - before.CompletionTokens
			if st.Busy || generated < 2 || generated > 100 {
				t.Fatalf("after close: busy %v, %d tokens generated", st.Busy, generated)
			}
			time.Sleep(50 * time.Millisecond)
			if again := loaded(t, p, "tiny"); again.CompletionTokens != st.CompletionTokens {
				t.Errorf("generation went on: %d then %d tokens", st.CompletionTokens, again.CompletionTokens)
			}
		})
	}
}

func TestRequestsToOneModelTakeTurns(t *testing.T) {
	p := shared.get(t).p
	complete(t, p, "tiny", `{"messages":`+hello+`,"max_tokens":1}`) // loaded
	body := `{"messages":` + hello + `,"max_tokens":8,"temperature":0,"stream":true}`
	first, err := send(t.Context(), p, "tiny", body)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var firstDone, secondStarted time.Time
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		second, err := send(t.Context(), p, "tiny", body)
		mu.Lock()
		secondStarted = time.Now()
		mu.Unlock()
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(io.Discard, second.Body)
		second.Body.Close()
	}()
	time.Sleep(20 * time.Millisecond) // let the second request queue
	io.Copy(io.Discard, first.Body)
	mu.Lock()
	firstDone = time.Now()
	mu.Unlock()
	first.Body.Close()
	wg.Wait()
	if secondStarted.Before(firstDone) {
		t.Errorf("the second request started %s before the first ended", firstDone.Sub(secondStarted))
	}
}

func TestStudents(t *testing.T) {
	f := shared.get(t)
	p, base := f.p, f.dir
	reg := p.Registry()
	adapter := filepath.Join(t.TempDir(), "checkpoint")
	localtest.WriteAdapter(t, adapter, 5)

	for name, spec := range map[string]local.StudentSpec{
		"bad name":         {Name: "a--b", BaseModel: "tiny", AdapterDir: adapter},
		"hidden name":      {Name: ".x", BaseModel: "tiny", AdapterDir: adapter},
		"unknown base":     {Name: "s", BaseModel: "nope", AdapterDir: adapter},
		"not an adapter":   {Name: "s", BaseModel: "tiny", AdapterDir: base},
		"taken by a model": {Name: "tiny", BaseModel: "tiny", AdapterDir: adapter},
	} {
		if _, err := reg.AddStudent(t.Context(), spec); err == nil {
			t.Errorf("%s: published", name)
		}
	}
	s, err := reg.AddStudent(t.Context(), local.StudentSpec{Name: "helper-v1", BaseModel: "tiny", AdapterDir: adapter,
		Description: "test", Metadata: map[string]string{"job": "j1"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != local.KindStudent || s.BaseModel != "tiny" || s.Dir != base || !s.Ready() || s.Metadata["job"] != "j1" || s.CreatedAt.IsZero() {
		t.Errorf("student %+v", s)
	}
	if _, err := reg.AddStudent(t.Context(), local.StudentSpec{Name: "helper-v1", BaseModel: "tiny", AdapterDir: adapter}); !errors.Is(err, local.ErrExists) {
		t.Errorf("publishing twice: %v", err)
	}
	if err := os.RemoveAll(adapter); err != nil { // the student has its own copy
		t.Fatal(err)
	}
	list, err := reg.List()
	if err != nil || len(list) != 2 || list[0].Name != "helper-v1" || list[1].Name != "tiny" {
		t.Fatalf("list %+v %v", list, err)
	}
	if names, _ := p.ListModels(t.Context()); strings.Join(names, ",") != "helper-v1,tiny" {
		t.Errorf("ListModels %v", names)
	}

	body := `{"messages":` + hello + `,"max_tokens":8,"temperature":0}`
	fromBase := complete(t, p, "tiny", body).Get("choices.0.message.content").String()
	fromStudent := complete(t, p, "helper-v1", body).Get("choices.0.message.content").String()
	if fromStudent == fromBase {
		t.Errorf("the adapter changed nothing: both say %q", fromBase)
	}
	if st := loaded(t, p, "helper-v1"); st.Kind != local.KindStudent || st.Requests != 1 {
		t.Errorf("loaded student %+v", st)
	}
	loaded(t, p, "tiny") // two models fit
	if err := p.RemoveStudent("helper-v1"); err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Loaded() {
		if m.Name == "helper-v1" {
			t.Error("a removed student stays loaded")
		}
	}
	_, err = send(t.Context(), p, "helper-v1", body)
	wantError(t, err, 404, "model_not_found")
	if err := reg.RemoveStudent("helper-v1"); !errors.Is(err, local.ErrNotFound) {
		t.Errorf("removing twice: %v", err)
	}
	entries, _ := os.ReadDir(reg.StudentsDir())
	if len(entries) != 0 {
		t.Errorf("students folder keeps %v", entries)
	}
}

func TestCheckAndBackendChoice(t *testing.T) {
	p := shared.get(t).p
	if err := p.Check(t.Context()); err != nil {
		t.Errorf("check: %v", err)
	}
	bad, err := local.New(local.Options{DataDir: t.TempDir(), Env: goEnv(compute.ConfigEnvVar, "nosuch:thing")})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown backend: %v", err)
	}
	if _, err := local.New(local.Options{DataDir: t.TempDir(), Env: goEnv(local.EnvMaxLoaded, "zero")}); err == nil {
		t.Error("a bad OPENTRACY_LOCAL_MAX_LOADED was accepted")
	}
}
