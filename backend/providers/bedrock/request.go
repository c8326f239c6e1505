package bedrock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"opentracy/backend/providers/chatwire"
)

// streamOptions is what the response side needs to remember from the request.
type streamOptions struct {
	stream       bool
	includeUsage bool
}

// toConverse translates an OpenAI chat-completions body into a Converse request. Every error is
// the client's fault (the gateway answers 400). Fields with no Converse counterpart are dropped;
// the package comment lists them.
func toConverse(body []byte) (*converseRequest, streamOptions, error) {
	var in chatwire.Request
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, streamOptions{}, fmt.Errorf("request body is not a valid chat-completions request: %w", err)
	}
	if in.N != nil && *in.N > 1 {
		return nil, streamOptions{}, errors.New("n>1 is not supported by Bedrock")
	}
	opts := streamOptions{stream: in.Stream, includeUsage: in.StreamOptions != nil && in.StreamOptions.IncludeUsage}

	out := &converseRequest{}
	t := translator{names: map[string]bool{}}
	if err := t.messages(in.Messages, out); err != nil {
		return nil, streamOptions{}, err
	}
	if instruction := chatwire.ResponseFormatInstruction(in.ResponseFormat); instruction != "" {
		out.System = append(out.System, textBlock(instruction))
	}

	var ic inferenceConfig
	switch {
	case in.MaxCompletionTokens != nil && *in.MaxCompletionTokens > 0:
		ic.MaxTokens = in.MaxCompletionTokens
	case in.MaxTokens != nil && *in.MaxTokens > 0:
		ic.MaxTokens = in.MaxTokens
	}
	// Passed through unclamped: the valid range depends on the model behind Bedrock.
	ic.Temperature, ic.TopP = in.Temperature, in.TopP
	stops, err := chatwire.StopSequences(in.Stop)
	if err != nil {
		return nil, streamOptions{}, err
	}
	ic.StopSequences = stops
	if ic.MaxTokens != nil || ic.Temperature != nil || ic.TopP != nil || len(ic.StopSequences) > 0 {
		out.InferenceConfig = &ic
	}

	tc, err := toToolConfig(&in)
	if err != nil {
		return nil, streamOptions{}, err
	}
	out.ToolConfig = tc
	return out, opts, nil
}

// translator holds what the message translation remembers across messages: the document names
// used so far, since Bedrock wants each document in a request named differently.
type translator struct {
	names map[string]bool
}

// messages fills system and messages: system and developer text becomes the system blocks,
// tool results toolResult blocks in a user turn, and turns alternate, as Converse requires
// (chatwire.Turns).
func (t *translator) messages(msgs []chatwire.Message, out *converseRequest) error {
	turns, err := chatwire.Turns(msgs, chatwire.TurnBlocks[block]{
		System:     func(p chatwire.Part) { out.System = appendText(out.System, p) },
		User:       func(content json.RawMessage) ([]block, error) { return t.userBlocks(content, true) },
		Assistant:  assistantBlocks,
		ToolResult: t.toolResultBlock,
	})
	if err != nil {
		return err
	}
	for _, turn := range turns {
		out.Messages = append(out.Messages, message{Role: turn.Role, Content: turn.Blocks})
	}
	return nil
}

// appendText adds a non-empty text part, and after it a cache point when the part asks for
// caching: cache_control is how OpenAI-format clients mark prompt-cache breakpoints.
func appendText(blocks []block, p chatwire.Part) []block {
	if p.Text == "" {
		return blocks
	}
	return withCachePoint(append(blocks, textBlock(p.Text)), p)
}

func withCachePoint(blocks []block, p chatwire.Part) []block {
	if len(bytes.TrimSpace(p.CacheControl)) == 0 || bytes.Equal(bytes.TrimSpace(p.CacheControl), []byte("null")) {
		return blocks
	}
	return append(blocks, block{CachePoint: &cachePoint{Type: "default"}})
}

// userBlocks converts user content; cachePoints is false inside a tool result, where Bedrock
// allows no cache point.
func (t *translator) userBlocks(content json.RawMessage, cachePoints bool) ([]block, error) {
	parts, err := chatwire.Parts(content)
	if err != nil {
		return nil, err
	}
	var blocks []block
	for j, p := range parts {
		var b block
		switch p.Type {
		case "text":
			if p.Text == "" {
				continue
			}
			b = textBlock(p.Text)
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, fmt.Errorf("content[%d]: image_url part without a url", j)
			}
			img, err := imageBlock(p.ImageURL.URL)
			if err != nil {
				return nil, fmt.Errorf("content[%d]: %w", j, err)
			}
			b = block{Image: img}
		case "file":
			doc, err := t.documentBlock(p.File)
			if err != nil {
				return nil, fmt.Errorf("content[%d]: %w", j, err)
			}
			b = block{Document: doc}
		default:
			return nil, fmt.Errorf("content[%d]: content part type %q is not supported by Bedrock", j, p.Type)
		}
		blocks = append(blocks, b)
		if cachePoints {
			blocks = withCachePoint(blocks, p)
		}
	}
	return blocks, nil
}

// imageFormat maps an image media type to Converse's image format ("" when unsupported).
func imageFormat(mediaType string) string {
	switch strings.ToLower(mediaType) {
	case "image/png":
		return "png"
	case "image/jpeg", "image/jpg":
		return "jpeg"
	case "image/gif":
		return "gif"
	case "image/webp":
		return "webp"
	}
	return ""
}

