package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
)

// The gateway's Anthropic-format ingress (POST /anthropic/v1/messages) lets Anthropic-SDK apps
// use it. When the chosen upstream is Anthropic, Provider.Messages forwards the request as is;
// otherwise the functions here translate the request into OpenAI's format and the answer back.
// Losses in this direction: thinking blocks and the thinking setting, top_k, cache_control,
// is_error on tool results, images inside tool results, and stop_sequence in the answer (OpenAI
// does not say which stop sequence matched) have no OpenAI counterpart and are dropped. Answers
// keep the upstream's id (chatcmpl-...), and reasoning_content is not turned into thinking
// blocks, which would need a signature.

// ChatRequestFromMessages translates an Anthropic Messages request body into an OpenAI
// chat-completions body. A streaming request asks for stream_options.include_usage, so the
// answer can carry usage back. Errors mean the body is malformed or uses something with no
// OpenAI counterpart (server tools, unknown block types): the client's fault, a 400.
func ChatRequestFromMessages(body []byte) ([]byte, error) {
	var in wireRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("request body is not a valid Messages request: %w", err)
	}
	out := chatwire.Request{Model: in.Model, Messages: []chatwire.Message{}, Temperature: in.Temperature, TopP: in.TopP, Stream: in.Stream}
	if len(in.System) > 0 {
		// One string, not parts: many OpenAI-format servers only take a string system prompt.
		var texts []string
		for _, b := range in.System {
			if b.Type != "text" {
				return nil, fmt.Errorf("system: block type %q is not supported", b.Type)
			}
			texts = append(texts, b.Text)
		}
		out.Messages = append(out.Messages, chatwire.Message{Role: "system", Content: jsonString(strings.Join(texts, "\n\n"))})
	}
	for i, m := range in.Messages {
		var (
			msgs []chatwire.Message
			err  error
		)
		switch m.Role {
		case "user":
			msgs, err = chatUserMessages(m.Content)
		case "assistant":
			msgs, err = chatAssistantMessage(m.Content)
		default:
			err = fmt.Errorf("role %q is not supported", m.Role)
		}
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		out.Messages = append(out.Messages, msgs...)
	}
	if in.MaxTokens > 0 {
		// max_completion_tokens is the current field (OpenAI's reasoning models refuse max_tokens);
		// the OpenAI adapter rewrites it for upstreams that only know max_tokens.
		n := in.MaxTokens
		out.MaxCompletionTokens = &n
	}
	if len(in.StopSequences) > 0 {
		stop, err := json.Marshal(in.StopSequences)
		if err != nil {
			return nil, fmt.Errorf("encode stop: %w", err)
		}
		out.Stop = stop
	}
	for i, t := range in.Tools {
		if t.Type != "" && t.Type != "custom" {
			return nil, fmt.Errorf("tools[%d]: server tool %q cannot be sent to a chat-completions upstream", i, t.Type)
		}
		var ct chatwire.Tool
		ct.Type = "function"
		ct.Function.Name, ct.Function.Description, ct.Function.Parameters = t.Name, t.Description, t.InputSchema
		out.Tools = append(out.Tools, ct)
	}
	if tc := in.ToolChoice; tc != nil {
		choice, err := chatToolChoice(tc)
		if err != nil {
			return nil, err
		}
		out.ToolChoice = choice
		if tc.DisableParallelToolUse {
			f := false
			out.ParallelToolCalls = &f
		}
	}
	if in.Metadata != nil {
		out.User = in.Metadata.UserID
	}
	if in.Stream {
		out.StreamOptions = &chatwire.StreamOptions{IncludeUsage: true}
	}
	return providers.Marshal(out)
}

func jsonString(s string) json.RawMessage {
	data, _ := providers.Marshal(s) // a string always encodes
	return data
}

