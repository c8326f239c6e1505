package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"opentracy/backend/providers/chatwire"
)

// maxSSELine bounds one line of an upstream stream, so a broken upstream cannot grow memory
// without limit. Real events are far smaller.
const maxSSELine = 16 << 20

// sseReadSize is the least room offered to one upstream read; the buffer doubles past it only
// for longer lines.
const sseReadSize = 4 << 10

// errSSELineTooLong is returned when a line exceeds maxSSELine.
var errSSELineTooLong = errors.New("server-sent event line too long")

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// sseReader parses a server-sent event stream (https://html.spec.whatwg.org/#event-stream-interpretation):
// \n, \r\n and \r line endings, comments, several data lines joined with \n, events split across
// reads. It reads the upstream only when asked for the next event.
type sseReader struct {
	r       io.Reader
	buf     []byte // bytes read and not consumed, from pos on
	pos     int
	scanned int // bytes after pos already known to hold no line ending
	eof     bool
	started bool

	name    string
	data    bytes.Buffer
	hasData bool
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: r} }

// next returns the next event with data, or io.EOF. An event cut off by the end of the stream is
// still dispatched (the spec drops it; upstreams that omit the final blank line are common).
func (s *sseReader) next() (sseEvent, error) {
	for {
		line, err := s.readLine()
		if errors.Is(err, io.EOF) {
			if s.hasData {
				return s.dispatch(), nil
			}
			return sseEvent{}, io.EOF
		}
		if err != nil {
			return sseEvent{}, err
		}
		if !s.started {
			s.started = true
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		if len(line) == 0 {
			if s.hasData {
				return s.dispatch(), nil
			}
			s.name = ""
			continue
		}
		if line[0] == ':' {
			continue // comment
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			s.name = string(value)
		case "data":
			if s.hasData {
				s.data.WriteByte('\n')
			}
			s.data.Write(value)
			s.hasData = true
		}
		// id and retry mean nothing to a one-shot proxy.
	}
}

func (s *sseReader) dispatch() sseEvent {
	ev := sseEvent{name: s.name, data: bytes.Clone(s.data.Bytes())}
	s.name, s.hasData = "", false
	s.data.Reset()
	return ev
}

// readLine returns the next line without its ending. The slice is valid until the next call.
func (s *sseReader) readLine() ([]byte, error) {
	for {
		rest := s.buf[s.pos:]
		if i := bytes.IndexAny(rest[s.scanned:], "\r\n"); i >= 0 {
			i += s.scanned
			// A \r at the end of what was read may be the first half of \r\n: read on to know.
			if rest[i] == '\n' || i+1 < len(rest) || s.eof {
				n := i + 1
				if rest[i] == '\r' && n < len(rest) && rest[n] == '\n' {
					n++
				}
				s.pos += n
				s.scanned = 0
				return rest[:i], nil
			}
			s.scanned = i
		} else {
			s.scanned = len(rest)
			if s.eof {
				if len(rest) == 0 {
					return nil, io.EOF
				}
				s.pos += len(rest)
				s.scanned = 0
				return rest, nil
			}
		}
		if err := s.fill(); err != nil {
			return nil, err
		}
	}
}

func (s *sseReader) fill() error {
	if s.pos > 0 {
		n := copy(s.buf, s.buf[s.pos:])
		s.buf = s.buf[:n]
		s.pos = 0
	}
	if len(s.buf) > maxSSELine {
		return errSSELineTooLong
	}
	if cap(s.buf)-len(s.buf) < sseReadSize/2 {
		grown := make([]byte, len(s.buf), max(2*cap(s.buf), sseReadSize))
		copy(grown, s.buf)
		s.buf = grown
	}
	n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
	s.buf = s.buf[:len(s.buf)+n]
	if errors.Is(err, io.EOF) {
		s.eof = true
		return nil
	}
	return err
}

// streamHandler turns upstream events into output bytes for newSSETransform.
type streamHandler interface {
	// event handles one upstream event, writing output to out; done ends the stream.
	event(ev sseEvent, out *bytes.Buffer) (done bool, err error)
	// end is called when the upstream ends before the handler said done.
	end(out *bytes.Buffer) error
}

// newSSETransform reads upstream's server-sent events lazily, one at a time, through h (see
// chatwire.Stream).
func newSSETransform(upstream io.ReadCloser, h streamHandler) *chatwire.Stream {
	events := newSSEReader(upstream)
	return chatwire.NewStream(upstream, func(out *bytes.Buffer) (bool, error) {
		ev, err := events.next()
		switch {
		case errors.Is(err, io.EOF):
			return true, h.end(out)
		case err != nil:
			return false, fmt.Errorf("read upstream stream: %w", err)
		}
		return h.event(ev, out)
	})
}
