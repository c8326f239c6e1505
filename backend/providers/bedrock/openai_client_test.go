package bedrock

import (
	"context"
	"net/http"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"opentracy/backend/config"
	"opentracy/backend/providers/providertest"
)

// These tests decode the adapter's output with a real OpenAI client, proving it is valid OpenAI
// wire format and not merely what this package's own types expect.

func clientFor(t *testing.T, status int, contentType string, reply []byte) (*openai.Client, *providertest.Upstream) {
	t.Helper()
	up := providertest.NewUpstream(t, status, contentType, reply)
	return providertest.OpenAIClient(t, newTestProvider(t, config.Provider{BaseURL: up.URL}, testEnv(nil)), testModel), up
}

func clientRequest(stream bool) openai.ChatCompletionRequest {
	return providertest.ClientRequest("bedrock/haiku", "What is the weather like in Paris?", stream)
}

func TestOpenAIClientNonStreaming(t *testing.T) {
	created := testNow().Unix()
	tests := []struct {
		fixture string
		want    openai.ChatCompletionResponse
	}{
		{
			fixture: "converse_text.json",
			want: openai.ChatCompletionResponse{
				ID: testID, Object: "chat.completion", Created: created, Model: testModel,
				Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant", Content: "Hello! How can I help you today?"},
					FinishReason: openai.FinishReasonStop}},
				Usage: openai.Usage{PromptTokens: 12, CompletionTokens: 11, TotalTokens: 23, PromptTokensDetails: &openai.PromptTokensDetails{}},
			},
		},
		{
			fixture: "converse_tool_use.json",
			want: openai.ChatCompletionResponse{
				ID: testID, Object: "chat.completion", Created: created, Model: testModel,
				Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant",
					Content: "I'll look up the weather in both cities.",
					ToolCalls: []openai.ToolCall{
						{ID: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", Type: openai.ToolTypeFunction,
							Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location":"Paris","unit":"celsius"}`}},
						{ID: "tooluse_4rGq9RZlTi2dPSuLxVYQxw", Type: openai.ToolTypeFunction,
							Function: openai.FunctionCall{Name: "get_time", Arguments: `{}`}},
					}},
					FinishReason: openai.FinishReasonToolCalls}},
				Usage: openai.Usage{PromptTokens: 391, CompletionTokens: 92, TotalTokens: 483, PromptTokensDetails: &openai.PromptTokensDetails{}},
			},
		},
		{
			fixture: "converse_reasoning_cache.json",
			want: openai.ChatCompletionResponse{
				ID: testID, Object: "chat.completion", Created: created, Model: testModel,
				Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant", Content: "The report covers three quarters",
					ReasoningContent: "The user wants a summary. "}, FinishReason: openai.FinishReasonLength}},
				Usage: openai.Usage{PromptTokens: 3308, CompletionTokens: 200, TotalTokens: 3508, PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 3000}},
			},
		},
		{
			fixture: "converse_guardrail.json",
			want: openai.ChatCompletionResponse{
				ID: testID, Object: "chat.completion", Created: created, Model: testModel,
				Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant", Content: "Sorry, I can't help with that."},
					FinishReason: openai.FinishReasonContentFilter}},
				Usage: openai.Usage{PromptTokens: 20, CompletionTokens: 8, TotalTokens: 28, PromptTokensDetails: &openai.PromptTokensDetails{}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			client, _ := clientFor(t, http.StatusOK, "application/json", fixture(t, tt.fixture))
			providertest.CheckChat(t, client, clientRequest(false), tt.want)
		})
	}
}

