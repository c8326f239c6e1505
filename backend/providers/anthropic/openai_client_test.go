package anthropic

import (
	"context"
	"net/http"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"opentracy/backend/providers/providertest"
)

// These tests decode the adapter's output with a real OpenAI client, proving it is valid OpenAI
// wire format and not merely what this package's own types expect.

func clientRequest(stream bool) openai.ChatCompletionRequest {
	return providertest.ClientRequest("claude", "What is the weather like in San Francisco?", stream)
}

func TestOpenAIClientNonStreaming(t *testing.T) {
	tests := []struct {
		fixture string
		want    openai.ChatCompletionResponse
	}{
		{
			fixture: "message.json",
			want: openai.ChatCompletionResponse{
				ID: "msg_013Zva2CMHLNnXjNJJKqJ2EF", Object: "chat.completion", Created: 1700000000, Model: "claude-sonnet-4-5-20250929",
				Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant", Content: "Hi! My name is Claude."},
					FinishReason: openai.FinishReasonStop}},
				Usage: openai.Usage{PromptTokens: 2095, CompletionTokens: 503, TotalTokens: 2598, PromptTokensDetails: &openai.PromptTokensDetails{}},
			},
		},
		{
			fixture: "message_tool_use.json",
			want: openai.ChatCompletionResponse{
				ID: "msg_01Aq9w938a90dw8q", Object: "chat.completion", Created: 1700000000, Model: "claude-sonnet-4-5-20250929",
				Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant",
					Content: "<thinking>I need to use the get_weather, and the user wants SF, which is likely San Francisco, CA.</thinking>",
					ToolCalls: []openai.ToolCall{{ID: "toolu_01A09q90qw90lq917835lq9", Type: openai.ToolTypeFunction,
						Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location":"San Francisco, CA","unit":"celsius"}`}}}},
					FinishReason: openai.FinishReasonToolCalls}},
				Usage: openai.Usage{PromptTokensDetails: &openai.PromptTokensDetails{}},
			},
		},
		{
			fixture: "message_thinking_cache.json",
			want: openai.ChatCompletionResponse{
				ID: "msg_01ThinkCache4RtQ8pQ2mUEVM36", Object: "chat.completion", Created: 1700000000, Model: "claude-sonnet-4-5-20250929",
				Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant", Content: "Based on my analysis...",
					ReasoningContent: "Let me analyze this step by step..."}, FinishReason: openai.FinishReasonLength}},
				Usage: openai.Usage{PromptTokens: 188107, CompletionTokens: 393, TotalTokens: 188500, PromptTokensDetails: &openai.PromptTokensDetails{}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			providertest.CheckChat(t, clientFor(t, http.StatusOK, "application/json", fixture(t, tt.fixture)), clientRequest(false), tt.want)
		})
	}
}