// chatUserMessages splits a user turn: its tool_result blocks become tool messages (first, as
// OpenAI wants them right after the assistant's tool calls), the rest one user message.
func chatUserMessages(content wireContent) ([]chatwire.Message, error) {
	var (
		msgs  []chatwire.Message
		parts []chatwire.Part
	)
	for j, b := range content {
		switch b.Type {
		case "tool_result":
			text, err := toolResultContent(b.Content)
			if err != nil {
				return nil, fmt.Errorf("content[%d]: %w", j, err)
			}
			msgs = append(msgs, chatwire.Message{Role: "tool", ToolCallID: b.ToolUseID, Content: text})
		case "text":
			parts = append(parts, chatwire.Part{Type: "text", Text: b.Text})
		case "image":
			u, err := imageURL(b.Source)
			if err != nil {
				return nil, fmt.Errorf("content[%d]: %w", j, err)
			}
			parts = append(parts, chatwire.Part{Type: "image_url", ImageURL: &chatwire.ImageURL{URL: u}})
		case "document":
			p, err := documentPart(b.Source)
			if err != nil {
				return nil, fmt.Errorf("content[%d]: %w", j, err)
			}
			parts = append(parts, p)
		default:
			return nil, fmt.Errorf("content[%d]: block type %q is not supported in a user turn", j, b.Type)
		}
	}
	if len(parts) > 0 {
		c, err := chatContent(parts)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, chatwire.Message{Role: "user", Content: c})
	}
	return msgs, nil
}

// chatContent is a single text as a plain string (what every OpenAI-format server takes), else
// the parts.
func chatContent(parts []chatwire.Part) (json.RawMessage, error) {
	if len(parts) == 1 && parts[0].Type == "text" {
		return jsonString(parts[0].Text), nil
	}
	data, err := providers.Marshal(parts)
	if err != nil {
		return nil, fmt.Errorf("encode content: %w", err)
	}
	return data, nil
}

// toolResultContent keeps a string as is and the text blocks of a block list; OpenAI tool
// messages hold text only.
func toolResultContent(raw json.RawMessage) (json.RawMessage, error) {
	var blocks wireContent
	if err := json.Unmarshal(orNull(raw), &blocks); err != nil {
		return nil, fmt.Errorf("tool_result content: %w", err)
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '"' {
		return t, nil
	}
	var parts []chatwire.Part
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, chatwire.Part{Type: "text", Text: b.Text})
		}
	}
	if len(parts) == 0 {
		return jsonString(""), nil
	}
	data, err := providers.Marshal(parts)
	if err != nil {
		return nil, fmt.Errorf("encode tool_result content: %w", err)
	}
	return data, nil
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func imageURL(src *wireSource) (string, error) {
	switch {
	case src == nil:
		return "", errors.New("image without a source")
	case src.Type == "base64":
		return "data:" + src.MediaType + ";base64," + src.Data, nil
	case src.Type == "url":
		return src.URL, nil
	}
	return "", fmt.Errorf("image source type %q is not supported", src.Type)
}

func documentPart(src *wireSource) (chatwire.Part, error) {
	switch {
	case src == nil:
		return chatwire.Part{}, errors.New("document without a source")
	case src.Type == "base64":
		name := "document"
		if src.MediaType == "application/pdf" {
			name += ".pdf"
		}
		return chatwire.Part{Type: "file", File: &chatwire.File{FileData: "data:" + src.MediaType + ";base64," + src.Data, Filename: name}}, nil
	case src.Type == "text":
		return chatwire.Part{Type: "text", Text: src.Data}, nil
	}
	return chatwire.Part{}, fmt.Errorf("document source type %q is not supported", src.Type)
}

func chatAssistantMessage(content wireContent) ([]chatwire.Message, error) {
	msg := chatwire.Message{Role: "assistant"}
	var parts []chatwire.Part
	for j, b := range content {
		switch b.Type {
		case "text":
			parts = append(parts, chatwire.Part{Type: "text", Text: b.Text})
		case "tool_use":
			args, err := compactJSON(b.Input)
			if err != nil {
				return nil, fmt.Errorf("content[%d]: tool_use input: %w", j, err)
			}
			msg.ToolCalls = append(msg.ToolCalls, chatwire.ToolCall{ID: b.ID, Type: "function", Function: chatwire.Function{Name: b.Name, Arguments: args}})
		case "thinking", "redacted_thinking":
			// Signed reasoning only Anthropic can read back.
		default:
			return nil, fmt.Errorf("content[%d]: block type %q is not supported in an assistant turn", j, b.Type)
		}
	}
	if len(parts) > 0 {
		c, err := chatContent(parts)
		if err != nil {
			return nil, err
		}
		msg.Content = c
	}
	if msg.Content == nil && len(msg.ToolCalls) == 0 {
		return nil, nil
	}
	return []chatwire.Message{msg}, nil
}

