package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"opentracy/backend/h1serve"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"opentracy/backend/aliases"
	"opentracy/backend/config"
	"opentracy/backend/providers/h1"
	"opentracy/backend/providers/openai"
	"opentracy/backend/providers/openai/openaitest"
	"opentracy/backend/traces"
)

// env has no variables: tests configure everything explicitly.
func env(string) (string, bool) { return "", false }

type harness struct {
	t     testing.TB
	gw    *Gateway
	url   string // the gateway, served as the app serves it
	sink  *traces.MemorySink
	up    map[string]*openaitest.Server
	mu    sync.Mutex
	waits []time.Duration
	// lastID is the trace id of the latest answer (its X-OpenTracy-Trace-Id).
	lastID string
}

type setupOpt func(*Options)

// newHarness starts a gateway with one fake OpenAI-format upstream per provider name.
func newHarness(t testing.TB, names []string, opts ...setupOpt) *harness {
	t.Helper()
	h := &harness{t: t, sink: traces.NewMemorySink(100), up: map[string]*openaitest.Server{}}
	o := Options{Sink: h.sink, Models: map[string][]string{}}
	// The client production uses for plain-HTTP upstreams, so the fault tests cover it.
	client := &http.Client{Transport: h1.New(h1.Options{})}
	for _, name := range names {
		fake := openaitest.New()
		t.Cleanup(fake.Close)
		h.up[name] = fake
		p, err := openai.New(config.Provider{Name: name, Type: "openai-compatible", BaseURL: fake.BaseURL(), APIKey: config.Secret("sk-" + name)}, client, env)
		if err != nil {
			t.Fatal(err)
		}
		o.Providers = append(o.Providers, p)
		o.Models["gpt-4o-mini"] = append(o.Models["gpt-4o-mini"], name)
	}
	o.Cost = func(provider, model string, u traces.Usage) float64 {
		return float64(u.PromptTokens)*0.15e-6 + float64(u.CompletionTokens)*0.6e-6
	}
	for _, f := range opts {
		f(&o)
	}
	h.gw = New(o)
	h.gw.sleep = func(d time.Duration, _ <-chan struct{}) bool {
		h.mu.Lock()
		h.waits = append(h.waits, d)
		h.mu.Unlock()
		return true
	}
	h.gw.jitter = func() float64 { return 1 }
	h.url = serve(t, h.gw.Handler())
	return h
}

