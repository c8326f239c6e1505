// Package h1serve is the HTTP/1.1 server the app's handler is served by: the gateway's clients,
// the UI and the management API all arrive on one localhost port.
//
// net/http's server reads each request on the connection's goroutine and then, once the body
// is read, starts a second goroutine that blocks on the socket to notice a client hanging up;
// when the handler returns it aborts that read through a deadline and waits for it. On an idle
// machine that is a goroutine start and two thread wake-ups per request: across processes on
// loopback, a round trip of ~100 µs where this server takes ~40 µs (BenchmarkRoundTrip). This
// server reads and answers on the connection's goroutine alone and starts that watch only for a
// request still running after WatchAfter (streams, slow upstreams), where it costs nothing that
// matters. Parsing and header writing are net/http's own (ReadRequest, Header.Write); this
// package owns the connection loop, response framing (Content-Length or chunked), timeouts and
// shutdown.
//
// What it leaves out: TLS, HTTP/2 and connection hijacking (the app serves plain HTTP/1.1 on
// loopback and never upgrades).
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
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"opentracy/backend/providers"
)

// Defaults of Server's zero fields.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = http.DefaultMaxHeaderBytes
	DefaultWatchAfter        = 20 * time.Millisecond
)

// ErrServerClosed is what Serve returns after Shutdown or Close (net/http's, so callers test one).
var ErrServerClosed = http.ErrServerClosed

// Server serves HTTP/1.1 on listeners. Set the fields before Serve; safe for concurrent use after.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds the time from a request's first byte to the end of its headers.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that waited this long for its next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request line and its headers; more is answered 431.
	MaxHeaderBytes int
	// WatchAfter is how long a request runs before the server watches its connection for a
	// hang-up, which cancels the request's context; a hang-up is noticed within twice that.
	// Shorter requests never pay for the watch.
	WatchAfter time.Duration
	// BaseContext is the parent of every request's context; Background when nil.
	BaseContext context.Context
	// Logger receives handler panics and accept errors; discarded when nil.
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	scanning  atomic.Bool // scanWatches runs; changed with mu held
	closing   atomic.Bool
}

func (s *Server) readHeaderTimeout() time.Duration {
	return orDefault(s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
}
func (s *Server) idleTimeout() time.Duration { return orDefault(s.IdleTimeout, DefaultIdleTimeout) }
func (s *Server) watchAfter() time.Duration  { return orDefault(s.WatchAfter, DefaultWatchAfter) }
func (s *Server) maxHeaderBytes() int64 {
	if s.MaxHeaderBytes > 0 {
		return int64(s.MaxHeaderBytes)
	}
	return DefaultMaxHeaderBytes
}
func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Serve accepts connections on ln until Shutdown or Close, and returns ErrServerClosed then;
// any other accept error ends it too. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	base := s.BaseContext
	if base == nil {
		base = context.Background()
	}
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			// Out of file descriptors and the like: wait and retry, as net/http does.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		c := newConn(s, nc)
		if !s.add(c) {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve(base)
	}
}

// Shutdown stops accepting, closes idle connections, and waits until every request in flight
// has been answered (their connections close after it) or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops accepting and closes every connection at once, requests in flight included.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
	return nil
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	ln.Close()
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		ln.Close()
	}
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

// scanIdleTicks is how many scans in a row that find no request waiting for its watch end
// scanWatches (about a second at the default WatchAfter): kept-alive connections waiting for
// their next request, and long streams already watched, cost no wake-ups, and a steady trickle
// of requests does not restart it each time. A closing server's scanner ends at its first scan
// with none waiting.
const scanIdleTicks = 50

// watching makes sure scanWatches runs; a request calls it once its watch is stored.
func (s *Server) watching() {
	if s.scanning.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.scanning.Load() {
		s.scanning.Store(true)
		go s.scanWatches()
	}
}

