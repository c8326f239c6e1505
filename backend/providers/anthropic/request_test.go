package anthropic

import (
	"strings"
	"testing"
)

func TestToWireRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		// includeUsage is what the response side must remember.
		includeUsage bool
	}{
		{
			name: "minimal: default max_tokens, model from the route, string content as a text block",
			in:   `{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}]}`,
		},
		{
			name: "system and developer messages merge in order into system, wherever they are",
			in: `{"messages":[
				{"role":"system","content":"You are terse."},
				{"role":"user","content":"Hi"},
				{"role":"developer","content":[{"type":"text","text":"Answer in French."},{"type":"text","text":"No emoji.","cache_control":{"type":"ephemeral"}}]},
				{"role":"assistant","content":"Salut"}]}`,
			want: `{"model":"claude-target","max_tokens":4096,
				"system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in French."},{"type":"text","text":"No emoji.","cache_control":{"type":"ephemeral"}}],
				"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]},{"role":"assistant","content":[{"type":"text","text":"Salut"}]}]}`,
		},
		{
			name: "consecutive messages of one role merge; empty messages vanish",
			in: `{"messages":[
				{"role":"user","content":"one"},
				{"role":"user","content":[{"type":"text","text":"two"},{"type":"text","text":""}]},
				{"role":"assistant","content":""},
				{"role":"assistant","content":"a"},
				{"role":"assistant","content":[{"type":"text","text":"b"},{"type":"refusal","refusal":"no"}]},
				{"role":"user","content":"three"}]}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[
				{"role":"user","content":[{"type":"text","text":"one"},{"type":"text","text":"two"}]},
				{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
				{"role":"user","content":[{"type":"text","text":"three"}]}]}`,
		},
		{
			name: "images: data URL inline, http URL by reference, detail dropped, cache_control kept",
			in: `{"messages":[{"role":"user","content":[
				{"type":"text","text":"Compare these."},
				{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}},
				{"type":"image_url","image_url":{"url":"https://upload.wikimedia.org/cat.jpg"},"cache_control":{"type":"ephemeral"}},
				{"type":"image_url","image_url":{"url":"http://example.com/dog.webp"}}]}]}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[
				{"type":"text","text":"Compare these."},
				{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
				{"type":"image","source":{"type":"url","url":"https://upload.wikimedia.org/cat.jpg"},"cache_control":{"type":"ephemeral"}},
				{"type":"image","source":{"type":"url","url":"http://example.com/dog.webp"}}]}]}`,
		},
		{
			name: "file part with file_data becomes a document",
			in:   `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}},{"type":"text","text":"Summarize"}]}]}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[
				{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}},{"type":"text","text":"Summarize"}]}]}`,
		},
		{
			name: "multi-turn tool use with parallel calls: tool results grouped into one user turn",
			in: `{"messages":[
				{"role":"user","content":"Weather in Paris and Tokyo?"},
				{"role":"assistant","content":null,"tool_calls":[
					{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"Paris\"}"}},
					{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\n  \"location\": \"Tokyo\"\n}"}}]},
				{"role":"tool","tool_call_id":"call_1","content":"18C, sunny"},
				{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"25C"},{"type":"text","text":"humid"}]},
				{"role":"user","content":"And tomorrow?"},
				{"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call_3","type":"function","function":{"name":"get_forecast","arguments":""}}]},
				{"role":"tool","tool_call_id":"call_3","content":""}],
				"tools":[
					{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}},
					{"type":"function","function":{"name":"get_forecast"}}],
				"tool_choice":"auto"}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[
				{"role":"user","content":[{"type":"text","text":"Weather in Paris and Tokyo?"}]},
				{"role":"assistant","content":[
					{"type":"tool_use","id":"call_1","name":"get_weather","input":{"location":"Paris"}},
					{"type":"tool_use","id":"call_2","name":"get_weather","input":{"location":"Tokyo"}}]},
				{"role":"user","content":[
					{"type":"tool_result","tool_use_id":"call_1","content":"18C, sunny"},
					{"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"25C"},{"type":"text","text":"humid"}]},
					{"type":"text","text":"And tomorrow?"}]},
				{"role":"assistant","content":[
					{"type":"text","text":"Let me check."},
					{"type":"tool_use","id":"call_3","name":"get_forecast","input":{}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_3"}]}],
				"tools":[
					{"name":"get_weather","description":"Current weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}},
					{"name":"get_forecast","input_schema":{"type":"object","properties":{}}}],
				"tool_choice":{"type":"auto"}}`,
		},
		{
			name: "tool call ids with characters Anthropic refuses are mapped the same on both sides",
			in: `{"messages":[
				{"role":"user","content":"x"},
				{"role":"assistant","tool_calls":[{"id":"call:a.b/1","type":"function","function":{"name":"f","arguments":"{}"}}]},
				{"role":"tool","tool_call_id":"call:a.b/1","content":"ok"}]}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[
				{"role":"user","content":[{"type":"text","text":"x"}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"call_a_b_1","name":"f","input":{}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_a_b_1","content":"ok"}]}]}`,
		},
		{
			name: "stop as a string",
			in:   `{"messages":[{"role":"user","content":"x"}],"stop":"END"}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"stop_sequences":["END"]}`,
		},
		{
			name: "stop as an array, empty entries dropped",
			in:   `{"messages":[{"role":"user","content":"x"}],"stop":["END","","###"]}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"stop_sequences":["END","###"]}`,
		},
		{
			name: "stop null",
			in:   `{"messages":[{"role":"user","content":"x"}],"stop":null}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "max_completion_tokens wins over max_tokens",
			in:   `{"messages":[{"role":"user","content":"x"}],"max_tokens":100,"max_completion_tokens":200}`,
			want: `{"model":"claude-target","max_tokens":200,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "max_tokens alone",
			in:   `{"messages":[{"role":"user","content":"x"}],"max_tokens":100}`,
			want: `{"model":"claude-target","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "temperature above 1 is clamped, top_p passes",
			in:   `{"messages":[{"role":"user","content":"x"}],"temperature":1.7,"top_p":0.9}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"temperature":1,"top_p":0.9}`,
		},
		{
			name: "temperature below 0 is clamped",
			in:   `{"messages":[{"role":"user","content":"x"}],"temperature":-0.5}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"temperature":0}`,
		},
		{
			name: "temperature in range passes, zero included",
			in:   `{"messages":[{"role":"user","content":"x"}],"temperature":0}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"temperature":0}`,
		},
		{
			name: "tool_choice required is any",
			in:   `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`,
		},
		{
			name: "tool_choice none",
			in:   `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"none","parallel_tool_calls":false}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`,
		},
		{
			name: "tool_choice naming a function is tool",
			in:   `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f"}}`,
		},
		{
			name: "parallel_tool_calls false without tool_choice is auto without parallel use",
			in:   `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"parallel_tool_calls":false}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
		},
		{
			name: "parallel_tool_calls false with required",
			in:   `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required","parallel_tool_calls":false}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`,
		},
		{
			name: "parallel_tool_calls true changes nothing",
			in:   `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"parallel_tool_calls":true}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}`,
		},
		{
			name: "tool_choice without tools is left out",
			in:   `{"messages":[{"role":"user","content":"x"}],"tool_choice":"required","parallel_tool_calls":false}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "reasoning_effort low with room to spare",
			in:   `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"low","max_tokens":8000}`,
			want: `{"model":"claude-target","max_tokens":8000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"enabled","budget_tokens":1024}}`,
		},
		{
			name: "reasoning_effort medium raises max_tokens above the budget and drops sampling Anthropic refuses",
			in:   `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium","max_completion_tokens":2000,"temperature":0.2,"top_p":0.5}`,
			want: `{"model":"claude-target","max_tokens":6096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"enabled","budget_tokens":4096}}`,
		},
		{
			name: "reasoning_effort high with the default max_tokens",
			in:   `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","temperature":1,"top_p":0.97}`,
			want: `{"model":"claude-target","max_tokens":20480,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"temperature":1,"top_p":0.97,"thinking":{"type":"enabled","budget_tokens":16384}}`,
		},
		{
			name: "reasoning_effort minimal is the smallest budget",
			in:   `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"minimal"}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"enabled","budget_tokens":1024}}`,
		},
		{
			name: "reasoning_effort none is no thinking",
			in:   `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"none"}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "response_format json_object appends an instruction after the system prompt",
			in:   `{"messages":[{"role":"system","content":"Extract."},{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`,
			want: `{"model":"claude-target","max_tokens":4096,"system":[{"type":"text","text":"Extract."},{"type":"text","text":"Respond with a single valid JSON object and nothing else: no prose, no code fences."}],
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "response_format json_schema carries the schema",
			in: `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,
				"schema":{"type":"object", "properties":{"name":{"type":"string"}}}}}}`,
			want: `{"model":"claude-target","max_tokens":4096,"system":[{"type":"text","text":"Respond with a single valid JSON object that conforms to this JSON schema, and nothing else: no prose, no code fences.\nSchema: {\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}"}],
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name: "response_format text changes nothing",
			in:   `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}}`,
			want: `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name:         "user, stream and n=1 translate; untranslatable fields are dropped",
			in:           `{"messages":[{"role":"user","content":"x","name":"bob"}],"user":"user-42","stream":true,"stream_options":{"include_usage":true},"n":1,"seed":7,"logprobs":true,"top_logprobs":2,"frequency_penalty":0.5,"presence_penalty":0.1,"logit_bias":{"50256":-100},"service_tier":"auto","store":true}`,
			want:         `{"model":"claude-target","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"metadata":{"user_id":"user-42"},"stream":true}`,
			includeUsage: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, opts, err := toWireRequest([]byte(tt.in), "claude-target")
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonDiff(t, []byte(tt.want), mustJSON(t, got)); diff != "" {
				t.Errorf("anthropic request (-want +got):\n%s", diff)
			}
			if opts.includeUsage != tt.includeUsage {
				t.Errorf("includeUsage = %v, want %v", opts.includeUsage, tt.includeUsage)
			}
		})
	}
}

