package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"opentracy/backend/traces"
)

// streamReaders recycles the read buffers of upstream streams: one per stream, each too large to
// allocate and clear again for every request.
var streamReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

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
	ir.br = streamReaders.Get().(*bufio.Reader)
	ir.br.Reset(ir)
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

// close ends the stream and recycles its buffer: nothing may read after it.
func (ir *idleReader) close() {
	ir.timer.Stop()
	ir.body.Close()
	if ir.br != nil {
		ir.br.Reset(nil)
		streamReaders.Put(ir.br)
		ir.br = nil
	}
}

// readEvent reads the next server-sent event block, up to and including its blank line, into
// buf's memory (reused from one event to the next). Blocks with only comments (keep-alives) are
// returned too. At the end of the stream it returns io.EOF.
func readEvent(br *bufio.Reader, buf []byte) ([]byte, error) {
	block := buf[:0]
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
	for len(block) > 0 {
		var line []byte
		line, block, _ = bytes.Cut(block, []byte("\n"))
		if line = bytes.TrimSpace(line); len(line) > 0 && line[0] != ':' {
			return false
		}
	}
	return true
}

// eventBuffered reports whether the next event readEvent returns is whole in br's buffer already:
// a non-blank line, then a blank one. It can then be written behind the current event without a
// flush in between, since it has arrived already.
func eventBuffered(br *bufio.Reader) bool {
	data, _ := br.Peek(br.Buffered()) // never reads: that much is buffered
	content := false
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return false
		}
		line := data[:i]
		data = data[i+1:]
		if len(bytes.TrimRight(line, "\r")) == 0 {
			if content {
				return true
			}
			continue // readEvent skips blocks of blank lines and whitespace
		}
		content = content || len(bytes.TrimSpace(line)) > 0
	}
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
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(res.body)))
		w.WriteHeader(res.resp.Status)
		_, _ = w.Write(res.body)
		endBody(w) // the client has its answer before the trace reads it
		tr.Status = res.resp.Status
		obs.whole(res.body)
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
	br := res.idle.reader()
	unflushed := false
	write := func(block []byte) bool {
		if _, err := w.Write(block); err != nil {
			tr.Error = "client disconnected during the stream"
			return false
		}
		unflushed = true
		return true
	}
	flush := func() bool {
		if !unflushed {
			return true
		}
		unflushed = false
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			tr.Error = "client disconnected during the stream"
			return false
		}
		return true
	}
	send := func(block []byte) bool { return write(block) && flush() }

	block := res.first
	for {
		if isComment(block) {
			if !write(block) {
				return
			}
		} else {
			data := eventData(block)
			if bytes.Equal(data, []byte("[DONE]")) {
				send(block)
				return
			}
			if obs.event(data, c.stripUsage) && !write(block) {
				return
			}
			if tr.TTFTMillis == 0 {
				tr.TTFTMillis = millis(g.now().Sub(tr.StartedAt))
			}
		}
		// Events that have arrived already go out with this one, in one write; whatever was
		// written is flushed before waiting on the upstream, so nothing is ever held back.
		if !eventBuffered(br) && !flush() {
			return
		}
		var err error
		block, err = readEvent(br, block)
		if errors.Is(err, io.EOF) && obs.ended() {
			flush()
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
