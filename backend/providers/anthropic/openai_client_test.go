package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	openai "github.com/sashabaranov/go-openai"

	"opentracy/backend/providers/providertest"
)

// These tests decode the adapter's output with a real OpenAI client, proving it is valid OpenAI
// wire format and not merely what this package's own types expect.

func clientRequest(stream bool) openai.ChatCompletionRequest {
	req := openai.ChatCompletionRequest{
		Model:    "claude",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "What is the weather like in San Francisco?"}},
		Tools: []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"location":{"type":"string"}}}`)}}},
		Stream: stream,
	}
	if stream {
		req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	return req
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
			up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, tt.fixture))
			client := openAIClient(t, newTestProvider(t, up.URL, nil))
			got, err := client.CreateChatCompletion(context.Background(), clientRequest(false))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".httpHeader" }, cmp.Ignore())); diff != "" {
				t.Errorf("decoded response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenAIClientStreaming(t *testing.T) {
	tests := []struct {
		fixture string
		want    streamResult
	}{
		{
			fixture: "stream_text.sse",
			want: streamResult{ID: "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", Model: "claude-sonnet-4-5-20250929", Content: "Hello!",
				FinishReason: openai.FinishReasonStop, Chunks: 5,
				Usage: &openai.Usage{PromptTokens: 25, CompletionTokens: 15, TotalTokens: 40, PromptTokensDetails: &openai.PromptTokensDetails{}}},
		},
		{
			fixture: "stream_tool_use.sse",
			want: streamResult{ID: "msg_014p7gG3wDgGV9EUtLvnow3U", Model: "claude-sonnet-4-5-20250929",
				Content: "Okay, let's check the weather for San Francisco, CA:", FinishReason: openai.FinishReasonToolCalls, Chunks: 25,
				ToolCalls: []openai.ToolCall{{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Type: openai.ToolTypeFunction,
					Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"location": "San Francisco, CA", "unit": "fahrenheit"}`}}},
				Usage: &openai.Usage{PromptTokens: 472, CompletionTokens: 89, TotalTokens: 561, PromptTokensDetails: &openai.PromptTokensDetails{}}},
		},
		{
			fixture: "stream_parallel_tools.sse",
			want: streamResult{ID: "msg_01ParallelTools8fGx2sVqLk", Model: "claude-sonnet-4-5-20250929",
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
			want: streamResult{ID: "msg_01...", Model: "claude-sonnet-4-5-20250929", Content: "27 * 453 = 12,231",
				Reasoning:    "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3\n3. 27 * 400 = 10,800\n4. 27 * 50 = 1,350\n5. 27 * 3 = 81\n6. 10,800 + 1,350 + 81 = 12,231",
				FinishReason: openai.FinishReasonStop, Chunks: 10,
				Usage: &openai.Usage{PromptTokensDetails: &openai.PromptTokensDetails{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			up := providertest.NewUpstream(t, http.StatusOK, "text/event-stream", fixture(t, tt.fixture))
			client := openAIClient(t, newTestProvider(t, up.URL, nil))
			stream, err := client.CreateChatCompletionStream(context.Background(), clientRequest(true))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readClientStream(t, stream)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("assembled stream (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenAIClientStreamError(t *testing.T) {
	up := providertest.NewUpstream(t, http.StatusOK, "text/event-stream", fixture(t, "stream_error.sse"))
	client := openAIClient(t, newTestProvider(t, up.URL, nil))
	stream, err := client.CreateChatCompletionStream(context.Background(), clientRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readClientStream(t, stream)
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want an *openai.APIError", err)
	}
	if apiErr.Message != "Overloaded" || apiErr.Type != "server_error" || apiErr.Code != "overloaded" {
		t.Errorf("api error = %+v", apiErr)
	}
	if got.Content != "Hello" {
		t.Errorf("content before the error = %q", got.Content)
	}
}

func TestOpenAIClientUpstreamErrors(t *testing.T) {
	tests := []struct {
		fixture  string
		status   int
		wantType string
		wantCode any
		wantMsg  string
	}{
		{"error_429.json", 429, "rate_limit_error", "rate_limit_exceeded", "Number of request tokens has exceeded"},
		{"error_529.json", 529, "server_error", "overloaded", "Overloaded"},
		// go-openai decodes a null code as the int 0.
		{"error_400.json", 400, "invalid_request_error", 0, "roles must alternate"},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			up := providertest.NewUpstream(t, tt.status, "application/json", fixture(t, tt.fixture))
			client := openAIClient(t, newTestProvider(t, up.URL, nil))
			var err error
			if stream {
				_, err = client.CreateChatCompletionStream(context.Background(), clientRequest(true))
			} else {
				_, err = client.CreateChatCompletion(context.Background(), clientRequest(false))
			}
			var apiErr *openai.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("%s stream=%v: err = %v, want *openai.APIError", tt.fixture, stream, err)
			}
			if apiErr.HTTPStatusCode != tt.status || apiErr.Type != tt.wantType || apiErr.Code != tt.wantCode || !strings.Contains(apiErr.Message, tt.wantMsg) {
				t.Errorf("%s stream=%v: api error = %+v", tt.fixture, stream, apiErr)
			}
		}
	}
}

func TestOpenAIClientRequestTranslated(t *testing.T) {
	// What the real client sends reaches Anthropic translated.
	up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "message.json"))
	client := openAIClient(t, newTestProvider(t, up.URL, nil))
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

func openAIClient(t *testing.T, p *Provider) *openai.Client {
	return providertest.OpenAIClient(t, p, "claude-sonnet-4-5")
}

type streamResult = providertest.StreamResult

func readClientStream(t *testing.T, stream *openai.ChatCompletionStream) (streamResult, error) {
	return providertest.ReadClientStream(t, stream)
}
