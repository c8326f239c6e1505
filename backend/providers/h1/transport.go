// Package h1 is the gateway's HTTP/1.1 transport to plain-HTTP upstreams: the local servers
// (vLLM, Ollama, llama.cpp, LM Studio) and sidecars that answer on loopback, where the network
// adds almost nothing and the client's own overhead is what a request pays.
//
// net/http's Transport gives every connection a read and a write goroutine and hands each
// request and response between them and the caller; on an idle machine each hand-off is a thread
// wake-up. This transport writes the request and reads the response on the calling goroutine,
// with net/http's own wire code (Request.Write, ReadResponse). Everything else — https (HTTP/2
// to cloud providers), proxies, protocol upgrades — goes to the fallback Transport.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxIdlePerHost = 256
	DefaultIdleTimeout    = 90 * time.Second
	DefaultDialTimeout    = 30 * time.Second
	bufferSize            = 16 << 10
)

// Options configure a Transport; zero values take the defaults.
type Options struct {
	// Fallback serves what this transport does not: https, proxied and upgrade requests.
	Fallback *http.Transport
	// MaxIdlePerHost bounds the kept-alive connections to one host.
	MaxIdlePerHost int
	// IdleTimeout closes a connection that waited this long for its next request.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting.
	DialTimeout time.Duration
}

// Transport is an http.RoundTripper; see the package doc. Safe for concurrent use.
type Transport struct {
	fallback *http.Transport
	maxIdle  int
	idleFor  time.Duration
	dialer   net.Dialer
	now      func() time.Time

	mu   sync.Mutex
	idle map[string][]*conn // per host:port, most recently used last
}

// New returns a Transport.
func New(opts Options) *Transport {
	if opts.Fallback == nil {
		opts.Fallback = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.MaxIdlePerHost <= 0 {
		opts.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	return &Transport{
		fallback: opts.Fallback,
		maxIdle:  opts.MaxIdlePerHost,
		idleFor:  opts.IdleTimeout,
		dialer:   net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second},
		now:      time.Now,
		idle:     map[string][]*conn{},
	}
}

// conn is one kept-alive connection.
type conn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.fallback.RoundTrip(req)
	}
	addr := canonicalAddr(req)
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(req.Context(), addr)
		if err != nil {
			if req.Body != nil {
				_ = req.Body.Close() // a RoundTripper closes the body, even on failure
			}
			return nil, err
		}
		resp, err := t.exchange(req, addr, c)
		if err == nil {
			return resp, nil
		}
		// A kept-alive connection the server closed just as it was taken fails before any
		// answer: send again on a new one when that is safe, by net/http's rules.
		if reused && attempt == 0 && errors.Is(err, errNothingRead) && req.Context().Err() == nil && replayable(req) {
			if rewound, ok := rewind(req); ok {
				req = rewound
				continue
			}
		}
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
}

// handles reports whether req goes on this transport's own path.
func (t *Transport) handles(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.Header.Get("Upgrade") != "" || req.Method == http.MethodConnect {
		return false
	}
	if t.fallback.Proxy != nil {
		if u, err := t.fallback.Proxy(req); err != nil || u != nil {
			return false
		}
	}
	return true
}

// errNothingRead marks a failure before the first byte of the answer arrived.
var errNothingRead = errors.New("connection closed before the response")

// exchange sends req on c and reads the response head; the body reads from c and returns it to
// the pool at its end.
func (t *Transport) exchange(req *http.Request, addr string, c *conn) (*http.Response, error) {
	ctx := req.Context()
	// Cancelling unblocks the reads and writes of this exchange: a deadline in the past.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = c.nc.Close()
		return nil, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(fmt.Errorf("write request to %s: %w: %w", addr, errNothingRead, err))
	}
	if err := c.bw.Flush(); err != nil {
		return fail(fmt.Errorf("write request to %s: %w: %w", addr, errNothingRead, err))
	}
	for {
		if _, err := c.br.Peek(1); err != nil {
			return fail(fmt.Errorf("read response from %s: %w: %w", addr, errNothingRead, err))
		}
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return fail(fmt.Errorf("read response from %s: %w", addr, err))
		}
		// Informational answers (103 Early Hints) come before the real one.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		keep := !resp.Close && !req.Close && resp.ProtoAtLeast(1, 1)
		resp.Body = &body{rc: resp.Body, t: t, addr: addr, c: c, stop: stop, keep: keep}
		return resp, nil
	}
}

// body returns its connection to the pool when read to the end, and closes it otherwise.
type body struct {
	rc   io.ReadCloser
	t    *Transport
	addr string
	c    *conn
	stop func() bool
	keep bool

	mu   sync.Mutex // Read and Close may race (a client closing a stream it reads elsewhere)
	eof  bool
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, errors.New("h1: read on closed response body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		b.release()
	}
	return n, err
}

func (b *body) Close() error {
	if !b.mu.TryLock() {
		// A Read is blocked on the connection: closing it unblocks the Read.
		_ = b.c.nc.Close()
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	b.release()
	return nil
}

// release ends the exchange once: a connection with its answer read to the end and no pending
// cancellation is kept, any other is closed.
func (b *body) release() {
	if b.done {
		return
	}
	b.done = true
	if b.stop() && b.eof && b.keep {
		b.t.put(b.addr, b.c)
		return
	}
	_ = b.c.nc.Close()
}

// get takes the most recently used idle connection to addr, or dials one.
func (t *Transport) get(ctx context.Context, addr string) (*conn, bool, error) {
	now := t.now()
	t.mu.Lock()
	for l := t.idle[addr]; len(l) > 0; l = t.idle[addr] {
		c := l[len(l)-1]
		t.idle[addr] = l[:len(l)-1]
		if now.Sub(c.idleAt) < t.idleFor && alive(c.nc) {
			t.mu.Unlock()
			return c, true, nil
		}
		_ = c.nc.Close()
	}
	t.mu.Unlock()
	nc, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, bufferSize), bw: bufio.NewWriterSize(nc, bufferSize)}, false, nil
}

// put keeps c for the next request to addr.
func (t *Transport) put(addr string, c *conn) {
	if err := c.nc.SetDeadline(time.Time{}); err != nil || c.br.Buffered() > 0 {
		_ = c.nc.Close() // unasked-for bytes: the connection is out of step
		return
	}
	c.idleAt = t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[addr]
	if len(l) >= t.maxIdle {
		_ = l[0].nc.Close() // the least recently used
		l = append(l[:0], l[1:]...)
	}
	t.idle[addr] = append(l, c)
}

// CloseIdleConnections closes the kept-alive connections, here and in the fallback.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*conn{}
	t.mu.Unlock()
	for _, l := range idle {
		for _, c := range l {
			_ = c.nc.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}

// replayable is net/http's rule for sending a request again: no body or one it can make again,
// and a method without side effects or an idempotency key.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
	default:
		if req.Header.Get("Idempotency-Key") == "" && req.Header.Get("X-Idempotency-Key") == "" {
			return false
		}
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns req with a fresh body, when it has none or can make one again.
func rewind(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	b, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	r := req.Clone(req.Context())
	r.Body = b
	return r, true
}

// canonicalAddr is host:port of req's URL, port 80 when none is given.
func canonicalAddr(req *http.Request) string {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(host, port)
}
