package bench

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMinimalProxyForwards: plain answers (Content-Length) and streamed ones (chunked) come back
// through the proxy as the fake sent them, over one kept-alive connection each way.
func TestMinimalProxyForwards(t *testing.T) {
	t.Parallel()
	up, err := StartUpstream("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	up.Set(0, 3, time.Millisecond)
	p, err := StartMinimalProxy("127.0.0.1:0", up.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	body, streamBody := requestBodies("gpt-4o-mini")
	via := newClient(p.BaseURL(), upstreamKey, 1)
	defer via.close()
	direct := newClient(up.BaseURL(), upstreamKey, 1)
	defer direct.close()
	for range 3 {
		if _, err := via.do(t.Context(), body); err != nil {
			t.Fatalf("plain request through the proxy: %v", err)
		}
	}
	if _, err := via.stream(t.Context(), streamBody, 3); err != nil { // checks 3 chunks and [DONE]
		t.Fatalf("stream through the proxy: %v", err)
	}
	if n := up.requests.Load(); n != 4 {
		t.Errorf("upstream got %d requests, want 4", n)
	}

	// Byte for byte: the same request straight to the fake and through the proxy.
	raw := func(addr string) []byte {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + upstreamKey +
			"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		var msg bytes.Buffer
		if _, err := relayMessage(&msg, bufio.NewReader(c), nil); err != nil {
			t.Fatalf("read answer from %s: %v", addr, err)
		}
		return dropDate(msg.Bytes())
	}
	upAddr := strings.TrimSuffix(strings.TrimPrefix(up.BaseURL(), "http://"), "/v1")
	proxyAddr := strings.TrimSuffix(strings.TrimPrefix(p.BaseURL(), "http://"), "/v1")
	if a, b := raw(upAddr), raw(proxyAddr); !bytes.Equal(a, b) {
		t.Errorf("answer through the proxy differs:\n%s\nvs direct\n%s", b, a)
	}
}

// dropDate removes the Date header, the one line two answers a second apart may differ in.
func dropDate(msg []byte) []byte {
	var out []byte
	for line := range bytes.Lines(msg) {
		if !bytes.HasPrefix(line, []byte("Date:")) {
			out = append(out, line...)
		}
	}
	return out
}

// TestRelayMessage: framing by Content-Length, by chunks (extensions and trailers kept), none,
// and malformed messages refused.
func TestRelayMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, in, want string
		err            bool
	}{
		{"content length", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloNEXT", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", false},
		{"no body", "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nNEXT", "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "", true},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "", true},
		{"empty start line", "\r\n", "", true},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in))
			var got bytes.Buffer
			_, err := relayMessage(&got, r, nil)
			if tt.err {
				if err == nil {
					t.Errorf("relayed %q, want an error", got.String())
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("got %q, %v; want %q", got.String(), err, tt.want)
			}
			if rest, _ := io.ReadAll(r); string(rest) != "NEXT" {
				t.Errorf("left %q unread, want the next message", rest)
			}
		})
	}
}

// TestRelayMessageStreams: a chunk goes out as soon as it has arrived, before the next one does.
func TestRelayMessageStreams(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	out := make(chan string, 8)
	done := make(chan error, 1)
	go func() {
		_, err := relayMessage(writerFunc(func(p []byte) (int, error) { out <- string(p); return len(p), nil }), bufio.NewReader(pr), nil)
		done <- err
	}()
	head := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	first := "6\r\ndata 1\r\n"
	if _, err := io.WriteString(pw, head+first); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-out:
		if got != head+first {
			t.Errorf("first write %q, want the head and the first chunk", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first chunk was held back waiting for the rest")
	}
	if _, err := io.WriteString(pw, "6\r\ndata 2\r\n0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := <-out; got != "6\r\ndata 2\r\n0\r\n\r\n" {
		t.Errorf("second write %q", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// With a pause, every request follows that much quiet: the loop takes at least the pauses.
func TestMeasureLatencyPausesBeforeEachRequest(t *testing.T) {
	t.Parallel()
	up, err := StartUpstream("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	body, _ := requestBodies("gpt-4o-mini")
	a, b := newClient(up.BaseURL(), upstreamKey, 1), newClient(up.BaseURL(), upstreamKey, 1)
	defer a.close()
	defer b.close()
	const n, pause = 5, 20 * time.Millisecond
	start := time.Now()
	r, err := measureLatency(t.Context(), []latencyTarget{{c: a}, {c: b}, {}}, body, n, pause)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 2*n*pause {
		t.Errorf("%d requests to each of 2 targets took %v, less than their pauses (%v)", n, elapsed, 2*n*pause)
	}
	if r.Pause != pause || r.Requests != n || r.Direct.P50 <= 0 || r.Gateway.P50 <= 0 || r.Proxy != (Percentiles{}) {
		t.Errorf("result %+v", r)
	}
}
