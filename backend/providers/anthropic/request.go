package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"opentracy/backend/providers"
)

// defaultMaxTokens is sent when the client sets no limit: Anthropic requires max_tokens.
const defaultMaxTokens = 4096

// thinkingBudget maps OpenAI's reasoning_effort to an extended-thinking budget. "minimal" gets
// Anthropic's smallest allowed budget; "none" turns thinking off.
func thinkingBudget(effort string) (int, error) {
	switch effort {
	case "", "none":
		return 0, nil
	case "minimal", "low":
		return 1024, nil
	case "medium":
		return 4096, nil
	case "high":
		return 16384, nil
	}
	return 0, fmt.Errorf("reasoning_effort %q is not supported (use minimal, low, medium or high)", effort)
}

// streamOptions is what the response side needs to remember from the request.
type streamOptions struct {
	stream       bool
	includeUsage bool
}

// toWireRequest translates an OpenAI chat-completions body into an Anthropic Messages request for
// model. Every error is the client's fault (the gateway answers 400). Fields with no Anthropic
// equivalent (logprobs, seed, presence_penalty, frequency_penalty, logit_bias, modalities, ...)
// are dropped: there is nothing to translate them into.
func toWireRequest(body []byte, model string) (*wireRequest, streamOptions, error) {
	var in chatRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, streamOptions{}, fmt.Errorf("request body is not a valid chat-completions request: %w", err)
	}
	if in.N != nil && *in.N > 1 {
		return nil, streamOptions{}, errors.New("n>1 is not supported by Anthropic")
	}
	out := &wireRequest{Model: model, Stream: in.Stream}
	if out.Model == "" {
		out.Model = in.Model
	}
	opts := streamOptions{stream: in.Stream, includeUsage: in.StreamOptions != nil && in.StreamOptions.IncludeUsage}

	if err := toWireMessages(in.Messages, out); err != nil {
		return nil, streamOptions{}, err
	}
	if instruction := responseFormatInstruction(in.ResponseFormat); instruction != "" {
		out.System = append(out.System, wireBlock{Type: "text", Text: instruction})
	}

	out.MaxTokens = defaultMaxTokens
	switch {
	case in.MaxCompletionTokens != nil && *in.MaxCompletionTokens > 0:
		out.MaxTokens = *in.MaxCompletionTokens
	case in.MaxTokens != nil && *in.MaxTokens > 0:
		out.MaxTokens = *in.MaxTokens
	}
	if in.Temperature != nil {
		// OpenAI's range is [0, 2], Anthropic's [0, 1]: clamping keeps "very random" the most
		// random Anthropic allows instead of failing the request.
		t := min(max(*in.Temperature, 0), 1)
		out.Temperature = &t
	}
	out.TopP = in.TopP

	stops, err := stopSequences(in.Stop)
	if err != nil {
		return nil, streamOptions{}, err
	}
	out.StopSequences = stops

	if err := toWireTools(&in, out); err != nil {
		return nil, streamOptions{}, err
	}
	if in.User != "" {
		out.Metadata = &wireMetadata{UserID: in.User}
	}

	budget, err := thinkingBudget(in.ReasoningEffort)
	if err != nil {
		return nil, streamOptions{}, err
	}
	if budget > 0 {
		out.Thinking = &wireThinking{Type: "enabled", BudgetTokens: budget}
		// max_tokens counts thinking too and must exceed the budget; the client's limit is kept
		// for the visible answer on top of the budget.
		if out.MaxTokens <= budget {
			out.MaxTokens += budget
		}
		// With thinking on, Anthropic rejects temperature other than 1 and top_p below 0.95.
		if out.Temperature != nil && *out.Temperature != 1 {
			out.Temperature = nil
		}
		if out.TopP != nil && *out.TopP < 0.95 {
			out.TopP = nil
		}
	}
	return out, opts, nil
}

