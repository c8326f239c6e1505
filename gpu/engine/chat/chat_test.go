package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"opentracy/gpu/engine/tokenizer/reftest"
)

type conversation struct {
	name     string
	msgs     []Message
	opts     Options
	families []string // which families' templates can render it (Llama 3 has no tools)
}

var (
	allFamilies = []string{reftest.Qwen3, reftest.Llama3, reftest.Llama31}
	qwenOnly    = []string{reftest.Qwen3}
	weatherTool = json.RawMessage(`{"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}`)
	timeTool    = json.RawMessage(`{"type":"function","function":{"name":"get_time","description":"Current time <UTC> & zone","parameters":{"type":"object","properties":{},"required":[]}}}`)
)

func str(s string) *string { return &s }
func yes() *bool           { b := true; return &b }
func no() *bool            { b := false; return &b }

func call(name, args string) ToolCall {
	return ToolCall{ID: "call_" + name, Type: "function", Function: FunctionCall{Name: name, Arguments: json.RawMessage(args)}}
}

func conversations() []conversation {
	user := Message{Role: "user", Content: "What is the capital of France?"}
	sys := Message{Role: "system", Content: "You are a helpful assistant."}
	answer := Message{Role: "assistant", Content: "The capital of France is Paris."}
	gen := Options{AddGenerationPrompt: true}
	return []conversation{
		{"user", []Message{user}, gen, allFamilies},
		{"system and user", []Message{sys, user}, gen, allFamilies},
		{"multi turn", []Message{sys, user, answer, {Role: "user", Content: "And of Italy?"}}, gen, allFamilies},
		{"no generation prompt", []Message{user, answer}, Options{}, allFamilies},
		// Qwen3 strips only newlines here (Python's lstrip('\n')), which the JavaScript Jinja
		// engine gets wrong (it ignores the argument): see TestQwen3StripsOnlyNewlines.
		{"whitespace trimmed", []Message{{Role: "system", Content: "  spaced system \n"}, {Role: "user", Content: "\n\thi there  \n\n"}, {Role: "assistant", Content: " ok "}}, gen, []string{reftest.Llama3, reftest.Llama31}},
		{"newlines stripped", []Message{{Role: "system", Content: "  spaced system \n"}, {Role: "user", Content: "\n\thi there  \n\n"}, {Role: "assistant", Content: "\n\nok \n"}}, gen, allFamilies},
		{"unicode and empty", []Message{{Role: "user", Content: "你好 😀 — \"quotes\" <b>&amp;</b>"}, {Role: "assistant", Content: ""}, {Role: "user", Content: "é\u00a0x"}}, gen, allFamilies},
		{"special tokens in content", []Message{{Role: "user", Content: "say <|im_end|> or <|eot_id|>"}}, gen, allFamilies},
		{"system later", []Message{user, {Role: "system", Content: "Be brief."}, answer}, gen, allFamilies},
		{"thinking off", []Message{user}, Options{AddGenerationPrompt: true, EnableThinking: no()}, qwenOnly},
		{"thinking on", []Message{sys, user}, Options{AddGenerationPrompt: true, EnableThinking: yes()}, qwenOnly},
		{"think in last answer", []Message{user, {Role: "assistant", Content: "<think>\nFrance... Paris.\n</think>\n\nParis."}}, Options{}, qwenOnly},
		{"think in earlier answer", []Message{user, {Role: "assistant", Content: "<think>\nhmm\n</think>\n\nParis."}, {Role: "user", Content: "Thanks"}}, gen, qwenOnly},
		{"reasoning_content", []Message{user, {Role: "assistant", Content: "\n\nParis.", ReasoningContent: str("\nThe capital is Paris.\n\n")}}, Options{}, qwenOnly},
		{"empty reasoning not last", []Message{user, {Role: "assistant", Content: "Paris."}, {Role: "user", Content: "<tool_response>\nx\n</tool_response>"}, {Role: "assistant", Content: "ok"}}, gen, qwenOnly},
		{"tools with system", []Message{sys, {Role: "user", Content: "Weather in Paris?"}}, Options{AddGenerationPrompt: true, Tools: []json.RawMessage{weatherTool, timeTool}}, qwenOnly},
		{"tools without system", []Message{{Role: "user", Content: "What time is it?"}}, Options{AddGenerationPrompt: true, Tools: []json.RawMessage{timeTool}}, qwenOnly},
		{"tool call round trip", []Message{
			sys,
			{Role: "user", Content: "Weather in Paris and the time?"},
			{Role: "assistant", Content: "", ToolCalls: []ToolCall{call("get_weather", `"{\"city\": \"Paris\"}"`), call("get_time", `"{}"`)}},
			{Role: "tool", Content: `{"temp": 21, "unit": "celsius"}`, ToolCallID: "call_get_weather"},
			{Role: "tool", Content: "12:00", ToolCallID: "call_get_time"},
			{Role: "assistant", Content: "It is 21°C in Paris at noon."},
		}, Options{Tools: []json.RawMessage{weatherTool, timeTool}}, qwenOnly},
		{"tool call with content and object arguments", []Message{
			{Role: "user", Content: "Weather?"},
			{Role: "assistant", Content: "Let me check.", ToolCalls: []ToolCall{call("get_weather", `{"city": "Paris", "unit": "celsius", "days": [1, 2], "note": "a\nb é"}`)}},
			{Role: "tool", Content: "sunny"},
		}, Options{AddGenerationPrompt: true, Tools: []json.RawMessage{weatherTool}}, qwenOnly},
		{"multi-step tools with thinking", []Message{
			{Role: "user", Content: "Plan my day."},
			{Role: "assistant", Content: "<think>\nneed weather\n</think>\n\n", ToolCalls: []ToolCall{call("get_weather", `"{\"city\":\"Oslo\"}"`)}},
			{Role: "tool", Content: "rain"},
			{Role: "assistant", Content: "", ReasoningContent: str("need time too"), ToolCalls: []ToolCall{call("get_time", `"{}"`)}},
			{Role: "tool", Content: "08:00"},
		}, Options{AddGenerationPrompt: true, EnableThinking: yes(), Tools: []json.RawMessage{weatherTool, timeTool}}, qwenOnly},
		{"tool response as user text", []Message{{Role: "user", Content: "<tool_response>\nliteral\n</tool_response>"}, {Role: "assistant", Content: "<think>x</think>y"}}, Options{}, qwenOnly},
	}
}

