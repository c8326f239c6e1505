package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is an httptest server that counts the connections it accepted.
func countingServer(t *testing.T, h http.HandlerFunc, configure ...func(*http.Server)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	for _, f := range configure {
		f(srv.Config)
	}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Auth", r.Header.Get("Authorization"))
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
}

func do(t *testing.T, c *http.Client, method, u, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer k")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

func TestRequestsReuseOneConnection(t *testing.T) {
	srv, conns := countingServer(t, echo)
	c := &http.Client{Transport: New(Options{})}
	for i := range 20 {
		body := strings.Repeat("x", i*1000)
		resp, got := do(t, c, http.MethodPost, srv.URL+"/v1/chat?n="+fmt.Sprint(i), body)
		want := fmt.Sprintf("POST /v1/chat?n=%d %s", i, body)
		if resp.StatusCode != 200 || got != want || resp.Header.Get("X-Auth") != "Bearer k" {
			t.Fatalf("request %d: status %d, auth %q, body %.60q; want %.60q", i, resp.StatusCode, resp.Header.Get("X-Auth"), got, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 sequential requests used %d connections; want 1", n)
	}
}

func TestChunkedStreamArrivesAsWritten(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	c := &http.Client{Transport: New(Options{})}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("transfer encoding %v; want chunked", resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: 0\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestUnfinishedBodyIsNotReused(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("y", 100_000))
	})
	c := &http.Client{Transport: New(Options{})}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resp.Body.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // 99,990 bytes unread: the connection is out of step
	if _, got := do(t, c, http.MethodGet, srv.URL, ""); len(got) != 100_000 {
		t.Fatalf("second answer %d bytes", len(got))
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (the first closed, not reused)", n)
	}
}

func TestServerCloseOfIdleConnectionIsSeenBeforeReuse(t *testing.T) {
	var requests atomic.Int64
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		echo(w, r)
	}, func(s *http.Server) { s.IdleTimeout = 20 * time.Millisecond })
	c := &http.Client{Transport: New(Options{})}
	do(t, c, http.MethodPost, srv.URL, "one")
	time.Sleep(200 * time.Millisecond) // the server closes the idle connection
	if _, got := do(t, c, http.MethodPost, srv.URL, "two"); got != "POST / two" {
		t.Fatalf("after the idle close: %q", got)
	}
	if n, r := conns.Load(), requests.Load(); n != 2 || r != 2 {
		t.Errorf("%d connections, %d requests; want 2 and 2 (a POST is never sent twice)", n, r)
	}
}

func TestConnectionCloseIsHonoured(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		echo(w, r)
	})
	c := &http.Client{Transport: New(Options{})}
	for range 3 {
		do(t, c, http.MethodGet, srv.URL, "")
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections; want 3", n)
	}
}

func TestCancelWhileWaitingForTheAnswer(t *testing.T) {
	release := make(chan struct{})
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := &http.Client{Transport: New(Options{})}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("{}"))
	start := time.Now()
	_, err := c.Do(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

func TestCancelDuringTheBody(t *testing.T) {
	var hang atomic.Bool
	hang.Store(true)
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !hang.Load() {
			echo(w, r)
			return
		}
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := &http.Client{Transport: New(Options{})}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "data: first\n\n" {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("read after cancel ended without an error")
	}
	resp.Body.Close()
	hang.Store(false)
	do(t, c, http.MethodGet, srv.URL, "")
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (the cancelled one is not reused)", n)
	}
}

func TestCloseUnblocksARead(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := &http.Client{Transport: New(Options{})}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	resp.Body.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the blocked read returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock the read")
	}
}

