package h1serve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// start serves h on a loopback port until the test ends and returns the address.
func start(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// rawConn is a client connection that writes bytes as given and reads answers one at a time.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one answer (to a request of method) and its whole body.
func (c *rawConn) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// closedByServer says whether the server closed the connection (EOF with nothing more sent).
func (c *rawConn) closedByServer() bool {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF)
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n"
}

func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

func TestKeepAliveFramesShortAnswersByLengthAndLongOnesInChunks(t *testing.T) {
	long := strings.Repeat("x", heldBack+1)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		case "/long":
			io.WriteString(w, long[:10])
			io.WriteString(w, long[10:])
		case "/empty":
			w.WriteHeader(http.StatusAccepted)
		}
	})})
	c := dial(t, addr)
	for i := range 3 {
		payload := fmt.Sprintf(`{"n":%d}`, i)
		c.send(post("/echo", payload))
		resp, body := c.read("POST")
		if resp.StatusCode != 200 || body != payload || resp.ContentLength != int64(len(payload)) || resp.TransferEncoding != nil {
			t.Fatalf("echo %d: %d %q length %d encoding %v", i, resp.StatusCode, body, resp.ContentLength, resp.TransferEncoding)
		}
		if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Date") == "" {
			t.Errorf("headers: %v", resp.Header)
		}
	}
	c.send(get("/long"))
	resp, body := c.read("GET")
	if body != long || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("long answer: %d bytes, encoding %v", len(body), resp.TransferEncoding)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Errorf("sniffed Content-Type %q", got)
	}
	c.send(get("/empty"))
	resp, body = c.read("GET")
	if resp.StatusCode != http.StatusAccepted || body != "" || resp.ContentLength != 0 {
		t.Fatalf("empty answer: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
	if resp.Close {
		t.Error("connection closed after a keep-alive exchange")
	}
}

func TestFlushSendsEachPieceAsItIsWritten(t *testing.T) {
	next := make(chan struct{})
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush: %v", err)
			}
			<-next
		}
	})})
	c := dial(t, addr)
	c.send(get("/events"))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(resp.Body)
	for i := range 3 {
		// Each event arrives while the handler still waits: nothing is held back.
		line, err := lines.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		lines.ReadString('\n')
		next <- struct{}{}
	}
	if rest, _ := io.ReadAll(lines); len(rest) != 0 {
		t.Fatalf("trailing %q", rest)
	}
}

func TestBodylessAnswers(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			io.WriteString(w, "twelve bytes")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
			if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Errorf("write after 204: %v", err)
			}
		}
	})})
	c := dial(t, addr)
	c.send("HEAD /head HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, body := c.read("HEAD")
	if resp.ContentLength != 12 || body != "" {
		t.Fatalf("HEAD: length %d body %q", resp.ContentLength, body)
	}
	c.send(get("/204"))
	resp, body = c.read("GET")
	if resp.StatusCode != http.StatusNoContent || body != "" || resp.Header.Get("Content-Length") != "" || resp.TransferEncoding != nil {
		t.Fatalf("204: %v %q", resp.Header, body)
	}
	c.send(get("/head")) // the connection still frames correctly after both
	if _, body = c.read("GET"); body != "twelve bytes" {
		t.Fatalf("after: %q", body)
	}
}

func TestDeclaredLength(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		switch r.URL.Path {
		case "/over":
			if _, err := io.WriteString(w, "123456"); !errors.Is(err, http.ErrContentLength) {
				t.Errorf("writing past Content-Length: %v", err)
			}
			io.WriteString(w, "12345")
		case "/short":
			io.WriteString(w, "123")
		}
	})})
	c := dial(t, addr)
	c.send(get("/over"))
	if resp, body := c.read("GET"); resp.ContentLength != 5 || body != "12345" {
		t.Fatalf("over: %d %q", resp.ContentLength, body)
	}
	c.send(get("/short"))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a short body must end in a closed connection, got %v", err)
	}
}

