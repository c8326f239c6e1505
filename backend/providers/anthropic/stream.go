package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"opentracy/backend/providers"
)

// newChatStream turns an Anthropic Messages event stream into an OpenAI chat.completion.chunk
// stream ending with data: [DONE]. Closing it closes upstream.
func newChatStream(upstream io.ReadCloser, includeUsage bool, now time.Time) io.ReadCloser {
	return newSSETransform(upstream, &chatStreamHandler{includeUsage: includeUsage, created: now.Unix(),
		toolIndex: map[int]int{}, toolArgs: map[int]bool{}})
}

// chatStreamHandler holds what the translation remembers between events.
type chatStreamHandler struct {
	includeUsage bool
	created      int64

	id, model  string
	started    bool
	usage      wireUsage
	stopReason string
	// toolIndex maps an Anthropic content-block index to the OpenAI tool-call index: OpenAI counts
	// tool calls (0, 1, 2), not content blocks.
	toolIndex map[int]int
	// toolArgs records which tool calls have received argument bytes.
	toolArgs map[int]bool
}

func (h *chatStreamHandler) event(ev sseEvent, out *bytes.Buffer) (bool, error) {
	var e wireEvent
	if err := json.Unmarshal(ev.data, &e); err != nil {
		return true, fmt.Errorf("decode anthropic stream event %q: %w", ev.name, err)
	}
	if e.Type == "" {
		e.Type = ev.name
	}
	switch e.Type {
	case "message_start":
		if e.Message != nil {
			h.id, h.model, h.usage = e.Message.ID, e.Message.Model, e.Message.Usage
		}
		return false, h.start(out)
	case "content_block_start":
		if err := h.start(out); err != nil {
			return true, err
		}
		if e.ContentBlock == nil {
			return false, nil
		}
		switch e.ContentBlock.Type {
		case "text":
			if e.ContentBlock.Text != "" {
				return false, h.write(out, chatDelta{Content: &e.ContentBlock.Text}, nil)
			}
		case "thinking":
			if e.ContentBlock.Thinking != "" {
				return false, h.write(out, chatDelta{ReasoningContent: e.ContentBlock.Thinking}, nil)
			}
		case "tool_use":
			i := len(h.toolIndex)
			h.toolIndex[e.Index] = i
			return false, h.write(out, chatDelta{ToolCalls: []chatChunkToolCall{{
				Index: &i, ID: e.ContentBlock.ID, Type: "function",
				Function: chatChunkFunction{Name: e.ContentBlock.Name},
			}}}, nil)
		}
		// Server-tool and redacted_thinking blocks have no OpenAI counterpart.
	case "content_block_delta":
		if e.Delta == nil {
			return false, nil
		}
		switch e.Delta.Type {
		case "text_delta":
			if e.Delta.Text != "" {
				return false, h.write(out, chatDelta{Content: &e.Delta.Text}, nil)
			}
		case "thinking_delta":
			if e.Delta.Thinking != "" {
				return false, h.write(out, chatDelta{ReasoningContent: e.Delta.Thinking}, nil)
			}
		case "input_json_delta":
			i, ok := h.toolIndex[e.Index]
			if !ok || e.Delta.PartialJSON == "" {
				return false, nil
			}
			h.toolArgs[i] = true
			return false, h.write(out, chatDelta{ToolCalls: []chatChunkToolCall{{
				Index: &i, Function: chatChunkFunction{Arguments: e.Delta.PartialJSON},
			}}}, nil)
		}
		// signature_delta and citations_delta carry nothing OpenAI clients read.
	case "content_block_stop":
		// A tool call whose input streamed no bytes has no arguments at all; OpenAI clients parse
		// arguments as JSON, so it gets the empty object.
		if i, ok := h.toolIndex[e.Index]; ok && !h.toolArgs[i] {
			h.toolArgs[i] = true
			return false, h.write(out, chatDelta{ToolCalls: []chatChunkToolCall{{
				Index: &i, Function: chatChunkFunction{Arguments: "{}"},
			}}}, nil)
		}
	case "message_delta":
		if e.Delta != nil && e.Delta.StopReason != "" {
			h.stopReason = e.Delta.StopReason
		}
		if u := e.Usage; u != nil {
			// Counts in message_delta are cumulative; input counts appear there only sometimes.
			h.usage.OutputTokens = u.OutputTokens
			if u.InputTokens > 0 {
				h.usage.InputTokens = u.InputTokens
			}
			if u.CacheReadInputTokens > 0 {
				h.usage.CacheReadInputTokens = u.CacheReadInputTokens
			}
			if u.CacheCreationInputTokens > 0 {
				h.usage.CacheCreationInputTokens = u.CacheCreationInputTokens
			}
		}
	case "message_stop":
		if err := h.start(out); err != nil {
			return true, err
		}
		reason := finishReason(h.stopReason)
		if err := h.write(out, chatDelta{}, &reason); err != nil {
			return true, err
		}
		if h.includeUsage {
			if err := writeData(out, chatChunk{ID: h.id, Object: "chat.completion.chunk", Created: h.created,
				Model: h.model, Choices: []chatChunkChoice{}, Usage: chatUsageFrom(h.usage)}); err != nil {
				return true, err
			}
		}
		out.WriteString("data: [DONE]\n\n")
		return true, nil
	case "error":
		// The stream already answered 200, so the failure travels as an OpenAI error event, which
		// OpenAI clients raise; no [DONE] follows.
		var we wireError
		if e.Error != nil {
			we = *e.Error
		}
		if we.Message == "" {
			we.Message = "upstream stream error"
		}
		errType, code := openAIErrorType(we.Type, 0)
		ce := chatError{Message: we.Message, Type: errType}
		if code != "" {
			ce.Code = code
		}
		return true, writeData(out, chatErrorBody{Error: &ce})
	}
	// ping and event types added later are ignored, as Anthropic asks of clients.
	return false, nil
}

func (h *chatStreamHandler) end(*bytes.Buffer) error {
	return fmt.Errorf("anthropic stream ended before message_stop: %w", io.ErrUnexpectedEOF)
}

// start writes the first chunk (the assistant role) once.
func (h *chatStreamHandler) start(out *bytes.Buffer) error {
	if h.started {
		return nil
	}
	h.started = true
	empty := ""
	return h.write(out, chatDelta{Role: "assistant", Content: &empty}, nil)
}

func (h *chatStreamHandler) write(out *bytes.Buffer, d chatDelta, finish *string) error {
	if err := h.start(out); err != nil {
		return err
	}
	return writeData(out, chatChunk{ID: h.id, Object: "chat.completion.chunk", Created: h.created, Model: h.model,
		Choices: []chatChunkChoice{{Index: 0, Delta: d, FinishReason: finish}}})
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
