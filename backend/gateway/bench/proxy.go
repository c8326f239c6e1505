package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
)

// MinimalProxy is the least an HTTP proxy can do, measured in the gateway's place so that a run
// shows what any proxy costs on the machine (two more loopback hops, one more process's
// wake-ups) apart from what the gateway itself adds. Per client connection, one goroutine and one
// kept-alive upstream connection; each request and each answer is relayed as it arrives, up to
// the end of its body (HTTP/1.1 framing: Content-Length or chunked), unchanged: what has arrived
// goes out in one write before the proxy waits for more, so streams are not held back. No parsing
// beyond the framing, no routing, no trace.
type MinimalProxy struct {
	ln       net.Listener
	upstream string // host:port

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// proxyMarker precedes the proxy's base URL in ServeMinimalProxy's output.
const proxyMarker = "Minimal proxy URL:"

// ServeMinimalProxy runs a MinimalProxy on addr in front of upstreamBase until ctx ends, printing
// its base URL after "Minimal proxy URL:": the process a run starts for it.
func ServeMinimalProxy(ctx context.Context, addr, upstreamBase string, out io.Writer) error {
	p, err := StartMinimalProxy(addr, upstreamBase)
	if err != nil {
		return err
	}
	return announceUntil(ctx, out, proxyMarker+" "+p.BaseURL(), p.Close)
}

// StartMinimalProxy listens on addr and forwards to upstreamBase (an http:// base URL; its path
// is kept by the clients, which send the same paths to both).
func StartMinimalProxy(addr, upstreamBase string) (*MinimalProxy, error) {
	u, err := url.Parse(upstreamBase)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("minimal proxy: upstream %q: want an http:// URL", upstreamBase)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("minimal proxy: listen on %s: %w", addr, err)
	}
	p := &MinimalProxy{ln: ln, upstream: u.Host, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// BaseURL is the proxy's OpenAI base URL (".../v1").
func (p *MinimalProxy) BaseURL() string { return "http://" + p.ln.Addr().String() + "/v1" }

// Close stops accepting, closes every connection and waits for their goroutines.
func (p *MinimalProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil // refuses connections still being set up
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *MinimalProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c, true) {
			_ = c.Close()
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// track adds or removes c from the open connections; adding fails once the proxy is closing.
func (p *MinimalProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, c)
		return true
	}
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *MinimalProxy) serve(c net.Conn) {
	defer func() {
		_ = c.Close()
		p.track(c, false)
	}()
	in := bufio.NewReaderSize(c, 64<<10)
	var up net.Conn
	var upIn *bufio.Reader
	buf := make([]byte, 0, 64<<10)
	for {
		if _, err := in.Peek(1); err != nil {
			break // the client hung up between requests
		}
		if up == nil {
			var err error
			if up, err = net.Dial("tcp", p.upstream); err != nil {
				break
			}
			if !p.track(up, true) {
				break
			}
			defer func() {
				_ = up.Close()
				p.track(up, false)
			}()
			upIn = bufio.NewReaderSize(up, 64<<10)
		}
		var err error
		if buf, err = relayMessage(up, in, buf); err != nil {
			break
		}
		if buf, err = relayMessage(c, upIn, buf); err != nil {
			break
		}
	}
}

var errFraming = errors.New("minimal proxy: malformed HTTP/1.1 message")

// relayMessage copies one HTTP/1.1 message (start line, headers, body) from r to w as it came,
// through buf's memory, which it returns for reuse. The body is framed by Content-Length or
// chunked transfer coding; a message with neither has none (requests; and the fake's answers
// always carry one of the two). What has arrived is written in one write before each wait.
func relayMessage(w io.Writer, r *bufio.Reader, buf []byte) ([]byte, error) {
	m := relay{w: w, r: r, buf: buf[:0]}
	err := m.message()
	if err == nil {
		err = m.flush()
	}
	return m.buf[:0], err
}

// relay is one message on its way: buf holds what was read and not yet written.
type relay struct {
	w   io.Writer
	r   *bufio.Reader
	buf []byte
}

// flush writes what is held.
func (m *relay) flush() error {
	if len(m.buf) == 0 {
		return nil
	}
	_, err := m.w.Write(m.buf)
	m.buf = m.buf[:0]
	return err
}

// beforeRead writes what is held when the next read would wait for the network.
func (m *relay) beforeRead() error {
	if m.r.Buffered() > 0 {
		return nil
	}
	return m.flush()
}

// line reads one line, ending in '\n', and holds it; it returns the line without its ending.
func (m *relay) line() ([]byte, error) {
	if err := m.beforeRead(); err != nil {
		return nil, err
	}
	line, err := m.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	m.buf = append(m.buf, line...)
	return bytes.TrimRight(line, "\r\n"), nil
}

// body reads n bytes and holds them.
func (m *relay) body(n int64) error {
	for n > 0 {
		if err := m.beforeRead(); err != nil {
			return err
		}
		if _, err := m.r.Peek(1); err != nil {
			return err
		}
		k := min(int64(m.r.Buffered()), n)
		start := len(m.buf)
		m.buf = append(m.buf, make([]byte, k)...)
		if _, err := io.ReadFull(m.r, m.buf[start:]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (m *relay) message() error {
	length, chunked := int64(0), false
	for first := true; ; first = false {
		field, err := m.line()
		if err != nil {
			return err
		}
		if len(field) == 0 {
			if first {
				return errFraming
			}
			break
		}
		name, value, ok := bytes.Cut(field, []byte(":"))
		if !ok || first {
			continue // the start line
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return errFraming
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	if !chunked {
		return m.body(length)
	}
	for {
		field, err := m.line()
		if err != nil {
			return err
		}
		sizeField, _, _ := bytes.Cut(field, []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeField)), 16, 64)
		if err != nil || size < 0 {
			return errFraming
		}
		if size == 0 { // trailers, then the empty line
			for {
				trailer, err := m.line()
				if err != nil {
					return err
				}
				if len(trailer) == 0 {
					return nil
				}
			}
		}
		if err := m.body(size + 2); err != nil { // the data and its CRLF
			return err
		}
	}
}