func TestExpectContinue(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	})})
	c := dial(t, addr)
	c.send("POST /x HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("want 100 Continue before the body, got %q %v", line, err)
	}
	c.br.ReadString('\n')
	c.send("hello")
	if _, body := c.read("POST"); body != "hello" {
		t.Fatalf("body %q", body)
	}

	c.send("POST /x HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: something-else\r\n\r\n")
	if resp, body := c.read("POST"); resp.StatusCode != http.StatusExpectationFailed || !strings.Contains(body, "Expect") {
		t.Fatalf("unknown Expect: %d %q", resp.StatusCode, body)
	}
}

func TestRefusedRequestsGetAClearErrorAndTheConnectionCloses(t *testing.T) {
	srv := &Server{MaxHeaderBytes: 1 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("handler ran for %s %s", r.Method, r.URL)
	})}
	addr := start(t, srv)
	for _, tc := range []struct {
		name, request string
		status        int
		says          string
	}{
		{"garbage", "NOT HTTP\r\n\r\n", http.StatusBadRequest, "malformed HTTP request"},
		{"no host", "GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest, "missing required Host header"},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", http.StatusBadRequest, "Host"},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", http.StatusBadRequest, "malformed Host header"},
		{"bad header name", "GET / HTTP/1.1\r\nHost: test\r\nX Y: z\r\n\r\n", http.StatusBadRequest, "invalid header name"},
		{"control character in a value", "GET / HTTP/1.1\r\nHost: test\r\nX-Y: a\x01b\r\n\r\n", http.StatusBadRequest, "malformed"},
		{"huge headers", "GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge, "headers are larger"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", http.StatusHTTPVersionNotSupported, "HTTP/1.x"},
		{"bad chunked length", "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", http.StatusBadRequest, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(tc.request)
			resp, body := c.read("GET")
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			if !c.closedByServer() {
				t.Fatal("connection left open after a refused request")
			}
		})
	}
}

func TestHTTP10GetsItsAnswerAndAClose(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("y", heldBack+10)) // too long to hold: no length known up front
	})})
	c := dial(t, addr)
	c.send("GET / HTTP/1.0\r\n\r\n")
	resp, body := c.read("GET")
	if len(body) != heldBack+10 || resp.TransferEncoding != nil || !resp.Close {
		t.Fatalf("%d bytes, encoding %v, close %v", len(body), resp.TransferEncoding, resp.Close)
	}
}

func TestUnreadBodies(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ignored your body")
	})})
	c := dial(t, addr)
	c.send(post("/", strings.Repeat("a", 1000)))
	c.read("POST")
	c.send(get("/")) // the small body was skipped: the next request parses
	if resp, _ := c.read("GET"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("after a small unread body: %d close %v", resp.StatusCode, resp.Close)
	}

	// A body too large to skip: the client is still sending when the answer is written. The
	// answer must survive the close (a FIN, not a reset) and be readable after the send ends.
	c = dial(t, addr)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		io.WriteString(c.nc, post("/", strings.Repeat("a", 8<<20))) // fails part-way: fine
	}()
	<-sent
	resp, body := c.read("POST")
	if body != "ignored your body" || !resp.Close && !c.closedByServer() {
		t.Fatalf("answer to an unread large body: %q close %v", body, resp.Close)
	}
}

// awaitCancel reports on canceled how r's context ended: canceled, or not within 10 s.
func awaitCancel(r *http.Request, canceled chan<- error) {
	select {
	case <-r.Context().Done():
		canceled <- r.Context().Err()
	case <-time.After(10 * time.Second):
		canceled <- errors.New("not canceled")
	}
}

func TestClientHangUpCancelsTheRequest(t *testing.T) {
	canceled := make(chan error, 1)
	addr := start(t, &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		awaitCancel(r, canceled)
	})})
	c := dial(t, addr)
	c.send(post("/slow", `{"model":"x"}`))
	time.Sleep(20 * time.Millisecond) // past WatchAfter: the watch is on
	c.nc.Close()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("request context after hang-up: %v", err)
	}
}