func chatToolChoice(tc *wireToolChoice) (json.RawMessage, error) {
	switch tc.Type {
	case "auto":
		return jsonString("auto"), nil
	case "any":
		return jsonString("required"), nil
	case "none":
		return jsonString("none"), nil
	case "tool":
		var fn chatwire.ToolChoiceFunction
		fn.Type, fn.Function.Name = "function", tc.Name
		data, err := providers.Marshal(fn)
		if err != nil {
			return nil, fmt.Errorf("encode tool_choice: %w", err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("tool_choice type %q is not supported", tc.Type)
}

// chatCompletionIn is an OpenAI chat.completion as read back from an upstream.
type chatCompletionIn struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Message      chatwire.Message `json:"message"`
		FinishReason string           `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatwire.Usage `json:"usage"`
}

// MessagesResponseFromChat translates an OpenAI chat.completion body into an Anthropic message
// body. model is the name to report (the one the client asked for); empty keeps the upstream's.
func MessagesResponseFromChat(body []byte, model string) ([]byte, error) {
	var in chatCompletionIn
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("decode chat completion: %w", err)
	}
	if len(in.Choices) == 0 {
		return nil, errors.New("chat completion has no choices")
	}
	if model == "" {
		model = in.Model
	}
	choice := in.Choices[0]
	out := wireResponse{ID: in.ID, Type: "message", Role: "assistant", Model: model, Content: []wireBlock{}}
	parts, err := chatwire.Parts(choice.Message.Content)
	if err != nil {
		return nil, fmt.Errorf("choices[0].message: %w", err)
	}
	for _, p := range parts {
		if p.Type == "text" && p.Text != "" {
			out.Content = append(out.Content, wireBlock{Type: "text", Text: p.Text})
		}
	}
	for j, tc := range choice.Message.ToolCalls {
		input, err := chatwire.ToolInput(tc.Function.Arguments)
		if err != nil {
			return nil, fmt.Errorf("choices[0].message.tool_calls[%d].function.arguments: %w", j, err)
		}
		out.Content = append(out.Content, wireBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	stop := stopReason(choice.FinishReason)
	out.StopReason = &stop
	if in.Usage != nil {
		out.Usage = wireUsageFrom(*in.Usage)
	}
	return providers.Marshal(out)
}

// stopReason maps OpenAI's finish_reason to Anthropic's stop_reason.
func stopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	return "end_turn"
}

// wireUsageFrom is chatUsageFrom reversed: Anthropic's input_tokens excludes cached input.
func wireUsageFrom(u chatwire.Usage) wireUsage {
	out := wireUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if d := u.PromptTokensDetails; d != nil {
		out.CacheReadInputTokens, out.CacheCreationInputTokens = d.CachedTokens, d.CacheCreationTokens
		out.InputTokens = max(0, u.PromptTokens-d.CachedTokens-d.CacheCreationTokens)
	}
	return out
}

// ErrorFromOpenAI turns an OpenAI-shaped error body (or any error body) with its HTTP status into
// Anthropic's {"type":"error","error":{"type","message"}}. Status 0 (a mid-stream error) maps by
// the OpenAI error type instead.
func ErrorFromOpenAI(status int, body []byte) []byte {
	message, errType, code := openAIErrorFields(body)
	if message == "" {
		message = chatwire.UpstreamText(status, body)
	}
	return anthropicError(anthropicErrorType(status, errType+"/"+code), message)
}

// openAIErrorFields reads {"error":{"message","type","code"}}, and the looser {"error":"..."} and
// {"message":"..."} some OpenAI-format servers send.
func openAIErrorFields(body []byte) (message, errType, code string) {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", "", ""
	}
	var obj chatwire.Error
	if json.Unmarshal(e.Error, &obj) == nil && obj.Message != "" {
		c, _ := obj.Code.(string)
		return obj.Message, obj.Type, c
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil && s != "" {
		return s, "", ""
	}
	return e.Message, "", ""
}

// anthropicErrorType maps an HTTP status, else an OpenAI "type/code", to an Anthropic error type.
func anthropicErrorType(status int, typeCode string) string {
	switch {
	case status == http.StatusBadRequest:
		return "invalid_request_error"
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusPaymentRequired:
		return "billing_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusGatewayTimeout:
		return "timeout_error"
	case status == http.StatusServiceUnavailable || status == 529:
		return "overloaded_error"
	case status >= 500:
		return "api_error"
	case status >= 400:
		return "invalid_request_error"
	}
	errType, code, _ := strings.Cut(typeCode, "/")
	switch {
	case code == "rate_limit_exceeded" || errType == "rate_limit_error" || errType == "tokens" || errType == "requests":
		return "rate_limit_error"
	case code == "overloaded":
		return "overloaded_error"
	case code == "timeout":
		return "timeout_error"
	case code == "request_too_large":
		return "request_too_large"
	case code == "insufficient_quota" || errType == "insufficient_quota":
		return "billing_error"
	case errType == "invalid_request_error" || errType == "authentication_error" ||
		errType == "permission_error" || errType == "not_found_error":
		return errType
	}
	return "api_error"
}

// MessagesStreamFromChat turns an OpenAI chat.completion.chunk stream into an Anthropic Messages
// event stream, byte for byte in Anthropic's framing (event: X\ndata: {json}\n\n). model is the
// name to report; empty keeps the upstream's. Closing it closes chat. Usage reaches the final
// message_delta only when the upstream sent it (ChatRequestFromMessages asks for it).
func MessagesStreamFromChat(chat io.ReadCloser, model string) io.ReadCloser {
	return newSSETransform(chat, &messagesStreamHandler{model: model, tools: map[int]int{}})
}

// chatChunkIn is one chat.completion.chunk as read from an upstream, or its error event.
type chatChunkIn struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content   string                   `json:"content"`
			ToolCalls []chatwire.ChunkToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatwire.Usage `json:"usage"`
	Error json.RawMessage `json:"error"`
}

type messagesStreamHandler struct {
	model      string
	id         string
	started    bool
	next       int    // index of the next content block
	open       int    // index of the open block, or -1 when none (valid once started)
	openKind   string // "text" or "tool_use"
	tools      map[int]int
	stopReason string
	usage      wireUsage
}

// Anthropic stream event bodies, fields in the order Anthropic sends them.
type (
	msgStartEvent struct {
		Type    string       `json:"type"`
		Message wireResponse `json:"message"`
	}
	blockStartEvent struct {
		Type         string `json:"type"`
		Index        int    `json:"index"`
		ContentBlock any    `json:"content_block"`
	}
	textBlockStart struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	toolBlockStart struct {
		Type  string          `json:"type"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
	blockDeltaEvent struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
		Delta any    `json:"delta"`
	}
	textDelta struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	jsonDelta struct {
		Type        string `json:"type"`
		PartialJSON string `json:"partial_json"`
	}
	blockStopEvent struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}
	msgDeltaEvent struct {
		Type  string `json:"type"`
		Delta struct {
			StopReason   string  `json:"stop_reason"`
			StopSequence *string `json:"stop_sequence"`
		} `json:"delta"`
		Usage wireUsage `json:"usage"`
	}
	typeOnlyEvent struct {
		Type string `json:"type"`
	}
)

