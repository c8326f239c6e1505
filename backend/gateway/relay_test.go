package gateway

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"opentracy/backend/providers"
)

// pipeProvider streams whatever the test writes to w, when the test writes it.
type pipeProvider struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newPipeProvider() *pipeProvider {
	r, w := io.Pipe()
	return &pipeProvider{r: r, w: w}
}

func (p *pipeProvider) Name() string { return "openai" }

func (p *pipeProvider) Chat(context.Context, *providers.Request) (*providers.Response, error) {
	return &providers.Response{Status: http.StatusOK, Header: http.Header{}, Body: p.r}, nil
}

const (
	chunkA     = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"A\"}}]}\n\n"
	chunkB     = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"B\"}}]}\n\n"
	usageChunk = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
)

// streamThrough starts a stream through the gateway and returns the client's reader of it.
func streamThrough(t *testing.T, p *pipeProvider) *bufio.Reader {
	t.Helper()
	g := New(Options{Providers: []providers.Provider{p}, Sink: discardSink{}})
	url := serve(t, g.Handler())
	t.Cleanup(func() { p.w.Close() })
	type answer struct {
		resp *http.Response
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Post(url+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[]}`))
		got <- answer{resp, err}
	}()
	// The gateway reads the first event before it answers (to fall back if it never comes).
	if _, err := io.WriteString(p.w, chunkA); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { a.resp.Body.Close() })
	return bufio.NewReader(a.resp.Body)
}

// readData reads the client's stream up to and including want's data line, or fails after a
// while: the gateway must not hold back what the upstream sent.
func readData(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	want = strings.TrimSpace(want)
	done := make(chan string, 1)
	go func() {
		var seen strings.Builder
		for {
			line, err := br.ReadString('\n')
			seen.WriteString(line)
			if strings.TrimSpace(line) == want || err != nil {
				done <- seen.String()
				return
			}
		}
	}()
	select {
	case s := <-done:
		if !strings.Contains(s, want) {
			t.Fatalf("stream ended before %q; got %q", want, s)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q not relayed while the upstream waits: held back", want)
	}
}

// TestStreamRelaysBurstsWithoutHoldingBack: events that arrive together go out together, and
// nothing already received waits for the next upstream event, whatever follows it in the buffer.
func TestStreamRelaysBurstsWithoutHoldingBack(t *testing.T) {
	for name, tail := range map[string]string{
		"two events at once":           chunkB,
		"a hidden usage chunk behind":  chunkB + usageChunk,
		"blank lines and spaces after": chunkB + "\n\n \n\n",
		"a keep-alive comment after":   chunkB + ": ping\n\n",
		"half an event after":          chunkB + "data: {\"choi",
	} {
		t.Run(name, func(t *testing.T) {
			p := newPipeProvider()
			br := streamThrough(t, p)
			readData(t, br, chunkA)
			if _, err := io.WriteString(p.w, tail); err != nil {
				t.Fatal(err)
			}
			readData(t, br, chunkB) // while the upstream sends nothing more
		})
	}
}

func TestEventBuffered(t *testing.T) {
	for in, want := range map[string]bool{
		"":                      false,
		"data: x":               false,
		"data: x\n":             false,
		"data: x\n\n":           true,
		"data: x\r\n\r\n":       true,
		"\n\n\n":                false,
		" \n\n":                 false,
		"\n\n \n\ndata: x\n\n":  true,
		": ping\n\n":            true,
		"event: e\ndata: x\n\n": true,
	} {
		br := bufio.NewReader(strings.NewReader(in))
		_, _ = br.Peek(len(in)) // fill the buffer
		if got := eventBuffered(br); got != want {
			t.Errorf("eventBuffered(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestIsComment(t *testing.T) {
	for in, want := range map[string]bool{
		": ping\n\n":          true,
		":a\n:b\n\n":          true,
		"  \n: ping\r\n\r\n":  true,
		"data: x\n\n":         false,
		": ping\ndata: x\n\n": false,
	} {
		if got := isComment([]byte(in)); got != want {
			t.Errorf("isComment(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestReadEventReusesItsBuffer(t *testing.T) {
	br := bufio.NewReader(strings.NewReader(chunkA + "\n" + chunkB))
	buf := make([]byte, 0, 256)
	a, err := readEvent(br, buf)
	if err != nil || string(a) != chunkA || &a[0] != &buf[:1][0] {
		t.Fatalf("first event %q, %v (in the given buffer: %v)", a, err, &a[0] == &buf[:1][0])
	}
	b, err := readEvent(br, a)
	if err != nil || string(b) != chunkB || &b[0] != &buf[:1][0] {
		t.Fatalf("second event %q, %v", b, err)
	}
	if _, err := readEvent(br, b); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
}