// imageBlock turns a data: URL into an inline image. Converse cannot fetch URLs (only S3
// locations, which OpenAI's format cannot name), so http(s) URLs are refused.
func imageBlock(u string) (*mediaBlock, error) {
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return nil, errors.New("image_url: Bedrock needs images inline; send the image as a data: URL (data:image/png;base64,...) instead of an http(s) URL")
	}
	mediaType, data, err := chatwire.ParseDataURL(u)
	if err != nil {
		return nil, fmt.Errorf("image_url: %w", err)
	}
	format := imageFormat(mediaType)
	if format == "" {
		return nil, fmt.Errorf("image_url: media type %q is not supported by Bedrock (use png, jpeg, gif or webp)", mediaType)
	}
	return &mediaBlock{Format: format, Source: mediaSource{Bytes: data}}, nil
}

// documentFormat maps a document media type to Converse's document format ("" when unsupported).
func documentFormat(mediaType string) string {
	switch strings.ToLower(mediaType) {
	case "application/pdf":
		return "pdf"
	case "text/csv":
		return "csv"
	case "application/msword":
		return "doc"
	case "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return "docx"
	case "application/vnd.ms-excel":
		return "xls"
	case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
		return "xlsx"
	case "text/html":
		return "html"
	case "text/plain":
		return "txt"
	case "text/markdown":
		return "md"
	}
	return ""
}

// documentBlock turns an OpenAI file part with inline data into a Converse document.
func (t *translator) documentBlock(f *chatwire.File) (*mediaBlock, error) {
	if f == nil || f.FileData == "" {
		return nil, errors.New("file parts need file_data (file_id is not supported by Bedrock)")
	}
	mediaType, data, err := chatwire.ParseDataURL(f.FileData)
	if err != nil {
		return nil, fmt.Errorf("file_data: %w", err)
	}
	format := documentFormat(mediaType)
	if format == "" {
		return nil, fmt.Errorf("file_data: media type %q is not supported by Bedrock", mediaType)
	}
	return &mediaBlock{Format: format, Name: t.documentName(f.Filename), Source: mediaSource{Bytes: data}}, nil
}

// documentName makes a filename acceptable as a Converse document name (letters, digits, single
// spaces, hyphens, parentheses and square brackets; unique within the request).
func (t *translator) documentName(filename string) string {
	if i := strings.LastIndexByte(filename, '.'); i > 0 {
		filename = filename[:i]
	}
	cleaned := strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '(' || r == ')' || r == '[' || r == ']',
			'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		}
		return ' '
	}, filename)
	name := strings.Join(strings.Fields(cleaned), " ")
	if name == "" {
		name = "document"
	}
	unique := name
	for i := 2; t.names[unique]; i++ {
		unique = fmt.Sprintf("%s %d", name, i)
	}
	t.names[unique] = true
	return unique
}

func assistantBlocks(m chatwire.Message) ([]block, error) {
	parts, err := chatwire.Parts(m.Content)
	if err != nil {
		return nil, err
	}
	var blocks []block
	for _, p := range parts {
		// Refusal parts have no Converse counterpart in a turn.
		if p.Type == "text" {
			blocks = appendText(blocks, p)
		}
	}
	for j, tc := range m.ToolCalls {
		input, err := chatwire.ToolInput(tc.Function.Arguments)
		if err != nil {
			return nil, fmt.Errorf("tool_calls[%d].function.arguments: %w", j, err)
		}
		blocks = append(blocks, block{ToolUse: &toolUse{ToolUseID: chatwire.ToolID(tc.ID), Name: tc.Function.Name, Input: input}})
	}
	return blocks, nil
}

func (t *translator) toolResultBlock(m chatwire.Message) (block, error) {
	content, err := t.userBlocks(m.Content, false)
	if err != nil {
		return block{}, err
	}
	if content == nil {
		content = []block{}
	}
	return block{ToolResult: &toolResult{ToolUseID: chatwire.ToolID(m.ToolCallID), Content: content}}, nil
}

// toToolConfig translates tools and tool_choice. tool_choice "none" leaves the tools out, since
// Converse has no way to offer tools and forbid their use.
func toToolConfig(in *chatwire.Request) (*toolConfig, error) {
	if len(in.Tools) == 0 {
		return nil, nil
	}
	choice, none, err := toToolChoice(in.ToolChoice)
	if err != nil {
		return nil, err
	}
	if none {
		return nil, nil
	}
	tc := &toolConfig{ToolChoice: choice}
	for i, t := range in.Tools {
		if t.Type != "function" {
			return nil, fmt.Errorf("tools[%d]: tool type %q is not supported by Bedrock", i, t.Type)
		}
		schema := bytes.TrimSpace(t.Function.Parameters)
		if len(schema) == 0 || bytes.Equal(schema, []byte("null")) {
			// Converse requires a schema; OpenAI allows a function without parameters.
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		tc.Tools = append(tc.Tools, tool{ToolSpec: toolSpec{Name: t.Function.Name, Description: t.Function.Description,
			InputSchema: inputSchema{JSON: schema}}})
	}
	return tc, nil
}

// toToolChoice maps OpenAI's tool_choice: auto → auto, required → any, a function → tool;
// none is reported apart, for the caller to leave the tools out.
func toToolChoice(raw json.RawMessage) (choice *toolChoice, none bool, err error) {
	mode, name, err := chatwire.ParseToolChoice(raw)
	switch mode {
	case "auto":
		return &toolChoice{Auto: &struct{}{}}, false, nil
	case "required":
		return &toolChoice{Any: &struct{}{}}, false, nil
	case "none":
		return nil, true, nil
	case "function":
		return &toolChoice{Tool: &namedTool{Name: name}}, false, nil
	}
	return nil, false, err
}