// rawServer answers each connection with script(conn index, request index, conn); a request is
// parsed with net/http's reader.
func rawServer(t *testing.T, script func(connN, reqN int, c net.Conn, req *http.Request) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for connN := 0; ; connN++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for reqN := 0; ; reqN++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if !script(connN, reqN, c, req) {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestStaleConnectionRetriesOnlyReplayableRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	// The second request on the first connection is read and then the connection is dropped
	// without an answer, as by a server closing a keep-alive connection at that instant.
	dropSecond := func(connN, reqN int, c net.Conn, req *http.Request) bool {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%d/%d %s", connN, reqN, req.Method))
		mu.Unlock()
		if connN == 0 && reqN == 1 {
			return false
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	}
	seenNow := func() string {
		mu.Lock()
		defer mu.Unlock()
		s := strings.Join(seen, ",")
		seen = nil
		return s
	}
	c := &http.Client{Transport: New(Options{})}
	u := rawServer(t, dropSecond)
	do(t, c, http.MethodGet, u, "")
	if _, got := do(t, c, http.MethodGet, u, ""); got != "ok" {
		t.Fatalf("GET on the stale connection: %q", got)
	}
	if s := seenNow(); s != "0/0 GET,0/1 GET,1/0 GET" {
		t.Errorf("requests seen %s; want the GET sent again on a new connection", s)
	}

	u = rawServer(t, dropSecond)
	do(t, c, http.MethodPost, u, "{}")
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
	if _, err := c.Do(req); err == nil {
		t.Fatal("a POST dropped without an answer succeeded: was it sent twice?")
	}
	if s := seenNow(); s != "0/0 POST,0/1 POST" {
		t.Errorf("requests seen %s; want the POST once", s)
	}
}

func TestInformationalAnswersAreSkipped(t *testing.T) {
	u := rawServer(t, func(_, _ int, c net.Conn, _ *http.Request) bool {
		fmt.Fprint(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")
		return true
	})
	resp, got := do(t, &http.Client{Transport: New(Options{})}, http.MethodPost, u, "{}")
	if resp.StatusCode != http.StatusCreated || got != "done" {
		t.Fatalf("status %d body %q; want 201 done", resp.StatusCode, got)
	}
}

func TestTLSAndProxiesGoToTheFallback(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(echo))
	defer tlsSrv.Close()
	fallback := tlsSrv.Client().Transport.(*http.Transport).Clone()
	c := &http.Client{Transport: New(Options{Fallback: fallback})}
	if resp, got := do(t, c, http.MethodPost, tlsSrv.URL+"/x", "hi"); got != "POST /x hi" || resp.TLS == nil {
		t.Fatalf("https: %q (TLS %v)", got, resp.TLS != nil)
	}

	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		fmt.Fprint(w, "via proxy "+r.URL.String())
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	fallback = &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{}}
	c = &http.Client{Transport: New(Options{Fallback: fallback})}
	if _, got := do(t, c, http.MethodGet, "http://upstream.invalid/v1/models", ""); got != "via proxy http://upstream.invalid/v1/models" || proxied.Load() != 1 {
		t.Fatalf("proxied request: %q (proxy saw %d)", got, proxied.Load())
	}
}

func TestConcurrentRequests(t *testing.T) {
	srv, conns := countingServer(t, echo)
	tr := New(Options{MaxIdlePerHost: 8})
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := range 25 {
				body := fmt.Sprintf("g%d-i%d", g, i)
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/c", strings.NewReader(body))
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != "POST /c "+body {
					errs <- fmt.Errorf("got %q, %v; want %q", b, err, body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := conns.Load(); n > 32+32 {
		t.Errorf("%d connections for 32 clients", n)
	}
}

// closeCounter is a request body that counts its Close calls.
type closeCounter struct {
	io.Reader
	closed atomic.Int64
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

func TestBodyClosedWhenTheUpstreamIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	body := &closeCounter{Reader: strings.NewReader("{}")}
	req, _ := http.NewRequest(http.MethodPost, u, body)
	if _, err := (&http.Client{Transport: New(Options{})}).Do(req); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Fatalf("err = %v; want a connect error", err)
	}
	if n := body.closed.Load(); n < 1 {
		t.Error("the request body was not closed")
	}
}
