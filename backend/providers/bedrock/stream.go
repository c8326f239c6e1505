package bedrock

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

const (
	// maxFrame bounds one event-stream message, so a broken upstream cannot make the decoder
	// allocate without limit. AWS caps messages at 16 MiB of payload plus headers.
	maxFrame = 24 << 20
	// minFrame is a message with no headers and no payload: prelude (12 bytes) and CRC (4).
	minFrame = 16
)

// errStreamClosed is what Read returns after Close.
var errStreamClosed = errors.New("stream closed")

// frameReader reads AWS event-stream messages (application/vnd.amazon.eventstream) with the SDK's
// decoder, which checks both CRCs. It tells a clean end between messages (io.EOF) from a cut one
// (io.ErrUnexpectedEOF), which the decoder alone does not.
type frameReader struct {
	r       *bufio.Reader
	dec     *eventstream.Decoder
	payload []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReader(r), dec: eventstream.NewDecoder()}
}

// next returns the next message. Its payload is valid until the following call.
func (f *frameReader) next() (eventstream.Message, error) {
	prelude, err := f.r.Peek(8)
	switch {
	case len(prelude) == 0 && errors.Is(err, io.EOF):
		return eventstream.Message{}, io.EOF
	case errors.Is(err, io.EOF):
		return eventstream.Message{}, io.ErrUnexpectedEOF
	case err != nil:
		return eventstream.Message{}, err
	}
	total, headers := binary.BigEndian.Uint32(prelude), binary.BigEndian.Uint32(prelude[4:])
	if total < minFrame || total > maxFrame || headers > total-minFrame {
		return eventstream.Message{}, fmt.Errorf("event-stream message of %d bytes with %d bytes of headers is malformed", total, headers)
	}
	msg, err := f.dec.Decode(f.r, f.payload[:0])
	if errors.Is(err, io.EOF) {
		// The prelude was there, so the message was cut short.
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return eventstream.Message{}, fmt.Errorf("decode event-stream message: %w", err)
	}
	if cap(msg.Payload) > cap(f.payload) {
		f.payload = msg.Payload
	}
	return msg, nil
}

// chatStream is an io.ReadCloser turning a ConverseStream answer into an OpenAI
// chat.completion.chunk SSE stream. It reads the upstream lazily, one message at a time, as its
// reader asks for bytes: no goroutine, so nothing to leak, and back-pressure reaches the upstream.
type chatStream struct {
	upstream io.ReadCloser
	frames   *frameReader
	h        *streamTranslator
	out      bytes.Buffer
	done     bool
	err      error

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

func newChatStream(upstream io.ReadCloser, id, model string, created int64, includeUsage bool) *chatStream {
	return &chatStream{upstream: upstream, frames: newFrameReader(upstream), h: &streamTranslator{
		id: id, model: model, created: created, includeUsage: includeUsage,
		toolIndex: map[int]int{}, toolArgs: map[int]bool{},
	}}
}

func (s *chatStream) Read(p []byte) (int, error) {
	for s.out.Len() == 0 {
		switch {
		case s.closed.Load():
			return 0, errStreamClosed
		case s.err != nil:
			return 0, s.err
		case s.done:
			return 0, io.EOF
		}
		msg, err := s.frames.next()
		switch {
		case errors.Is(err, io.EOF):
			s.done = true
			s.err = s.h.end(&s.out)
		case err != nil:
			if s.closed.Load() {
				return 0, errStreamClosed
			}
			s.err = fmt.Errorf("read bedrock stream: %w", err)
		default:
			s.done, s.err = s.h.message(msg, &s.out)
		}
	}
	return s.out.Read(p)
}

// Close aborts the upstream; it may be called while a Read is blocked in another goroutine.
func (s *chatStream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.upstream.Close()
	})
	return s.closeErr
}

// streamTranslator holds what the translation remembers between events.
type streamTranslator struct {
	id, model    string
	created      int64
	includeUsage bool

	started bool
	// toolIndex maps a Converse content-block index to the OpenAI tool-call index: OpenAI counts
	// tool calls (0, 1, 2), not content blocks.
	toolIndex map[int]int
	// toolArgs records which tool calls have received argument bytes.
	toolArgs map[int]bool
	// stopped is set by messageStop; usage by metadata, which Bedrock sends after it.
	stopped bool
	usage   *usage
}