// toWireMessages fills system and messages. System and developer messages, wherever they
// appear, become the top-level system prompt in order; tool results become tool_result blocks in
// a user turn; consecutive turns of one role merge, since Anthropic requires alternation.
func toWireMessages(msgs []chatMessage, out *wireRequest) error {
	for i, m := range msgs {
		var (
			role   string
			blocks []wireBlock
			err    error
		)
		switch m.Role {
		case "system", "developer":
			parts, err := chatParts(m.Content)
			if err != nil {
				return fmt.Errorf("messages[%d]: %w", i, err)
			}
			for _, p := range parts {
				if p.Type != "text" {
					return fmt.Errorf("messages[%d]: a %s message may only hold text, not %q", i, m.Role, p.Type)
				}
				if p.Text != "" {
					out.System = append(out.System, wireBlock{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
				}
			}
			continue
		case "user":
			role = "user"
			blocks, err = userBlocks(m.Content)
		case "assistant":
			role = "assistant"
			blocks, err = assistantBlocks(m)
		case "tool":
			role = "user"
			var b wireBlock
			b, err = toolResultBlock(m)
			blocks = []wireBlock{b}
		default:
			return fmt.Errorf("messages[%d]: role %q is not supported", i, m.Role)
		}
		if err != nil {
			return fmt.Errorf("messages[%d]: %w", i, err)
		}
		if len(blocks) == 0 {
			// Anthropic rejects empty turns; an empty message carries nothing to keep.
			continue
		}
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		out.Messages = append(out.Messages, wireMessage{Role: role, Content: blocks})
	}
	return nil
}

func userBlocks(content json.RawMessage) ([]wireBlock, error) {
	parts, err := chatParts(content)
	if err != nil {
		return nil, err
	}
	var blocks []wireBlock
	for j, p := range parts {
		b, ok, err := partBlock(p)
		if err != nil {
			return nil, fmt.Errorf("content[%d]: %w", j, err)
		}
		if ok {
			blocks = append(blocks, b)
		}
	}
	return blocks, nil
}

// partBlock converts one content part; ok is false for parts that carry nothing (empty text).
func partBlock(p chatPart) (wireBlock, bool, error) {
	switch p.Type {
	case "text":
		if p.Text == "" {
			return wireBlock{}, false, nil
		}
		return wireBlock{Type: "text", Text: p.Text, CacheControl: p.CacheControl}, true, nil
	case "image_url":
		if p.ImageURL == nil || p.ImageURL.URL == "" {
			return wireBlock{}, false, errors.New("image_url part without a url")
		}
		src, err := imageSource(p.ImageURL.URL)
		if err != nil {
			return wireBlock{}, false, err
		}
		return wireBlock{Type: "image", Source: src, CacheControl: p.CacheControl}, true, nil
	case "file":
		if p.File == nil || p.File.FileData == "" {
			return wireBlock{}, false, errors.New("file parts need file_data (file_id is not supported by Anthropic)")
		}
		mediaType, data, err := parseDataURL(p.File.FileData)
		if err != nil {
			return wireBlock{}, false, fmt.Errorf("file_data: %w", err)
		}
		return wireBlock{Type: "document", Source: &wireSource{Type: "base64", MediaType: mediaType, Data: data},
			CacheControl: p.CacheControl}, true, nil
	}
	return wireBlock{}, false, fmt.Errorf("content part type %q is not supported by Anthropic", p.Type)
}

// imageSource turns an image URL into an Anthropic source: data URLs are sent inline (base64),
// http(s) URLs by reference for Anthropic to fetch.
func imageSource(u string) (*wireSource, error) {
	if strings.HasPrefix(u, "data:") {
		mediaType, data, err := parseDataURL(u)
		if err != nil {
			return nil, fmt.Errorf("image_url: %w", err)
		}
		return &wireSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &wireSource{Type: "url", URL: u}, nil
	}
	return nil, errors.New("image_url must be a data: URL or an http(s) URL")
}

// parseDataURL splits "data:<media type>;base64,<data>".
func parseDataURL(u string) (mediaType, data string, err error) {
	meta, data, ok := strings.Cut(strings.TrimPrefix(u, "data:"), ",")
	if !ok || !strings.HasPrefix(u, "data:") {
		return "", "", errors.New("not a data: URL")
	}
	mediaType, ok = strings.CutSuffix(meta, ";base64")
	if !ok || mediaType == "" {
		return "", "", errors.New("data: URL must be base64 with a media type (data:image/png;base64,...)")
	}
	return mediaType, data, nil
}

func assistantBlocks(m chatMessage) ([]wireBlock, error) {
	parts, err := chatParts(m.Content)
	if err != nil {
		return nil, err
	}
	var blocks []wireBlock
	for _, p := range parts {
		// Refusal parts and anything else but text have no Anthropic counterpart in a turn.
		if p.Type == "text" && p.Text != "" {
			blocks = append(blocks, wireBlock{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
		}
	}
	for j, tc := range m.ToolCalls {
		input, err := toolInput(tc.Function.Arguments)
		if err != nil {
			return nil, fmt.Errorf("tool_calls[%d].function.arguments: %w", j, err)
		}
		blocks = append(blocks, wireBlock{Type: "tool_use", ID: toolID(tc.ID), Name: tc.Function.Name, Input: input})
	}
	return blocks, nil
}

// toolInput parses a tool call's arguments string into the JSON object Anthropic wants as input.
func toolInput(args string) (json.RawMessage, error) {
	args = strings.TrimSpace(args)
	if args == "" || args == "null" {
		return json.RawMessage("{}"), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(args)); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if buf.Bytes()[0] != '{' {
		return nil, errors.New("must be a JSON object")
	}
	return buf.Bytes(), nil
}

// toolID makes a tool call id acceptable to Anthropic (^[a-zA-Z0-9_-]+$). OpenAI-format upstreams
// mint ids with other characters; the same mapping applies to tool_use and tool_result, so they
// still pair.
func toolID(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, id)
}

func toolResultBlock(m chatMessage) (wireBlock, error) {
	b := wireBlock{Type: "tool_result", ToolUseID: toolID(m.ToolCallID)}
	raw := bytes.TrimSpace(m.Content)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")) || bytes.Equal(raw, []byte(`""`)):
		// No content: tool_result's content is optional.
	case raw[0] == '"':
		b.Content = raw
	default:
		blocks, err := userBlocks(raw)
		if err != nil {
			return wireBlock{}, err
		}
		if len(blocks) > 0 {
			data, err := providers.Marshal(blocks)
			if err != nil {
				return wireBlock{}, fmt.Errorf("encode tool result: %w", err)
			}
			b.Content = data
		}
	}
	return b, nil
}

// stopSequences reads OpenAI's stop: a string or an array of strings.
func stopSequences(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var list []string
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("stop: %w", err)
		}
		list = []string{s}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("stop must be a string or an array of strings: %w", err)
	}
	out := list[:0]
	for _, s := range list {
		// Anthropic rejects empty stop sequences; OpenAI ignores them.
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// toWireTools translates tools, tool_choice and parallel_tool_calls. Without tools, tool_choice is
// left out: Anthropic refuses one with no tools, and OpenAI's meaning is moot then.
func toWireTools(in *chatRequest, out *wireRequest) error {
	for i, t := range in.Tools {
		if t.Type != "function" {
			return fmt.Errorf("tools[%d]: tool type %q is not supported by Anthropic", i, t.Type)
		}
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || bytes.Equal(bytes.TrimSpace(schema), []byte("null")) {
			// Anthropic requires input_schema; OpenAI allows a function without parameters.
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, wireTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	if len(out.Tools) == 0 {
		return nil
	}
	choice, err := toolChoice(in.ToolChoice)
	if err != nil {
		return err
	}
	if in.ParallelToolCalls != nil && !*in.ParallelToolCalls {
		if choice == nil {
			choice = &wireToolChoice{Type: "auto"}
		}
		if choice.Type != "none" {
			choice.DisableParallelToolUse = true
		}
	}
	out.ToolChoice = choice
	return nil
}

func toolChoice(raw json.RawMessage) (*wireToolChoice, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("tool_choice: %w", err)
		}
		switch s {
		case "auto":
			return &wireToolChoice{Type: "auto"}, nil
		case "required":
			return &wireToolChoice{Type: "any"}, nil
		case "none":
			return &wireToolChoice{Type: "none"}, nil
		}
		return nil, fmt.Errorf("tool_choice %q is not supported (use auto, required, none or a function)", s)
	}
	var fn chatToolChoiceFunction
	if err := json.Unmarshal(raw, &fn); err != nil {
		return nil, fmt.Errorf("tool_choice: %w", err)
	}
	if fn.Type != "function" || fn.Function.Name == "" {
		return nil, errors.New(`tool_choice must name a function: {"type":"function","function":{"name":...}}`)
	}
	return &wireToolChoice{Type: "tool", Name: fn.Function.Name}, nil
}

// responseFormatInstruction is the best Anthropic can do for response_format: it has no JSON
// mode, so the request gains a system instruction (appended after the client's own) asking for
// JSON, with the schema when one is given. The answer is not validated.
func responseFormatInstruction(rf *chatResponseFormat) string {
	if rf == nil {
		return ""
	}
	switch rf.Type {
	case "json_object":
		return "Respond with a single valid JSON object and nothing else: no prose, no code fences."
	case "json_schema":
		if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
			return "Respond with a single valid JSON object and nothing else: no prose, no code fences."
		}
		var schema bytes.Buffer
		if err := json.Compact(&schema, rf.JSONSchema.Schema); err != nil {
			schema.Reset()
			schema.Write(rf.JSONSchema.Schema)
		}
		return "Respond with a single valid JSON object that conforms to this JSON schema, and nothing else: no prose, no code fences.\nSchema: " + schema.String()
	}
	return ""
}
