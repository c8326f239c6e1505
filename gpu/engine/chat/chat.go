// Package chat renders conversations into the prompt text that Qwen3 and Llama 3.x models were
// trained on, exactly as their Jinja chat templates (tokenizer_config.json) do under
// transformers' apply_chat_template, but in plain Go: no template engine runs at serving time.
//
// The output is text with the special tokens spelled out ("<|im_start|>", "<|begin_of_text|>"):
// encode it with the model's tokenizer without adding special tokens, as transformers does.
package chat

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Message is one turn, with the fields of the OpenAI chat format that the templates read.
type Message struct {
	Role    string `json:"role"` // system, user, assistant, tool (Llama 3.1 also takes ipython)
	Content string `json:"content"`
	// ReasoningContent is an assistant turn's thinking (Qwen3). When nil, Qwen3's template takes
	// it from a "<think>…</think>" prefix of Content instead.
	ReasoningContent *string    `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
	Name             string     `json:"name,omitempty"`
}

// ToolCall is a function call made by the assistant.
type ToolCall struct {
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and its arguments. Arguments is raw JSON, either a string
// holding JSON text (the OpenAI wire format) or an object: the templates tell the two apart
// (Qwen3 writes a string verbatim and serializes an object; Llama 3.1 serializes either).
type FunctionCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// Options are the template variables besides the messages.
type Options struct {
	// AddGenerationPrompt appends the header of the assistant turn the model is to write.
	AddGenerationPrompt bool
	// Tools are the function definitions, each a JSON object as in the request's "tools"
	// ({"type": "function", "function": {...}}); key order is kept.
	Tools []json.RawMessage
	// EnableThinking is Qwen3's switch: false makes the generation prompt an empty
	// <think></think> block so that the model answers directly; nil is the template's default.
	EnableThinking *bool
	// DateString is Llama 3.1's "Today Date" (e.g. "26 Jul 2024"). Empty: the template's
	// default, a fixed "26 Jul 2024" in 3.1 and the current date in 3.2 and 3.3.
	DateString string
	// ToolsInSystemMessage puts Llama 3.1's tool definitions in the system turn instead of the
	// first user turn (the template's tools_in_user_message=false).
	ToolsInSystemMessage bool
}

// Template renders a conversation for one model family.
type Template interface {
	Name() string
	Render(messages []Message, opts Options) (string, error)
}

// ErrUnsupported is returned by Detect for a chat template of no family this package knows.
var ErrUnsupported = errors.New("chat: unsupported chat template")

// Detect picks the Go rendering for a model's chat_template. exact says whether the template is
// one this package was checked against character for character; otherwise it belongs to a known
// family by its markers and may differ in details (the caller may want to log that).
func Detect(chatTemplate string) (t Template, exact bool, err error) {
	h := sha256.Sum256([]byte(chatTemplate))
	sum := hex.EncodeToString(h[:])
	switch {
	case strings.Contains(chatTemplate, "<|im_start|>") && strings.Contains(chatTemplate, "</think>"):
		return Qwen3(), sum == qwen3SHA256, nil
	case strings.Contains(chatTemplate, "<|start_header_id|>") && strings.Contains(chatTemplate, "Cutting Knowledge Date"):
		return &llama31{todayByDefault: strings.Contains(chatTemplate, "strftime_now")}, false, nil
	case strings.Contains(chatTemplate, "<|start_header_id|>"):
		always := !strings.Contains(chatTemplate, "add_generation_prompt")
		return &llama3{alwaysPrompt: always}, sum == llama3SHA256 || sum == llama3ConditionalSHA256, nil
	}
	return nil, false, ErrUnsupported
}

// SHA-256 of the templates the golden tests render with Jinja and compare against: Qwen3's, the
// first Meta-Llama-3 Instruct revision's (assistant header always appended) and the later one's
// (appended with add_generation_prompt only).
const (
	qwen3SHA256             = "87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5"
	llama3SHA256            = "b48c47f6443892716176eb200bf4ef108f64e06ca26ed0fa8ebc0a4b3992fcb2"
	llama3ConditionalSHA256 = "ba03a121d097859c7b5b9cd03af99aafe95275210d2876f642ad9929a150f122"
)

// pyStrip is Python's str.strip() (what Jinja's trim filter runs in transformers): Unicode white
// space plus the four information separators U+001C–U+001F, which Python also counts as space.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) })
}

func errRole(family string, i int, role string) error {
	return fmt.Errorf("chat: %s: message %d has role %q, which the template does not render", family, i, role)
}
