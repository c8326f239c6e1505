package bedrock

import "encoding/json"

// Bedrock Converse and ConverseStream wire types
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html). One struct
// serves requests and responses where the shapes agree; fields this package never reads are absent.

type converseRequest struct {
	Messages        []message        `json:"messages"`
	System          []block          `json:"system,omitempty"`
	InferenceConfig *inferenceConfig `json:"inferenceConfig,omitempty"`
	ToolConfig      *toolConfig      `json:"toolConfig,omitempty"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is a ContentBlock (or a SystemContentBlock): a union, exactly one field is set.
type block struct {
	Text             *string           `json:"text,omitempty"`
	Image            *mediaBlock       `json:"image,omitempty"`
	Document         *mediaBlock       `json:"document,omitempty"`
	ToolUse          *toolUse          `json:"toolUse,omitempty"`
	ToolResult       *toolResult       `json:"toolResult,omitempty"`
	CachePoint       *cachePoint       `json:"cachePoint,omitempty"`
	ReasoningContent *reasoningContent `json:"reasoningContent,omitempty"`
}

func textBlock(s string) block { return block{Text: &s} }

// mediaBlock is an image (format png, jpeg, gif, webp) or a document (format pdf, csv, ..., with
// a name) sent inline.
type mediaBlock struct {
	Format string      `json:"format"`
	Name   string      `json:"name,omitempty"`
	Source mediaSource `json:"source"`
}

// mediaSource holds base64 bytes: Converse's JSON protocol encodes blobs as base64 strings.
type mediaSource struct {
	Bytes string `json:"bytes"`
}

type toolUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

type toolResult struct {
	ToolUseID string `json:"toolUseId"`
	// Content is always written, as [] when empty: Bedrock requires the field.
	Content []block `json:"content"`
}

type cachePoint struct {
	Type string `json:"type"`
}

type reasoningContent struct {
	ReasoningText *struct {
		Text      string `json:"text"`
		Signature string `json:"signature,omitempty"`
	} `json:"reasoningText,omitempty"`
}

type inferenceConfig struct {
	MaxTokens     *int     `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
}

type toolConfig struct {
	Tools      []tool      `json:"tools"`
	ToolChoice *toolChoice `json:"toolChoice,omitempty"`
}

type tool struct {
	ToolSpec toolSpec `json:"toolSpec"`
}

type toolSpec struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	InputSchema inputSchema `json:"inputSchema"`
}

type inputSchema struct {
	JSON json.RawMessage `json:"json"`
}

// toolChoice is a union: {"auto":{}}, {"any":{}} or {"tool":{"name":...}}.
type toolChoice struct {
	Auto *struct{}  `json:"auto,omitempty"`
	Any  *struct{}  `json:"any,omitempty"`
	Tool *namedTool `json:"tool,omitempty"`
}

type namedTool struct {
	Name string `json:"name"`
}

type converseResponse struct {
	Output struct {
		Message *message `json:"message"`
	} `json:"output"`
	StopReason string `json:"stopReason"`
	Usage      usage  `json:"usage"`
}

// usage is Bedrock's TokenUsage. inputTokens counts only the input that was neither read from
// nor written to the prompt cache; totalTokens is the sum of all four counts.
type usage struct {
	InputTokens           int `json:"inputTokens"`
	OutputTokens          int `json:"outputTokens"`
	TotalTokens           int `json:"totalTokens"`
	CacheReadInputTokens  int `json:"cacheReadInputTokens"`
	CacheWriteInputTokens int `json:"cacheWriteInputTokens"`
}

// streamEvent is the payload of any ConverseStream event; which fields are set depends on the
// :event-type header. Bedrock also sends a "p" field of random padding, ignored here.
type streamEvent struct {
	Role              string       `json:"role"`
	ContentBlockIndex int          `json:"contentBlockIndex"`
	Start             *streamStart `json:"start"`
	Delta             *streamDelta `json:"delta"`
	StopReason        string       `json:"stopReason"`
	Usage             *usage       `json:"usage"`
}

type streamStart struct {
	ToolUse *struct {
		ToolUseID string `json:"toolUseId"`
		Name      string `json:"name"`
	} `json:"toolUse"`
}

type streamDelta struct {
	Text    *string `json:"text"`
	ToolUse *struct {
		Input string `json:"input"`
	} `json:"toolUse"`
	ReasoningContent *struct {
		Text string `json:"text"`
	} `json:"reasoningContent"`
}

// errorPayload is the body of an HTTP error or of an exception frame. Go matches JSON keys
// case-insensitively, so the "Message" some AWS front ends send is read too.
type errorPayload struct {
	Message string `json:"message"`
	Type    string `json:"__type"`
}
