package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"opentracy/backend/providers/chatwire"
)

// newChatStream turns an Anthropic Messages event stream into an OpenAI chat.completion.chunk
// stream ending with data: [DONE]. Closing it closes upstream.
func newChatStream(upstream io.ReadCloser, includeUsage bool, now time.Time) io.ReadCloser {
	return newSSETransform(upstream, &chatStreamHandler{includeUsage: includeUsage, em: chatwire.Emitter{Created: now.Unix()}})
}

// chatStreamHandler holds what the translation remembers between events.
type chatStreamHandler struct {
	includeUsage bool
	// em writes the chunks; its id and model come from message_start.
	em         chatwire.Emitter
	usage      wireUsage
	stopReason string
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
			h.em.ID, h.em.Model, h.usage = e.Message.ID, e.Message.Model, e.Message.Usage
		}
		return false, h.em.Start(out)
	case "content_block_start":
		if err := h.em.Start(out); err != nil {
			return true, err
		}
		if e.ContentBlock == nil {
			return false, nil
		}
		switch e.ContentBlock.Type {
		case "text":
			return false, h.em.Content(out, e.ContentBlock.Text)
		case "thinking":
			return false, h.em.Reasoning(out, e.ContentBlock.Thinking)
		case "tool_use":
			return false, h.em.ToolCallStart(out, e.Index, e.ContentBlock.ID, e.ContentBlock.Name)
		}
		// Server-tool and redacted_thinking blocks have no OpenAI counterpart.
	case "content_block_delta":
		if e.Delta == nil {
			return false, nil
		}
		switch e.Delta.Type {
		case "text_delta":
			return false, h.em.Content(out, e.Delta.Text)
		case "thinking_delta":
			return false, h.em.Reasoning(out, e.Delta.Thinking)
		case "input_json_delta":
			return false, h.em.ToolCallArgs(out, e.Index, e.Delta.PartialJSON)
		}
		// signature_delta and citations_delta carry nothing OpenAI clients read.
	case "content_block_stop":
		return false, h.em.ToolCallEnd(out, e.Index)
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
		if err := h.em.Finish(out, finishReason(h.stopReason)); err != nil {
			return true, err
		}
		if h.includeUsage {
			if err := h.em.Usage(out, chatUsageFrom(h.usage)); err != nil {
				return true, err
			}
		}
		h.em.Done(out)
		return true, nil
	case "error":
		// The stream already answered 200, so the failure travels as an OpenAI error event.
		var we wireError
		if e.Error != nil {
			we = *e.Error
		}
		if we.Message == "" {
			we.Message = "upstream stream error"
		}
		errType, code := openAIErrorType(we.Type, 0)
		return true, h.em.Fail(out, we.Message, errType, code)
	}
	// ping and event types added later are ignored, as Anthropic asks of clients.
	return false, nil
}

func (h *chatStreamHandler) end(*bytes.Buffer) error {
	return fmt.Errorf("anthropic stream ended before message_stop: %w", io.ErrUnexpectedEOF)
}
