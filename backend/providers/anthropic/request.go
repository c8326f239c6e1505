package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
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
	var in chatwire.Request
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
	if instruction := chatwire.ResponseFormatInstruction(in.ResponseFormat); instruction != "" {
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

	stops, err := chatwire.StopSequences(in.Stop)
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

// toWireMessages fills system and messages: system and developer text becomes the top-level
// system prompt, tool results tool_result blocks in a user turn, and turns alternate, as
// Anthropic requires (chatwire.Turns).
func toWireMessages(msgs []chatwire.Message, out *wireRequest) error {
	turns, err := chatwire.Turns(msgs, chatwire.TurnBlocks[wireBlock]{
		System: func(p chatwire.Part) {
			if p.Text != "" {
				out.System = append(out.System, wireBlock{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
			}
		},
		User:       userBlocks,
		Assistant:  assistantBlocks,
		ToolResult: toolResultBlock,
	})
	if err != nil {
		return err
	}
	for _, t := range turns {
		out.Messages = append(out.Messages, wireMessage{Role: t.Role, Content: t.Blocks})
	}
	return nil
}

func userBlocks(content json.RawMessage) ([]wireBlock, error) {
	parts, err := chatwire.Parts(content)
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
func partBlock(p chatwire.Part) (wireBlock, bool, error) {
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
		mediaType, data, err := chatwire.ParseDataURL(p.File.FileData)
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
		mediaType, data, err := chatwire.ParseDataURL(u)
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

func assistantBlocks(m chatwire.Message) ([]wireBlock, error) {
	parts, err := chatwire.Parts(m.Content)
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
		input, err := chatwire.ToolInput(tc.Function.Arguments)
		if err != nil {
			return nil, fmt.Errorf("tool_calls[%d].function.arguments: %w", j, err)
		}
		blocks = append(blocks, wireBlock{Type: "tool_use", ID: chatwire.ToolID(tc.ID), Name: tc.Function.Name, Input: input})
	}
	return blocks, nil
}

func toolResultBlock(m chatwire.Message) (wireBlock, error) {
	b := wireBlock{Type: "tool_result", ToolUseID: chatwire.ToolID(m.ToolCallID)}
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

// toWireTools translates tools, tool_choice and parallel_tool_calls. Without tools, tool_choice is
// left out: Anthropic refuses one with no tools, and OpenAI's meaning is moot then.
func toWireTools(in *chatwire.Request, out *wireRequest) error {
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
	mode, name, err := chatwire.ParseToolChoice(raw)
	switch mode {
	case "":
		return nil, err
	case "required":
		return &wireToolChoice{Type: "any"}, nil
	case "function":
		return &wireToolChoice{Type: "tool", Name: name}, nil
	}
	return &wireToolChoice{Type: mode}, nil // auto and none are spelled alike
}