func (h *messagesStreamHandler) event(ev sseEvent, out *bytes.Buffer) (bool, error) {
	if string(bytes.TrimSpace(ev.data)) == "[DONE]" {
		return true, h.finish(out)
	}
	var c chatChunkIn
	if err := json.Unmarshal(ev.data, &c); err != nil {
		return true, fmt.Errorf("decode chat stream chunk: %w", err)
	}
	if len(c.Error) > 0 && !bytes.Equal(c.Error, []byte("null")) {
		// A failure after the 200: Anthropic clients raise an error event.
		return true, writeEvent(out, "error", json.RawMessage(ErrorFromOpenAI(0, ev.data)))
	}
	if h.id == "" {
		h.id = c.ID
	}
	if h.model == "" {
		h.model = c.Model
	}
	if err := h.start(out); err != nil {
		return true, err
	}
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue // Anthropic has one answer; n>1 is not asked for
		}
		if ch.Delta.Content != "" {
			if err := h.text(out, ch.Delta.Content); err != nil {
				return true, err
			}
		}
		for _, tc := range ch.Delta.ToolCalls {
			if err := h.tool(out, tc); err != nil {
				return true, err
			}
		}
		if ch.FinishReason != "" {
			h.stopReason = stopReason(ch.FinishReason)
		}
	}
	if c.Usage != nil {
		h.usage = wireUsageFrom(*c.Usage)
	}
	return false, nil
}

