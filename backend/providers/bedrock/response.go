package bedrock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
)

// fromConverse translates a Converse response into an OpenAI chat.completion body. Converse
// answers carry no id or model, so both come from the caller.
func fromConverse(body []byte, id, model string, created int64) ([]byte, error) {
	var resp converseResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("decode converse response: %w", err)
	}
	var text, reasoning strings.Builder
	hasText := false
	var calls []chatwire.ToolCall
	if m := resp.Output.Message; m != nil {
		for _, b := range m.Content {
			switch {
			case b.Text != nil:
				hasText = true
				text.WriteString(*b.Text)
			case b.ReasoningContent != nil && b.ReasoningContent.ReasoningText != nil:
				reasoning.WriteString(b.ReasoningContent.ReasoningText.Text)
			case b.ToolUse != nil:
				args, err := compactJSON(b.ToolUse.Input)
				if err != nil {
					return nil, fmt.Errorf("toolUse %s input: %w", b.ToolUse.ToolUseID, err)
				}
				calls = append(calls, chatwire.ToolCall{ID: b.ToolUse.ToolUseID, Type: "function",
					Function: chatwire.Function{Name: b.ToolUse.Name, Arguments: args}})
			}
			// Images, documents, citations and redacted reasoning have no OpenAI counterpart.
		}
	}
	out := chatwire.AssistantMessage(text.String(), hasText, reasoning.String(), calls)
	return providers.Marshal(chatwire.Completion{
		ID: id, Object: "chat.completion", Created: created, Model: model,
		Choices: []chatwire.Choice{{Index: 0, Message: out, FinishReason: finishReason(resp.StopReason)}},
		Usage:   chatUsageFrom(resp.Usage),
	})
}

func compactJSON(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "{}", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// finishReason maps Converse's stopReason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	}
	// end_turn, stop_sequence, and anything new.
	return "stop"
}

// chatUsageFrom maps Bedrock usage; its inputTokens excludes cached input (see chatwire.NewUsage).
func chatUsageFrom(u usage) *chatwire.Usage {
	return chatwire.NewUsage(u.InputTokens, u.CacheReadInputTokens, u.CacheWriteInputTokens, u.OutputTokens)
}

// errorName reduces an AWS error type to its bare lower-case name: the x-amzn-ErrorType header
// reads "ThrottlingException:http://internal.amazon.com/...", a body's __type
// "com.amazon.coral.validate#ValidationException", and stream exceptions "throttlingException".
func errorName(s string) string {
	s, _, _ = strings.Cut(s, ":")
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		s = s[i+1:]
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// openAIErrorType maps a Bedrock error name (see errorName) or, when it is unknown, the HTTP
// status to OpenAI's error type and code.
func openAIErrorType(name string, status int) (errType, code string) {
	switch name {
	case "validationexception":
		return "invalid_request_error", ""
	case "accessdeniedexception":
		return "permission_error", ""
	case "unrecognizedclientexception", "invalidsignatureexception", "incompletesignatureexception",
		"missingauthenticationtokenexception", "expiredtokenexception":
		return "authentication_error", ""
	case "resourcenotfoundexception":
		return "not_found_error", ""
	case "throttlingexception":
		return "rate_limit_error", "rate_limit_exceeded"
	case "servicequotaexceededexception":
		return "rate_limit_error", "quota_exceeded"
	case "serviceunavailableexception":
		return "server_error", "service_unavailable"
	case "internalserverexception":
		return "server_error", ""
	case "modeltimeoutexception":
		return "server_error", "timeout"
	case "modelnotreadyexception":
		return "server_error", "model_not_ready"
	case "modelerrorexception":
		return "server_error", "model_error"
	case "modelstreamerrorexception":
		return "server_error", "model_stream_error"
	}
	return chatwire.ErrorTypeForStatus(status)
}

// openAIErrorBody converts a Bedrock error answer ({"message": ...} with the error name in
// x-amzn-ErrorType) into OpenAI's shape. A body that is not Bedrock's (a proxy's HTML page)
// becomes the message.
func openAIErrorBody(status int, header http.Header, body []byte) []byte {
	var e errorPayload
	if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
		e.Message = chatwire.UpstreamText(status, body)
	}
	name := header.Get("X-Amzn-Errortype")
	if name == "" {
		name = e.Type
	}
	errType, code := openAIErrorType(errorName(name), status)
	return providers.ErrorBody(e.Message, errType, code)
}