func TestOpenAIClientStreaming(t *testing.T) {
	tests := []struct {
		fixture string
		want    providertest.StreamResult
	}{
		{
			fixture: "stream_text.events.json",
			want: providertest.StreamResult{ID: testID, Model: testModel, Content: "Hello! How can I <help> you today?",
				FinishReason: openai.FinishReasonStop, Chunks: 6,
				Usage: &openai.Usage{PromptTokens: 1512, CompletionTokens: 11, TotalTokens: 1523, PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 1500}}},
		},
		{
			fixture: "stream_tools.events.json",
			want: providertest.StreamResult{ID: testID, Model: testModel, Content: "Checking both cities.", FinishReason: openai.FinishReasonToolCalls, Chunks: 11,
				ToolCalls: []openai.ToolCall{
					{ID: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location": "Paris"}`}},
					{ID: "tooluse_4rGq9RZlTi2dPSuLxVYQxw", Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location": "Tokyo"}`}},
					{ID: "tooluse_Yb3nZ2cPQe6bS0VvWq1r8g", Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: "get_time", Arguments: `{}`}},
				},
				Usage: &openai.Usage{PromptTokens: 2420, CompletionTokens: 71, TotalTokens: 2491, PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 1800}}},
		},
		{
			fixture: "stream_reasoning.events.json",
			want: providertest.StreamResult{ID: testID, Model: testModel, Content: "27 * 453 = 12,231", Reasoning: "27 * 453: 10,800 + 1,350 + 81.",
				FinishReason: openai.FinishReasonLength, Chunks: 6,
				Usage: &openai.Usage{PromptTokens: 30, CompletionTokens: 60, TotalTokens: 90, PromptTokensDetails: &openai.PromptTokensDetails{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			client, _ := clientFor(t, http.StatusOK, "application/vnd.amazon.eventstream", streamFixture(t, tt.fixture))
			providertest.CheckStream(t, client, clientRequest(true), tt.want)
		})
	}
}

func TestOpenAIClientStreamException(t *testing.T) {
	tests := []struct {
		fixture, wantContent string
		want                 providertest.APIError
	}{
		{"stream_exception.events.json", "Once upon", providertest.APIError{Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: "Too many tokens"}},
		{"stream_model_error.events.json", "", providertest.APIError{Type: "server_error", Code: "model_stream_error", Message: "Model stream error"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			client, _ := clientFor(t, http.StatusOK, "application/vnd.amazon.eventstream", streamFixture(t, tt.fixture))
			got, err := providertest.SendStream(t, client, clientRequest(true))
			tt.want.Check(t, "stream", err)
			if got.Content != tt.wantContent {
				t.Errorf("content before the error = %q, want %q", got.Content, tt.wantContent)
			}
		})
	}
}

func TestOpenAIClientUpstreamErrors(t *testing.T) {
	tests := []struct {
		name, errorType, body string
		want                  providertest.APIError
	}{
		{"throttled", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", `{"message":"Too many requests, please wait before trying again."}`,
			providertest.APIError{Status: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: "Too many requests"}},
		{"invalid", "ValidationException", `{"message":"The provided model identifier is invalid."}`,
			providertest.APIError{Status: 400, Type: "invalid_request_error", Code: 0, Message: "model identifier is invalid"}},
		{"denied", "AccessDeniedException", `{"Message":"You don't have access to the model with the specified model ID."}`,
			providertest.APIError{Status: 403, Type: "permission_error", Code: 0, Message: "don't have access"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newClient := func() *openai.Client {
				client, up := clientFor(t, tt.want.Status, "application/json", []byte(tt.body))
				up.Header.Set("X-Amzn-Errortype", tt.errorType)
				return client
			}
			providertest.CheckErrorBothWays(t, newClient, clientRequest, tt.want)
		})
	}
}

func TestOpenAIClientRequestTranslated(t *testing.T) {
	// What the real client sends reaches Bedrock translated, and signed.
	client, up := clientFor(t, http.StatusOK, "application/json", fixture(t, "converse_text.json"))
	req := clientRequest(false)
	req.Messages = append([]openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleSystem, Content: "Be brief."}}, req.Messages...)
	req.Messages = append(req.Messages,
		openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, ToolCalls: []openai.ToolCall{{ID: "call_1", Type: openai.ToolTypeFunction,
			Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location":"Paris"}`}}}},
		openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, ToolCallID: "call_1", Content: "18C and cloudy"},
		openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, MultiContent: []openai.ChatMessagePart{
			{Type: openai.ChatMessagePartTypeText, Text: "And this one?"},
			{Type: openai.ChatMessagePartTypeImageURL, ImageURL: &openai.ChatMessageImageURL{URL: "data:image/webp;base64,UklGRg=="}}}},
	)
	req.MaxCompletionTokens = 300
	req.Temperature = 0.7
	req.Stop = []string{"END"}
	req.ToolChoice = openai.ToolChoice{Type: openai.ToolTypeFunction, Function: openai.ToolFunction{Name: "get_weather"}}
	req.User = "u-1"
	if _, err := client.CreateChatCompletion(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := `{"system":[{"text":"Be brief."}],
		"messages":[
			{"role":"user","content":[{"text":"What is the weather like in Paris?"}]},
			{"role":"assistant","content":[{"toolUse":{"toolUseId":"call_1","name":"get_weather","input":{"location":"Paris"}}}]},
			{"role":"user","content":[{"toolResult":{"toolUseId":"call_1","content":[{"text":"18C and cloudy"}]}},
				{"text":"And this one?"},{"image":{"format":"webp","source":{"bytes":"UklGRg=="}}}]}],
		"inferenceConfig":{"maxTokens":300,"temperature":0.7,"stopSequences":["END"]},
		"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{"location":{"type":"string"}}}}}}],
			"toolChoice":{"tool":{"name":"get_weather"}}}}`
	got := up.Last(t)
	if diff := jsonDiff(t, []byte(want), got.Body); diff != "" {
		t.Errorf("converse request (-want +got):\n%s", diff)
	}
	if got.Header.Get("Authorization") == "Bearer gateway-key" {
		t.Error("the client's gateway key reached Bedrock")
	}
}