// end accepts an upstream that closes without [DONE] once it has said why it stopped.
func (h *messagesStreamHandler) end(out *bytes.Buffer) error {
	if h.stopReason == "" {
		return fmt.Errorf("chat stream ended before a finish_reason: %w", io.ErrUnexpectedEOF)
	}
	return h.finish(out)
}

func (h *messagesStreamHandler) start(out *bytes.Buffer) error {
	if h.started {
		return nil
	}
	h.started, h.open = true, -1
	return writeEvent(out, "message_start", msgStartEvent{Type: "message_start", Message: wireResponse{
		ID: h.id, Type: "message", Role: "assistant", Model: h.model, Content: []wireBlock{},
	}})
}

func (h *messagesStreamHandler) text(out *bytes.Buffer, s string) error {
	if h.open < 0 || h.openKind != "text" {
		if err := h.openBlock(out, "text", textBlockStart{Type: "text"}); err != nil {
			return err
		}
	}
	return writeEvent(out, "content_block_delta", blockDeltaEvent{Type: "content_block_delta", Index: h.open,
		Delta: textDelta{Type: "text_delta", Text: s}})
}

// tool handles one tool-call delta. OpenAI streams each call's id and name first, then its
// arguments; calls are told apart by index (by order of ids when an upstream omits index).
func (h *messagesStreamHandler) tool(out *bytes.Buffer, tc chatwire.ChunkToolCall) error {
	key := -1
	switch {
	case tc.Index != nil:
		key = *tc.Index
	case tc.ID != "":
		key = len(h.tools)
	default:
		for k, b := range h.tools {
			if b == h.open {
				key = k
			}
		}
	}
	block, ok := h.tools[key]
	if !ok {
		id := tc.ID
		if id == "" {
			id = fmt.Sprintf("toolu_%d", key)
		}
		if err := h.openBlock(out, "tool_use", toolBlockStart{Type: "tool_use", ID: id, Name: tc.Function.Name,
			Input: json.RawMessage("{}")}); err != nil {
			return err
		}
		block = h.open
		h.tools[key] = block
	}
	if tc.Function.Arguments == "" {
		return nil
	}
	// Arguments for a call whose block is already closed (interleaved calls, rare) still go to
	// that block's index: clients accumulate by index.
	return writeEvent(out, "content_block_delta", blockDeltaEvent{Type: "content_block_delta", Index: block,
		Delta: jsonDelta{Type: "input_json_delta", PartialJSON: tc.Function.Arguments}})
}

func (h *messagesStreamHandler) openBlock(out *bytes.Buffer, kind string, start any) error {
	if err := h.closeBlock(out); err != nil {
		return err
	}
	h.open, h.openKind = h.next, kind
	h.next++
	return writeEvent(out, "content_block_start", blockStartEvent{Type: "content_block_start", Index: h.open, ContentBlock: start})
}

func (h *messagesStreamHandler) closeBlock(out *bytes.Buffer) error {
	if h.open < 0 {
		return nil
	}
	i := h.open
	h.open, h.openKind = -1, ""
	return writeEvent(out, "content_block_stop", blockStopEvent{Type: "content_block_stop", Index: i})
}

func (h *messagesStreamHandler) finish(out *bytes.Buffer) error {
	if err := h.start(out); err != nil {
		return err
	}
	if err := h.closeBlock(out); err != nil {
		return err
	}
	md := msgDeltaEvent{Type: "message_delta", Usage: h.usage}
	md.Delta.StopReason = h.stopReason
	if md.Delta.StopReason == "" {
		md.Delta.StopReason = "end_turn"
	}
	if err := writeEvent(out, "message_delta", md); err != nil {
		return err
	}
	return writeEvent(out, "message_stop", typeOnlyEvent{Type: "message_stop"})
}

// writeEvent writes one event in Anthropic's framing.
func writeEvent(out *bytes.Buffer, name string, v any) error {
	data, err := providers.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", name, err)
	}
	out.WriteString("event: ")
	out.WriteString(name)
	out.WriteString("\ndata: ")
	out.Write(data)
	out.WriteString("\n\n")
	return nil
}
