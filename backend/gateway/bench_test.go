package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkChatRoundTrip is one non-streamed chat completion through the gateway (served by the
// app's HTTP server, h1serve) over loopback,
// against the same request straight to the fake upstream (the difference is what the gateway adds)
// and through the standard library's bare reverse proxy (the floor for a net/http proxy).
func BenchmarkChatRoundTrip(b *testing.B) {
	h := newHarness(b, []string{"openai"})
	upstream, _ := url.Parse(h.up["openai"].URL)
	bare := httputil.NewSingleHostReverseProxy(upstream)
	bare.Transport = &http.Transport{MaxIdleConnsPerHost: 4}
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, target := range []struct{ name, url string }{
		{"direct", h.up["openai"].BaseURL() + "/chat/completions"},
		{"gateway", h.url + "/v1/chat/completions"},
		{"stdlib_reverse_proxy", bareSrv.URL + "/v1/chat/completions"},
	} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Post(target.url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
