package anthropic

import (
	"net/http"
	"testing"
)

func TestFromWireResponse(t *testing.T) {
	tests := []struct {
		name, fixture, want string
	}{
		{
			name:    "text",
			fixture: "message.json",
			want: `{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","object":"chat.completion","created":1700000000,"model":"claude-sonnet-4-5-20250929",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Hi! My name is Claude.","refusal":null},"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":2095,"completion_tokens":503,"total_tokens":2598,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`,
		},
		{
			name:    "tool use keeps the text beside the call, arguments as a JSON string",
			fixture: "message_tool_use.json",
			want: `{"id":"msg_01Aq9w938a90dw8q","object":"chat.completion","created":1700000000,"model":"claude-sonnet-4-5-20250929",
				"choices":[{"index":0,"message":{"role":"assistant",
					"content":"<thinking>I need to use the get_weather, and the user wants SF, which is likely San Francisco, CA.</thinking>",
					"tool_calls":[{"id":"toolu_01A09q90qw90lq917835lq9","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"}}],
					"refusal":null},"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`,
		},
		{
			name:    "thinking becomes reasoning_content, cache writes count as prompt tokens",
			fixture: "message_thinking_cache.json",
			want: `{"id":"msg_01ThinkCache4RtQ8pQ2mUEVM36","object":"chat.completion","created":1700000000,"model":"claude-sonnet-4-5-20250929",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Based on my analysis...","reasoning_content":"Let me analyze this step by step...","refusal":null},
					"logprobs":null,"finish_reason":"length"}],
				"usage":{"prompt_tokens":188107,"completion_tokens":393,"total_tokens":188500,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":188086}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fromWireResponse(fixture(t, tt.fixture), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("chat.completion (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromWireResponseShapes(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "only tool calls: content null; several text blocks join; cache reads",
			in: `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[
				{"type":"tool_use","id":"toolu_1","name":"a","input":{}},
				{"type":"tool_use","id":"toolu_2","name":"b","input":{"x":[1,2]}}],
				"stop_reason":"tool_use","usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":5}}`,
			want: `{"id":"msg_1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,
				"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"a","arguments":"{}"}},{"id":"toolu_2","type":"function","function":{"name":"b","arguments":"{\"x\":[1,2]}"}}],
				"refusal":null},"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_tokens_details":{"cached_tokens":90,"cache_creation_tokens":0}}}`,
		},
		{
			name: "text blocks split by citations join; refusal is content_filter",
			in: `{"id":"msg_2","model":"m","content":[{"type":"text","text":"The grass is "},{"type":"text","text":"green","citations":[]},{"type":"text","text":"."}],
				"stop_reason":"refusal","usage":{"input_tokens":1,"output_tokens":1}}`,
			want: `{"id":"msg_2","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"The grass is green.","refusal":null},
				"logprobs":null,"finish_reason":"content_filter"}],
				"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`,
		},
		{
			name: "no content at all is an empty string; stop_sequence is stop",
			in:   `{"id":"msg_3","model":"m","content":[],"stop_reason":"stop_sequence","stop_sequence":"END","usage":{"input_tokens":1,"output_tokens":0}}`,
			want: `{"id":"msg_3","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null},
				"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fromWireResponse([]byte(tt.in), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("chat.completion (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := fromWireResponse([]byte(`<html>`), testNow); err == nil {
		t.Error("a body that is not JSON must be an error")
	}
}

func TestFinishReason(t *testing.T) {
	tests := map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
		"refusal": "content_filter", "pause_turn": "stop", "model_context_window_exceeded": "length", "": "stop", "brand_new": "stop",
	}
	for in, want := range tests {
		if got := finishReason(in); got != want {
			t.Errorf("finishReason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenAIErrorBody(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{
			name: "429 rate limit", status: 429, body: string(fixture(t, "error_429.json")),
			want: `{"error":{"message":"Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`,
		},
		{
			name: "529 overloaded", status: 529, body: string(fixture(t, "error_529.json")),
			want: `{"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"}}`,
		},
		{
			name: "400 invalid request", status: 400, body: string(fixture(t, "error_400.json")),
			want: `{"error":{"message":"messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row","type":"invalid_request_error","param":null,"code":null}}`,
		},
		{
			name: "401", status: 401, body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`,
			want: `{"error":{"message":"invalid x-api-key","type":"authentication_error","param":null,"code":null}}`,
		},
		{
			name: "403", status: 403, body: `{"type":"error","error":{"type":"permission_error","message":"no"}}`,
			want: `{"error":{"message":"no","type":"permission_error","param":null,"code":null}}`,
		},
		{
			name: "404", status: 404, body: `{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}`,
			want: `{"error":{"message":"model: claude-9","type":"not_found_error","param":null,"code":null}}`,
		},
		{
			name: "413", status: 413, body: `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`,
			want: `{"error":{"message":"Request exceeds the maximum allowed number of bytes.","type":"invalid_request_error","param":null,"code":"request_too_large"}}`,
		},
		{
			name: "500 api_error", status: 500, body: `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`,
			want: `{"error":{"message":"Internal server error","type":"server_error","param":null,"code":null}}`,
		},
		{
			name: "proxy HTML page", status: 502, body: "<html>Bad Gateway</html>",
			want: `{"error":{"message":"upstream returned 502: <html>Bad Gateway</html>","type":"server_error","param":null,"code":null}}`,
		},
		{
			name: "empty 429 body", status: 429, body: "",
			want: `{"error":{"message":"upstream returned 429: Too Many Requests","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`,
		},
		{
			name: "unknown type falls back to the status", status: http.StatusForbidden, body: `{"type":"error","error":{"type":"new_error","message":"m"}}`,
			want: `{"error":{"message":"m","type":"permission_error","param":null,"code":null}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := openAIErrorBody(tt.status, []byte(tt.body))
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("OpenAI error (-want +got):\n%s", diff)
			}
		})
	}
}