// waitScannerStopped fails the test unless the hang-up scanner stops within 5 s.
func waitScannerStopped(t *testing.T, srv *Server, while string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); srv.scanning.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the scanner still runs with %s", while)
		}
	}
}

// Kept-alive connections waiting for their next request cost no wake-ups: the scanner stops
// once no request has run for scanIdleTicks scans, and the next request starts it again.
func TestWatchScannerStopsWhileNoRequestRuns(t *testing.T) {
	canceled := make(chan error, 1)
	srv := &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, "ok")
			return
		}
		awaitCancel(r, canceled)
	})}
	addr := start(t, srv)
	c := dial(t, addr)
	c.send(get("/fast"))
	c.read("GET")
	waitScannerStopped(t, srv, "no request running")
	c.send(get("/fast")) // the idle connection still serves
	if _, body := c.read("GET"); body != "ok" {
		t.Fatalf("body %q", body)
	}
	c.send(get("/slow"))
	time.Sleep(20 * time.Millisecond) // past WatchAfter: the watch is on again
	c.nc.Close()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("request context after hang-up: %v", err)
	}
}

// A long request (a stream) is watched once it has run WatchAfter; the scanner then has nothing
// left to do and stops while the request runs, and the watch still notices the hang-up.
func TestWatchScannerStopsOnceRunningRequestsAreWatched(t *testing.T) {
	canceled := make(chan error, 1)
	srv := &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		awaitCancel(r, canceled)
	})}
	addr := start(t, srv)
	c := dial(t, addr)
	c.send(get("/stream"))
	time.Sleep(20 * time.Millisecond) // the request is running: the scanner started with it
	waitScannerStopped(t, srv, "the only request already watched")
	c.nc.Close()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("request context after hang-up: %v", err)
	}
}

// A request that outlives WatchAfter has its connection watched; a client that pipelines its next
// request meanwhile must have that request answered, not lost to the watch.
func TestPipelinedRequestDuringAWatchedOne(t *testing.T) {
	addr := start(t, &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		if r.Context().Err() != nil {
			t.Errorf("%s canceled though the client is there", r.URL.Path)
		}
		io.WriteString(w, r.Method+" "+r.URL.Path)
	})})
	c := dial(t, addr)
	c.send(get("/slow"))
	time.Sleep(10 * time.Millisecond)
	c.send(get("/next"))
	for _, want := range []string{"GET /slow", "GET /next"} {
		if _, body := c.read("GET"); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
}

func TestEveryRequestContextEndsWithItsHandler(t *testing.T) {
	ctxs := make(chan context.Context, 2)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctxs <- r.Context()
	})})
	c := dial(t, addr)
	c.send(get("/") + get("/"))
	c.read("GET")
	c.read("GET")
	for range 2 {
		select {
		case <-(<-ctxs).Done():
		case <-time.After(5 * time.Second):
			t.Fatal("request context still live after its answer")
		}
	}
}

