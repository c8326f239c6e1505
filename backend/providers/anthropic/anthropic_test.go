package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
	"opentracy/backend/providers/providertest"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name                   string
		cfg                    config.Provider
		env                    map[string]string
		wantName, wantEndpoint string
		wantKey                string
		wantErr                string
	}{
		{
			name:     "key from the default variable, official base URL",
			cfg:      config.Provider{Type: Type},
			env:      map[string]string{"ANTHROPIC_API_KEY": "sk-env"},
			wantName: "anthropic", wantEndpoint: "https://api.anthropic.com/v1/messages", wantKey: "sk-env",
		},
		{
			name:     "config key and base URL win over the environment",
			cfg:      config.Provider{Name: "claude", Type: Type, APIKey: "sk-cfg", BaseURL: "http://localhost:9000/"},
			env:      map[string]string{"ANTHROPIC_API_KEY": "sk-env", "ANTHROPIC_BASE_URL": "https://proxy.example"},
			wantName: "claude", wantEndpoint: "http://localhost:9000/v1/messages", wantKey: "sk-cfg",
		},
		{
			name:     "custom key variable and base URL from ANTHROPIC_BASE_URL",
			cfg:      config.Provider{Type: Type, APIKeyEnv: "WORK_CLAUDE_KEY"},
			env:      map[string]string{"WORK_CLAUDE_KEY": "sk-work", "ANTHROPIC_API_KEY": "sk-env", "ANTHROPIC_BASE_URL": "https://proxy.example/anthropic"},
			wantName: "anthropic", wantEndpoint: "https://proxy.example/anthropic/v1/messages", wantKey: "sk-work",
		},
		{
			name:     "a base URL ending in /v1 is not doubled",
			cfg:      config.Provider{Type: Type, APIKey: "k", BaseURL: "https://api.anthropic.com/v1/"},
			wantName: "anthropic", wantEndpoint: "https://api.anthropic.com/v1/messages", wantKey: "k",
		},
		{
			name:    "missing key names the default variable",
			cfg:     config.Provider{Type: Type},
			wantErr: "ANTHROPIC_API_KEY",
		},
		{
			name:    "missing key names the configured variable",
			cfg:     config.Provider{Type: Type, APIKeyEnv: "WORK_CLAUDE_KEY"},
			env:     map[string]string{"ANTHROPIC_API_KEY": "not used"},
			wantErr: "WORK_CLAUDE_KEY",
		},
		{
			name:    "base URL must be http(s)",
			cfg:     config.Provider{Type: Type, APIKey: "k", BaseURL: "api.anthropic.com"},
			wantErr: "not an http(s) URL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg, nil, envMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{p.Name(), p.endpoint, p.key}
			if diff := cmp.Diff([]string{tt.wantName, tt.wantEndpoint, tt.wantKey}, got); diff != "" {
				t.Errorf("name, endpoint, key (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatNonStreaming(t *testing.T) {
	up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "message.json"))
	up.Header.Set("Request-Id", "req_123")
	up.Header.Set("Anthropic-Ratelimit-Requests-Remaining", "49")
	up.Header.Set("Set-Cookie", "not=forwarded")
	p := newTestProvider(t, up.URL, map[string]string{"X-Team": "search"})

	clientHeader := http.Header{"Anthropic-Beta": {"prompt-caching-2024-07-31"}, "Authorization": {"Bearer gateway-key"}}
	resp, err := p.Chat(context.Background(), &providers.Request{
		Body:   []byte(`{"model":"claude","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello, Claude"}],"max_tokens":1024,"temperature":0.5}`),
		Model:  "claude-sonnet-4-5",
		Header: clientHeader,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	got := up.Last(t)
	if got.Method != http.MethodPost || got.Path != "/v1/messages" {
		t.Errorf("request = %s %s, want POST /v1/messages", got.Method, got.Path)
	}
	wantHeaders := map[string]string{
		"X-Api-Key": "sk-ant-test", "Anthropic-Version": "2023-06-01", "Content-Type": "application/json",
		"Anthropic-Beta": "prompt-caching-2024-07-31", "X-Team": "search", "Authorization": "",
	}
	for k, want := range wantHeaders {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	wantBody := `{"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"Be brief."}],
		"messages":[{"role":"user","content":[{"type":"text","text":"Hello, Claude"}]}],"temperature":0.5}`
	if diff := jsonDiff(t, []byte(wantBody), got.Body); diff != "" {
		t.Errorf("anthropic request body (-want +got):\n%s", diff)
	}

	if resp.Status != http.StatusOK {
		t.Errorf("status = %d", resp.Status)
	}
	wantHeader := http.Header{"Request-Id": {"req_123"}, "Anthropic-Ratelimit-Requests-Remaining": {"49"}}
	if diff := cmp.Diff(wantHeader, resp.Header); diff != "" {
		t.Errorf("kept headers (-want +got):\n%s", diff)
	}
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","object":"chat.completion","created":1700000000,"model":"claude-sonnet-4-5-20250929",
		"choices":[{"index":0,"message":{"role":"assistant","content":"Hi! My name is Claude.","refusal":null},"logprobs":null,"finish_reason":"stop"}],
		"usage":{"prompt_tokens":2095,"completion_tokens":503,"total_tokens":2598,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`
	if diff := jsonDiff(t, []byte(want), out); diff != "" {
		t.Errorf("chat.completion (-want +got):\n%s", diff)
	}
}

func TestChatStreaming(t *testing.T) {
	tests := []struct {
		name, fixture, body, wantRequest, golden string
	}{
		{
			name:        "text",
			fixture:     "stream_text.sse",
			body:        `{"model":"claude","messages":[{"role":"user","content":"Hello"}],"max_tokens":256,"stream":true}`,
			wantRequest: `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}],"max_tokens":256,"stream":true}`,
			golden:      "stream_text.chat.golden",
		},
		{
			name:        "text with usage",
			fixture:     "stream_text.sse",
			body:        `{"model":"claude","messages":[{"role":"user","content":"Hello"}],"max_tokens":256,"stream":true,"stream_options":{"include_usage":true}}`,
			wantRequest: `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}],"max_tokens":256,"stream":true}`,
			golden:      "stream_text_usage.chat.golden",
		},
		{
			name:    "tool use",
			fixture: "stream_tool_use.sse",
			body: `{"model":"claude","max_tokens":1024,"stream":true,"tool_choice":"required",
				"tools":[{"type":"function","function":{"name":"get_weather","description":"Get the current weather in a given location",
					"parameters":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"}},"required":["location"]}}}],
				"messages":[{"role":"user","content":"What is the weather like in San Francisco?"}]}`,
			// The request of Anthropic's documented example.
			wantRequest: `{"model":"claude-sonnet-4-5","max_tokens":1024,
				"tools":[{"name":"get_weather","description":"Get the current weather in a given location",
					"input_schema":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"}},"required":["location"]}}],
				"tool_choice":{"type":"any"},"messages":[{"role":"user","content":[{"type":"text","text":"What is the weather like in San Francisco?"}]}],"stream":true}`,
			golden: "stream_tool_use.chat.golden",
		},
		{
			name:        "error event mid-stream",
			fixture:     "stream_error.sse",
			body:        `{"model":"claude","messages":[{"role":"user","content":"Hello"}],"stream":true}`,
			wantRequest: `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}],"max_tokens":4096,"stream":true}`,
			golden:      "stream_error.chat.golden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, http.StatusOK, "text/event-stream", fixture(t, tt.fixture))
			p := newTestProvider(t, up.URL, nil)
			resp, err := p.Chat(context.Background(), &providers.Request{Body: []byte(tt.body), Model: "claude-sonnet-4-5", Stream: true})
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if err := resp.Body.Close(); err != nil {
				t.Fatal(err)
			}
			got := up.Last(t)
			if a := got.Header.Get("Accept"); a != "text/event-stream" {
				t.Errorf("Accept = %q", a)
			}
			if diff := jsonDiff(t, []byte(tt.wantRequest), got.Body); diff != "" {
				t.Errorf("anthropic request body (-want +got):\n%s", diff)
			}
			checkGolden(t, tt.golden, out)
		})
	}
}

func TestChatUpstreamErrors(t *testing.T) {
	tests := []struct {
		name            string
		status          int
		header          map[string]string
		fixture         string
		wantBody        string
		wantRetryAfter  time.Duration
		retryable, fall bool
	}{
		{
			name: "429 with retry-after", status: 429, header: map[string]string{"Retry-After": "17"}, fixture: "error_429.json",
			wantBody:       `{"error":{"message":"Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`,
			wantRetryAfter: 17 * time.Second, retryable: true, fall: true,
		},
		{
			name: "529 overloaded", status: 529, fixture: "error_529.json",
			wantBody:  `{"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"}}`,
			retryable: true, fall: true,
		},
		{
			name: "400 invalid request", status: 400, fixture: "error_400.json",
			wantBody: `{"error":{"message":"messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row","type":"invalid_request_error","param":null,"code":null}}`,
		},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, stream), func(t *testing.T) {
				up := providertest.NewUpstream(t, tt.status, "application/json", fixture(t, tt.fixture))
				for k, v := range tt.header {
					up.Header.Set(k, v)
				}
				p := newTestProvider(t, up.URL, nil)
				body := `{"messages":[{"role":"user","content":"hi"}]}`
				if stream {
					body = `{"messages":[{"role":"user","content":"hi"}],"stream":true}`
				}
				resp, err := p.Chat(context.Background(), &providers.Request{Body: []byte(body), Model: "claude-x", Stream: stream})
				if resp != nil {
					t.Fatalf("got a response for a %d", tt.status)
				}
				var pe *providers.Error
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want *providers.Error", err)
				}
				if pe.Provider != "claude" || pe.Status != tt.status || pe.RetryAfter != tt.wantRetryAfter {
					t.Errorf("provider, status, retry-after = %q, %d, %v", pe.Provider, pe.Status, pe.RetryAfter)
				}
				if pe.Retryable() != tt.retryable || pe.Fallbackable() != tt.fall {
					t.Errorf("retryable, fallbackable = %v, %v; want %v, %v", pe.Retryable(), pe.Fallbackable(), tt.retryable, tt.fall)
				}
				if diff := jsonDiff(t, []byte(tt.wantBody), pe.Body); diff != "" {
					t.Errorf("error body (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestChatBadRequestNeverReachesUpstream(t *testing.T) {
	tests := []struct{ name, body, wantMessage string }{
		{"invalid tool call arguments", `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}`,
			"messages[1]: tool_calls[0].function.arguments: not valid JSON"},
		{"n>1", `{"messages":[{"role":"user","content":"x"}],"n":3}`, "n>1 is not supported by Anthropic"},
		{"not JSON", `nope`, "request body is not a valid chat-completions request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "message.json"))
			p := newTestProvider(t, up.URL, nil)
			_, err := p.Chat(context.Background(), &providers.Request{Body: []byte(tt.body), Model: "m"})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400 *providers.Error", err)
			}
			if pe.Retryable() || pe.Fallbackable() {
				t.Error("a bad request must neither retry nor fall back")
			}
			var body chatwire.ErrorBody
			if err := json.Unmarshal(pe.Body, &body); err != nil || body.Error == nil {
				t.Fatalf("body %s is not OpenAI-shaped: %v", pe.Body, err)
			}
			if !strings.Contains(body.Error.Message, tt.wantMessage) || body.Error.Type != "invalid_request_error" {
				t.Errorf("error = %+v, want invalid_request_error with %q", body.Error, tt.wantMessage)
			}
			if up.Count() != 0 {
				t.Error("a request that cannot be translated reached the upstream")
			}
		})
	}
}

func TestChatTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	p := newTestProvider(t, base, nil)
	_, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"x"}]}`), Model: "m"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Status != 0 || pe.Err == nil {
		t.Fatalf("err = %#v, want a transport *providers.Error", err)
	}
	if !pe.Retryable() {
		t.Error("a refused connection is retryable")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "message.json"))
	p = newTestProvider(t, up.URL, nil)
	_, err = p.Chat(ctx, &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"x"}]}`), Model: "m"})
	if !errors.As(err, &pe) || !errors.Is(err, context.Canceled) || pe.Retryable() {
		t.Fatalf("err = %v, want a canceled, non-retryable *providers.Error", err)
	}
}