// scanWatches starts the hang-up watch of each request that has run WatchAfter, every
// WatchAfter while requests wait for it. One ticker for the server, not a timer per request:
// arming a timer that ends before the poller's next wake-up wakes a thread, on every request.
func (s *Server) scanWatches() {
	after := s.watchAfter()
	tick := time.NewTicker(after)
	defer tick.Stop()
	var due []*watch
	idle := 0
	for now := range tick.C {
		s.mu.Lock()
		due = due[:0]
		waiting := false
		for c := range s.conns {
			if w := c.watch.Load(); w != nil && w.waiting() {
				waiting = true
				if now.Sub(w.started) >= after {
					due = append(due, w)
				}
			}
		}
		if waiting {
			idle = 0
		} else if idle++; (idle >= scanIdleTicks || s.closing.Load()) && s.stopScanning() {
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, w := range due {
			w.due()
		}
		clear(due)
	}
}

// stopScanning ends scanWatches unless a request stored its watch after the scan; s.mu is held.
// A request stores its watch and then reads scanning; this stores scanning and then reads the
// watches. Atomics are sequentially consistent, so at least one of the two sees the other:
// the request starts a new scanner (after this one lets go of s.mu), or this one goes on.
func (s *Server) stopScanning() bool {
	s.scanning.Store(false)
	for c := range s.conns {
		if w := c.watch.Load(); w != nil && w.waiting() {
			s.scanning.Store(true)
			return false
		}
	}
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// closeIdle closes the connections waiting for a request and says how many remain open.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.nc.Close()
		}
	}
	return len(s.conns)
}

// A connection's state, as Shutdown sees it. Whoever moves it out of idle first wins: the
// connection (a request arrived) or Shutdown (closed before any request was read).
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

// conn is one client connection, served by one goroutine.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string // the client's address, once per connection
	cr     connReader
	br     *bufio.Reader
	bw     *bufio.Writer
	state  atomic.Int32
	watch  atomic.Pointer[watch] // of the request running, nil between requests

	// Reused by each request's response in turn.
	head bytes.Buffer // the status line and the handler's headers
	held []byte       // the body held back until its length is known
}

func (c *conn) heldBuffer() []byte {
	if c.held == nil {
		c.held = make([]byte, 0, heldBack)
	}
	return c.held[:0]
}

const bufferSize = 4 << 10

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String()}
	c.cr.nc = nc
	c.br = bufio.NewReaderSize(&c.cr, bufferSize)
	c.bw = bufio.NewWriterSize(nc, bufferSize)
	return c
}

func (c *conn) serve(base context.Context) {
	defer func() {
		c.nc.Close()
		c.srv.remove(c)
	}()
	for {
		if c.srv.closing.Load() {
			return
		}
		// The header limit counts from here: the first read fills the buffer.
		c.cr.limit(c.srv.maxHeaderBytes() + bufferSize)
		if !c.waitForRequest() {
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // Shutdown closed it first
		}
		req, err := c.readRequest()
		if err != nil {
			if c.refuse(err) {
				c.closeWriteAndWait()
			}
			return
		}
		keepAlive, bodyLeft := c.serveRequest(base, req)
		c.state.Store(stateIdle)
		if bodyLeft {
			c.closeWriteAndWait()
		}
		if !keepAlive {
			return
		}
	}
}

// waitForRequest waits, up to the idle timeout, for the next request's first byte.
func (c *conn) waitForRequest() bool {
	c.nc.SetReadDeadline(time.Now().Add(c.srv.idleTimeout()))
	_, err := c.br.Peek(1)
	return err == nil
}

// readRequest reads a request line and headers under the header timeout and size limit.
func (c *conn) readRequest() (*http.Request, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.srv.readHeaderTimeout()))
	req, err := http.ReadRequest(c.br)
	exceeded := c.cr.exceeded
	c.cr.unlimit()
	c.nc.SetReadDeadline(time.Time{})
	switch {
	case exceeded:
		return nil, errHeaderTooLarge
	case err != nil:
		return nil, &badRequest{err: err}
	}
	if req.ProtoMajor != 1 {
		return nil, errVersion
	}
	if req.ProtoAtLeast(1, 1) && req.Host == "" {
		return nil, &badRequest{err: errors.New("missing required Host header")}
	}
	// What net/http's server checks beyond its parser: a request it refuses is refused here too.
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return nil, &badRequest{err: errors.New("malformed Host header")}
	}
	for name, values := range req.Header {
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, &badRequest{err: fmt.Errorf("invalid header name %q", name)}
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, &badRequest{err: fmt.Errorf("invalid value of header %s", name)}
			}
		}
	}
	if e := req.Header.Get("Expect"); e != "" && !isContinue(req) {
		return nil, errExpectation
	}
	return req, nil
}