func TestToWireRequestModelFallback(t *testing.T) {
	got, _, err := toWireRequest([]byte(`{"model":"claude-x","messages":[]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Model != "claude-x" {
		t.Errorf("model = %q, want the body's when no target is given", got.Model)
	}
}

func TestToWireRequestErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not JSON", `{"messages":`, "not a valid chat-completions request"},
		{"n>1", `{"messages":[{"role":"user","content":"x"}],"n":2}`, "n>1 is not supported by Anthropic"},
		{"tool call arguments not JSON", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\": 1"}}]}]}`,
			"messages[0]: tool_calls[0].function.arguments: not valid JSON"},
		{"tool call arguments not an object", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`,
			"must be a JSON object"},
		{"image URL scheme", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "data: URL or an http(s) URL"},
		{"data URL not base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "must be base64"},
		{"image without URL", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, "without a url"},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}`, `content part type "input_audio" is not supported`},
		{"file by id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "file_id is not supported"},
		{"legacy function role", `{"messages":[{"role":"function","name":"f","content":"x"}]}`, `role "function" is not supported`},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "may only hold text"},
		{"content of the wrong type", `{"messages":[{"role":"user","content":42}]}`, "content must be a string or an array"},
		{"non-function tool", `{"messages":[],"tools":[{"type":"custom","custom":{"name":"x"}}]}`, `tool type "custom" is not supported`},
		{"unknown tool_choice", `{"messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`, `tool_choice "sometimes"`},
		{"tool_choice without a name", `{"messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"allowed_tools"}}`, "tool_choice must name a function"},
		{"unknown reasoning_effort", `{"messages":[],"reasoning_effort":"extreme"}`, `reasoning_effort "extreme"`},
		{"stop of the wrong type", `{"messages":[],"stop":5}`, "stop must be a string or an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := toWireRequest([]byte(tt.in), "m")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
