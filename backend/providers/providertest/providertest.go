// Package providertest holds what the translating adapters' tests share: fixtures and golden
// files, JSON comparison, a byte-at-a-time reader, a recording fake upstream, and a real OpenAI
// client (go-openai) pointed at an adapter, to prove its output is valid OpenAI wire format.
// Imported by tests only.
package providertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	openai "github.com/sashabaranov/go-openai"

	"opentracy/backend/config"
	"opentracy/backend/providers"
)

// Fixture reads testdata/name.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// CheckGolden compares got with testdata/name line by line; with update it rewrites the file
// instead (review the diff before committing).
func CheckGolden(t testing.TB, name string, got []byte, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

// JSONDiff compares two JSON documents by value.
func JSONDiff(t testing.TB, want, got []byte) string {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want is not JSON: %v\n%s", err, want)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	return cmp.Diff(w, g)
}

// Env is an environment holding only m.
func Env(m map[string]string) config.Environment {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// ReadAllSmall reads r with a one-byte buffer, the worst case for a reader keeping state.
func ReadAllSmall(r io.Reader) ([]byte, error) {
	var out bytes.Buffer
	p := make([]byte, 1)
	for {
		n, err := r.Read(p)
		out.Write(p[:n])
		if errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// OpenAIClient serves p's Chat over HTTP, as the gateway would (calling it with model), and
// returns a go-openai client pointed at it.
func OpenAIClient(t testing.TB, p providers.Provider, model string) *openai.Client {
	t.Helper()
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var peek struct {
			Stream bool `json:"stream"`
		}
		_ = json.Unmarshal(body, &peek)
		resp, err := p.Chat(r.Context(), &providers.Request{Body: body, Model: model, Stream: peek.Stream, Header: r.Header})
		var pe *providers.Error
		if errors.As(err, &pe) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(pe.Status)
			_, _ = w.Write(pe.Body)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer resp.Body.Close()
		if peek.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(resp.Status)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(gw.Close)
	cfg := openai.DefaultConfig("gateway-key")
	cfg.BaseURL = gw.URL + "/v1"
	return openai.NewClientWithConfig(cfg)
}

// ClientRequest is what the real-client tests send: one user question and a get_weather tool;
// a stream asks for usage too.
func ClientRequest(model, question string, stream bool) openai.ChatCompletionRequest {
	req := openai.ChatCompletionRequest{
		Model:    model,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: question}},
		Tools: []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"location":{"type":"string"}}}`)}}},
		Stream: stream,
	}
	if stream {
		req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	return req
}

// CheckChat sends req unstreamed and compares what client decodes with want.
func CheckChat(t testing.TB, client *openai.Client, req openai.ChatCompletionRequest, want openai.ChatCompletionResponse) {
	t.Helper()
	got, err := client.CreateChatCompletion(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".httpHeader" }, cmp.Ignore())); diff != "" {
		t.Errorf("decoded response (-want +got):\n%s", diff)
	}
}

// CheckStream sends req streamed and compares what client assembles with want.
func CheckStream(t testing.TB, client *openai.Client, req openai.ChatCompletionRequest, want StreamResult) {
	t.Helper()
	got, err := SendStream(t, client, req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("assembled stream (-want +got):\n%s", diff)
	}
}

// SendStream sends req streamed and reads the whole stream; err is what broke it.
func SendStream(t testing.TB, client *openai.Client, req openai.ChatCompletionRequest) (StreamResult, error) {
	t.Helper()
	stream, err := client.CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return ReadClientStream(t, stream)
}

// APIError is what a client must see of an upstream's error.
type APIError struct {
	Status int
	Type   string
	Code   any // go-openai decodes a null code as the int 0
	// Message is a part of the message.
	Message string
}

// Check fails t unless err is an *openai.APIError matching e.
func (e APIError) Check(t testing.TB, what string, err error) {
	t.Helper()
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("%s: err = %v, want an *openai.APIError", what, err)
	}
	if (e.Status != 0 && apiErr.HTTPStatusCode != e.Status) || apiErr.Type != e.Type || apiErr.Code != e.Code || !strings.Contains(apiErr.Message, e.Message) {
		t.Errorf("%s: api error = %+v, want %+v", what, *apiErr, e)
	}
}

// CheckErrorBothWays sends the request newRequest makes, unstreamed and streamed, each through a
// fresh client, and checks the error both fail with.
func CheckErrorBothWays(t testing.TB, newClient func() *openai.Client, newRequest func(stream bool) openai.ChatCompletionRequest, want APIError) {
	t.Helper()
	for _, stream := range []bool{false, true} {
		var err error
		if stream {
			_, err = newClient().CreateChatCompletionStream(context.Background(), newRequest(true))
		} else {
			_, err = newClient().CreateChatCompletion(context.Background(), newRequest(false))
		}
		want.Check(t, fmt.Sprintf("stream=%v", stream), err)
	}
}

// StreamResult is what an OpenAI client assembles from a stream.
type StreamResult struct {
	ID, Model, Content, Reasoning string
	ToolCalls                     []openai.ToolCall
	FinishReason                  openai.FinishReason
	Usage                         *openai.Usage
	Chunks                        int
}

// ReadClientStream reads a whole stream as a client would, joining deltas and tool-call parts.
func ReadClientStream(t testing.TB, stream *openai.ChatCompletionStream) (StreamResult, error) {
	t.Helper()
	defer stream.Close()
	var r StreamResult
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return r, nil
		}
		if err != nil {
			return r, err
		}
		r.Chunks++
		r.ID, r.Model = chunk.ID, chunk.Model
		if chunk.Usage != nil {
			r.Usage = chunk.Usage
		}
		for _, c := range chunk.Choices {
			r.Content += c.Delta.Content
			r.Reasoning += c.Delta.ReasoningContent
			if c.FinishReason != "" {
				r.FinishReason = c.FinishReason
			}
			for _, tc := range c.Delta.ToolCalls {
				if tc.Index == nil {
					t.Fatalf("tool call delta without index: %+v", tc)
				}
				for len(r.ToolCalls) <= *tc.Index {
					r.ToolCalls = append(r.ToolCalls, openai.ToolCall{})
				}
				call := &r.ToolCalls[*tc.Index]
				call.ID += tc.ID
				call.Type = openai.ToolType(string(call.Type) + string(tc.Type))
				call.Function.Name += tc.Function.Name
				call.Function.Arguments += tc.Function.Arguments
			}
		}
	}
}

// Upstream is a fake provider API on loopback: it records each request and answers every one
// with the same canned reply.
type Upstream struct {
	URL string
	// Header is sent with every reply; add to it before the first request.
	Header http.Header

	status int
	reply  []byte

	mu       sync.Mutex
	requests []Recorded
}

// Recorded is one request an Upstream got.
type Recorded struct {
	Method, Path, RequestURI, Host string
	Header                         http.Header
	Body                           []byte
}

// NewUpstream serves reply with status and contentType until the test ends.
func NewUpstream(t testing.TB, status int, contentType string, reply []byte) *Upstream {
	t.Helper()
	u := &Upstream{status: status, Header: http.Header{"Content-Type": {contentType}}, reply: reply}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.requests = append(u.requests, Recorded{Method: r.Method, Path: r.URL.Path, RequestURI: r.RequestURI, Host: r.Host,
			Header: r.Header.Clone(), Body: data})
		u.mu.Unlock()
		for k, vs := range u.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(u.status)
		_, _ = w.Write(u.reply)
	}))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// Last is the latest request; the test fails when there was none.
func (u *Upstream) Last(t testing.TB) Recorded {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.requests) == 0 {
		t.Fatal("upstream got no request")
	}
	return u.requests[len(u.requests)-1]
}

// Count is how many requests arrived.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.requests)
}
