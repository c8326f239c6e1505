package local

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"

	"opentracy/backend/providers/chatwire"
	"opentracy/gpu/engine/chat"
	"opentracy/gpu/worker"
)

// chatRequest is the part of a chat-completions body local generation reads.
type chatRequest struct {
	Messages            []chatwire.Message       `json:"messages"`
	MaxTokens           *int                     `json:"max_tokens"`
	MaxCompletionTokens *int                     `json:"max_completion_tokens"`
	Temperature         *float64                 `json:"temperature"`
	TopP                *float64                 `json:"top_p"`
	TopK                *int                     `json:"top_k"` // vLLM's extension
	N                   *int                     `json:"n"`
	Stop                json.RawMessage          `json:"stop"`
	Seed                *int64                   `json:"seed"`
	Stream              bool                     `json:"stream"`
	StreamOptions       *chatwire.StreamOptions  `json:"stream_options"`
	Tools               []json.RawMessage        `json:"tools"`
	ToolChoice          json.RawMessage          `json:"tool_choice"`
	ReasoningEffort     string                   `json:"reasoning_effort"`
	ResponseFormat      *chatwire.ResponseFormat `json:"response_format"`
	Logprobs            bool                     `json:"logprobs"`
	// ChatTemplateKwargs is vLLM's and SGLang's way to set template variables.
	ChatTemplateKwargs struct {
		EnableThinking *bool `json:"enable_thinking"`
	} `json:"chat_template_kwargs"`
}

// request is a chat request checked and converted, before a model is involved.
type request struct {
	raw      chatRequest
	messages []chat.Message
	tools    []json.RawMessage // nil when none are to be rendered (absent, or tool_choice none)
	stop     []string
}

// apiError is a request the provider refuses, in OpenAI's terms.
type apiError struct {
	status        int
	errType, code string
	msg           string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, errType: "invalid_request_error", msg: fmt.Sprintf(format, args...)}
}

// parseRequest reads and checks a body; everything it refuses is the client's mistake (400).
func parseRequest(body []byte) (*request, error) {
	var r request
	if err := json.Unmarshal(body, &r.raw); err != nil {
		return nil, badRequest("request body: %v", err)
	}
	cr := &r.raw
	switch {
	case len(cr.Messages) == 0:
		return nil, badRequest("messages must hold at least one message")
	case cr.N != nil && *cr.N != 1:
		return nil, badRequest("n = %d: local models answer one choice per request (send n requests, each with its own seed)", *cr.N)
	case cr.Logprobs:
		return nil, badRequest("logprobs are not available from local models")
	case cr.Temperature != nil && (*cr.Temperature < 0 || *cr.Temperature > 2):
		return nil, badRequest("temperature %g is out of range: it must be between 0 and 2", *cr.Temperature)
	case cr.TopP != nil && (*cr.TopP <= 0 || *cr.TopP > 1):
		return nil, badRequest("top_p %g is out of range: it must be greater than 0 and at most 1", *cr.TopP)
	case cr.MaxCompletionTokens != nil && *cr.MaxCompletionTokens < 1:
		return nil, badRequest("max_completion_tokens must be at least 1")
	case cr.MaxTokens != nil && *cr.MaxTokens < 1:
		return nil, badRequest("max_tokens must be at least 1")
	}
	var err error
	if r.stop, err = chatwire.StopSequences(cr.Stop); err != nil {
		return nil, badRequest("%v", err)
	}
	mode, _, err := chatwire.ParseToolChoice(cr.ToolChoice)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if len(cr.Tools) > 0 && mode != "none" {
		r.tools = cr.Tools
		for i, t := range cr.Tools {
			var tool chatwire.Tool
			if err := json.Unmarshal(t, &tool); err != nil || tool.Type != "function" || tool.Function.Name == "" {
				return nil, badRequest("tools[%d] must be {\"type\":\"function\",\"function\":{\"name\":...}}", i)
			}
		}
	}
	for i, m := range cr.Messages {
		cm, err := chatMessage(m)
		if err != nil {
			return nil, badRequest("messages[%d]: %v", i, err)
		}
		r.messages = append(r.messages, cm)
	}
	if instr := chatwire.ResponseFormatInstruction(cr.ResponseFormat); instr != "" {
		// The engine cannot constrain decoding to a schema: asking is the best it can do.
		if r.messages[0].Role == "system" {
			r.messages[0].Content += "\n\n" + instr
		} else {
			r.messages = append([]chat.Message{{Role: "system", Content: instr}}, r.messages...)
		}
	}
	return &r, nil
}