// serve serves handler on a loopback port through the app's HTTP server until the test ends and
// returns its base URL.
func serve(t testing.TB, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1serve.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func withAliases(t testing.TB, as ...aliases.Alias) setupOpt {
	return func(o *Options) {
		reg, err := aliases.Open("", as)
		if err != nil {
			t.Fatal(err)
		}
		o.Aliases = reg
	}
}

func (h *harness) post(path, body string, header ...string) *http.Response {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	h.lastID = resp.Header.Get(HeaderTraceID)
	return resp
}

// lastTrace waits for the trace of the latest answer: traces are recorded after the answer has
// reached the client, so the newest one in the sink may still be the previous request's.
func (h *harness) lastTrace() *traces.Trace {
	h.t.Helper()
	if h.lastID == "" {
		h.t.Fatal("the latest answer carries no trace id")
	}
	deadline := time.After(5 * time.Second)
	for {
		changed := h.sink.Changed()
		for _, tr := range h.sink.Recent(8) {
			if tr != nil && tr.ID == h.lastID {
				return tr
			}
		}
		select {
		case <-changed:
		case <-deadline:
			h.t.Fatalf("no trace recorded with id %s", h.lastID)
		}
	}
}

// traceCount waits until n traces exist.
func (h *harness) traces(n int) []*traces.Trace {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for h.sink.Total() < uint64(n) {
		select {
		case <-h.sink.Changed():
		case <-deadline:
			h.t.Fatalf("%d traces recorded, want %d", h.sink.Total(), n)
		}
	}
	return h.sink.Recent(n)
}

func read(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}],"seed":7,"x_vendor_field":{"keep":[1,2,3]},"user":"u-42","metadata":{"feature":"greeting"}}`

func TestChatPassesBodyThroughAndRecordsTrace(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	resp := h.post("/v1/chat/completions", chatBody, "X-OpenTracy-Metadata", `{"team":"search","attempt":2}`, "User-Agent", "OpenAI/Python 1.99.0")
	body := read(t, resp)
	if resp.StatusCode != 200 || body != openaitest.ChatCompletion("gpt-4o-mini") {
		t.Fatalf("response %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get(HeaderModel) != "gpt-4o-mini" || resp.Header.Get(HeaderProvider) != "openai" || resp.Header.Get(HeaderTraceID) == "" {
		t.Errorf("route headers %v", resp.Header)
	}
	if resp.Header.Get("X-Request-Id") != "req_fake123" {
		t.Errorf("upstream request id not passed on")
	}
	reqs := h.up["openai"].Requests()
	if len(reqs) != 1 || string(reqs[0].Body) != chatBody {
		t.Fatalf("upstream got %q, want the client's body byte for byte", reqs[0].Body)
	}
	if reqs[0].Header.Get("Authorization") != "Bearer sk-openai" {
		t.Errorf("upstream auth %q", reqs[0].Header.Get("Authorization"))
	}

	tr := h.lastTrace()
	if tr.ID != resp.Header.Get(HeaderTraceID) {
		t.Errorf("trace id %s != header %s", tr.ID, resp.Header.Get(HeaderTraceID))
	}
	want := traces.Trace{
		ID: tr.ID, StartedAt: tr.StartedAt, Endpoint: "chat.completions", RequestedModel: "gpt-4o-mini",
		Model: "gpt-4o-mini", Provider: "openai", Attempts: tr.Attempts, Status: 200, LatencyMillis: tr.LatencyMillis,
		Usage:        traces.Usage{PromptTokens: 19, CompletionTokens: 10},
		CostUSD:      19*0.15e-6 + 10*0.6e-6,
		FinishReason: "stop",
		Input:        json.RawMessage(gjson.Get(chatBody, "messages").Raw),
		Output:       json.RawMessage(gjson.Get(openaitest.ChatCompletion("gpt-4o-mini"), "choices").Raw),
		Metadata:     map[string]string{"feature": "greeting", "team": "search", "attempt": "2"},
		User:         "u-42", UserAgent: "OpenAI/Python 1.99.0",
	}
	if diff := cmp.Diff(want, *tr); diff != "" {
		t.Errorf("trace (-want +got):\n%s", diff)
	}
	if len(tr.Attempts) != 1 || tr.Attempts[0].Status != 200 || tr.Attempts[0].Provider != "openai" {
		t.Errorf("attempts %+v", tr.Attempts)
	}
}

func TestAliasResolvesPerRequest(t *testing.T) {
	h := newHarness(t, []string{"openai", "local"}, withAliases(t, aliases.Alias{Name: "smart", Targets: []aliases.Target{{Model: "local/qwen3-student"}}}))
	resp := h.post("/v1/chat/completions", strings.Replace(chatBody, `"gpt-4o-mini"`, `"smart"`, 1))
	if read(t, resp); resp.StatusCode != 200 || resp.Header.Get(HeaderModel) != "qwen3-student" || resp.Header.Get(HeaderProvider) != "local" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	got := h.up["local"].Requests()[0].Body
	if want := strings.Replace(chatBody, `"gpt-4o-mini"`, `"qwen3-student"`, 1); string(got) != want {
		t.Errorf("upstream body %s\nwant only the model changed: %s", got, want)
	}
	if tr := h.lastTrace(); tr.Alias != "smart" || tr.RequestedModel != "smart" || tr.Model != "qwen3-student" {
		t.Errorf("trace alias %q requested %q model %q", tr.Alias, tr.RequestedModel, tr.Model)
	}

	// Re-point the alias at run time: the next request follows it.
	if _, err := h.gw.opts.Aliases.Set(aliases.Alias{Name: "smart", Targets: []aliases.Target{{Model: "openai/gpt-4o-mini"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	resp = h.post("/v1/chat/completions", `{"model":"smart","messages":[]}`)
	if read(t, resp); resp.Header.Get(HeaderProvider) != "openai" {
		t.Errorf("after the swap served by %s", resp.Header.Get(HeaderProvider))
	}
}

// sseEvents splits a stream body into its events.
func sseEvents(body string) []string {
	var out []string
	for _, ev := range strings.SplitAfter(body, "\n\n") {
		if ev != "" {
			out = append(out, ev)
		}
	}
	return out
}

func TestStreamRelaysChunksAndHidesTheUsageChunkItAskedFor(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	resp := h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	got := sseEvents(read(t, resp))
	upstream := openaitest.ChatChunks("gpt-4o-mini", true)
	want := append(append([]string{}, upstream[:5]...), upstream[6]) // all but the usage chunk
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("client stream (-want +got):\n%s", diff)
	}
	if up := h.up["openai"].Requests()[0].Body; !gjson.GetBytes(up, "stream_options.include_usage").Bool() {
		t.Errorf("gateway did not ask the upstream for usage: %s", up)
	}
	tr := h.lastTrace()
	if tr.Usage.PromptTokens != 19 || tr.Usage.CompletionTokens != 10 || tr.CostUSD == 0 || !tr.Stream || tr.TTFTMillis <= 0 || tr.FinishReason != "stop" {
		t.Errorf("stream trace %+v", tr)
	}
	if c := gjson.GetBytes(tr.Output, "0.message.content").String(); c != "Hello! How can I assist you today?" {
		t.Errorf("rebuilt content %q", c)
	}
}

func TestStreamWithIncludeUsageKeepsTheUsageChunk(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	resp := h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)
	if diff := cmp.Diff(openaitest.ChatChunks("gpt-4o-mini", true), sseEvents(read(t, resp))); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
}

func TestStreamedAndPlainCostTheSame(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	read(t, h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`))
	plain := h.lastTrace()
	read(t, h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`))
	streamed := h.traces(2)[0]
	if plain.Usage != streamed.Usage || plain.CostUSD != streamed.CostUSD {
		t.Errorf("plain %+v $%v, streamed %+v $%v", plain.Usage, plain.CostUSD, streamed.Usage, streamed.CostUSD)
	}
}

func TestStreamedToolCallsAreRebuilt(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	read(t, h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[],"tools":[{"type":"function","function":{"name":"get_current_weather","parameters":{"type":"object"}}}]}`))
	tr := h.lastTrace()
	var calls []wireToolCall
	if err := json.Unmarshal(tr.ToolCalls, &calls); err != nil {
		t.Fatalf("tool calls %s: %v", tr.ToolCalls, err)
	}
	want := []wireToolCall{
		{ID: "call_abc123", Type: "function", Function: wireFunction{Name: "get_current_weather", Arguments: `{"location": "Boston, MA"}`}},
		{ID: "call_def456", Type: "function", Function: wireFunction{Name: "get_current_weather", Arguments: `{"location": "Paris"}`}},
	}
	if diff := cmp.Diff(want, calls); diff != "" || tr.FinishReason != "tool_calls" || len(tr.Tools) == 0 {
		t.Errorf("tool calls (-want +got):\n%s finish %q", diff, tr.FinishReason)
	}
	// The non-streamed answer records the same calls.
	read(t, h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[],"tools":[{"type":"function","function":{"name":"get_current_weather"}}]}`))
	var plain []wireToolCall
	_ = json.Unmarshal(h.traces(2)[0].ToolCalls, &plain)
	if diff := cmp.Diff(want, plain); diff != "" {
		t.Errorf("plain tool calls (-want +got):\n%s", diff)
	}
}

func TestRateLimitIsRetriedAfterRetryAfter(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	h.up["openai"].Enqueue(openaitest.RateLimited("1"))
	resp := h.post("/v1/chat/completions", chatBody)
	if read(t, resp); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !cmp.Equal(h.waits, []time.Duration{time.Second}) {
		t.Errorf("waits %v, want the upstream's Retry-After of 1s", h.waits)
	}
	tr := h.lastTrace()
	if len(tr.Attempts) != 2 || tr.Attempts[0].Status != 429 || tr.Attempts[1].Status != 200 {
		t.Errorf("attempts %+v", tr.Attempts)
	}
}

func TestRateLimitTooLongIsPassedToTheClient(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	h.up["openai"].Enqueue(openaitest.RateLimited("30"))
	resp := h.post("/v1/chat/completions", chatBody)
	body := read(t, resp)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "30" || gjson.Get(body, "error.code").String() != "rate_limit_exceeded" {
		t.Fatalf("%d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if len(h.waits) != 0 {
		t.Errorf("waited %v for a Retry-After beyond the limit", h.waits)
	}
	if tr := h.lastTrace(); tr.Status != 429 || !strings.Contains(tr.Error, "Rate limit") {
		t.Errorf("trace %d %q", tr.Status, tr.Error)
	}
}

func TestServerErrorsRetryThenFallBackThenCoolDown(t *testing.T) {
	h := newHarness(t, []string{"primary", "backup"}, withAliases(t, aliases.Alias{Name: "smart", Targets: []aliases.Target{{Model: "primary/gpt-4o"}, {Model: "backup/gpt-4o-mini"}}}))
	h.up["primary"].Enqueue(openaitest.Unavailable(), openaitest.Unavailable(), openaitest.Unavailable())
	resp := h.post("/v1/chat/completions", `{"model":"smart","messages":[]}`)
	if read(t, resp); resp.StatusCode != 200 || resp.Header.Get(HeaderProvider) != "backup" {
		t.Fatalf("%d served by %q", resp.StatusCode, resp.Header.Get(HeaderProvider))
	}
	if !cmp.Equal(h.waits, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}) {
		t.Errorf("backoff %v, want 200ms then 400ms (jitter fixed at 1)", h.waits)
	}
	tr := h.lastTrace()
	var got []string
	for _, a := range tr.Attempts {
		got = append(got, a.Provider+":"+http.StatusText(a.Status))
	}
	if want := []string{"primary:Service Unavailable", "primary:Service Unavailable", "primary:Service Unavailable", "backup:OK"}; !cmp.Equal(got, want) {
		t.Errorf("attempts %v", got)
	}
	// The failing deployment now cools down: the next request goes straight to the backup.
	read(t, h.post("/v1/chat/completions", `{"model":"smart","messages":[]}`))
	if n := len(h.up["primary"].Requests()); n != 3 {
		t.Errorf("primary got %d requests during its cooldown", n-3)
	}
}

func TestClientErrorsNeitherRetryNorFallBack(t *testing.T) {
	h := newHarness(t, []string{"primary", "backup"}, withAliases(t, aliases.Alias{Name: "smart", Targets: []aliases.Target{{Model: "primary/m"}, {Model: "backup/m"}}}))
	h.up["primary"].Enqueue(openaitest.Status(400, `{"error":{"message":"Invalid 'messages': empty array.","type":"invalid_request_error","param":"messages","code":"empty_array"}}`, nil))
	resp := h.post("/v1/chat/completions", `{"model":"smart","messages":[]}`)
	body := read(t, resp)
	if resp.StatusCode != 400 || gjson.Get(body, "error.param").String() != "messages" {
		t.Fatalf("%d %s: want the upstream's 400 unchanged", resp.StatusCode, body)
	}
	if len(h.up["backup"].Requests()) != 0 || len(h.waits) != 0 {
		t.Error("a 400 was retried or fell back")
	}
}

func TestResetBeforeTheStreamIsRetried(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	h.up["openai"].Enqueue(openaitest.Reset())
	resp := h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`)
	events := sseEvents(read(t, resp))
	if resp.StatusCode != 200 || events[len(events)-1] != "data: [DONE]\n\n" {
		t.Fatalf("%d %v", resp.StatusCode, events)
	}
	if tr := h.lastTrace(); len(tr.Attempts) != 2 || tr.Attempts[0].Status != 0 || tr.Error != "" {
		t.Errorf("attempts %+v error %q", tr.Attempts, tr.Error)
	}
}

