package bedrock

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromConverse(t *testing.T) {
	tests := []struct {
		fixture string
		want    string
	}{
		{
			fixture: "converse_text.json",
			want: `{"id":"chatcmpl-test","object":"chat.completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":12,"completion_tokens":11,"total_tokens":23,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`,
		},
		{
			fixture: "converse_tool_use.json",
			want: `{"id":"chatcmpl-test","object":"chat.completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":"I'll look up the weather in both cities.","refusal":null,"tool_calls":[
					{"id":"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\",\"unit\":\"celsius\"}"}},
					{"id":"tooluse_4rGq9RZlTi2dPSuLxVYQxw","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
					"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":391,"completion_tokens":92,"total_tokens":483,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`,
		},
		{
			// inputTokens excludes the cache: prompt_tokens = 8 + 3000 + 300.
			fixture: "converse_reasoning_cache.json",
			want: `{"id":"chatcmpl-test","object":"chat.completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":"The report covers three quarters","reasoning_content":"The user wants a summary. ","refusal":null},"logprobs":null,"finish_reason":"length"}],
				"usage":{"prompt_tokens":3308,"completion_tokens":200,"total_tokens":3508,"prompt_tokens_details":{"cached_tokens":3000,"cache_creation_tokens":300}}}`,
		},
		{
			fixture: "converse_guardrail.json",
			want: `{"id":"chatcmpl-test","object":"chat.completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Sorry, I can't help with that.","refusal":null},"logprobs":null,"finish_reason":"content_filter"}],
				"usage":{"prompt_tokens":20,"completion_tokens":8,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := fromConverse(fixture(t, tt.fixture), testID, "m", 1700000000)
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("chat.completion (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromConverseToolCallsOnly(t *testing.T) {
	// With tool calls and no text, content is null, as OpenAI sends it.
	in := `{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"f","input":{"a":1}}}]}},"stopReason":"tool_use","usage":{}}`
	got, err := fromConverse([]byte(in), testID, "m", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"chatcmpl-test","object":"chat.completion","created":1,"model":"m",
		"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
		"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`
	if diff := jsonDiff(t, []byte(want), got); diff != "" {
		t.Errorf("chat.completion (-want +got):\n%s", diff)
	}
	if _, err := fromConverse([]byte(`<html>`), testID, "m", 1); err == nil {
		t.Error("an unreadable body gave no error")
	}
}

func TestFinishReason(t *testing.T) {
	tests := map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "model_context_window_exceeded": "length",
		"tool_use": "tool_calls", "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
		"": "stop", "something_new": "stop",
	}
	got := map[string]string{}
	for in := range tests {
		got[in] = finishReason(in)
	}
	if diff := cmp.Diff(tests, got); diff != "" {
		t.Errorf("finish reasons (-want +got):\n%s", diff)
	}
}

func TestOpenAIErrorBody(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		errorType string // x-amzn-ErrorType
		body      string
		want      string
	}{
		{
			name: "throttling", status: 429, errorType: "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
			body: `{"message":"Too many requests, please wait before trying again."}`,
			want: `{"error":{"message":"Too many requests, please wait before trying again.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`,
		},
		{
			name: "validation", status: 400, errorType: "ValidationException",
			body: `{"message":"The model returned the following errors: messages: roles must alternate"}`,
			want: `{"error":{"message":"The model returned the following errors: messages: roles must alternate","type":"invalid_request_error","param":null,"code":null}}`,
		},
		{
			name: "access denied", status: 403, errorType: "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/",
			body: `{"Message":"You don't have access to the model with the specified model ID."}`,
			want: `{"error":{"message":"You don't have access to the model with the specified model ID.","type":"permission_error","param":null,"code":null}}`,
		},
		{
			name: "bad signature", status: 403, errorType: "InvalidSignatureException",
			body: `{"message":"The request signature we calculated does not match the signature you provided."}`,
			want: `{"error":{"message":"The request signature we calculated does not match the signature you provided.","type":"authentication_error","param":null,"code":null}}`,
		},
		{
			name: "not found", status: 404, errorType: "ResourceNotFoundException",
			body: `{"message":"Model not found."}`,
			want: `{"error":{"message":"Model not found.","type":"not_found_error","param":null,"code":null}}`,
		},
		{
			name: "service unavailable", status: 503, errorType: "ServiceUnavailableException",
			body: `{"message":"Bedrock is unable to process your request."}`,
			want: `{"error":{"message":"Bedrock is unable to process your request.","type":"server_error","param":null,"code":"service_unavailable"}}`,
		},
		{
			name: "model timeout", status: 408, errorType: "ModelTimeoutException",
			body: `{"message":"Model has timed out in processing the request."}`,
			want: `{"error":{"message":"Model has timed out in processing the request.","type":"server_error","param":null,"code":"timeout"}}`,
		},
		{
			name: "quota", status: 400, errorType: "ServiceQuotaExceededException",
			body: `{"message":"Too many tokens per day."}`,
			want: `{"error":{"message":"Too many tokens per day.","type":"rate_limit_error","param":null,"code":"quota_exceeded"}}`,
		},
		{
			name: "type in the body only", status: 400,
			body: `{"__type":"com.amazon.coral.validate#ValidationException","message":"1 validation error detected"}`,
			want: `{"error":{"message":"1 validation error detected","type":"invalid_request_error","param":null,"code":null}}`,
		},
		{
			name: "a proxy's page", status: 502,
			body: `<html>Bad Gateway</html>`,
			want: `{"error":{"message":"upstream returned 502: <html>Bad Gateway</html>","type":"server_error","param":null,"code":null}}`,
		},
		{
			name: "empty body, unknown type falls back on the status", status: 401, errorType: "SomethingNewException",
			want: `{"error":{"message":"upstream returned 401: Unauthorized","type":"authentication_error","param":null,"code":null}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.errorType != "" {
				h.Set("x-amzn-ErrorType", tt.errorType)
			}
			got := openAIErrorBody(tt.status, h, []byte(tt.body))
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("error body (-want +got):\n%s", diff)
			}
		})
	}
}