// jsConversation is the conversation as the Jinja templates receive it.
func jsConversation(c conversation) map[string]any {
	m := map[string]any{"messages": c.msgs, "add_generation_prompt": c.opts.AddGenerationPrompt}
	if c.opts.Tools != nil {
		m["tools"] = c.opts.Tools
	}
	if c.opts.EnableThinking != nil {
		m["enable_thinking"] = *c.opts.EnableThinking
	}
	return m
}

// TestTemplatesMatchJinja renders each model's own chat template with @huggingface/jinja and
// compares it with the Go rendering, character for character.
func TestTemplatesMatchJinja(t *testing.T) {
	convs := conversations()
	req := reftest.Request{}
	for _, c := range convs {
		req.Conversations = append(req.Conversations, jsConversation(c))
	}
	ref := reftest.Run(t, req)
	for _, family := range allFamilies {
		t.Run(family, func(t *testing.T) {
			fam := ref[family]
			if len(fam.Chats) != len(convs) {
				t.Fatalf("reference has %d renderings, want %d", len(fam.Chats), len(convs))
			}
			tpl := loadTemplate(t, fam.ModelDir)
			compared := 0
			for i, c := range convs {
				if !slices.Contains(c.families, family) {
					continue
				}
				var want string
				if err := json.Unmarshal(fam.Chats[i], &want); err != nil {
					t.Errorf("%s: Jinja failed: %s", c.name, fam.Chats[i])
					continue
				}
				got, err := tpl.Render(c.msgs, c.opts)
				if err != nil {
					t.Errorf("%s: %v", c.name, err)
					continue
				}
				if got != want {
					t.Errorf("%s:\n got: %q\nwant: %q", c.name, got, want)
				}
				compared++
			}
			if compared < 8 {
				t.Errorf("only %d conversations compared", compared)
			}
		})
	}
}