func TestResetDuringTheStreamEndsWithAnErrorEvent(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	h.up["openai"].Enqueue(openaitest.ResetMidStream(2))
	resp := h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`)
	events := sseEvents(read(t, resp))
	chunks := openaitest.ChatChunks("gpt-4o-mini", false)
	if len(events) != 3 || events[0] != chunks[0] || events[1] != chunks[1] {
		t.Fatalf("events %q", events)
	}
	if msg := gjson.Get(strings.TrimPrefix(events[2], "data: "), "error.message").String(); !strings.Contains(msg, "stream") {
		t.Errorf("last event %q is not an error event", events[2])
	}
	if tr := h.lastTrace(); tr.Error == "" || tr.Status != 200 || gjson.GetBytes(tr.Output, "0.message.content").String() != "Hello" {
		t.Errorf("trace status %d error %q output %s", tr.Status, tr.Error, tr.Output)
	}
}

func TestMalformedUpstreamJSON(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	h.up["openai"].Enqueue(openaitest.Malformed(), openaitest.Malformed(), openaitest.Malformed())
	resp := h.post("/v1/chat/completions", chatBody)
	body := read(t, resp)
	if resp.StatusCode != 502 || gjson.Get(body, "error.code").String() != "bad_upstream_response" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if tr := h.lastTrace(); tr.Status != 502 || len(tr.Attempts) != 3 {
		t.Errorf("trace %d attempts %d", tr.Status, len(tr.Attempts))
	}
}

func TestSlowUpstreamTimesOut(t *testing.T) {
	h := newHarness(t, []string{"openai"}, func(o *Options) {
		o.Retry.MaxRetries = -1
		o.DefaultTimeouts = Timeouts{Request: 100 * time.Millisecond, StreamIdle: 100 * time.Millisecond}
	})
	h.up["openai"].Enqueue(openaitest.Stall(2 * time.Second))
	resp := h.post("/v1/chat/completions", chatBody)
	body := read(t, resp)
	if resp.StatusCode != 504 || !strings.Contains(gjson.Get(body, "error.message").String(), "timed out") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}

	// A stream that goes silent mid-way is cut by the idle timeout, with an error event.
	h.up["openai"].Enqueue(openaitest.StallMidStream(2, 2*time.Second))
	resp = h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`)
	events := sseEvents(read(t, resp))
	if last := events[len(events)-1]; !strings.Contains(last, "stream idle timeout") {
		t.Errorf("last event %q", last)
	}
}

