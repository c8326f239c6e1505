package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"opentracy/backend/providers"
	"opentracy/backend/providers/openai/openaitest"
	"opentracy/backend/traces"
)

// memProvider answers from memory, so a benchmark sees only the gateway's own work: parsing,
// routing, relaying and building the trace, without sockets or an upstream.
type memProvider struct{ whole, stream []byte }

func (p *memProvider) Name() string { return "openai" }

func (p *memProvider) Chat(_ context.Context, req *providers.Request) (*providers.Response, error) {
	body := p.whole
	if req.Stream {
		body = p.stream
	}
	return &providers.Response{Status: http.StatusOK, Header: http.Header{"X-Request-Id": {"req_1"}},
		Body: io.NopCloser(bytes.NewReader(body))}, nil
}

// discardSink drops traces: recording them is the sink's cost, measured with the sink.
type discardSink struct{}

func (discardSink) Record(*traces.Trace) {}

// longChat is a chat request with a long context (n messages of about 500 bytes), "model" after
// "messages" as the official SDKs send it.
func longChat(n int, stream bool) string {
	var b strings.Builder
	b.WriteString(`{"messages":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"role":"user","content":"` + strings.Repeat(`lorem ipsum dolor sit amet, \"quoted\"\n `, 12) + `"}`)
	}
	b.WriteString(`],"model":"gpt-4o-mini","temperature":0.2`)
	if stream {
		b.WriteString(`,"stream":true`)
	}
	b.WriteString(`}`)
	return b.String()
}

// BenchmarkHandle is the gateway's own CPU and allocations per request, by body size and mode.
func BenchmarkHandle(b *testing.B) {
	p := &memProvider{whole: []byte(openaitest.ChatCompletion("gpt-4o-mini")), stream: openaitest.Join(openaitest.ChatChunks("gpt-4o-mini", true))}
	g := New(Options{Providers: []providers.Provider{p}, Sink: discardSink{}})
	h := g.Handler()
	for _, c := range []struct {
		name string
		body string
	}{
		{"small", chatBody},
		{"small_stream", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello"}]}`},
		{"100KB", longChat(200, false)},
		{"100KB_stream", longChat(200, true)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(c.body))
				req.ContentLength = int64(len(c.body))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
