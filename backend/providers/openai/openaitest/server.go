// Package openaitest is a fake OpenAI upstream on loopback for tests and benchmarks. Its default
// answers follow OpenAI's documented wire format byte for byte (chat completion objects, chunk
// streams ending in "data: [DONE]", embeddings, model lists); scripted behaviours reproduce the
// failures a gateway must survive: rate limits, server errors, resets, stalls and malformed JSON.
package openaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Recorded is a request the fake received.
type Recorded struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// Behavior answers one request. Returning false lets the default answer it.
type Behavior func(w http.ResponseWriter, r *http.Request, body []byte) bool

// Server is the fake upstream.
type Server struct {
	*httptest.Server
	// Delay is waited before every default answer (the upstream's processing time).
	Delay time.Duration
	// ChunkDelay is waited between streamed chunks.
	ChunkDelay time.Duration

	mu       sync.Mutex
	queue    []Behavior
	requests []Recorded
}

// New starts a fake upstream; close it with Close.
func New() *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL of the API root, as an OpenAI client's base URL (".../v1").
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Enqueue scripts the next requests, one behaviour each, in order.
func (s *Server) Enqueue(b ...Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, b...)
}

// Requests returns what the fake has received so far.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	var b Behavior
	if len(s.queue) > 0 {
		b, s.queue = s.queue[0], s.queue[1:]
	}
	s.mu.Unlock()
	if b != nil && b(w, r, body) {
		return
	}
	if s.Delay > 0 {
		time.Sleep(s.Delay)
	}
	s.answer(w, r, body)
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		Tools []json.RawMessage `json:"tools"`
	}
	if err := json.Unmarshal(body, &req); err != nil && r.Method == http.MethodPost {
		Status(400, `{"error":{"message":"We could not parse the JSON body of your request.","type":"invalid_request_error","param":null,"code":null}}`, nil)(w, r, body)
		return
	}
	switch {
	case r.URL.Path == "/v1/chat/completions" && req.Stream:
		includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		if len(req.Tools) > 0 {
			s.stream(w, ToolCallChunks(req.Model, includeUsage))
		} else {
			s.stream(w, ChatChunks(req.Model, includeUsage))
		}
	case r.URL.Path == "/v1/chat/completions":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_fake123")
		if len(req.Tools) > 0 {
			_, _ = io.WriteString(w, ToolCallCompletion(req.Model))
		} else {
			_, _ = io.WriteString(w, ChatCompletion(req.Model))
		}
	case r.URL.Path == "/v1/responses" && req.Stream:
		s.stream(w, ResponseEvents(req.Model))
	case r.URL.Path == "/v1/responses":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, Response(req.Model))
	case r.URL.Path == "/v1/embeddings":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, Embedding(req.Model))
	case r.URL.Path == "/v1/models":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}`)
	default:
		Status(404, fmt.Sprintf(`{"error":{"message":"Invalid URL (%s %s)","type":"invalid_request_error","param":null,"code":null}}`, r.Method, r.URL.Path), nil)(w, r, body)
	}
}

// stream writes SSE events, flushing each, with ChunkDelay between them.
func (s *Server) stream(w http.ResponseWriter, events []string) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	for i, ev := range events {
		if i > 0 && s.ChunkDelay > 0 {
			time.Sleep(s.ChunkDelay)
		}
		if _, err := io.WriteString(w, ev); err != nil {
			return
		}
		f.Flush()
	}
}

// Status answers with a status, a body and headers (e.g. Retry-After).
func Status(code int, body string, header map[string]string) Behavior {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
		return true
	}
}

// RateLimited is OpenAI's 429 with Retry-After.
func RateLimited(retryAfter string) Behavior {
	return Status(429, `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
		map[string]string{"Retry-After": retryAfter})
}

// Unavailable is a 503.
func Unavailable() Behavior {
	return Status(503, `{"error":{"message":"The server is overloaded or not ready yet.","type":"server_error","param":null,"code":null}}`, nil)
}