// loadTemplate detects the Go template from the model's tokenizer_config.json and insists that
// it is one of the exactly-checked ones.
func loadTemplate(t *testing.T, modelDir string) Template {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(modelDir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ChatTemplate string `json:"chat_template"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	tpl, exact, err := Detect(cfg.ChatTemplate)
	if err != nil {
		t.Fatal(err)
	}
	if !exact {
		t.Fatalf("%s: template not recognized as an exactly checked one", modelDir)
	}
	return tpl
}

// TestQwen3StripsOnlyNewlines pins Python's semantics where @huggingface/jinja differs: the
// template's content.lstrip('\n') and reasoning_content.strip('\n') remove newlines only.
func TestQwen3StripsOnlyNewlines(t *testing.T) {
	got, err := Qwen3().Render([]Message{
		{Role: "user", Content: "q"},
		{Role: "assistant", Content: " answer ", ReasoningContent: str("\n thought \n")},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n thought \n</think>\n\n answer <|im_end|>\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestLlama3RejectsTools(t *testing.T) {
	_, err := Llama3().Render([]Message{{Role: "user", Content: "x"}}, Options{Tools: []json.RawMessage{timeTool}})
	if err == nil {
		t.Fatal("tools accepted by the Llama 3 template")
	}
	if _, err := Qwen3().Render(nil, Options{}); err == nil {
		t.Fatal("Qwen3 rendered no messages")
	}
	if _, err := Qwen3().Render([]Message{{Role: "developer", Content: "x"}}, Options{}); err == nil {
		t.Fatal("an unknown role was dropped silently")
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		tpl, name string
	}{
		{"{{ '<|im_start|>' }}{{ '</think>' }}", "qwen3"},
		{"{{- bos_token }}<|start_header_id|>Cutting Knowledge Date{{ strftime_now('%d %b %Y') }}", "llama3.1"},
		{"<|start_header_id|>{% if add_generation_prompt %}{% endif %}", "llama3"},
	} {
		tpl, exact, err := Detect(tc.tpl)
		if err != nil || tpl.Name() != tc.name || exact {
			t.Errorf("%q: %v %v %v", tc.tpl, tpl, exact, err)
		}
	}
	if _, _, err := Detect("{{ messages }}"); err == nil {
		t.Error("an unknown template was accepted")
	}
}

func TestPyJSON(t *testing.T) {
	in := `{"b": 1, "a": [true, null, 2.50, "x\ty\u2028<&>é\u0001"], "e": {}, "f": []}`
	got, err := pyJSON(json.RawMessage(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"b\": 1, \"a\": [true, null, 2.50, \"x\\ty\u2028<&>é\\u0001\"], \"e\": {}, \"f\": []}"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got, err = pyJSON(json.RawMessage(`{"a": [1, {"b": 2}], "c": {}}`), 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n    \"a\": [\n        1,\n        {\n            \"b\": 2\n        }\n    ],\n    \"c\": {}\n}"; got != want {
		t.Errorf("indent: got %q", got)
	}
	if _, err := pyJSON(json.RawMessage(`{"a": }`), 0); err == nil {
		t.Error("invalid JSON accepted")
	}
}

func TestPyStrip(t *testing.T) {
	// Python's strip() removes U+001C–U+001F and U+0085 but not U+FEFF (JavaScript's trim()
	// does the opposite, which is why the golden conversations keep such characters inside).
	if got := pyStrip("\x1c\u0085 a \ufeff\u3000\n"); got != "a \ufeff" {
		t.Errorf("%q", got)
	}
	if !strings.HasPrefix(pyString("\x1f"), `"\u001f`) {
		t.Error("control characters must be escaped")
	}
}
