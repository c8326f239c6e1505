package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"opentracy/backend/providers/openai/openaitest"
)

// StatePath is where a fake upstream takes its settings (PUT) and reports them with its request
// count (GET), so a harness can drive a fake that runs in another process.
const StatePath = "/bench/state"

// UpstreamState is what a fake upstream does, and how many chat requests it has answered.
type UpstreamState struct {
	// DelayMicros is waited before every answer (the model's processing time).
	DelayMicros int64 `json:"delay_us"`
	// Chunks is the number of chunks in a streamed answer (content chunks; the last says "stop").
	Chunks int `json:"chunks"`
	// ChunkDelayMicros is waited between streamed chunks.
	ChunkDelayMicros int64 `json:"chunk_delay_us"`
	// Requests counts chat completions answered (read-only).
	Requests int64 `json:"requests"`
}

// Upstream is a fake OpenAI chat-completions server on loopback, tuned to cost little so that the
// harness measures the gateway, not the fake. Answers are openaitest's wire fixtures; unlike
// openaitest.Server its delays and stream length change atomically while it serves.
type Upstream struct {
	srv      *http.Server
	ln       net.Listener
	delay    atomic.Int64 // ns
	chunks   atomic.Int64
	chunkGap atomic.Int64 // ns
	requests atomic.Int64
	done     chan error
}

// upstreamMarker precedes the fake's base URL in ServeUpstream's output.
const upstreamMarker = "Fake upstream URL:"

// ServeUpstream serves a fake upstream on addr until ctx ends, printing its base URL after
// "Fake upstream URL:" once it listens: the process a run starts for its fake (see
// Config.UpstreamBinary), driven through StatePath.
func ServeUpstream(ctx context.Context, addr string, out io.Writer) error {
	u, err := StartUpstream(addr)
	if err != nil {
		return err
	}
	return announceUntil(ctx, out, upstreamMarker+" "+u.BaseURL(), u.Close)
}

// announceUntil prints line, which the harness that started this process waits for, and then
// serves until ctx ends, when it calls stop.
func announceUntil(ctx context.Context, out io.Writer, line string, stop func() error) error {
	if _, err := fmt.Fprintln(out, line); err != nil {
		return errors.Join(fmt.Errorf("announce %q: %w", line, err), stop())
	}
	<-ctx.Done()
	return stop()
}

// StartUpstream listens on addr ("127.0.0.1:0" for any free port) and serves until Close.
func StartUpstream(addr string) (*Upstream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake upstream: listen on %s: %w", addr, err)
	}
	u := &Upstream{ln: ln, done: make(chan error, 1)}
	u.chunks.Store(5)
	u.srv = &http.Server{
		Handler:           u.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Clients that hang up mid-stream are expected under load; their errors are noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { u.done <- u.srv.Serve(ln) }()
	return u, nil
}

// BaseURL is the OpenAI base URL of the fake (".../v1").
func (u *Upstream) BaseURL() string { return "http://" + u.ln.Addr().String() + "/v1" }

// Close stops the fake, ending open connections.
func (u *Upstream) Close() error {
	err := u.srv.Close()
	if serveErr := <-u.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(err, fmt.Errorf("fake upstream: %w", serveErr))
	}
	return err
}

// Set changes the fake's behaviour for the following requests.
func (u *Upstream) Set(delay time.Duration, chunks int, chunkDelay time.Duration) {
	u.delay.Store(int64(delay))
	u.chunks.Store(int64(max(chunks, 1)))
	u.chunkGap.Store(int64(chunkDelay))
}

// State reports the current settings and request count.
func (u *Upstream) State() UpstreamState {
	return UpstreamState{
		DelayMicros:      u.delay.Load() / 1e3,
		Chunks:           int(u.chunks.Load()),
		ChunkDelayMicros: u.chunkGap.Load() / 1e3,
		Requests:         u.requests.Load(),
	}
}

// Handler serves POST /v1/chat/completions, GET /v1/models and the state endpoint.
func (u *Upstream) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", u.chat)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}`)
	})
	mux.HandleFunc("GET "+StatePath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(u.State())
	})
	mux.HandleFunc("PUT "+StatePath, func(w http.ResponseWriter, r *http.Request) {
		var s UpstreamState
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			http.Error(w, "bad state: "+err.Error(), http.StatusBadRequest)
			return
		}
		u.Set(time.Duration(s.DelayMicros)*time.Microsecond, s.Chunks, time.Duration(s.ChunkDelayMicros)*time.Microsecond)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// chatRequest is the little of a chat request the fake needs.
type chatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (u *Upstream) chat(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req chatRequest
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"We could not parse the JSON body of your request.","type":"invalid_request_error","param":null,"code":null}}`)
		return
	}
	u.requests.Add(1)
	if !sleepCtx(r.Context(), time.Duration(u.delay.Load())) {
		return
	}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_bench")
		_, _ = io.WriteString(w, openaitest.ChatCompletion(req.Model))
		return
	}
	u.stream(w, r, req.Model, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
}

// stream sends the configured number of chunks in openaitest's chunk shape, flushing each; the
// first goes out at once and ChunkDelay separates the others.
func (u *Upstream) stream(w http.ResponseWriter, r *http.Request, model string, includeUsage bool) {
	n := int(u.chunks.Load())
	gap := time.Duration(u.chunkGap.Load())
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	head := `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1694268190,"model":` +
		strconv.Quote(model) + `,"system_fingerprint":"fp_44709d6fcb","choices":[`
	usageField := ""
	if includeUsage {
		usageField = `,"usage":null`
	}
	var buf bytes.Buffer
	send := func() bool {
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	for i := range n {
		if i > 0 && !sleepCtx(r.Context(), gap) {
			return
		}
		buf.WriteString(head)
		switch {
		case i == n-1:
			buf.WriteString(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]`)
		case i == 0:
			buf.WriteString(`{"index":0,"delta":{"role":"assistant","content":"tok0"},"logprobs":null,"finish_reason":null}]`)
		default:
			buf.WriteString(`{"index":0,"delta":{"content":" tok` + strconv.Itoa(i) + `"},"logprobs":null,"finish_reason":null}]`)
		}
		buf.WriteString(usageField)
		buf.WriteString("}\n\n")
		if !send() {
			return
		}
	}
	if includeUsage {
		buf.WriteString(head)
		fmt.Fprintf(&buf, `],"usage":{"prompt_tokens":19,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n", n, n+19)
	}
	buf.WriteString("data: [DONE]\n\n")
	send()
}

// sleepCtx waits d unless ctx ends first; it reports whether the wait completed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
