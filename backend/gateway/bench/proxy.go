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
// kept-alive upstream connection; each request is read up to the end of its body (HTTP/1.1
// framing: Content-Length or chunked), written upstream unchanged, and the answer read whole and
// written back. No parsing beyond the framing, no routing, no trace. Answers are buffered whole,
// so it serves the latency scenario only, not streams.
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
	if _, err := fmt.Fprintln(out, proxyMarker, p.BaseURL()); err != nil {
		return errors.Join(fmt.Errorf("minimal proxy: %w", err), p.Close())
	}
	<-ctx.Done()
	return p.Close()
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
	var msg []byte
	for {
		var err error
		if msg, err = readMessage(in, msg[:0]); err != nil {
			break
		}
		if up == nil {
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
		if _, err = up.Write(msg); err != nil {
			break
		}
		if msg, err = readMessage(upIn, msg[:0]); err != nil {
			break
		}
		if _, err = c.Write(msg); err != nil {
			break
		}
	}
}

var errFraming = errors.New("minimal proxy: malformed HTTP/1.1 message")

// readMessage appends one HTTP/1.1 message (start line, headers, body) from r to buf, as it
// came. The body is framed by Content-Length or chunked transfer coding; a message with neither
// has none (requests; and the fake's answers always carry one of the two).
func readMessage(r *bufio.Reader, buf []byte) ([]byte, error) {
	length, chunked := int64(0), false
	for first := true; ; first = false {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return buf, err
		}
		buf = append(buf, line...)
		field := bytes.TrimRight(line, "\r\n")
		if len(field) == 0 {
			if first {
				return buf, errFraming
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
				return buf, errFraming
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	if !chunked {
		return appendN(r, buf, length)
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return buf, err
		}
		buf = append(buf, line...)
		sizeField, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeField)), 16, 64)
		if err != nil || size < 0 {
			return buf, errFraming
		}
		if size == 0 { // trailers, then the empty line
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return buf, err
				}
				buf = append(buf, line...)
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return buf, nil
				}
			}
		}
		if buf, err = appendN(r, buf, size+2); err != nil { // the data and its CRLF
			return buf, err
		}
	}
}

// appendN appends exactly n bytes of r to buf.
func appendN(r *bufio.Reader, buf []byte, n int64) ([]byte, error) {
	start := len(buf)
	buf = append(buf, make([]byte, n)...)
	_, err := io.ReadFull(r, buf[start:])
	return buf, err
}