func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	addr := start(t, &Server{Logger: logger, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		io.WriteString(w, "fine")
	})})
	c := dial(t, addr)
	c.send(get("/panic"))
	if !c.closedByServer() {
		t.Fatal("connection kept after a panic")
	}
	c = dial(t, addr)
	c.send(get("/"))
	if _, body := c.read("GET"); body != "fine" {
		t.Fatalf("after a panic: %q", body)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "boom") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestTimeouts(t *testing.T) {
	addr := start(t, &Server{ReadHeaderTimeout: 50 * time.Millisecond, IdleTimeout: 50 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	idle := dial(t, addr)
	idle.send(get("/"))
	idle.read("GET")
	if !idle.closedByServer() {
		t.Fatal("idle connection kept past IdleTimeout")
	}
	slow := dial(t, addr)
	slow.send("GET / HTTP/1.1\r\nHost: te") // and never the rest
	if !slow.closedByServer() {
		t.Fatal("half-sent headers kept past ReadHeaderTimeout")
	}
}

func TestShutdownWaitsForRequestsInFlightAndClosesIdleConnections(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	idle := dial(t, addr)
	idle.send(get("/"))
	idle.read("GET")
	busy := dial(t, addr)
	busy.send(get("/slow"))
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if !idle.closedByServer() {
		t.Fatal("idle connection not closed by Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
	close(release)
	resp, body := busy.read("GET")
	if body != "done" || !resp.Close {
		t.Fatalf("in-flight answer %q close %v", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

func TestShutdownGivesUpWhenItsContextEnds(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})}
	addr := start(t, srv)
	c := dial(t, addr)
	c.send(get("/"))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
}

// The standard client, many connections at once, plain and streamed: what the gateway's users run.
func TestStandardClientConcurrently(t *testing.T) {
	addr := start(t, &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
			return
		}
		if r.URL.Query().Get("stream") != "" {
			for range 5 {
				w.Write(body)
				w.(http.Flusher).Flush()
				time.Sleep(time.Millisecond)
			}
			return
		}
		w.Write(body)
	})})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				payload := fmt.Sprintf("%d-%d-%s", g, i, strings.Repeat("p", i*100))
				url := "http://" + addr + "/?stream="
				want := payload
				if i%5 == 0 {
					url += "1"
					want = strings.Repeat(payload, 5)
				}
				resp, err := client.Post(url, "text/plain", strings.NewReader(payload))
				if err != nil {
					t.Errorf("post: %v", err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(got) != want {
					t.Errorf("answer %d-%d: %d bytes, %v", g, i, len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestHeadersAreFixedByWriteHeader(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("X-Before", "sent")
		w.WriteHeader(http.StatusCreated)
		w.Header().Set("X-After", "ignored")
		io.WriteString(w, "made")
	})})
	c := dial(t, addr)
	c.send(get("/"))
	line, _ := c.br.ReadString('\n')
	if line != "HTTP/1.1 103 Early Hints\r\n" {
		t.Fatalf("first line %q", line)
	}
	for line != "\r\n" {
		line, _ = c.br.ReadString('\n')
	}
	resp, body := c.read("GET")
	if resp.StatusCode != http.StatusCreated || body != "made" || resp.Header.Get("X-Before") != "sent" ||
		resp.Header.Get("Link") == "" || resp.Header.Get("X-After") != "" {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestChunkedRequestBody(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read chunked body: %v", err)
		}
		w.Write(body)
	})})
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	if _, body := c.read("POST"); body != "hello world" {
		t.Fatalf("body %q", body)
	}
	c.send(post("/", "again")) // the chunked body ended where it should: the next request parses
	if _, body := c.read("POST"); body != "again" {
		t.Fatalf("next body %q", body)
	}
}

// EndBody hands the client the whole body, chunked or held back, while the handler still runs;
// a later write fails, and the connection carries the next request.
func TestEndBodyCompletesTheAnswerBeforeTheHandlerReturns(t *testing.T) {
	released := make(chan struct{})
	writeAfter := make(chan error, 2)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part one, ")
		if r.URL.Path == "/stream" {
			http.NewResponseController(w).Flush() // headers out: the body is chunked
		}
		io.WriteString(w, "part two")
		if err := w.(interface{ EndBody() error }).EndBody(); err != nil {
			t.Errorf("EndBody: %v", err)
		}
		_, err := io.WriteString(w, "too late")
		writeAfter <- err
		<-released // the client must have the whole body by now
	})})
	c := dial(t, addr)
	for _, path := range []string{"/stream", "/short"} {
		c.send(get(path))
		resp, body := c.read("GET")
		if body != "part one, part two" {
			t.Errorf("%s: body %q", path, body)
		}
		chunked := len(resp.TransferEncoding) > 0
		if chunked != (path == "/stream") || (!chunked && resp.ContentLength != int64(len(body))) {
			t.Errorf("%s: transfer encoding %v, length %d", path, resp.TransferEncoding, resp.ContentLength)
		}
		if err := <-writeAfter; !errors.Is(err, ErrBodyEnded) {
			t.Errorf("%s: write after EndBody: %v, want ErrBodyEnded", path, err)
		}
		released <- struct{}{}
	}
}