func TestChatUnreadableMessage(t *testing.T) {
	up := providertest.NewUpstream(t, http.StatusOK, "application/json", []byte("<html>oops</html>"))
	p := newTestProvider(t, up.URL, nil)
	_, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"x"}]}`), Model: "m"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusBadGateway {
		t.Fatalf("err = %v, want a 502 *providers.Error", err)
	}
}

func TestChatStreamCloseAbortsUpstream(t *testing.T) {
	aborted := make(chan struct{})
	first := fixture(t, "stream_text.sse")
	first = first[:bytes.Index(first, []byte("event: ping"))]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(first)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done(): // the client went away
			close(aborted)
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	p := newTestProvider(t, srv.URL, nil)
	resp, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"x"}],"stream":true}`), Model: "m", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	n, err := resp.Body.Read(buf)
	if err != nil || !bytes.Contains(buf[:n], []byte(`"role":"assistant"`)) {
		t.Fatalf("first read = %q, %v", buf[:n], err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-aborted:
	case <-time.After(5 * time.Second):
		t.Fatal("closing the stream did not abort the upstream request")
	}
}

func TestMessagesPassthrough(t *testing.T) {
	reply := fixture(t, "message.json")
	up := providertest.NewUpstream(t, http.StatusOK, "application/json", reply)
	up.Header.Set("Request-Id", "req_9")
	p := newTestProvider(t, up.URL, nil)
	in := `{"model":"alias","max_tokens":1024,"messages":[{"role":"user","content":"Hello, world"}],"container":"c_1","mcp_servers":[{"type":"url","url":"https://m.example"}]}`
	resp, err := p.Messages(context.Background(), &providers.Request{Body: []byte(in), Model: "claude-sonnet-4-5",
		Header: http.Header{"Anthropic-Beta": {"mcp-client-2025-04-04"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := up.Last(t)
	// Only the model changes; fields this package does not know survive.
	want := `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, world"}],"container":"c_1","mcp_servers":[{"type":"url","url":"https://m.example"}]}`
	if string(got.Body) != want {
		t.Errorf("forwarded body\n got %s\nwant %s", got.Body, want)
	}
	for k, v := range map[string]string{"X-Api-Key": "sk-ant-test", "Anthropic-Version": "2023-06-01", "Anthropic-Beta": "mcp-client-2025-04-04", "Accept": "application/json"} {
		if got.Header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, got.Header.Get(k), v)
		}
	}
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, reply) {
		t.Errorf("response body changed:\n%s", out)
	}
	if resp.Header.Get("Request-Id") != "req_9" {
		t.Errorf("headers = %v", resp.Header)
	}
}

func TestMessagesPassthroughStream(t *testing.T) {
	reply := fixture(t, "stream_tool_use.sse")
	up := providertest.NewUpstream(t, http.StatusOK, "text/event-stream", reply)
	p := newTestProvider(t, up.URL, nil)
	resp, err := p.Messages(context.Background(), &providers.Request{Body: []byte(`{"model":"x","max_tokens":1,"messages":[],"stream":true}`), Model: "claude-y", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, reply) {
		t.Error("the event stream was not passed through byte for byte")
	}
	if a := up.Last(t).Header.Get("Accept"); a != "text/event-stream" {
		t.Errorf("Accept = %q", a)
	}
}

func TestMessagesErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		reply    string
		body     string
		wantCode int
		wantBody string
	}{
		{
			name: "upstream error is kept in Anthropic's shape", status: 529, reply: string(fixture(t, "error_529.json")),
			body: `{"model":"x","messages":[]}`, wantCode: 529, wantBody: string(fixture(t, "error_529.json")),
		},
		{
			name: "a non-Anthropic error body is wrapped", status: 502, reply: "Bad Gateway",
			body: `{"model":"x","messages":[]}`, wantCode: 502,
			wantBody: `{"type":"error","error":{"type":"api_error","message":"upstream returned 502: Bad Gateway"}}`,
		},
		{
			name: "invalid JSON never reaches the upstream", body: `[1,2]`, wantCode: 400,
			wantBody: `{"type":"error","error":{"type":"invalid_request_error","message":"request body is not a JSON object"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, tt.status, "application/json", []byte(tt.reply))
			p := newTestProvider(t, up.URL, nil)
			_, err := p.Messages(context.Background(), &providers.Request{Body: []byte(tt.body), Model: "claude-y"})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Status != tt.wantCode {
				t.Fatalf("err = %v, want *providers.Error with status %d", err, tt.wantCode)
			}
			if diff := jsonDiff(t, []byte(tt.wantBody), pe.Body); diff != "" {
				t.Errorf("error body (-want +got):\n%s", diff)
			}
			if tt.status == 0 && up.Count() != 0 {
				t.Error("an invalid body reached the upstream")
			}
		})
	}
}
