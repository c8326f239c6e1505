package chat

import (
	"fmt"
	"strings"
)

// Qwen3 is the template of the Qwen3 models (hybrid thinking): ChatML turns, tools listed in the
// system turn, tool calls as <tool_call> blocks, tool results as <tool_response> blocks in a user
// turn, and the thinking of assistant turns kept only after the last user query.
func Qwen3() Template { return qwen3{} }

type qwen3 struct{}

func (qwen3) Name() string { return "qwen3" }

func (qwen3) Render(msgs []Message, opts Options) (string, error) {
	if len(msgs) == 0 {
		return "", fmt.Errorf("chat: qwen3: no messages")
	}
	var b strings.Builder
	if len(opts.Tools) > 0 {
		b.WriteString("<|im_start|>system\n")
		if msgs[0].Role == "system" {
			b.WriteString(msgs[0].Content + "\n\n")
		}
		b.WriteString("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
			"You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
		for _, tool := range opts.Tools {
			js, err := pyJSON(tool, 0)
			if err != nil {
				return "", fmt.Errorf("chat: qwen3: tool: %w", err)
			}
			b.WriteString("\n" + js)
		}
		b.WriteString("\n</tools>\n\nFor each function call, return a json object with function name and " +
			"arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n" +
			"{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n")
	} else if msgs[0].Role == "system" {
		b.WriteString("<|im_start|>system\n" + msgs[0].Content + "<|im_end|>\n")
	}

	// The last user turn that is a real query, not tool output: thinking is shown for the
	// assistant turns after it and dropped before it.
	lastQuery := len(msgs) - 1
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Role == "user" && !(strings.HasPrefix(m.Content, "<tool_response>") && strings.HasSuffix(m.Content, "</tool_response>")) {
			lastQuery = i
			break
		}
	}

	for i, m := range msgs {
		switch {
		case m.Role == "user" || (m.Role == "system" && i > 0):
			b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		case m.Role == "system":
			// the first message, written above
		case m.Role == "assistant":
			content, reasoning := m.Content, ""
			if m.ReasoningContent != nil {
				reasoning = *m.ReasoningContent
			} else if strings.Contains(m.Content, "</think>") {
				content = strings.TrimLeft(lastAfter(m.Content, "</think>"), "\n")
				before, _, _ := strings.Cut(m.Content, "</think>")
				reasoning = strings.TrimLeft(lastAfter(strings.TrimRight(before, "\n"), "<think>"), "\n")
			}
			if i > lastQuery && (i == len(msgs)-1 || reasoning != "") {
				b.WriteString("<|im_start|>" + m.Role + "\n<think>\n" + strings.Trim(reasoning, "\n") +
					"\n</think>\n\n" + strings.TrimLeft(content, "\n"))
			} else {
				b.WriteString("<|im_start|>" + m.Role + "\n" + content)
			}
			for j, tc := range m.ToolCalls {
				if (j == 0 && content != "") || j > 0 {
					b.WriteString("\n")
				}
				args, err := qwenArguments(tc.Function.Arguments)
				if err != nil {
					return "", fmt.Errorf("chat: qwen3: message %d: tool call %q: %w", i, tc.Function.Name, err)
				}
				b.WriteString("<tool_call>\n{\"name\": \"" + tc.Function.Name + "\", \"arguments\": " + args + "}\n</tool_call>")
			}
			b.WriteString("<|im_end|>\n")
		case m.Role == "tool":
			if i == 0 || msgs[i-1].Role != "tool" {
				b.WriteString("<|im_start|>user")
			}
			b.WriteString("\n<tool_response>\n" + m.Content + "\n</tool_response>")
			if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
				b.WriteString("<|im_end|>\n")
			}
		default:
			return "", errRole("qwen3", i, m.Role)
		}
	}
	if opts.AddGenerationPrompt {
		b.WriteString("<|im_start|>assistant\n")
		if opts.EnableThinking != nil && !*opts.EnableThinking {
			b.WriteString("<think>\n\n</think>\n\n")
		}
	}
	return b.String(), nil
}

// lastAfter is Python's s.split(sep)[-1].
func lastAfter(s, sep string) string {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return s
}

// qwenArguments writes a string as is (the template's "arguments is string" branch) and
// serializes anything else with tojson.
func qwenArguments(raw []byte) (string, error) {
	if len(raw) == 0 {
		return "", fmt.Errorf("no arguments")
	}
	if s, ok, err := jsonString(raw); ok || err != nil {
		return s, err
	}
	return pyJSON(raw, 0)
}