func TestOpenAIClientStreaming(t *testing.T) {
	tests := []struct {
		fixture string
		want    providertest.StreamResult
	}{
		{
			fixture: "stream_text.sse",
			want: providertest.StreamResult{ID: "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", Model: "claude-sonnet-4-5-20250929", Content: "Hello!",
				FinishReason: openai.FinishReasonStop, Chunks: 5,
				Usage: &openai.Usage{PromptTokens: 25, CompletionTokens: 15, TotalTokens: 40, PromptTokensDetails: &openai.PromptTokensDetails{}}},
		},
		{
			fixture: "stream_tool_use.sse",
			want: providertest.StreamResult{ID: "msg_014p7gG3wDgGV9EUtLvnow3U", Model: "claude-sonnet-4-5-20250929",
				Content: "Okay, let's check the weather for San Francisco, CA:", FinishReason: openai.FinishReasonToolCalls, Chunks: 25,
				ToolCalls: []openai.ToolCall{{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Type: openai.ToolTypeFunction,
					Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location": "San Francisco, CA", "unit": "fahrenheit"}`}}},
				Usage: &openai.Usage{PromptTokens: 472, CompletionTokens: 89, TotalTokens: 561, PromptTokensDetails: &openai.PromptTokensDetails{}}},
		},
		{
			fixture: "stream_parallel_tools.sse",
			want: providertest.StreamResult{ID: "msg_01ParallelTools8fGx2sVqLk", Model: "claude-sonnet-4-5-20250929",
				Content: "Checking both cities.", FinishReason: openai.FinishReasonToolCalls, Chunks: 11,
				ToolCalls: []openai.ToolCall{
					{ID: "toolu_01A", Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location": "Paris"}`}},
					{ID: "toolu_01B", Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location": "Tokyo"}`}},
					{ID: "toolu_01C", Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: "get_time", Arguments: `{}`}},
				},
				Usage: &openai.Usage{PromptTokens: 2420, CompletionTokens: 71, TotalTokens: 2491, PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 1800}}},
		},
		{
			fixture: "stream_thinking.sse",
			want: providertest.StreamResult{ID: "msg_01...", Model: "claude-sonnet-4-5-20250929", Content: "27 * 453 = 12,231",
				Reasoning:    "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3\n3. 27 * 400 = 10,800\n4. 27 * 50 = 1,350\n5. 27 * 3 = 81\n6. 10,800 + 1,350 + 81 = 12,231",
				FinishReason: openai.FinishReasonStop, Chunks: 10,
				Usage: &openai.Usage{PromptTokensDetails: &openai.PromptTokensDetails{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			providertest.CheckStream(t, clientFor(t, http.StatusOK, "text/event-stream", fixture(t, tt.fixture)), clientRequest(true), tt.want)
		})
	}
}

func TestOpenAIClientStreamError(t *testing.T) {
	got, err := providertest.SendStream(t, clientFor(t, http.StatusOK, "text/event-stream", fixture(t, "stream_error.sse")), clientRequest(true))
	providertest.APIError{Type: "server_error", Code: "overloaded", Message: "Overloaded"}.Check(t, "stream", err)
	if got.Content != "Hello" {
		t.Errorf("content before the error = %q", got.Content)
	}
}

func TestOpenAIClientUpstreamErrors(t *testing.T) {
	tests := []struct {
		fixture string
		want    providertest.APIError
	}{
		{"error_429.json", providertest.APIError{Status: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: "Number of request tokens has exceeded"}},
		{"error_529.json", providertest.APIError{Status: 529, Type: "server_error", Code: "overloaded", Message: "Overloaded"}},
		{"error_400.json", providertest.APIError{Status: 400, Type: "invalid_request_error", Code: 0, Message: "roles must alternate"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			newClient := func() *openai.Client { return clientFor(t, tt.want.Status, "application/json", fixture(t, tt.fixture)) }
			providertest.CheckErrorBothWays(t, newClient, clientRequest, tt.want)
		})
	}
}

func TestOpenAIClientRequestTranslated(t *testing.T) {
	// What the real client sends reaches Anthropic translated.
	up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "message.json"))
	client := providertest.OpenAIClient(t, newTestProvider(t, up.URL, nil), "claude-sonnet-4-5")
	req := clientRequest(false)
	req.Messages = append([]openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleSystem, Content: "Be brief."}}, req.Messages...)
	req.MaxCompletionTokens = 300
	req.Temperature = 1.5
	req.Stop = []string{"END"}
	req.ToolChoice = openai.ToolChoice{Type: openai.ToolTypeFunction, Function: openai.ToolFunction{Name: "get_weather"}}
	req.User = "u-1"
	if _, err := client.CreateChatCompletion(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := `{"model":"claude-sonnet-4-5","max_tokens":300,"system":[{"type":"text","text":"Be brief."}],
		"messages":[{"role":"user","content":[{"type":"text","text":"What is the weather like in San Francisco?"}]}],
		"metadata":{"user_id":"u-1"},"stop_sequences":["END"],"temperature":1,
		"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}],
		"tool_choice":{"type":"tool","name":"get_weather"}}`
	if diff := jsonDiff(t, []byte(want), up.Last(t).Body); diff != "" {
		t.Errorf("anthropic request (-want +got):\n%s", diff)
	}
}

// clientFor is a real OpenAI client calling the adapter, whose upstream answers reply.
func clientFor(t *testing.T, status int, contentType string, reply []byte) *openai.Client {
	t.Helper()
	up := providertest.NewUpstream(t, status, contentType, reply)
	return providertest.OpenAIClient(t, newTestProvider(t, up.URL, nil), "claude-sonnet-4-5")
}
