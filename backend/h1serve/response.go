package h1serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// heldBack is how much of a body is held before the headers go out, so that a short answer
// gets a Content-Length instead of chunked framing (net/http holds 2 KB).
const heldBack = 4 << 10

// response is the http.ResponseWriter of one request.
type response struct {
	c      *conn
	req    *http.Request
	body   *requestBody
	header http.Header // the handler's
	status int

	// What WriteHeader saw in the handler's headers, which it wrote to c.head then: later
	// changes to the map have no effect, as net/http documents.
	hasType, hasDate, connClose bool

	headSent   bool  // the status line and headers are in the write buffer
	chunked    bool  // the body is framed in chunks
	declared   int64 // the handler's Content-Length, or -1
	written    int64 // body bytes the handler wrote
	pending    []byte
	closeAfter bool
	ended      bool  // EndBody sent the end of the body
	err        error // the first write error; the connection is done
}

func newResponse(c *conn, req *http.Request) *response {
	return &response{
		c: c, req: req, header: make(http.Header), declared: -1,
		// HTTP/1.0 has no chunked framing: such a client is answered and the connection closed.
		closeAfter: req.Close || !req.ProtoAtLeast(1, 1),
	}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status != 0 {
		return // superfluous, as net/http ignores it
	}
	h := w.header
	h.Del("Transfer-Encoding") // the framing is this server's to choose
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.status = code
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.declared = n
		} else {
			h.Del("Content-Length")
		}
	}
	_, w.hasType = h["Content-Type"]
	_, w.hasDate = h["Date"]
	if w.connClose = hasToken(h, "Connection", "close"); w.connClose {
		w.closeAfter = true
	}
	head := &w.c.head
	head.Reset()
	writeStatusLine(head, code)
	h.Write(head)
}

// writeInformational sends a 1xx answer (103 Early Hints and the like) ahead of the final one.
func (w *response) writeInformational(code int) {
	if w.err != nil {
		return
	}
	head := &w.c.head
	head.Reset()
	writeStatusLine(head, code)
	w.header.Write(head)
	head.WriteString("\r\n")
	w.c.bw.Write(head.Bytes())
	w.err = w.c.bw.Flush()
}

func writeStatusLine(b *bytes.Buffer, code int) {
	b.WriteString("HTTP/1.1 ")
	b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(code), 10))
	b.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		b.WriteString(text)
	} else {
		b.WriteString("status code " + strconv.Itoa(code))
	}
	b.WriteString("\r\n")
}