// message handles one event-stream message, writing output to out; done ends the stream.
func (h *streamTranslator) message(msg eventstream.Message, out *bytes.Buffer) (done bool, err error) {
	switch headerString(msg, ":message-type") {
	case "exception":
		var p errorPayload
		_ = json.Unmarshal(msg.Payload, &p) // an unreadable payload still reports the exception
		return true, h.fail(out, headerString(msg, ":exception-type"), p.Message)
	case "error":
		return true, h.fail(out, headerString(msg, ":error-code"), headerString(msg, ":error-message"))
	}
	eventType := headerString(msg, ":event-type")
	var e streamEvent
	if err := json.Unmarshal(msg.Payload, &e); err != nil {
		return true, fmt.Errorf("decode bedrock stream event %q: %w", eventType, err)
	}
	switch eventType {
	case "messageStart":
		return false, h.start(out)
	case "contentBlockStart":
		if e.Start == nil || e.Start.ToolUse == nil {
			return false, h.start(out)
		}
		i := len(h.toolIndex)
		h.toolIndex[e.ContentBlockIndex] = i
		return false, h.write(out, chatDelta{ToolCalls: []chatChunkToolCall{{
			Index: &i, ID: e.Start.ToolUse.ToolUseID, Type: "function",
			Function: chatChunkFunction{Name: e.Start.ToolUse.Name},
		}}}, nil)
	case "contentBlockDelta":
		d := e.Delta
		switch {
		case d == nil:
		case d.Text != nil:
			if *d.Text != "" {
				return false, h.write(out, chatDelta{Content: d.Text}, nil)
			}
		case d.ToolUse != nil:
			i, ok := h.toolIndex[e.ContentBlockIndex]
			if !ok || d.ToolUse.Input == "" {
				return false, nil
			}
			h.toolArgs[i] = true
			return false, h.write(out, chatDelta{ToolCalls: []chatChunkToolCall{{
				Index: &i, Function: chatChunkFunction{Arguments: d.ToolUse.Input},
			}}}, nil)
		case d.ReasoningContent != nil:
			if d.ReasoningContent.Text != "" {
				return false, h.write(out, chatDelta{ReasoningContent: d.ReasoningContent.Text}, nil)
			}
		}
		// Reasoning signatures, redacted reasoning and citations carry nothing OpenAI clients read.
	case "contentBlockStop":
		// A tool call whose input streamed no bytes has no arguments at all; OpenAI clients parse
		// arguments as JSON, so it gets the empty object.
		if i, ok := h.toolIndex[e.ContentBlockIndex]; ok && !h.toolArgs[i] {
			h.toolArgs[i] = true
			return false, h.write(out, chatDelta{ToolCalls: []chatChunkToolCall{{
				Index: &i, Function: chatChunkFunction{Arguments: "{}"},
			}}}, nil)
		}
	case "messageStop":
		reason := finishReason(e.StopReason)
		if err := h.write(out, chatDelta{}, &reason); err != nil {
			return true, err
		}
		h.stopped = true
		if h.usage != nil {
			return true, h.finish(out)
		}
	case "metadata":
		u := usage{}
		if e.Usage != nil {
			u = *e.Usage
		}
		h.usage = &u
		if h.stopped {
			return true, h.finish(out)
		}
	}
	// Event types added later are ignored.
	return false, nil
}

// end is called when the upstream ends before the translator said done. After messageStop the
// answer is whole and only the usage is missing; before it the answer was cut short, and the
// stream ends with an error and no [DONE], so a truncated answer is never passed off as complete.
func (h *streamTranslator) end(out *bytes.Buffer) error {
	if h.stopped {
		return h.finish(out)
	}
	return fmt.Errorf("bedrock stream ended before messageStop: %w", io.ErrUnexpectedEOF)
}

// finish writes the usage chunk when the client asked for it and usage is known, then [DONE].
func (h *streamTranslator) finish(out *bytes.Buffer) error {
	if h.includeUsage && h.usage != nil {
		if err := writeData(out, chatChunk{ID: h.id, Object: "chat.completion.chunk", Created: h.created,
			Model: h.model, Choices: []chatChunkChoice{}, Usage: chatUsageFrom(*h.usage)}); err != nil {
			return err
		}
	}
	out.WriteString("data: [DONE]\n\n")
	return nil
}

// fail writes an exception as an OpenAI error event. The stream already answered 200, so the
// failure travels in-band, where OpenAI clients raise it; no [DONE] follows.
func (h *streamTranslator) fail(out *bytes.Buffer, name, message string) error {
	if message == "" {
		message = "bedrock stream failed"
		if name != "" {
			message += ": " + name
		}
	}
	errType, code := openAIErrorType(errorName(name), 0)
	ce := chatError{Message: message, Type: errType}
	if code != "" {
		ce.Code = &code
	}
	return writeData(out, chatErrorBody{Error: &ce})
}

// start writes the first chunk (the assistant role) once.
func (h *streamTranslator) start(out *bytes.Buffer) error {
	if h.started {
		return nil
	}
	h.started = true
	empty := ""
	return h.write(out, chatDelta{Role: "assistant", Content: &empty}, nil)
}

func (h *streamTranslator) write(out *bytes.Buffer, d chatDelta, finish *string) error {
	if err := h.start(out); err != nil {
		return err
	}
	return writeData(out, chatChunk{ID: h.id, Object: "chat.completion.chunk", Created: h.created, Model: h.model,
		Choices: []chatChunkChoice{{Index: 0, Delta: d, FinishReason: finish}}})
}

// writeData writes v as one "data:" event.
func writeData(out *bytes.Buffer, v any) error {
	data, err := marshal(v)
	if err != nil {
		return fmt.Errorf("encode stream chunk: %w", err)
	}
	out.WriteString("data: ")
	out.Write(data)
	out.WriteString("\n\n")
	return nil
}

// headerString reads a string header of an event-stream message ("" when absent).
func headerString(msg eventstream.Message, name string) string {
	if v := msg.Headers.Get(name); v != nil {
		return v.String()
	}
	return ""
}