// Malformed answers 200 with a body that is not JSON.
func Malformed() Behavior {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-broken","choices":[{"message":{"content":"tru`)
		return true
	}
}

// Reset closes the connection without answering.
func Reset() Behavior {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	}
}

// ResetMidStream sends the first n events of a normal stream, then drops the connection.
func ResetMidStream(n int) Behavior {
	return func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		var req struct{ Model string }
		_ = json.Unmarshal(body, &req)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return true
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, ev := range ChatChunks(req.Model, false)[:n] {
			fmt.Fprintf(buf, "%x\r\n%s\r\n", len(ev), ev)
		}
		_ = buf.Flush()
		return true
	}
}

// Stall waits d before letting the default answer (a slow upstream); a client that gives up
// ends the wait.
func Stall(d time.Duration) Behavior {
	return func(_ http.ResponseWriter, r *http.Request, _ []byte) bool {
		select {
		case <-time.After(d):
			return false
		case <-r.Context().Done():
			return true
		}
	}
}

// StallMidStream sends the first n events, then goes silent for d before finishing.
func StallMidStream(n int, d time.Duration) Behavior {
	return func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		var req struct{ Model string }
		_ = json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		events := ChatChunks(req.Model, false)
		for i, ev := range events {
			if i == n {
				w.(http.Flusher).Flush()
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return true
				}
			}
			_, _ = io.WriteString(w, ev)
		}
		return true
	}
}

// Wire fixtures, in the shape of OpenAI's API reference.

// ChatCompletion is a non-streamed chat.completion.
func ChatCompletion(model string) string {
	return `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"` + model + `","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_50cad350e4"}`
}

// ChatChunks is the stream of the same answer, one event per string.
func ChatChunks(model string, includeUsage bool) []string {
	head := `{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"` + model + `","system_fingerprint":"fp_44709d6fcb","choices":[`
	usageField := ""
	if includeUsage {
		usageField = `,"usage":null`
	}
	ev := func(choice string) string { return "data: " + head + choice + "]" + usageField + "}\n\n" }
	events := []string{
		ev(`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`),
		ev(`{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}`),
		ev(`{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}`),
		ev(`{"index":0,"delta":{"content":" How can I assist you today?"},"logprobs":null,"finish_reason":null}`),
		ev(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`),
	}
	if includeUsage {
		events = append(events, "data: "+head+`],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`+"\n\n")
	}
	return append(events, "data: [DONE]\n\n")
}

// ToolCallCompletion answers with two parallel tool calls.
func ToolCallCompletion(model string) string {
	return `{"id":"chatcmpl-abc123","object":"chat.completion","created":1699896916,"model":"` + model + `","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":"{\"location\": \"Boston, MA\"}"}},{"id":"call_def456","type":"function","function":{"name":"get_current_weather","arguments":"{\"location\": \"Paris\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,"completion_tokens_details":{"reasoning_tokens":0}}}`
}

// ToolCallChunks streams the same two tool calls with argument deltas.
func ToolCallChunks(model string, includeUsage bool) []string {
	head := `data: {"id":"chatcmpl-tools","object":"chat.completion.chunk","created":1699896916,"model":"` + model + `","choices":[`
	events := []string{
		head + `{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		head + `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\""}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		head + `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":": \"Boston, MA\"}"}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		head + `{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_def456","type":"function","function":{"name":"get_current_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		head + `{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"location\": \"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		head + `{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}` + "\n\n",
	}
	if includeUsage {
		events = append(events, head+`],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99}}`+"\n\n")
	}
	return append(events, "data: [DONE]\n\n")
}

// Response is a Responses API answer.
func Response(model string) string {
	return `{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"` + model + `","output":[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed","role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool.","annotations":[]}]}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123},"user":null,"metadata":{}}`
}

// ResponseEvents streams a Responses API answer; such streams end without [DONE].
func ResponseEvents(model string) []string {
	done := Response(model)
	return []string{
		"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"" + model + "\",\"output\":[]}}\n\n",
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654\",\"output_index\":0,\"content_index\":0,\"delta\":\"In a peaceful grove\"}\n\n",
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":" + done + "}\n\n",
	}
}

// Embedding is an embeddings list with one 3-dimensional vector.
func Embedding(model string) string {
	return `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],"model":"` + model + `","usage":{"prompt_tokens":8,"total_tokens":8}}`
}

// Join concatenates events into one stream body.
func Join(events []string) []byte {
	var buf bytes.Buffer
	for _, e := range events {
		buf.WriteString(e)
	}
	return buf.Bytes()
}
