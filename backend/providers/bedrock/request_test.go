package bedrock

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"opentracy/backend/providers"
)

func TestToConverse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     string
		wantOpts streamOptions
	}{
		{
			name: "system and developer messages join the system prompt in order",
			in: `{"model":"x","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},
				{"role":"developer","content":[{"type":"text","text":"Answer in French."}]}]}`,
			want: `{"system":[{"text":"Be brief."},{"text":"Answer in French."}],
				"messages":[{"role":"user","content":[{"text":"Hi"}]}]}`,
		},
		{
			name: "consecutive turns of one role merge, empty messages are dropped",
			in: `{"messages":[{"role":"user","content":"one"},{"role":"user","content":[{"type":"text","text":"two"},{"type":"text","text":""}]},
				{"role":"assistant","content":""},{"role":"assistant","content":"three"},{"role":"user","content":null}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"one"},{"text":"two"}]},{"role":"assistant","content":[{"text":"three"}]}]}`,
		},
		{
			name: "data URL images are sent inline",
			in: `{"messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},
				{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}},
				{"type":"image_url","image_url":{"url":"data:image/jpg;base64,/9j/4AAQ"}}]}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"What is this?"},
				{"image":{"format":"png","source":{"bytes":"iVBORw0KGgo="}}},
				{"image":{"format":"jpeg","source":{"bytes":"/9j/4AAQ"}}}]}]}`,
		},
		{
			name: "file parts become named documents",
			in: `{"messages":[{"role":"user","content":[
				{"type":"file","file":{"filename":"Q3 report (final).pdf","file_data":"data:application/pdf;base64,JVBERi0x"}},
				{"type":"file","file":{"filename":"Q3 report (final).pdf","file_data":"data:application/pdf;base64,JVBERi0y"}},
				{"type":"file","file":{"file_data":"data:text/csv;base64,YSxiCg=="}}]}]}`,
			want: `{"messages":[{"role":"user","content":[
				{"document":{"format":"pdf","name":"Q3 report (final)","source":{"bytes":"JVBERi0x"}}},
				{"document":{"format":"pdf","name":"Q3 report (final) 2","source":{"bytes":"JVBERi0y"}}},
				{"document":{"format":"csv","name":"document","source":{"bytes":"YSxiCg=="}}}]}]}`,
		},
		{
			name: "tool calls become toolUse, tool messages grouped toolResult blocks in one user turn",
			in: `{"messages":[{"role":"user","content":"Weather in Paris and Tokyo?"},
				{"role":"assistant","content":"Checking.","tool_calls":[
					{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"Paris\"}"}},
					{"id":"call:2","type":"function","function":{"name":"get_weather","arguments":""}}]},
				{"role":"tool","tool_call_id":"call_1","content":"18C"},
				{"role":"tool","tool_call_id":"call:2","content":[{"type":"text","text":"25C"},{"type":"text","text":"sunny"}]},
				{"role":"tool","tool_call_id":"call_3","content":""},
				{"role":"user","content":"Thanks"}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Weather in Paris and Tokyo?"}]},
				{"role":"assistant","content":[{"text":"Checking."},
					{"toolUse":{"toolUseId":"call_1","name":"get_weather","input":{"location":"Paris"}}},
					{"toolUse":{"toolUseId":"call_2","name":"get_weather","input":{}}}]},
				{"role":"user","content":[
					{"toolResult":{"toolUseId":"call_1","content":[{"text":"18C"}]}},
					{"toolResult":{"toolUseId":"call_2","content":[{"text":"25C"},{"text":"sunny"}]}},
					{"toolResult":{"toolUseId":"call_3","content":[]}},
					{"text":"Thanks"}]}]}`,
		},
		{
			name: "inference config: max_completion_tokens wins, stop as a string",
			in:   `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":100,"max_completion_tokens":300,"temperature":1.5,"top_p":0.9,"stop":"END"}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}],
				"inferenceConfig":{"maxTokens":300,"temperature":1.5,"topP":0.9,"stopSequences":["END"]}}`,
		},
		{
			name: "inference config: max_tokens, stop list without empty entries",
			in:   `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":100,"stop":["a","","b"]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"inferenceConfig":{"maxTokens":100,"stopSequences":["a","b"]}}`,
		},
		{
			name: "tools with tool_choice auto; a function without parameters gets an empty object schema",
			in: `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"auto","parallel_tool_calls":false,"tools":[
				{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}},
				{"type":"function","function":{"name":"get_time"}}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"toolConfig":{"tools":[
				{"toolSpec":{"name":"get_weather","description":"Current weather","inputSchema":{"json":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}},
				{"toolSpec":{"name":"get_time","inputSchema":{"json":{"type":"object","properties":{}}}}}],
				"toolChoice":{"auto":{}}}}`,
		},
		{
			name: "tool_choice required is any",
			in:   `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"required","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object"}}}}],"toolChoice":{"any":{}}}}`,
		},
		{
			name: "tool_choice naming a function is tool",
			in:   `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":{"type":"function","function":{"name":"f"}},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object"}}}}],"toolChoice":{"tool":{"name":"f"}}}}`,
		},
		{
			name: "tool_choice none leaves the tools out",
			in:   `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}`,
		},
		{
			name: "tool_choice without tools is dropped",
			in:   `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"required"}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}`,
		},
		{
			name: "cache_control adds a cache point after the part",
			in: `{"messages":[{"role":"system","content":[{"type":"text","text":"Long manual","cache_control":{"type":"ephemeral"}}]},
				{"role":"user","content":[{"type":"text","text":"Long document","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Question"}]}]}`,
			want: `{"system":[{"text":"Long manual"},{"cachePoint":{"type":"default"}}],
				"messages":[{"role":"user","content":[{"text":"Long document"},{"cachePoint":{"type":"default"}},{"text":"Question"}]}]}`,
		},
		{
			name: "response_format json_schema becomes a system instruction",
			in: `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],
				"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object", "properties":{}}}}}`,
			want: `{"system":[{"text":"Be brief."},{"text":"Respond with a single valid JSON object that conforms to this JSON schema, and nothing else: no prose, no code fences.\nSchema: {\"type\":\"object\",\"properties\":{}}"}],
				"messages":[{"role":"user","content":[{"text":"Hi"}]}]}`,
		},
		{
			name: "unknown and untranslatable fields are dropped",
			in: `{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello","reasoning_content":"thought"}],"reasoning_effort":"high",
				"user":"u-1","seed":7,"logprobs":true,"presence_penalty":0.5,"frequency_penalty":0.5,"logit_bias":{"1":2},"n":1,"service_tier":"auto","store":true,"metadata":{"a":"b"}}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]},{"role":"assistant","content":[{"text":"Hello"}]}]}`,
		},
		{
			name:     "stream options are remembered",
			in:       `{"messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
			want:     `{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}`,
			wantOpts: streamOptions{stream: true, includeUsage: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, opts, err := toConverse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := providers.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonDiff(t, []byte(tt.want), got); diff != "" {
				t.Errorf("converse request (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOpts, opts, cmp.AllowUnexported(streamOptions{})); diff != "" {
				t.Errorf("stream options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToConverseErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"not JSON", `{"messages":`, "not a valid chat-completions request"},
		{"n > 1", `{"messages":[{"role":"user","content":"Hi"}],"n":2}`, "n>1 is not supported"},
		{"http image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`, "Bedrock needs images inline"},
		{"image without url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, "without a url"},
		{"unsupported image type", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}`, `"image/bmp" is not supported`},
		{"data URL not base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "must be base64"},
		{"file by id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "file_id is not supported"},
		{"unsupported document type", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/zip;base64,UEs="}}]}]}`, `"application/zip" is not supported`},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}`, `"input_audio" is not supported`},
		{"image in system message", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,x"}}]}]}`, "may only hold text"},
		{"unknown role", `{"messages":[{"role":"function","content":"x"}]}`, `role "function" is not supported`},
		{"tool arguments not JSON", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}`, "not valid JSON"},
		{"tool arguments not an object", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "must be a JSON object"},
		{"content of a wrong type", `{"messages":[{"role":"user","content":42}]}`, "content must be a string or an array"},
		{"stop of a wrong type", `{"messages":[{"role":"user","content":"Hi"}],"stop":7}`, "stop must be a string or an array"},
		{"non-function tool", `{"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"web_search"}]}`, `tool type "web_search" is not supported`},
		{"unknown tool_choice", `{"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`, `tool_choice "sometimes" is not supported`},
		{"tool_choice without a name", `{"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function"}}`, "tool_choice must name a function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := toConverse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestEscapeModelID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"amazon.nova-lite-v1:0", "amazon.nova-lite-v1%3A0"},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
			"arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-2-1b-instruct-v1%3A0"},
		{"a b~c", "a%20b~c"},
	}
	for _, tt := range tests {
		if got := escapeModelID(tt.in); got != tt.want {
			t.Errorf("escapeModelID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
