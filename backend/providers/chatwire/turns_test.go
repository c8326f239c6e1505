package chatwire

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// textTurns folds messages into turns of plain strings: a user or assistant message gives its
// content string (an empty one no block), a tool result "result:<id>".
func textTurns(msgs []Message) (system []string, turns []Turn[string], err error) {
	turns, err = Turns(msgs, TurnBlocks[string]{
		System: func(p Part) { system = append(system, p.Text) },
		User: func(content json.RawMessage) ([]string, error) {
			var s string
			if err := json.Unmarshal(content, &s); err != nil {
				return nil, err
			}
			if s == "" {
				return nil, nil
			}
			return []string{s}, nil
		},
		Assistant: func(m Message) ([]string, error) {
			var s string
			_ = json.Unmarshal(m.Content, &s)
			if s == "" {
				return nil, nil
			}
			return []string{s}, nil
		},
		ToolResult: func(m Message) (string, error) {
			if m.ToolCallID == "" {
				return "", errors.New("tool result without tool_call_id")
			}
			return "result:" + m.ToolCallID, nil
		},
	})
	return system, turns, err
}

func msg(role, content string) Message {
	m := Message{Role: role}
	if content != "" {
		m.Content = json.RawMessage(content)
	}
	return m
}

func TestTurnsAlternateAndCollectTheSystemPrompt(t *testing.T) {
	msgs := []Message{
		msg("system", `"Be brief."`),
		msg("user", `"Weather in Paris and Tokyo?"`),
		msg("assistant", `""`), // only tool calls: no text block, an empty turn dropped
		{Role: "tool", ToolCallID: "call_1", Content: json.RawMessage(`"18C"`)},
		{Role: "tool", ToolCallID: "call_2", Content: json.RawMessage(`"25C"`)},
		msg("developer", `[{"type":"text","text":"Answer in French."}]`),
		msg("user", `"And Rome?"`),
		msg("assistant", `"Paris 18C, Tokyo 25C."`),
		msg("assistant", `"Rome: unknown."`),
	}
	system, turns, err := textTurns(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Be brief.", "Answer in French."}; !reflect.DeepEqual(system, want) {
		t.Errorf("system = %q, want %q", system, want)
	}
	want := []Turn[string]{
		{Role: "user", Blocks: []string{"Weather in Paris and Tokyo?", "result:call_1", "result:call_2", "And Rome?"}},
		{Role: "assistant", Blocks: []string{"Paris 18C, Tokyo 25C.", "Rome: unknown."}},
	}
	if !reflect.DeepEqual(turns, want) {
		t.Errorf("turns = %+v\nwant %+v", turns, want)
	}
}

func TestTurnsRefuseWhatTheyCannotCarry(t *testing.T) {
	for name, tc := range map[string]struct {
		msgs []Message
		want string
	}{
		"image in a system message": {[]Message{msg("system", `[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]`)},
			`messages[0]: a system message may only hold text, not "image_url"`},
		"unknown role":          {[]Message{msg("user", `"hi"`), msg("critic", `"no"`)}, `messages[1]: role "critic" is not supported`},
		"a converter's failure": {[]Message{{Role: "tool", Content: json.RawMessage(`"x"`)}}, "messages[0]: tool result without tool_call_id"},
		"bad content":           {[]Message{msg("user", `"hi"`), msg("user", `{"x":1}`)}, "messages[1]: "},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := textTurns(tc.msgs); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want one starting %q", err, tc.want)
			}
		})
	}
}
