package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
)

// fromWireResponse translates an Anthropic message into an OpenAI chat.completion body. The id
// stays Anthropic's (it is what the upstream logs know); created is now.
func fromWireResponse(body []byte, now time.Time) ([]byte, error) {
	var msg wireResponse
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, fmt.Errorf("decode anthropic message: %w", err)
	}
	var text, reasoning strings.Builder
	hasText := false
	var calls []chatwire.ToolCall
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			hasText = true
			text.WriteString(b.Text)
		case "thinking":
			reasoning.WriteString(b.Thinking)
		case "tool_use":
			args, err := compactJSON(b.Input)
			if err != nil {
				return nil, fmt.Errorf("tool_use %s input: %w", b.ID, err)
			}
			calls = append(calls, chatwire.ToolCall{ID: b.ID, Type: "function", Function: chatwire.Function{Name: b.Name, Arguments: args}})
		}
		// redacted_thinking and server-tool blocks have no OpenAI counterpart.
	}
	out := chatwire.AssistantMessage(text.String(), hasText, reasoning.String(), calls)
	resp := chatwire.Completion{
		ID: msg.ID, Object: "chat.completion", Created: now.Unix(), Model: msg.Model,
		Choices: []chatwire.Choice{{Index: 0, Message: out, FinishReason: finishReason(deref(msg.StopReason))}},
		Usage:   chatUsageFrom(msg.Usage),
	}
	return providers.Marshal(resp)
}

func compactJSON(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "{}", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// finishReason maps Anthropic's stop_reason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	// end_turn, stop_sequence, pause_turn, and anything new.
	return "stop"
}

// chatUsageFrom maps Anthropic usage; its input_tokens excludes cached input (see chatwire.NewUsage).
func chatUsageFrom(u wireUsage) *chatwire.Usage {
	return chatwire.NewUsage(u.InputTokens, u.CacheReadInputTokens, u.CacheCreationInputTokens, u.OutputTokens)
}

// openAIErrorType maps an Anthropic error type (or, when it is unknown, the HTTP status) to
// OpenAI's type and code.
func openAIErrorType(anthropicType string, status int) (errType, code string) {
	switch anthropicType {
	case "invalid_request_error", "authentication_error", "permission_error", "not_found_error":
		return anthropicType, ""
	case "request_too_large":
		return "invalid_request_error", "request_too_large"
	case "rate_limit_error":
		return "rate_limit_error", "rate_limit_exceeded"
	case "billing_error":
		return "insufficient_quota", "insufficient_quota"
	case "timeout_error":
		return "server_error", "timeout"
	case "overloaded_error":
		return "server_error", "overloaded"
	case "api_error":
		return "server_error", ""
	}
	return chatwire.ErrorTypeForStatus(status)
}

// openAIErrorBody converts an Anthropic error body ({"type":"error","error":{...}}) into OpenAI's
// shape. A body that is not Anthropic's (a proxy's HTML page) becomes the message.
func openAIErrorBody(status int, body []byte) []byte {
	var e wireErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
		e.Error = wireError{Message: chatwire.UpstreamText(status, body)}
	}
	errType, code := openAIErrorType(e.Error.Type, status)
	return providers.ErrorBody(e.Error.Message, errType, code)
}
