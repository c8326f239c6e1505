package chatwire

import (
	"fmt"
	"net/http"
	"strings"
)

// AssistantMessage builds a response's message. Content is null only beside tool calls with no
// text, as OpenAI sends it; otherwise a string, even empty.
func AssistantMessage(text string, hasText bool, reasoning string, calls []ToolCall) OutMessage {
	out := OutMessage{Role: "assistant", ReasoningContent: reasoning, ToolCalls: calls}
	if hasText || len(calls) == 0 {
		out.Content = &text
	}
	return out
}

// NewUsage builds usage from upstream counts where input excludes the input read from and
// written to the prompt cache, as Anthropic's and Bedrock's do. OpenAI's prompt_tokens includes
// all input, so both are added back; they are also reported apart because they bill differently.
func NewUsage(input, cacheRead, cacheWrite, output int) *Usage {
	prompt := input + cacheRead + cacheWrite
	return &Usage{
		PromptTokens: prompt, CompletionTokens: output, TotalTokens: prompt + output,
		PromptTokensDetails: &PromptDetails{CachedTokens: cacheRead, CacheCreationTokens: cacheWrite},
	}
}

// ErrorTypeForStatus is OpenAI's error type and code for an upstream error known only by its HTTP
// status (0 for a failure inside a stream).
func ErrorTypeForStatus(status int) (errType, code string) {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error", ""
	case status == http.StatusForbidden:
		return "permission_error", ""
	case status == http.StatusNotFound:
		return "not_found_error", ""
	case status == http.StatusTooManyRequests:
		return "rate_limit_error", "rate_limit_exceeded"
	case status >= 500 || status == 0:
		return "server_error", ""
	}
	return "invalid_request_error", ""
}

// UpstreamText describes an upstream error body that is not a recognizable error object (a
// proxy's HTML page), bounded so a large page does not end up whole in an error message.
func UpstreamText(status int, body []byte) string {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return fmt.Sprintf("upstream returned %d: %s", status, msg)
}