// closeWriteAndWait ends a connection whose client may still be sending (a body nobody read):
// closing at once would answer those bytes with a reset, which can destroy the response before
// the client reads it. A FIN first, then a pause, as net/http does.
func (c *conn) closeWriteAndWait() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		time.Sleep(rstAvoidanceDelay)
	}
}

// rstAvoidanceDelay is how long a half-closed connection waits before closing (net/http's figure).
const rstAvoidanceDelay = 500 * time.Millisecond

// refuse answers a request that could not be read, when anyone waits for an answer, and says
// whether it answered; the connection closes after it.
func (c *conn) refuse(err error) bool {
	status, msg := 0, ""
	var bad *badRequest
	switch {
	case errors.Is(err, errHeaderTooLarge):
		status, msg = http.StatusRequestHeaderFieldsTooLarge, "request headers are larger than the server accepts"
	case errors.Is(err, errVersion):
		status, msg = http.StatusHTTPVersionNotSupported, "only HTTP/1.x is served"
	case errors.Is(err, errExpectation):
		status, msg = http.StatusExpectationFailed, "unsupported Expect header"
	case errors.As(err, &bad) && !isNetError(bad.err):
		status, msg = http.StatusBadRequest, "malformed HTTP request: "+bad.err.Error()
	default: // the client hung up or timed out: nobody is waiting for an answer
		return false
	}
	// OpenAI's error shape: what most of this server's clients parse.
	body := providers.ErrorBody(msg, "invalid_request_error", "")
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status), len(body))
	c.bw.Write(body)
	return c.bw.Flush() == nil
}

// serveRequest runs the handler for one request and finishes its response. It says whether the
// connection can carry another request, and whether the client may still be sending a body
// the server did not read.
func (c *conn) serveRequest(base context.Context, req *http.Request) (keepAlive, bodyLeft bool) {
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	w := newResponse(c, req)
	body := &requestBody{rc: req.Body, w: w, eof: req.Body == http.NoBody, expectContinue: isContinue(req)}
	w.body = body
	req.Body = body
	req.RemoteAddr = c.remote
	req = req.WithContext(ctx)

	watch := newWatch(c, cancel, body.eof)
	body.watch = watch
	c.watch.Store(watch)
	c.srv.watching()
	defer func() {
		c.watch.Store(nil)
		watch.stop()
		if p := recover(); p != nil {
			keepAlive, bodyLeft = false, false
			if p != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logger().Error("handler panicked", "method", req.Method, "path", req.URL.Path, "panic", p, "stack", string(buf))
			}
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	ok := w.finish()
	if watch.hungUp() || !ok && w.err != nil {
		return false, false // nobody to send anything to
	}
	if !body.drain() {
		return false, true
	}
	return ok && !c.srv.closing.Load(), false
}

func isContinue(req *http.Request) bool {
	return req.ProtoAtLeast(1, 1) && req.Header.Get("Expect") == "100-continue"
}

// connReader sits between the socket and the read buffer: it bounds header reads, and hands
// back a byte the hang-up watch read (a pipelined request's first byte).
type connReader struct {
	nc       net.Conn
	capped   bool
	remain   int64
	exceeded bool

	mu      sync.Mutex
	stashed bool
	stash   [1]byte
}

func (r *connReader) limit(n int64) { r.capped, r.remain, r.exceeded = true, n, false }
func (r *connReader) unlimit()      { r.capped, r.exceeded = false, false }

func (r *connReader) Read(p []byte) (int, error) {
	if r.capped {
		if r.remain <= 0 {
			r.exceeded = true
			return 0, errHeaderTooLarge
		}
		if int64(len(p)) > r.remain {
			p = p[:r.remain]
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	if r.stashed {
		r.stashed = false
		p[0] = r.stash[0]
		r.mu.Unlock()
		r.remain--
		return 1, nil
	}
	r.mu.Unlock()
	n, err := r.nc.Read(p)
	r.remain -= int64(n)
	return n, err
}

// Errors of reading a request.
var (
	errHeaderTooLarge = errors.New("request headers too large")
	errVersion        = errors.New("unsupported HTTP version")
	errExpectation    = errors.New("unsupported Expect header")
)

// badRequest is a request that could not be parsed.
type badRequest struct{ err error }

func (b *badRequest) Error() string { return b.err.Error() }
func (b *badRequest) Unwrap() error { return b.err }

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
