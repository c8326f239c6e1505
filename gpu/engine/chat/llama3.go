package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Llama3 is the Meta-Llama-3 Instruct template: <|begin_of_text|>, then per turn
// "<|start_header_id|>role<|end_header_id|>\n\n" + trimmed content + "<|eot_id|>". It has no
// tool support and no default system turn.
func Llama3() Template { return &llama3{} }

type llama3 struct {
	// alwaysPrompt: the first revision of the template appends the assistant header whether or
	// not add_generation_prompt is set.
	alwaysPrompt bool
}

func (*llama3) Name() string { return "llama3" }

func (t *llama3) Render(msgs []Message, opts Options) (string, error) {
	if len(opts.Tools) > 0 {
		return "", fmt.Errorf("chat: llama3: the Llama 3 template has no tools (Llama 3.1 and later do)")
	}
	var b strings.Builder
	for i, m := range msgs {
		if len(m.ToolCalls) > 0 {
			return "", fmt.Errorf("chat: llama3: message %d: the Llama 3 template has no tool calls", i)
		}
		if i == 0 {
			b.WriteString(bosToken)
		}
		writeLlamaTurn(&b, m.Role, pyStrip(m.Content))
	}
	if opts.AddGenerationPrompt || t.alwaysPrompt {
		b.WriteString(llamaHeader("assistant"))
	}
	return b.String(), nil
}

const (
	bosToken = "<|begin_of_text|>"
	eotToken = "<|eot_id|>"
)

func llamaHeader(role string) string { return "<|start_header_id|>" + role + "<|end_header_id|>\n\n" }

func writeLlamaTurn(b *strings.Builder, role, content string) {
	b.WriteString(llamaHeader(role) + content + eotToken)
}

// Llama31 is the template of Llama 3.1, 3.2 and 3.3 Instruct: a system turn that always exists
// (with "Cutting Knowledge Date: December 2023" and "Today Date: …", plus "Environment: ipython"
// when tools are given), tool definitions in the first user turn (or the system turn), a tool
// call as an assistant turn holding {"name": …, "parameters": …}, and tool results as ipython
// turns. Llama 3.1's built-in tools (brave_search, wolfram_alpha, code_interpreter through
// <|python_tag|> and <|eom_id|>) are not covered: they need the builtin_tools variable, which
// OpenAI-style requests cannot express.
func Llama31() Template { return &llama31{} }

type llama31 struct {
	// todayByDefault: Llama 3.2 and 3.3 templates default the date to today (strftime_now)
	// where 3.1 has a fixed "26 Jul 2024".
	todayByDefault bool
}

func (*llama31) Name() string { return "llama3.1" }

func (t *llama31) Render(msgs []Message, opts Options) (string, error) {
	date := opts.DateString
	if date == "" {
		date = "26 Jul 2024"
		if t.todayByDefault {
			date = time.Now().Format("02 Jan 2006")
		}
	}
	hasTools := opts.Tools != nil
	var tools []string
	for _, tool := range opts.Tools {
		js, err := pyJSON(tool, 4)
		if err != nil {
			return "", fmt.Errorf("chat: llama3.1: tool: %w", err)
		}
		tools = append(tools, js)
	}

	system := ""
	if len(msgs) > 0 && msgs[0].Role == "system" {
		system = pyStrip(msgs[0].Content)
		msgs = msgs[1:]
	}
	var b strings.Builder
	b.WriteString(bosToken + llamaHeader("system"))
	if hasTools {
		b.WriteString("Environment: ipython\n")
	}
	b.WriteString("Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n")
	const toolFormat = `Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.` +
		"Do not use variables.\n\n"
	if hasTools && opts.ToolsInSystemMessage {
		b.WriteString("You have access to the following functions. To call a function, please respond with JSON for a function call.")
		b.WriteString(toolFormat)
		for _, js := range tools {
			b.WriteString(js + "\n\n")
		}
	}
	b.WriteString(system + eotToken)

	if hasTools && !opts.ToolsInSystemMessage {
		if len(msgs) == 0 {
			return "", fmt.Errorf("chat: llama3.1: cannot put tools in the first user message when there's no first user message")
		}
		first := pyStrip(msgs[0].Content)
		msgs = msgs[1:]
		b.WriteString(llamaHeader("user"))
		b.WriteString("Given the following functions, please respond with a JSON for a function call " +
			"with its proper arguments that best answers the given prompt.\n\n")
		b.WriteString(toolFormat)
		for _, js := range tools {
			b.WriteString(js + "\n\n")
		}
		b.WriteString(first + eotToken)
	}

	for i, m := range msgs {
		switch {
		case len(m.ToolCalls) > 0:
			if len(m.ToolCalls) != 1 {
				return "", fmt.Errorf("chat: llama3.1: this model only supports single tool-calls at once")
			}
			tc := m.ToolCalls[0].Function
			args, err := llamaArguments(tc.Arguments)
			if err != nil {
				return "", fmt.Errorf("chat: llama3.1: tool call %q: %w", tc.Name, err)
			}
			b.WriteString(llamaHeader("assistant") + `{"name": "` + tc.Name + `", "parameters": ` + args + "}" + eotToken)
		case m.Role == "tool" || m.Role == "ipython":
			// A string is iterable in Jinja, so the template's tojson branch applies to plain text
			// too: tool results appear as JSON strings, quotes and all.
			b.WriteString(llamaHeader("ipython") + pyString(m.Content) + eotToken)
		case m.Role == "system" || m.Role == "user" || m.Role == "assistant":
			writeLlamaTurn(&b, m.Role, pyStrip(m.Content))
		default:
			return "", errRole("llama3.1", i, m.Role)
		}
	}
	if opts.AddGenerationPrompt {
		b.WriteString(llamaHeader("assistant"))
	}
	return b.String(), nil
}

// llamaArguments is tojson of the arguments. The template expects a mapping; OpenAI-style
// arguments arrive as a string of JSON text, which is parsed first (as serving stacks do before
// rendering), so that the model sees the object it was trained on rather than a quoted string.
func llamaArguments(raw []byte) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "{}", nil
	}
	if s, ok, err := jsonString(raw); err != nil {
		return "", err
	} else if ok {
		if !json.Valid([]byte(s)) {
			return "", fmt.Errorf("arguments %q are not JSON", s)
		}
		raw = []byte(s)
	}
	return pyJSON(raw, 0)
}

// jsonString decodes raw when it is a JSON string; ok is false for any other JSON value.
func jsonString(raw []byte) (s string, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("arguments: %w", err)
	}
	return s, true, nil
}
