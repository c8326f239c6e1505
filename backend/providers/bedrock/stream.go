package bedrock

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"opentracy/backend/providers/chatwire"
)

const (
	// maxFrame bounds one event-stream message, so a broken upstream cannot make the decoder
	// allocate without limit. AWS caps messages at 16 MiB of payload plus headers.
	maxFrame = 24 << 20
	// minFrame is a message with no headers and no payload: prelude (12 bytes) and CRC (4).
	minFrame = 16
)

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

// newChatStream turns a ConverseStream answer into an OpenAI chat.completion.chunk SSE stream,
// reading the upstream one message at a time (see chatwire.Stream). Closing it closes upstream.
func newChatStream(upstream io.ReadCloser, id, model string, created int64, includeUsage bool) *chatwire.Stream {
	frames := newFrameReader(upstream)
	h := &streamTranslator{includeUsage: includeUsage, em: chatwire.Emitter{ID: id, Model: model, Created: created}}
	return chatwire.NewStream(upstream, func(out *bytes.Buffer) (bool, error) {
		msg, err := frames.next()
		switch {
		case errors.Is(err, io.EOF):
			return true, h.end(out)
		case err != nil:
			return false, fmt.Errorf("read bedrock stream: %w", err)
		}
		return h.message(msg, out)
	})
}

// streamTranslator holds what the translation remembers between events.
type streamTranslator struct {
	includeUsage bool
	em           chatwire.Emitter
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
		return false, h.em.Start(out)
	case "contentBlockStart":
		if e.Start == nil || e.Start.ToolUse == nil {
			return false, h.em.Start(out)
		}
		return false, h.em.ToolCallStart(out, e.ContentBlockIndex, e.Start.ToolUse.ToolUseID, e.Start.ToolUse.Name)
	case "contentBlockDelta":
		d := e.Delta
		switch {
		case d == nil:
		case d.Text != nil:
			return false, h.em.Content(out, *d.Text)
		case d.ToolUse != nil:
			return false, h.em.ToolCallArgs(out, e.ContentBlockIndex, d.ToolUse.Input)
		case d.ReasoningContent != nil:
			return false, h.em.Reasoning(out, d.ReasoningContent.Text)
		}
		// Reasoning signatures, redacted reasoning and citations carry nothing OpenAI clients read.
	case "contentBlockStop":
		return false, h.em.ToolCallEnd(out, e.ContentBlockIndex)
	case "messageStop":
		if err := h.em.Finish(out, finishReason(e.StopReason)); err != nil {
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
		if err := h.em.Usage(out, chatUsageFrom(*h.usage)); err != nil {
			return err
		}
	}
	h.em.Done(out)
	return nil
}

// fail writes an exception as an OpenAI error event (see chatwire.Emitter.Fail).
func (h *streamTranslator) fail(out *bytes.Buffer, name, message string) error {
	if message == "" {
		message = "bedrock stream failed"
		if name != "" {
			message += ": " + name
		}
	}
	errType, code := openAIErrorType(errorName(name), 0)
	return h.em.Fail(out, message, errType, code)
}

// headerString reads a string header of an event-stream message ("" when absent).
func headerString(msg eventstream.Message, name string) string {
	if v := msg.Headers.Get(name); v != nil {
		return v.String()
	}
	return ""
}
