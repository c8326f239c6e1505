package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"opentracy/backend/api"
	"opentracy/backend/config"
)

const (
	testKey   = "ot-test-gateway-key-0123456789"
	testToken = "ui-test-token-0123456789abcdef"
)

var testUI = fstest.MapFS{
	"index.html":           {Data: []byte("<!doctype html><title>OpenTracy</title>")},
	"assets/index-abc.js":  {Data: []byte("console.log(1)")},
	"assets/index-abc.css": {Data: []byte("body{}")},
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*Server
	base string // http://127.0.0.1:PORT
	logs *syncBuffer
}

func startServer(t testing.TB, mutate ...func(*Options)) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	opts := Options{
		Config:        config.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()},
		Secrets:       config.Secrets{GatewayKey: testKey, UIToken: testToken},
		UI:            testUI,
		Shell:         api.ShellServer,
		Version:       "v-test",
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		StatsInterval: 20 * time.Millisecond,
	}
	for _, m := range mutate {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, base: "http://" + s.Addr(), logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for _, secret := range []string{testKey, testToken} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a secret was logged:\n%s", logs.String())
			}
		}
	})
	return ts
}

// do sends a request; headers are name, value pairs; "Host" sets the Host header.
func (ts *testServer) do(t *testing.T, method, path string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantError checks status and an OpenAI-shaped error body with the given code.
func wantError(t *testing.T, resp *http.Response, status int, code string) api.ErrorBody {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var e api.ErrorResponse
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Error.Code != code || e.Error.Message == "" || e.Error.Type == "" {
		t.Errorf("error = %+v, want code %q with a message and a type", e.Error, code)
	}
	// OpenAI's error object has exactly these members, param null when no parameter is at fault.
	var shape struct{ Error map[string]json.RawMessage }
	if err := json.Unmarshal([]byte(body), &shape); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	keys := slices.Sorted(maps.Keys(shape.Error))
	if !slices.Equal(keys, []string{"code", "message", "param", "type"}) || string(shape.Error["param"]) != "null" {
		t.Errorf("error members %v (param %s), want OpenAI's code, message, param (null) and type: %s", keys, shape.Error["param"], body)
	}
	return e.Error
}

func TestHealthzNeedsNoAuth(t *testing.T) {
	ts := startServer(t)
	resp := ts.do(t, "GET", "/healthz")
	if body := readBody(t, resp); resp.StatusCode != 200 || body != `{"status":"ok"}` {
		t.Errorf("healthz = %d %s", resp.StatusCode, body)
	}
}

func TestGatewayKey(t *testing.T) {
	ts := startServer(t)
	t.Run("missing", func(t *testing.T) {
		resp := ts.do(t, "GET", "/v1/models")
		e := wantError(t, resp, 401, "invalid_api_key")
		if e.Type != "invalid_request_error" || !strings.Contains(e.Message, "Authorization: Bearer") {
			t.Errorf("error %+v does not tell how to authenticate", e)
		}
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	})
	t.Run("wrong", func(t *testing.T) {
		e := wantError(t, ts.do(t, "GET", "/v1/models", "Authorization", "Bearer ot-wrong"), 401, "invalid_api_key")
		if !strings.Contains(e.Message, "incorrect") {
			t.Errorf("message %q", e.Message)
		}
	})
	t.Run("ui token is not a gateway key", func(t *testing.T) {
		wantError(t, ts.do(t, "GET", "/v1/models", "Authorization", "Bearer "+testToken), 401, "invalid_api_key")
	})
	t.Run("bearer", func(t *testing.T) {
		resp := ts.do(t, "GET", "/v1/models", "Authorization", "Bearer "+testKey)
		body := readBody(t, resp)
		if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"object":"list","data":[]}` {
			t.Errorf("models = %d %s", resp.StatusCode, body)
		}
	})
	t.Run("unknown endpoint", func(t *testing.T) {
		wantError(t, ts.do(t, "POST", "/v1/nope", "Authorization", "Bearer "+testKey), 404, "unknown_url")
	})
}

func TestAnthropicIngressUsesAnthropicErrors(t *testing.T) {
	ts := startServer(t)
	for _, tc := range []struct {
		headers []string
		status  int
		errType string
	}{
		{nil, 401, "authentication_error"},
		{[]string{"X-Api-Key", "ot-wrong"}, 401, "authentication_error"},
		{[]string{"X-Api-Key", testKey}, 404, "not_found_error"},
	} {
		resp := ts.do(t, "POST", "/anthropic/v1/nope", tc.headers...)
		var body struct {
			Type  string `json:"type"`
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(readBody(t, resp)), &body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status || body.Type != "error" || body.Error.Type != tc.errType || body.Error.Message == "" {
			t.Errorf("headers %v: %d %+v, want %d %s", tc.headers, resp.StatusCode, body, tc.status, tc.errType)
		}
	}
}

func TestForeignHostIsRefusedEverywhere(t *testing.T) {
	ts := startServer(t)
	for _, path := range []string{"/", "/healthz", "/v1/models", "/api/info"} {
		resp := ts.do(t, "GET", path, "Host", "evil.example:8787", "Authorization", "Bearer "+testKey, TokenHeader, testToken)
		wantError(t, resp, 403, "forbidden_host")
	}
	if !strings.Contains(ts.logs.String(), "foreign host") {
		t.Error("refusals are not logged")
	}
}

func TestLoopbackNamesAndConfiguredHostsAreAccepted(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Config.AllowedHosts = []string{"Tracy.Local:9999"} })
	port := ts.Addr()[strings.LastIndex(ts.Addr(), ":")+1:]
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port, "tracy.local:9999"} {
		if resp := ts.do(t, "GET", "/healthz", "Host", host); resp.StatusCode != 200 {
			t.Errorf("Host %s: status %d", host, resp.StatusCode)
		}
	}
	for _, host := range []string{"localhost", "127.0.0.1:1", "localhost.evil.example:" + port} {
		if resp := ts.do(t, "GET", "/healthz", "Host", host); resp.StatusCode != 403 {
			t.Errorf("Host %s: status %d, want 403", host, resp.StatusCode)
		}
	}
}

func TestManagementAPIRefusesForeignOrigins(t *testing.T) {
	ts := startServer(t)
	for _, h := range [][]string{
		{"Origin", "http://evil.example"},
		{"Origin", "null"},
		{"Origin", "http://127.0.0.1:1"},
		{"Origin", "file://"},
		{"Sec-Fetch-Site", "cross-site"},
	} {
		resp := ts.do(t, "GET", "/api/info", append(h, TokenHeader, testToken)...)
		wantError(t, resp, 403, "forbidden_origin")
	}
	for _, origin := range []string{ts.base, strings.Replace(ts.base, "127.0.0.1", "localhost", 1)} {
		if resp := ts.do(t, "GET", "/api/info", "Origin", origin, TokenHeader, testToken, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 200 {
			t.Errorf("own origin %s: %d", origin, resp.StatusCode)
		}
	}
}

func TestManagementAPINeedsUIToken(t *testing.T) {
	ts := startServer(t)
	e := wantError(t, ts.do(t, "GET", "/api/info"), 401, "ui_token_required")
	if !strings.Contains(e.Message, "opentracy serve") {
		t.Errorf("message %q does not tell where the token is", e.Message)
	}
	wantError(t, ts.do(t, "GET", "/api/info", TokenHeader, "wrong"), 401, "ui_token_required")
	wantError(t, ts.do(t, "GET", "/api/info", "Authorization", "Bearer "+testKey), 401, "ui_token_required")
	for _, h := range [][]string{
		{TokenHeader, testToken},
		{"Authorization", "Bearer " + testToken},
		{"Cookie", tokenCookie + "=" + testToken},
	} {
		if resp := ts.do(t, "GET", "/api/info", h...); resp.StatusCode != 200 {
			t.Errorf("%v: status %d", h, resp.StatusCode)
		}
	}
	wantError(t, ts.do(t, "GET", "/api/nope", TokenHeader, testToken), 404, "unknown_endpoint")
}

func TestLoginLinkSetsCookieAndDropsToken(t *testing.T) {
	ts := startServer(t)
	resp := ts.do(t, "GET", "/?token="+testToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d Location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies = %v", cookies)
	}
	c := cookies[0]
	if c.Name != tokenCookie || c.Value != testToken || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie = %+v, want HttpOnly SameSite=Strict on /", c)
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Error("the login page must not leak its URL as a Referer")
	}

	info := ts.do(t, "GET", "/api/info", "Cookie", c.Name+"="+c.Value)
	var got api.Info
	if err := json.NewDecoder(info.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := api.Info{
		Version: "v-test", Shell: api.ShellServer,
		Gateway: api.GatewayInfo{BaseURL: ts.base + "/v1", AnthropicBaseURL: ts.base + "/anthropic", Key: testKey, KeySource: api.KeyGenerated},
		DataDir: ts.opts.Config.DataDir, StartedAt: got.StartedAt,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("info (-want +got):\n%s", diff)
	}

	bad := ts.do(t, "GET", "/traces?token=wrong&view=1")
	if bad.StatusCode != http.StatusSeeOther || bad.Header.Get("Location") != "/traces?view=1" || len(bad.Cookies()) != 0 {
		t.Errorf("wrong token: %d %q cookies %v; want a redirect without token or cookie", bad.StatusCode, bad.Header.Get("Location"), bad.Cookies())
	}
}

func TestGatewayKeyFromConfig(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.Config.GatewayKey, o.Config.GatewayKeySource = "ot-configured-key-0123456789", "flag"
	})
	if resp := ts.do(t, "GET", "/v1/models", "Authorization", "Bearer "+testKey); resp.StatusCode != 401 {
		t.Errorf("generated key still accepted when one is configured: %d", resp.StatusCode)
	}
	if resp := ts.do(t, "GET", "/v1/models", "Authorization", "Bearer ot-configured-key-0123456789"); resp.StatusCode != 200 {
		t.Errorf("configured key refused: %d", resp.StatusCode)
	}
	var info api.Info
	json.NewDecoder(ts.do(t, "GET", "/api/info", TokenHeader, testToken).Body).Decode(&info)
	if info.Gateway.KeySource != api.KeyFlag {
		t.Errorf("key source = %q", info.Gateway.KeySource)
	}
}

func TestUI(t *testing.T) {
	ts := startServer(t)
	for _, path := range []string{"/", "/index.html", "/traces", "/settings/providers"} {
		resp := ts.do(t, "GET", path)
		body := readBody(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, "<title>OpenTracy</title>") {
			t.Errorf("%s: %d %q, want index.html", path, resp.StatusCode, body)
		}
		if resp.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: index must be revalidated, Cache-Control %q", path, resp.Header.Get("Cache-Control"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("CSP = %q", csp)
		}
	}
	asset := ts.do(t, "GET", "/assets/index-abc.js")
	if asset.StatusCode != 200 || !strings.Contains(asset.Header.Get("Cache-Control"), "immutable") || readBody(t, asset) != "console.log(1)" {
		t.Errorf("hashed asset: %d %q", asset.StatusCode, asset.Header.Get("Cache-Control"))
	}
	if resp := ts.do(t, "GET", "/assets/missing.js"); resp.StatusCode != 404 {
		t.Errorf("missing asset: %d, want 404 (not index.html)", resp.StatusCode)
	}
	wantError(t, ts.do(t, "POST", "/"), 405, "method_not_allowed")
}

func TestUINotBuilt(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.UI = fstest.MapFS{".gitkeep": {}} })
	resp := ts.do(t, "GET", "/")
	if body := readBody(t, resp); resp.StatusCode != 503 || !strings.Contains(body, "make build") {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
}

func TestDesktopHandlerTrustsItsWebview(t *testing.T) {
	ts := startServer(t)
	h := ts.DesktopHandler()
	serve := func(method, target string, headers ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		req.Host = "wails.localhost"
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve("GET", "/api/info", "Origin", "wails://wails"); rec.Code != 200 {
		t.Errorf("desktop /api/info: %d %s", rec.Code, rec.Body)
	}
	if rec := serve("GET", "/"); rec.Code != 200 {
		t.Errorf("desktop /: %d", rec.Code)
	}
	// The gateway key protects provider keys from other local programs, not from the UI: the
	// desktop shell does not waive it.
	if rec := serve("GET", "/v1/models"); rec.Code != 401 {
		t.Errorf("desktop /v1/models without key: %d, want 401", rec.Code)
	}
	// A request with the same Host on the TCP listener is still refused.
	if resp := ts.do(t, "GET", "/api/info", "Host", "wails.localhost", TokenHeader, testToken); resp.StatusCode != 403 {
		t.Errorf("TCP request posing as the desktop: %d, want 403", resp.StatusCode)
	}
}

func TestPanicBecomesErrorResponse(t *testing.T) {
	ts := startServer(t)
	h := ts.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	for path, wantAnthropic := range map[string]bool{"/v1/chat/completions": false, "/anthropic/v1/messages": true} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		if rec.Code != 500 || strings.Contains(rec.Body.String(), `"type":"error"`) != wantAnthropic {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if !strings.Contains(ts.logs.String(), "boom") {
		t.Error("panic not logged")
	}
}

// sseReader reads server-sent events.
type sseReader struct {
	t  *testing.T
	br *bufio.Reader
}

type sseEvent struct{ id, event, data string }

func (r *sseReader) next() sseEvent {
	r.t.Helper()
	var ev sseEvent
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("event stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.event != "" {
				return ev
			}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

// nextOf skips events of other types (periodic server.stats).
func (r *sseReader) nextOf(eventType string) sseEvent {
	r.t.Helper()
	for {
		if ev := r.next(); ev.event == eventType {
			return ev
		}
	}
}

func (ts *testServer) events(t *testing.T, headers ...string) (*sseReader, *http.Response) {
	t.Helper()
	resp := ts.do(t, "GET", "/api/events", append(headers, TokenHeader, testToken)...)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseReader{t: t, br: bufio.NewReader(resp.Body)}, resp
}

func TestEvents(t *testing.T) {
	ts := startServer(t)
	r, _ := ts.events(t)
	hello := r.next()
	var h api.Hello
	if err := json.Unmarshal([]byte(hello.data), &h); hello.event != "hello" || err != nil || h.Version != "v-test" {
		t.Fatalf("first event = %+v", hello)
	}

	var stats api.ServerStats
	if err := json.Unmarshal([]byte(r.nextOf(string(api.EventServerStats)).data), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.EventClients != 1 || stats.Goroutines == 0 || stats.HeapBytes == 0 || stats.RSSBytes == 0 {
		t.Errorf("stats = %+v", stats)
	}

	pub, err := ts.Hub().Publish("trace.created", map[string]string{"id": "t1"})
	if err != nil {
		t.Fatal(err)
	}
	got := r.nextOf("trace.created")
	if got.data != `{"id":"t1"}` || got.id == "" {
		t.Errorf("published event = %+v", got)
	}

	// A reconnecting client gets what it missed after its Last-Event-ID...
	if _, err := ts.Hub().Publish("trace.created", map[string]string{"id": "t2"}); err != nil {
		t.Fatal(err)
	}
	r2, _ := ts.events(t, "Last-Event-ID", jsonNumber(pub.ID))
	r2.next() // hello
	if ev := r2.nextOf("trace.created"); ev.data != `{"id":"t2"}` {
		t.Errorf("resumed event = %+v, want t2", ev)
	}
	// ...and a reset when its id is unknown (the server restarted).
	r3, _ := ts.events(t, "Last-Event-ID", "999999")
	r3.next()
	if ev := r3.next(); ev.event != string(api.EventReset) {
		t.Errorf("after an unknown Last-Event-ID: %+v, want reset", ev)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestShutdownEndsEventStreams(t *testing.T) {
	ts := startServer(t)
	r, resp := ts.events(t)
	r.next()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open event stream: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown waited %v on an event stream", d)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Errorf("stream did not end cleanly: %v", err)
	}
	if err := <-ts.Done(); err != nil {
		t.Errorf("serve error after shutdown: %v", err)
	}
}

func TestStartReportsBusyPort(t *testing.T) {
	ts := startServer(t)
	s, err := New(Options{Config: config.Config{Addr: ts.Addr(), DataDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "--addr") {
		t.Fatalf("err = %v, want advice to pick another --addr", err)
	}
}

// pipeWriter is a ResponseWriter without http.Flusher that writes straight through, like the
// desktop AssetServer's writer.
type pipeWriter struct {
	header http.Header
	w      *io.PipeWriter
}

func (p *pipeWriter) Header() http.Header         { return p.header }
func (p *pipeWriter) WriteHeader(int)             {}
func (p *pipeWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

func TestEventsStreamThroughWriterWithoutFlusher(t *testing.T) {
	ts := startServer(t)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := httptest.NewRequestWithContext(ctx, "GET", "/api/events", nil)
		ts.DesktopHandler().ServeHTTP(&pipeWriter{header: http.Header{}, w: pw}, req)
		pw.Close()
	}()
	r := &sseReader{t: t, br: bufio.NewReader(pr)}
	if ev := r.next(); ev.event != "hello" {
		t.Fatalf("first event %+v", ev)
	}
	if _, err := ts.Hub().Publish("trace.created", 1); err != nil {
		t.Fatal(err)
	}
	if ev := r.nextOf("trace.created"); ev.data != "1" {
		t.Errorf("event after hello = %+v: the stream must stay open without a Flusher", ev)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	<-done
}
