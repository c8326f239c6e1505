package chat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The Llama 3.1 template (tools, dates, ipython) ships in no npm package, so these expectations
// are written out by hand from the template's text, one feature at a time.

const (
	sysHeader  = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
	userHeader = "<|start_header_id|>user<|end_header_id|>\n\n"
	asstHeader = "<|start_header_id|>assistant<|end_header_id|>\n\n"
	toolFormat = `Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.` + "\n\n"
	timeTool4  = "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_time\",\n" +
		"        \"description\": \"Current time <UTC> & zone\",\n        \"parameters\": {\n" +
		"            \"type\": \"object\",\n            \"properties\": {},\n            \"required\": []\n        }\n    }\n}"
)

func TestLlama31(t *testing.T) {
	tools := []json.RawMessage{timeTool}
	toolTurns := []Message{
		{Role: "system", Content: " Be exact. "},
		{Role: "user", Content: "What time is it?\n"},
		{Role: "assistant", ToolCalls: []ToolCall{call("get_time", `"{\"zone\": \"UTC\", \"fmt\": [24]}"`)}},
		{Role: "tool", Content: "12:00 \"noon\""},
	}
	for _, tc := range []struct {
		name string
		msgs []Message
		opts Options
		want string
	}{
		{
			"system and user",
			[]Message{{Role: "system", Content: "You are helpful.\n"}, {Role: "user", Content: " Hi "}},
			Options{AddGenerationPrompt: true},
			sysHeader + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are helpful.<|eot_id|>" +
				userHeader + "Hi<|eot_id|>" + asstHeader,
		},
		{
			"default system turn, answer, no prompt",
			[]Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello!"}},
			Options{DateString: "01 Jan 2025"},
			sysHeader + "Cutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\n<|eot_id|>" +
				userHeader + "Hi<|eot_id|>" + asstHeader + "Hello!<|eot_id|>",
		},
		{
			"tools in the first user turn, call and result",
			toolTurns,
			Options{AddGenerationPrompt: true, Tools: tools},
			sysHeader + "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe exact.<|eot_id|>" +
				userHeader + "Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n" +
				toolFormat + timeTool4 + "\n\nWhat time is it?<|eot_id|>" +
				asstHeader + `{"name": "get_time", "parameters": {"zone": "UTC", "fmt": [24]}}<|eot_id|>` +
				"<|start_header_id|>ipython<|end_header_id|>\n\n\"12:00 \\\"noon\\\"\"<|eot_id|>" + asstHeader,
		},
		{
			"tools in the system turn",
			toolTurns[:2],
			Options{Tools: tools, ToolsInSystemMessage: true},
			sysHeader + "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
				"You have access to the following functions. To call a function, please respond with JSON for a function call." +
				toolFormat + timeTool4 + "\n\nBe exact.<|eot_id|>" + userHeader + "What time is it?<|eot_id|>",
		},
		{
			"empty tool list still sets the environment",
			[]Message{{Role: "user", Content: "x"}},
			Options{Tools: []json.RawMessage{}},
			sysHeader + "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>" +
				userHeader + "Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n" +
				toolFormat + "x<|eot_id|>",
		},
	} {
		got, err := Llama31().Render(tc.msgs, tc.opts)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got: %q\nwant: %q", tc.name, got, tc.want)
		}
	}
}

func TestLlama31Errors(t *testing.T) {
	two := Message{Role: "assistant", ToolCalls: []ToolCall{call("a", `"{}"`), call("b", `"{}"`)}}
	if _, err := Llama31().Render([]Message{{Role: "user", Content: "x"}, two}, Options{}); err == nil {
		t.Error("two tool calls in one turn were accepted")
	}
	if _, err := Llama31().Render([]Message{{Role: "system", Content: "s"}}, Options{Tools: []json.RawMessage{timeTool}}); err == nil {
		t.Error("tools without a user turn were accepted")
	}
	bad := Message{Role: "assistant", ToolCalls: []ToolCall{call("a", `"not json"`)}}
	if _, err := Llama31().Render([]Message{{Role: "user", Content: "x"}, bad}, Options{}); err == nil {
		t.Error("arguments that are not JSON were accepted")
	}
}

// Llama 3.2 and 3.3 templates date the system turn today unless told otherwise.
func TestLlama32DefaultsToToday(t *testing.T) {
	tpl, _, err := Detect("{{- bos_token }}<|start_header_id|>{%- set date_string = strftime_now(\"%d %b %Y\") %}Cutting Knowledge Date")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Format("02 Jan 2006")
	got, err := tpl.Render([]Message{{Role: "user", Content: "x"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if after := time.Now().Format("02 Jan 2006"); !strings.Contains(got, "Today Date: "+before) && !strings.Contains(got, "Today Date: "+after) {
		t.Errorf("%q has not today's date", got)
	}
}