// chatMessage converts a wire message for the chat templates.
func chatMessage(m chatwire.Message) (chat.Message, error) {
	out := chat.Message{Role: m.Role, ToolCallID: m.ToolCallID}
	switch m.Role {
	case "system", "user", "assistant", "tool":
	case "developer":
		out.Role = "system" // OpenAI's newer name for the system turn
	default:
		return chat.Message{}, fmt.Errorf("role %q is not supported (system, developer, user, assistant, tool)", m.Role)
	}
	parts, err := chatwire.Parts(m.Content)
	if err != nil {
		return chat.Message{}, err
	}
	var texts []string
	for _, p := range parts {
		if p.Type != "text" {
			return chat.Message{}, fmt.Errorf("a %q content part: local models read text only", p.Type)
		}
		texts = append(texts, p.Text)
	}
	out.Content = strings.Join(texts, "\n")
	if m.ReasoningContent != "" {
		rc := m.ReasoningContent
		out.ReasoningContent = &rc
	}
	for _, tc := range m.ToolCalls {
		// The wire's arguments are a string of JSON text; the templates take it as a JSON string.
		args, err := json.Marshal(tc.Function.Arguments)
		if err != nil {
			return chat.Message{}, fmt.Errorf("tool call %s: %w", tc.ID, err)
		}
		out.ToolCalls = append(out.ToolCalls, chat.ToolCall{ID: tc.ID, Type: tc.Type,
			Function: chat.FunctionCall{Name: tc.Function.Name, Arguments: args}})
	}
	return out, nil
}

// plan is a request ready to generate on one engine.
type plan struct {
	req          worker.GenerateRequest
	includeUsage bool
	output       outputConfig
}

// plan fills the sampling defaults from the model's generation_config; the engine renders the
// messages with the model's chat template and checks the prompt against its context.
func (e *engine) plan(r *request, stream bool) (*plan, error) {
	cr := &r.raw
	req := worker.GenerateRequest{Model: e.id, Messages: r.messages, Tools: r.tools}
	thinking := false
	if e.info.Template == chat.Qwen3().Name() {
		// Qwen3 thinks by default; a gateway client that did not ask for reasoning wants the
		// answer, not a long preamble it pays for in latency.
		thinking = cr.ReasoningEffort != "" && cr.ReasoningEffort != "none"
		if cr.ChatTemplateKwargs.EnableThinking != nil {
			thinking = *cr.ChatTemplateKwargs.EnableThinking
		}
		req.EnableThinking = &thinking
	}

	gen := e.info.Generation
	p := worker.Sampling{Stop: r.stop, Temperature: 1}
	if gen.Temperature != nil {
		p.Temperature = *gen.Temperature
	}
	if gen.DoSample != nil && !*gen.DoSample {
		p.Temperature = 0
	}
	if gen.TopP != nil {
		p.TopP = *gen.TopP
	}
	if gen.TopK != nil {
		p.TopK = *gen.TopK
	}
	if cr.Temperature != nil {
		p.Temperature = *cr.Temperature
	}
	if cr.TopP != nil {
		p.TopP = *cr.TopP
	}
	if cr.TopK != nil {
		p.TopK = max(*cr.TopK, 0) // vLLM's -1 means off, as 0 does here
	}
	switch {
	case cr.MaxCompletionTokens != nil:
		p.MaxTokens = *cr.MaxCompletionTokens
	case cr.MaxTokens != nil:
		p.MaxTokens = *cr.MaxTokens
	}
	if cr.Seed != nil {
		p.Seed = uint64(*cr.Seed)
	} else {
		p.Seed = rand.Uint64()
	}
	req.Sampling = p

	out := outputConfig{thinking: thinking}
	if r.tools != nil {
		switch e.info.Template {
		case chat.Qwen3().Name():
			out.tools = qwenTools
		case chat.Llama31().Name():
			out.tools = llamaTools
		}
	}
	return &plan{req: req, includeUsage: stream && cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage, output: out}, nil
}
