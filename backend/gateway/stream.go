package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"opentracy/backend/traces"
)

// idleReader cancels an upstream stream that stays silent longer than its idle timeout; a stream
// that keeps sending is never cut, however long it lasts.
type idleReader struct {
	timeout time.Duration
	timer   *time.Timer
	fired   atomic.Bool
	body    io.ReadCloser
	br      *bufio.Reader
}

func newIdleReader(timeout time.Duration, cancel func()) *idleReader {
	ir := &idleReader{timeout: timeout}
	ir.timer = time.AfterFunc(timeout, func() {
		ir.fired.Store(true)
		cancel()
	})
	return ir
}

func (ir *idleReader) attach(body io.ReadCloser) {
	ir.body = body
	ir.br = bufio.NewReaderSize(ir, 32<<10)
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.body.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.timeout)
	}
	return n, err
}

func (ir *idleReader) reader() *bufio.Reader { return ir.br }
func (ir *idleReader) expired() bool         { return ir.fired.Load() }
func (ir *idleReader) stop()                 { ir.timer.Stop() }

func (ir *idleReader) close() {
	ir.timer.Stop()
	ir.body.Close()
}

// readEvent reads the next server-sent event block, up to and including its blank line. Blocks
// with only comments (keep-alives) are returned too. At the end of the stream it returns io.EOF.
func readEvent(br *bufio.Reader) ([]byte, error) {
	var block []byte
	for {
		line, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer
			block = append(block, line...)
			line, err = br.ReadSlice('\n')
		}
		block = append(block, line...)
		if err != nil {
			if errors.Is(err, io.EOF) && len(bytes.TrimSpace(block)) > 0 {
				return block, nil // a final event without its blank line
			}
			return nil, err
		}
		if trimmed := bytes.TrimRight(line, "\r\n"); len(trimmed) == 0 {
			if len(bytes.TrimSpace(block)) == 0 {
				block = block[:0] // stray blank lines between events
				continue
			}
			return block, nil
		}
	}
}

// eventData returns the data of an event block (data lines joined by newlines), or nil.
func eventData(block []byte) []byte {
	var data []byte
	lines := 0
	for len(block) > 0 {
		line := block
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		line = bytes.TrimRight(line, "\r")
		v, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		v = bytes.TrimPrefix(v, []byte(" "))
		if lines == 0 {
			data = v
		} else {
			data = append(append(bytes.Clone(data), '\n'), v...)
		}
		lines++
	}
	return data
}

// isComment reports whether a block holds only comment lines.
func isComment(block []byte) bool {
	for _, line := range bytes.Split(bytes.TrimSpace(block), []byte("\n")) {
		if len(line) > 0 && line[0] != ':' {
			return false
		}
	}
	return true
}

// deliver relays a successful upstream answer to the client and completes the trace.
func (g *Gateway) deliver(w http.ResponseWriter, res *result, c *call, dep deployment, tr *traces.Trace) {
	obs := c.newObserver()
	defer obs.finish(tr)
	h := w.Header()
	for k, vs := range res.resp.Header {
		h[k] = vs
	}
	g.setRouteHeaders(w, tr)
	if !c.stream {
		obs.whole(res.body)
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(res.body)))
		w.WriteHeader(res.resp.Status)
		_, _ = w.Write(res.body)
		tr.Status = res.resp.Status
		return
	}

	defer res.done()
	defer res.idle.close()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tr.Status = http.StatusOK
	rc := http.NewResponseController(w)
	send := func(block []byte) bool {
		if _, err := w.Write(block); err != nil {
			tr.Error = "client disconnected during the stream"
			return false
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			tr.Error = "client disconnected during the stream"
			return false
		}
		return true
	}

	block := res.first
	for {
		if isComment(block) {
			if !send(block) {
				return
			}
		} else {
			data := eventData(block)
			if bytes.Equal(data, []byte("[DONE]")) {
				send(block)
				return
			}
			if obs.event(data, c.stripUsage) && !send(block) {
				return
			}
			if tr.TTFTMillis == 0 {
				tr.TTFTMillis = millis(g.now().Sub(tr.StartedAt))
			}
		}
		var err error
		block, err = readEvent(res.idle.reader())
		if errors.Is(err, io.EOF) && obs.ended() {
			return // formats without [DONE] (Anthropic's) end after their last event
		}
		if err != nil {
			g.streamFailed(send, c, dep, res, err, tr)
			return
		}
	}
}

// streamFailed ends a stream whose upstream broke after the first byte: too late to fall back, so
// the client gets an error event in OpenAI's stream format and the trace says what happened.
func (g *Gateway) streamFailed(send func([]byte) bool, c *call, dep deployment, res *result, err error, tr *traces.Trace) {
	msg := "upstream " + dep.String() + " ended the stream without [DONE]"
	if !errors.Is(err, io.EOF) {
		msg = "upstream " + dep.String() + " stream failed: " + err.Error()
		if res.idle.expired() {
			msg = "upstream " + dep.String() + " sent nothing for " + res.idle.timeout.String() + " (stream idle timeout)"
		}
	}
	tr.Error = msg
	send(c.wire.streamError(msg))
}
