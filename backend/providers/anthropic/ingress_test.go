package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func TestChatRequestFromMessages(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "the documented hello request",
			in:   `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, world"}]}`,
			want: `{"model":"claude-sonnet-4-5","max_completion_tokens":1024,"messages":[{"role":"user","content":"Hello, world"}]}`,
		},
		{
			name: "system blocks join into one system message; sampling, stop, user, stream",
			in: `{"model":"m","max_tokens":50,"system":[{"type":"text","text":"You are a pirate.","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Be brief."}],
				"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],
				"temperature":0.3,"top_p":0.8,"top_k":40,"stop_sequences":["Human:","END"],"metadata":{"user_id":"u-7"},"stream":true,
				"thinking":{"type":"enabled","budget_tokens":2048}}`,
			want: `{"model":"m","max_completion_tokens":50,"messages":[{"role":"system","content":"You are a pirate.\n\nBe brief."},{"role":"user","content":"Hi"}],
				"temperature":0.3,"top_p":0.8,"stop":["Human:","END"],"user":"u-7","stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name: "system as a string",
			in:   `{"model":"m","max_tokens":5,"system":"Be kind.","messages":[{"role":"user","content":"x"}]}`,
			want: `{"model":"m","max_completion_tokens":5,"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"x"}]}`,
		},
		{
			name: "multi-turn tool use with parallel calls: tool results become tool messages before the user's text",
			in: `{"model":"m","max_tokens":1024,"messages":[
				{"role":"user","content":"Weather in Paris and Tokyo?"},
				{"role":"assistant","content":[
					{"type":"thinking","thinking":"two calls","signature":"sig"},
					{"type":"text","text":"Checking both."},
					{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"Paris"}},
					{"type":"tool_use","id":"toolu_01B","name":"get_weather","input":{"location": "Tokyo"}}]},
				{"role":"user","content":[
					{"type":"tool_result","tool_use_id":"toolu_01A","content":"18C"},
					{"type":"tool_result","tool_use_id":"toolu_01B","content":[{"type":"text","text":"25C"},{"type":"image","source":{"type":"url","url":"https://x/map.png"}}],"is_error":false},
					{"type":"tool_result","tool_use_id":"toolu_01C"},
					{"type":"text","text":"Thanks. Tomorrow?"}]}],
				"tools":[{"name":"get_weather","description":"Current weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}],
				"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
			want: `{"model":"m","max_completion_tokens":1024,"messages":[
				{"role":"user","content":"Weather in Paris and Tokyo?"},
				{"role":"assistant","content":"Checking both.","tool_calls":[
					{"id":"toolu_01A","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}},
					{"id":"toolu_01B","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Tokyo\"}"}}]},
				{"role":"tool","tool_call_id":"toolu_01A","content":"18C"},
				{"role":"tool","tool_call_id":"toolu_01B","content":[{"type":"text","text":"25C"}]},
				{"role":"tool","tool_call_id":"toolu_01C","content":""},
				{"role":"user","content":"Thanks. Tomorrow?"}],
				"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}}],
				"tool_choice":"auto","parallel_tool_calls":false}`,
		},
		{
			name: "images, documents and several text blocks keep the parts form",
			in: `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[
				{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
				{"type":"image","source":{"type":"url","url":"https://upload.wikimedia.org/a.jpg"}},
				{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}},
				{"type":"document","source":{"type":"text","media_type":"text/plain","data":"The grass is green."}},
				{"type":"text","text":"What are these?"}]}]}`,
			want: `{"model":"m","max_completion_tokens":9,"messages":[{"role":"user","content":[
				{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},
				{"type":"image_url","image_url":{"url":"https://upload.wikimedia.org/a.jpg"}},
				{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"document.pdf"}},
				{"type":"text","text":"The grass is green."},
				{"type":"text","text":"What are these?"}]}]}`,
		},
		{
			name: "tool_choice any is required",
			in:   `{"model":"m","max_tokens":1,"messages":[],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`,
			want: `{"model":"m","max_completion_tokens":1,"messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"}`,
		},
		{
			name: "tool_choice tool names the function",
			in:   `{"model":"m","max_tokens":1,"messages":[],"tools":[{"type":"custom","name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f"}}`,
			want: `{"model":"m","max_completion_tokens":1,"messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`,
		},
		{
			name: "tool_choice none",
			in:   `{"model":"m","max_tokens":1,"messages":[],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`,
			want: `{"model":"m","max_completion_tokens":1,"messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"none"}`,
		},
		{
			name: "an assistant turn with only thinking vanishes",
			in:   `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"redacted_thinking","data":"x"}]}]}`,
			want: `{"model":"m","max_completion_tokens":1,"messages":[{"role":"user","content":"a"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChatRequestFromMessages([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("chat request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatRequestFromMessagesErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not JSON", `{`, "not a valid Messages request"},
		{"content of the wrong type", `{"messages":[{"role":"user","content":7}]}`, "content must be a string or an array"},
		{"server tool", `{"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, `server tool "web_search_20250305"`},
		{"unknown user block", `{"messages":[{"role":"user","content":[{"type":"search_result"}]}]}`, `block type "search_result" is not supported in a user turn`},
		{"unknown assistant block", `{"messages":[{"role":"assistant","content":[{"type":"server_tool_use"}]}]}`, `"server_tool_use" is not supported in an assistant turn`},
		{"role", `{"messages":[{"role":"system","content":"x"}]}`, `role "system" is not supported`},
		{"image source", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, `image source type "file"`},
		{"image without source", `{"messages":[{"role":"user","content":[{"type":"image"}]}]}`, "image without a source"},
		{"system image", `{"system":[{"type":"image"}],"messages":[]}`, `system: block type "image"`},
		{"tool_choice", `{"messages":[],"tool_choice":{"type":"sometimes"}}`, `tool_choice type "sometimes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ChatRequestFromMessages([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// normalizeWire decodes an Anthropic request and re-encodes it with string content as blocks and
// tool inputs compact, so equivalent requests compare equal.
func normalizeWire(t *testing.T, data []byte) []byte {
	t.Helper()
	var r wireRequest
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	for i := range r.Messages {
		for j := range r.Messages[i].Content {
			b := &r.Messages[i].Content[j]
			if b.Type == "tool_result" && len(b.Content) > 0 {
				var c wireContent
				if err := json.Unmarshal(b.Content, &c); err != nil {
					t.Fatal(err)
				}
				b.Content = mustJSON(t, c)
			}
			if len(b.Input) > 0 {
				var buf bytes.Buffer
				if err := json.Compact(&buf, b.Input); err != nil {
					t.Fatal(err)
				}
				b.Input = buf.Bytes()
			}
		}
	}
	return mustJSON(t, r)
}

func TestRoundTripMessagesChatMessages(t *testing.T) {
	tests := []struct{ name, in string }{
		{"hello", `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, world"}]}`},
		{"system, sampling, stop, metadata, stream", `{"model":"m","max_tokens":300,"system":"You are a pirate.",
			"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Arr."},{"role":"user","content":[{"type":"text","text":"More"},{"type":"text","text":"please"}]}],
			"temperature":0.7,"top_p":0.9,"stop_sequences":["Human:"],"metadata":{"user_id":"u-1"},"stream":true}`},
		{"multi-turn parallel tool use", `{"model":"m","max_tokens":1024,
			"messages":[
				{"role":"user","content":"Weather in Paris and Tokyo?"},
				{"role":"assistant","content":[{"type":"text","text":"Checking."},
					{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"Paris"}},
					{"type":"tool_use","id":"toolu_01B","name":"get_weather","input":{"location":"Tokyo","unit":"celsius"}}]},
				{"role":"user","content":[
					{"type":"tool_result","tool_use_id":"toolu_01A","content":"18C"},
					{"type":"tool_result","tool_use_id":"toolu_01B","content":[{"type":"text","text":"25C"}]},
					{"type":"text","text":"Compare them."}]},
				{"role":"assistant","content":"Tokyo is warmer."}],
			"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"location":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}}],
			"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`},
		{"forced tool", `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}],
			"tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"tool","name":"f"}}`},
		{"tool_choice none", `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}],
			"tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"none"}}`},
		{"images", `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
			{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
			{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},
			{"type":"text","text":"Describe."}]}]}`},
		{"pdf", `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
			{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}},{"type":"text","text":"Summarize."}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chat, err := ChatRequestFromMessages([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			back, _, err := toWireRequest(chat, "")
			if err != nil {
				t.Fatalf("%v\nchat request: %s", err, chat)
			}
			if diff := jsonDiff(t, normalizeWire(t, []byte(tt.in)), normalizeWire(t, mustJSON(t, back))); diff != "" {
				t.Errorf("round trip (-original +back):\n%s\nchat request: %s", diff, chat)
			}
		})
	}
}

func TestMessagesResponseFromChat(t *testing.T) {
	tests := []struct {
		name, in, model, want string
	}{
		{
			name:  "text",
			model: "claude-alias",
			in: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Hi! How can I help?","refusal":null},"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0}}}`,
			want: `{"id":"chatcmpl-1","type":"message","role":"assistant","model":"claude-alias","content":[{"type":"text","text":"Hi! How can I help?"}],
				"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":19,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":10}}`,
		},
		{
			name: "parallel tool calls with cached prompt; the upstream model when none is given",
			in: `{"id":"chatcmpl-2","model":"gpt-4.1","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
					{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"Paris\"}"}},
					{"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]},"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":2000,"completion_tokens":30,"total_tokens":2030,"prompt_tokens_details":{"cached_tokens":1536,"cache_creation_tokens":64}}}`,
			want: `{"id":"chatcmpl-2","type":"message","role":"assistant","model":"gpt-4.1","content":[
					{"type":"tool_use","id":"call_a","name":"get_weather","input":{"location":"Paris"}},
					{"type":"tool_use","id":"call_b","name":"get_time","input":{}}],
				"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":400,"cache_creation_input_tokens":64,"cache_read_input_tokens":1536,"output_tokens":30}}`,
		},
		{
			name:  "length; content as parts; no usage",
			model: "m",
			in:    `{"id":"x","choices":[{"message":{"role":"assistant","content":[{"type":"text","text":"trunc"}]},"finish_reason":"length"}]}`,
			want: `{"id":"x","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"trunc"}],"stop_reason":"max_tokens","stop_sequence":null,
				"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
		},
		{
			name:  "content_filter is refusal; empty content is an empty list",
			model: "m",
			in:    `{"id":"x","choices":[{"message":{"role":"assistant","content":""},"finish_reason":"content_filter"}]}`,
			want: `{"id":"x","type":"message","role":"assistant","model":"m","content":[],"stop_reason":"refusal","stop_sequence":null,
				"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MessagesResponseFromChat([]byte(tt.in), tt.model)
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
	for name, in := range map[string]string{
		"no choices":       `{"id":"x","choices":[]}`,
		"not JSON":         `<html>`,
		"invalid tool arg": `{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{bad"}}]}}]}`,
	} {
		if _, err := MessagesResponseFromChat([]byte(in), "m"); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestErrorFromOpenAI(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"400", 400, `{"error":{"message":"Invalid 'messages[1].content'","type":"invalid_request_error","param":"messages[1].content","code":null}}`,
			`{"type":"error","error":{"type":"invalid_request_error","message":"Invalid 'messages[1].content'"}}`},
		{"401", 401, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			`{"type":"error","error":{"type":"authentication_error","message":"Incorrect API key provided"}}`},
		{"402", 402, `{"error":{"message":"pay up"}}`, `{"type":"error","error":{"type":"billing_error","message":"pay up"}}`},
		{"403", 403, `{"error":{"message":"nope"}}`, `{"type":"error","error":{"type":"permission_error","message":"nope"}}`},
		{"404", 404, `{"error":{"message":"The model 'gpt-9' does not exist","type":"invalid_request_error","code":"model_not_found"}}`,
			`{"type":"error","error":{"type":"not_found_error","message":"The model 'gpt-9' does not exist"}}`},
		{"413", 413, `{"error":{"message":"too big"}}`, `{"type":"error","error":{"type":"request_too_large","message":"too big"}}`},
		{"429", 429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`,
			`{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}`},
		{"500", 500, `{"error":{"message":"The server had an error","type":"server_error"}}`, `{"type":"error","error":{"type":"api_error","message":"The server had an error"}}`},
		{"503", 503, `{"error":{"message":"busy"}}`, `{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`},
		{"529", 529, `{"error":{"message":"busy"}}`, `{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`},
		{"504", 504, `{"error":{"message":"slow"}}`, `{"type":"error","error":{"type":"timeout_error","message":"slow"}}`},
		{"422 other 4xx", 422, `{"error":{"message":"bad"}}`, `{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`},
		{"string error", 400, `{"error":"model is required"}`, `{"type":"error","error":{"type":"invalid_request_error","message":"model is required"}}`},
		{"message only", 500, `{"message":"boom"}`, `{"type":"error","error":{"type":"api_error","message":"boom"}}`},
		{"plain text", 502, `Bad Gateway`, `{"type":"error","error":{"type":"api_error","message":"upstream returned 502: Bad Gateway"}}`},
		{"mid-stream rate limit", 0, `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`,
			`{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`},
		{"mid-stream overloaded (this package's own mapping)", 0, `{"error":{"message":"Overloaded","type":"server_error","code":"overloaded"}}`,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
		{"mid-stream invalid request", 0, `{"error":{"message":"bad","type":"invalid_request_error"}}`,
			`{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`},
		{"mid-stream quota", 0, `{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}`,
			`{"type":"error","error":{"type":"billing_error","message":"quota"}}`},
		{"mid-stream unknown", 0, `{"error":{"message":"?","type":"server_error","code":123}}`,
			`{"type":"error","error":{"type":"api_error","message":"?"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorFromOpenAI(tt.status, []byte(tt.body))
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("anthropic error (-want +got):\n%s", diff)
			}
		})
	}
}

// anthropicMessage accumulates an Anthropic event stream the way an Anthropic SDK does, checking
// the event order on the way.
func anthropicMessage(t *testing.T, stream []byte) (msg map[string]any, errEvent []byte) {
	t.Helper()
	var (
		blocks  []map[string]any
		partial = map[int]string{}
		open    = -1
		stopped bool
	)
	for i, ev := range collectEvents(t, bytes.NewReader(stream)) {
		var e map[string]any
		if err := json.Unmarshal(ev.data, &e); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if e["type"] != ev.name {
			t.Fatalf("event %d: name %q, data type %v", i, ev.name, e["type"])
		}
		if stopped {
			t.Fatalf("event %q after message_stop", ev.name)
		}
		if i == 0 && ev.name != "message_start" && ev.name != "error" {
			t.Fatalf("first event is %q", ev.name)
		}
		switch ev.name {
		case "message_start":
			msg = e["message"].(map[string]any)
		case "content_block_start":
			idx := int(e["index"].(float64))
			if idx != len(blocks) || open != -1 {
				t.Fatalf("content_block_start %d with %d blocks, block %d open", idx, len(blocks), open)
			}
			blocks = append(blocks, e["content_block"].(map[string]any))
			open = idx
		case "content_block_delta":
			idx := int(e["index"].(float64))
			d := e["delta"].(map[string]any)
			switch d["type"] {
			case "text_delta":
				blocks[idx]["text"] = blocks[idx]["text"].(string) + d["text"].(string)
			case "input_json_delta":
				partial[idx] += d["partial_json"].(string)
			}
		case "content_block_stop":
			idx := int(e["index"].(float64))
			if idx != open {
				t.Fatalf("content_block_stop %d, open %d", idx, open)
			}
			open = -1
			// No input bytes keep content_block_start's input ({}), as the SDKs do.
			if s, ok := partial[idx]; ok && s != "" {
				var input any
				if err := json.Unmarshal([]byte(s), &input); err != nil {
					t.Fatalf("tool input %q: %v", s, err)
				}
				blocks[idx]["input"] = input
			}
		case "message_delta":
			for k, v := range e["delta"].(map[string]any) {
				msg[k] = v
			}
			msg["usage"] = e["usage"]
		case "message_stop":
			stopped = true
		case "error":
			return msg, ev.data
		}
	}
	if !stopped {
		t.Fatal("no message_stop")
	}
	msg["content"] = blocks
	return msg, nil
}

func TestMessagesStreamFromChatGolden(t *testing.T) {
	in := fixture(t, "chat_stream_tools.sse")
	out, err := io.ReadAll(MessagesStreamFromChat(io.NopCloser(bytes.NewReader(in)), "claude-alias"))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "chat_stream_tools.messages.golden", out)

	msg, _ := anthropicMessage(t, out)
	want := map[string]any{
		"id": "chatcmpl-BvX1", "type": "message", "role": "assistant", "model": "claude-alias",
		"content": []map[string]any{
			{"type": "text", "text": "Checking both."},
			{"type": "tool_use", "id": "call_Paris", "name": "get_weather", "input": map[string]any{"location": "Paris"}},
			{"type": "tool_use", "id": "call_Tokyo", "name": "get_weather", "input": map[string]any{"location": "Tokyo"}},
		},
		"stop_reason": "tool_use", "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": 176.0, "cache_creation_input_tokens": 0.0, "cache_read_input_tokens": 1024.0, "output_tokens": 48.0},
	}
	if diff := cmp.Diff(want, msg); diff != "" {
		t.Errorf("accumulated message (-want +got):\n%s", diff)
	}

	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(in)),
		"crlf":     iotest.HalfReader(strings.NewReader(strings.ReplaceAll(string(in), "\n", "\r\n"))),
	} {
		other, err := readAllSmall(MessagesStreamFromChat(io.NopCloser(r), "claude-alias"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, other) {
			t.Errorf("%s: output differs", name)
		}
	}
}

func TestMessagesStreamFromChatEndings(t *testing.T) {
	const text = `data: {"id":"c1","model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}` + "\n\n"
	const finish = `data: {"id":"c1","model":"gpt","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}` + "\n\n"
	tests := []struct {
		name, in   string
		wantErr    error
		wantStop   string
		wantErrEvt string
	}{
		{name: "[DONE] without a finish reason", in: text + "data: [DONE]\n\n", wantStop: "end_turn"},
		{name: "no [DONE] after a finish reason is a normal end", in: text + finish, wantStop: "max_tokens"},
		{name: "cut before a finish reason", in: text, wantErr: io.ErrUnexpectedEOF},
		{name: "error event", in: text + `data: {"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}` + "\n\n",
			wantErrEvt: `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}`},
		{name: "empty stream", in: "data: [DONE]\n\n", wantStop: "end_turn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := io.ReadAll(MessagesStreamFromChat(io.NopCloser(strings.NewReader(tt.in)), ""))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if bytes.Contains(out, []byte("message_stop")) {
					t.Error("a cut stream must not end with message_stop")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			msg, errEvt := anthropicMessage(t, out)
			if tt.wantErrEvt != "" {
				if diff := jsonDiff(t, []byte(tt.wantErrEvt), errEvt); diff != "" {
					t.Errorf("error event (-want +got):\n%s", diff)
				}
				return
			}
			if msg["stop_reason"] != tt.wantStop {
				t.Errorf("stop_reason = %v, want %s", msg["stop_reason"], tt.wantStop)
			}
		})
	}
}

func TestMessagesStreamFromChatToolCallsWithoutIndex(t *testing.T) {
	// Some OpenAI-format servers send each call whole, without index.
	in := `data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"id":"call_1","type":"function","function":{"name":"a","arguments":"{\"x\":1}"}},{"id":"call_2","type":"function","function":{"name":"b","arguments":"{}"}}]}}]}` + "\n\n" +
		`data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\ndata: [DONE]\n\n"
	out, err := io.ReadAll(MessagesStreamFromChat(io.NopCloser(strings.NewReader(in)), "m"))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := anthropicMessage(t, out)
	want := []map[string]any{
		{"type": "tool_use", "id": "call_1", "name": "a", "input": map[string]any{"x": 1.0}},
		{"type": "tool_use", "id": "call_2", "name": "b", "input": map[string]any{}},
	}
	if diff := cmp.Diff(want, msg["content"]); diff != "" {
		t.Errorf("content (-want +got):\n%s", diff)
	}
}

// TestStreamChain runs the documented Anthropic streams through both translators: Anthropic →
// OpenAI chunks → Anthropic must give back the same message.
func TestStreamChain(t *testing.T) {
	for _, name := range []string{"stream_text.sse", "stream_tool_use.sse", "stream_parallel_tools.sse"} {
		t.Run(name, func(t *testing.T) {
			in := fixture(t, name)
			chain := MessagesStreamFromChat(newChatStream(io.NopCloser(bytes.NewReader(in)), true, testNow), "")
			out, err := io.ReadAll(chain)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := anthropicMessage(t, in)
			got, _ := anthropicMessage(t, out)
			// The original's usage and the chain's differ in shape (message_start vs message_delta);
			// compare what a client reads.
			for _, m := range []map[string]any{want, got} {
				delete(m, "usage")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("message after the chain (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMessagesStreamCloseClosesChat(t *testing.T) {
	up := newBody(strings.NewReader("data: [DONE]\n\n"))
	s := MessagesStreamFromChat(up, "m")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !up.closed.Load() {
		t.Error("Close did not close the chat stream")
	}
}