func TestLongStreamIsNotCutByTheRequestTimeout(t *testing.T) {
	h := newHarness(t, []string{"openai"}, func(o *Options) {
		o.DefaultTimeouts = Timeouts{Request: 50 * time.Millisecond, StreamIdle: time.Second}
	})
	h.up["openai"].ChunkDelay = 30 * time.Millisecond // the whole stream takes ~150 ms
	resp := h.post("/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`)
	if events := sseEvents(read(t, resp)); events[len(events)-1] != "data: [DONE]\n\n" {
		t.Errorf("stream cut: %q", events)
	}
}

func TestClientDisconnectCancelsTheUpstream(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	h.up["openai"].Enqueue(openaitest.StallMidStream(1, 10*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", h.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h.lastID = resp.Header.Get(HeaderTraceID)
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cancel()
	resp.Body.Close()
	tr := h.lastTrace()
	if time.Since(start) > 3*time.Second || tr.Error == "" {
		t.Errorf("trace after disconnect: %q after %v", tr.Error, time.Since(start))
	}
}

func TestBadClientRequests(t *testing.T) {
	h := newHarness(t, []string{"openai"}, func(o *Options) { o.MaxBodyBytes = 16 << 20 })
	for _, tc := range []struct {
		name, body string
		header     []string
		status     int
		code, msg  string
	}{
		{"invalid JSON", `{"model":"gpt-4o-mini",`, nil, 400, "invalid_json", "not valid JSON"},
		{"not an object", `[1,2]`, nil, 400, "invalid_json", "JSON object"},
		{"empty", ``, nil, 400, "invalid_json", "empty"},
		{"no model", `{"messages":[]}`, nil, 400, "missing_model", "model"},
		{"unknown model", `{"model":"nope-1","messages":[]}`, nil, 404, "model_not_found", "nope-1"},
		{"bad metadata header", `{"model":"gpt-4o-mini"}`, []string{HeaderMetadata, "[1]"}, 400, "invalid_metadata", HeaderMetadata},
		{"too large", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 17<<20) + `"}]}`, nil, 413, "request_too_large", "16 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.post("/v1/chat/completions", tc.body, tc.header...)
			body := read(t, resp)
			if resp.StatusCode != tc.status || gjson.Get(body, "error.code").String() != tc.code || !strings.Contains(gjson.Get(body, "error.message").String(), tc.msg) {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			if tr := h.lastTrace(); tr.Status != tc.status || tr.Error == "" {
				t.Errorf("trace %d %q", tr.Status, tr.Error)
			}
		})
	}
	if n := len(h.up["openai"].Requests()); n != 0 {
		t.Errorf("%d bad requests reached the upstream", n)
	}
}

func TestLargeRequestPassesThrough(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	big := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("y", 10<<20) + `"}]}`
	resp := h.post("/v1/chat/completions", big)
	if read(t, resp); resp.StatusCode != 200 {
		t.Fatalf("10 MB request: %d", resp.StatusCode)
	}
	if got := h.up["openai"].Requests()[0].Body; !bytes.Equal(got, []byte(big)) {
		t.Errorf("10 MB body changed on the way (%d bytes arrived)", len(got))
	}
}

func TestEmbeddingsAndModels(t *testing.T) {
	h := newHarness(t, []string{"openai"}, withAliases(t, aliases.Alias{Name: "smart", Targets: []aliases.Target{{Model: "gpt-4o-mini"}}}))
	resp := h.post("/v1/embeddings", `{"model":"gpt-4o-mini","input":"The food was delicious"}`)
	if body := read(t, resp); resp.StatusCode != 200 || body != openaitest.Embedding("gpt-4o-mini") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if tr := h.lastTrace(); tr.Endpoint != "embeddings" || tr.Usage.PromptTokens != 8 || string(tr.Input) != `"The food was delicious"` {
		t.Errorf("embedding trace %+v", tr)
	}
	r, _ := http.Get(h.url + "/v1/models")
	var list modelList
	_ = json.NewDecoder(r.Body).Decode(&list)
	r.Body.Close()
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if list.Object != "list" || !cmp.Equal(ids, []string{"smart", "openai/gpt-4o-mini"}) {
		t.Errorf("models %+v", list)
	}
}

func TestProviderStats(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	h.up["openai"].Enqueue(openaitest.Unavailable())
	read(t, h.post("/v1/chat/completions", chatBody))
	st := h.gw.ProviderStats()
	if len(st) != 1 || st[0].Attempts != 2 || st[0].Failures != 1 || st[0].P50Milli <= 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestResponsesAPIPassthrough(t *testing.T) {
	h := newHarness(t, []string{"openai"})
	body := `{"model":"gpt-4o-mini","input":"Tell me a three sentence bedtime story about a unicorn.","store":false}`
	resp := h.post("/v1/responses", body)
	if got := read(t, resp); resp.StatusCode != 200 || got != openaitest.Response("gpt-4o-mini") {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	if got := string(h.up["openai"].Requests()[0].Body); got != body {
		t.Errorf("upstream body %s", got)
	}
	tr := h.lastTrace()
	if tr.Endpoint != "responses" || tr.Usage.PromptTokens != 36 || tr.Usage.CompletionTokens != 87 || gjson.GetBytes(tr.Output, "0.type").String() != "message" {
		t.Errorf("trace %+v", tr)
	}

	// Its streams end after response.completed, without [DONE]: not an error.
	resp = h.post("/v1/responses", `{"model":"gpt-4o-mini","input":"hi","stream":true}`)
	events := sseEvents(read(t, resp))
	if diff := cmp.Diff(openaitest.ResponseEvents("gpt-4o-mini"), events); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if tr := h.traces(2)[0]; tr.Error != "" || tr.Usage.CompletionTokens != 87 {
		t.Errorf("stream trace error %q usage %+v", tr.Error, tr.Usage)
	}
	if up := h.up["openai"].Requests()[1].Body; gjson.GetBytes(up, "stream_options").Exists() {
		t.Errorf("stream_options added to a Responses request: %s", up)
	}
}