// bodyAllowed is false where HTTP forbids a body: HEAD, 1xx, 204 and 304.
func (w *response) bodyAllowed() bool {
	return w.req.Method != http.MethodHead && w.status != http.StatusNoContent &&
		w.status != http.StatusNotModified && w.status >= 200
}

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		if w.req.Method == http.MethodHead {
			w.written += int64(len(p)) // counted for Content-Length, never sent
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.ended {
		return 0, ErrBodyEnded
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.headSent {
		if len(w.pending)+len(p) <= heldBack {
			if w.pending == nil {
				w.pending = w.c.heldBuffer()
			}
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.writeHead(false)
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// writeHead puts the status line and headers in the write buffer, then the held-back body.
// final says the handler has returned, so the held-back body is all of it.
func (w *response) writeHead(final bool) {
	w.headSent = true
	bw := w.c.bw
	bw.Write(w.c.head.Bytes())
	var num [20]byte
	switch {
	case !w.bodyAllowed() && w.req.Method != http.MethodHead:
	case w.declared >= 0:
	case final && w.req.Method == http.MethodHead:
		if w.written > 0 && w.written <= heldBack {
			bw.WriteString("Content-Length: ")
			bw.Write(strconv.AppendInt(num[:0], w.written, 10))
			bw.WriteString("\r\n")
		}
	case final:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], int64(len(w.pending)), 10))
		bw.WriteString("\r\n")
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		w.closeAfter = true // an HTTP/1.0 body of unknown length ends when the connection does
	}
	if !w.hasType && len(w.pending) > 0 && w.bodyAllowed() {
		bw.WriteString("Content-Type: " + http.DetectContentType(w.pending) + "\r\n")
	}
	if !w.hasDate {
		var date [len(http.TimeFormat)]byte
		bw.WriteString("Date: ")
		bw.Write(time.Now().UTC().AppendFormat(date[:0], http.TimeFormat))
		bw.WriteString("\r\n")
	}
	if w.c.srv.closing.Load() {
		w.closeAfter = true
	}
	if w.closeAfter && !w.connClose {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		pending := w.pending
		w.pending = nil
		w.writeBody(pending)
	}
}

func hasToken(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		if asciiEqualFold(v, token) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

func (w *response) writeBody(p []byte) {
	if len(p) == 0 || w.err != nil || !w.bodyAllowed() {
		return
	}
	bw := w.c.bw
	if w.chunked {
		var size [16]byte
		bw.Write(strconv.AppendInt(size[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, w.err = bw.WriteString("\r\n")
		return
	}
	_, w.err = bw.Write(p)
}

// Flush sends what is written so far (http.Flusher).
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush that reports a failed write; http.ResponseController calls it.
func (w *response) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.writeHead(false)
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
	return w.err
}

// ErrBodyEnded is what a Write after EndBody returns.
var ErrBodyEnded = errors.New("h1serve: write after EndBody")

// EndBody sends the end of the response body now, before the handler returns: a client that
// reads to the end of the body (rather than to a stream's last event) then has all of it while
// the handler goes on with work of its own, such as recording what it answered. Later writes fail
// with ErrBodyEnded. Handlers find it through http.ResponseWriter's Unwrap chain, as
// http.ResponseController finds Flush.
func (w *response) EndBody() error {
	if !w.ended {
		w.endBody()
	}
	return w.err
}

// endBody writes what completes the body, the headers and a held-back body (which is all of it
// now, so it gets a Content-Length) or the last chunk, and flushes.
func (w *response) endBody() {
	w.ended = true
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.writeHead(true)
	}
	if w.chunked && w.err == nil {
		_, w.err = w.c.bw.WriteString("0\r\n\r\n")
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
}

// finish completes the response after the handler returned and says whether the connection
// can carry another request.
func (w *response) finish() bool {
	if !w.ended {
		w.endBody()
	}
	if w.declared >= 0 && w.written != w.declared && w.bodyAllowed() {
		return false // a short body: the client would wait for the rest
	}
	if w.body.expectContinue && !w.body.continued {
		w.closeAfter = true // the client may still send the body it was waiting to send
	}
	return w.err == nil && !w.closeAfter
}

// requestBody is the handler's Request.Body: it sends 100 Continue when the client waits for
// one, and tells the hang-up watch when the body has been read.
type requestBody struct {
	rc             io.ReadCloser
	w              *response
	watch          *watch
	eof            bool
	closed         bool
	expectContinue bool
	continued      bool
}

// maxDrain is how much of a body the handler left unread is read and dropped to keep the
// connection; beyond it the connection closes (net/http's figure).
const maxDrain = 256 << 10

func (b *requestBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.expectContinue && !b.continued {
		b.continued = true
		if !b.w.headSent && b.w.err == nil {
			b.w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if b.w.err = b.w.c.bw.Flush(); b.w.err != nil {
				return 0, b.w.err
			}
		}
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		b.watch.bodyRead()
	}
	return n, err
}

func (b *requestBody) Close() error {
	b.closed = true
	return nil
}

// drain reads what the handler left of the body, so that the next request starts where it
// should, and says whether the connection can go on.
func (b *requestBody) drain() bool {
	if b.eof {
		return true
	}
	if b.expectContinue && !b.continued {
		return false
	}
	n, err := io.CopyN(io.Discard, b.rc, maxDrain+1)
	return err == io.EOF && n <= maxDrain
}
