package chatwire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"opentracy/backend/providers"
)

// ErrStreamClosed is what a Stream's Read returns after Close.
var ErrStreamClosed = errors.New("stream closed")

// StepFunc reads one unit (an event, a message) of an upstream stream and writes its translation
// to out. done ends the stream; so does an error, which Read returns once out is drained.
type StepFunc func(out *bytes.Buffer) (done bool, err error)

// Stream is an io.ReadCloser that translates an upstream stream lazily, one step at a time, as its
// reader asks for bytes: no goroutine, so nothing to leak, and back-pressure reaches the upstream.
type Stream struct {
	upstream io.ReadCloser
	step     StepFunc
	out      bytes.Buffer
	done     bool
	err      error

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewStream returns a Stream that calls step to read from upstream; closing it closes upstream.
func NewStream(upstream io.ReadCloser, step StepFunc) *Stream {
	return &Stream{upstream: upstream, step: step}
}

func (s *Stream) Read(p []byte) (int, error) {
	for s.out.Len() == 0 {
		switch {
		case s.closed.Load():
			// Checked first: a read that failed because Close cut the upstream is not an error of
			// the upstream's.
			return 0, ErrStreamClosed
		case s.err != nil:
			return 0, s.err
		case s.done:
			return 0, io.EOF
		}
		s.done, s.err = s.step(&s.out)
	}
	return s.out.Read(p)
}

// Close aborts the upstream; it may be called while a Read is blocked in another goroutine.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.upstream.Close()
	})
	return s.closeErr
}

// Emitter writes an OpenAI chat.completion.chunk SSE stream for a translator that drives it from
// upstream events. The zero value is ready once ID, Model and Created are set; ID and Model may be
// set late (Anthropic names them in its first event), before the first chunk is written.
type Emitter struct {
	ID      string
	Model   string
	Created int64

	started bool
	// toolIndex maps an upstream content-block index to the OpenAI tool-call index: OpenAI counts
	// tool calls (0, 1, 2), not content blocks.
	toolIndex map[int]int
	// toolArgs records which tool calls have received argument bytes.
	toolArgs map[int]bool
}

// Start writes the first chunk (the assistant role) once; every other chunk is preceded by it.
func (e *Emitter) Start(out *bytes.Buffer) error {
	if e.started {
		return nil
	}
	e.started = true
	empty := ""
	return e.write(out, Delta{Role: "assistant", Content: &empty}, nil)
}

// Content writes a text delta; empty text writes nothing.
func (e *Emitter) Content(out *bytes.Buffer, text string) error {
	if text == "" {
		return nil
	}
	return e.write(out, Delta{Content: &text}, nil)
}

// Reasoning writes a reasoning_content delta; empty text writes nothing.
func (e *Emitter) Reasoning(out *bytes.Buffer, text string) error {
	if text == "" {
		return nil
	}
	return e.write(out, Delta{ReasoningContent: text}, nil)
}

// ToolCallStart opens a tool call for the upstream content block block.
func (e *Emitter) ToolCallStart(out *bytes.Buffer, block int, id, name string) error {
	if e.toolIndex == nil {
		e.toolIndex, e.toolArgs = map[int]int{}, map[int]bool{}
	}
	i := len(e.toolIndex)
	e.toolIndex[block] = i
	return e.write(out, Delta{ToolCalls: []ChunkToolCall{{
		Index: &i, ID: id, Type: "function", Function: ChunkFunction{Name: name},
	}}}, nil)
}

// ToolCallArgs writes a piece of a tool call's arguments; nothing for a block that opened no tool
// call, or for no bytes.
func (e *Emitter) ToolCallArgs(out *bytes.Buffer, block int, args string) error {
	i, ok := e.toolIndex[block]
	if !ok || args == "" {
		return nil
	}
	e.toolArgs[i] = true
	return e.write(out, Delta{ToolCalls: []ChunkToolCall{{Index: &i, Function: ChunkFunction{Arguments: args}}}}, nil)
}

// ToolCallEnd closes the content block block. A tool call whose input streamed no bytes has no
// arguments at all; OpenAI clients parse arguments as JSON, so it gets the empty object.
func (e *Emitter) ToolCallEnd(out *bytes.Buffer, block int) error {
	i, ok := e.toolIndex[block]
	if !ok || e.toolArgs[i] {
		return nil
	}
	e.toolArgs[i] = true
	return e.write(out, Delta{ToolCalls: []ChunkToolCall{{Index: &i, Function: ChunkFunction{Arguments: "{}"}}}}, nil)
}

// Finish writes the chunk carrying finish_reason.
func (e *Emitter) Finish(out *bytes.Buffer, reason string) error {
	return e.write(out, Delta{}, &reason)
}

// Usage writes the usage chunk that stream_options.include_usage asks for: no choices.
func (e *Emitter) Usage(out *bytes.Buffer, u *Usage) error {
	return writeData(out, Chunk{ID: e.ID, Object: "chat.completion.chunk", Created: e.Created, Model: e.Model,
		Choices: []ChunkChoice{}, Usage: u})
}

// Done writes the final data: [DONE].
func (e *Emitter) Done(out *bytes.Buffer) {
	out.WriteString("data: [DONE]\n\n")
}

// Fail writes a failure as an OpenAI error event. The stream already answered 200, so the failure
// travels in-band, where OpenAI clients raise it; no [DONE] should follow. An empty code is null.
func (e *Emitter) Fail(out *bytes.Buffer, message, errType, code string) error {
	ce := Error{Message: message, Type: errType}
	if code != "" {
		ce.Code = code
	}
	return writeData(out, ErrorBody{Error: &ce})
}

func (e *Emitter) write(out *bytes.Buffer, d Delta, finish *string) error {
	if err := e.Start(out); err != nil {
		return err
	}
	return writeData(out, Chunk{ID: e.ID, Object: "chat.completion.chunk", Created: e.Created, Model: e.Model,
		Choices: []ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}}})
}

// writeData writes v as one "data:" event.
func writeData(out *bytes.Buffer, v any) error {
	data, err := providers.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode stream chunk: %w", err)
	}
	out.WriteString("data: ")
	out.Write(data)
	out.WriteString("\n\n")
	return nil
}
