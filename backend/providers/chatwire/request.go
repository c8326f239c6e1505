package chatwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ParseDataURL splits "data:<media type>;base64,<data>".
func ParseDataURL(u string) (mediaType, data string, err error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", "", errors.New("not a data: URL")
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", errors.New("data: URL without data")
	}
	mediaType, ok = strings.CutSuffix(meta, ";base64")
	if !ok || mediaType == "" {
		return "", "", errors.New("data: URL must be base64 with a media type (data:image/png;base64,...)")
	}
	return mediaType, data, nil
}

// ToolInput parses a tool call's arguments string into the JSON object upstreams want as a tool
// call's input; empty or null arguments give the empty object.
func ToolInput(args string) (json.RawMessage, error) {
	args = strings.TrimSpace(args)
	if args == "" || args == "null" {
		return json.RawMessage("{}"), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(args)); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if buf.Bytes()[0] != '{' {
		return nil, errors.New("must be a JSON object")
	}
	return buf.Bytes(), nil
}

// ToolID makes a tool call id acceptable to upstreams that allow only ^[a-zA-Z0-9_-]+$.
// OpenAI-format clients mint ids with other characters; the same mapping applies to a call and
// to its result, so they still pair.
func ToolID(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, id)
}

// StopSequences reads stop: a string or an array of strings. Empty strings are dropped:
// upstreams reject them, OpenAI ignores them.
func StopSequences(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var list []string
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("stop: %w", err)
		}
		list = []string{s}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("stop must be a string or an array of strings: %w", err)
	}
	out := list[:0]
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ParseToolChoice reads tool_choice: mode is "" when absent, else "auto", "required", "none" or
// "function", with the function's name in name.
func ParseToolChoice(raw json.RawMessage) (mode, name string, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", "", fmt.Errorf("tool_choice: %w", err)
		}
		switch s {
		case "auto", "required", "none":
			return s, "", nil
		}
		return "", "", fmt.Errorf("tool_choice %q is not supported (use auto, required, none or a function)", s)
	}
	var fn ToolChoiceFunction
	if err := json.Unmarshal(raw, &fn); err != nil {
		return "", "", fmt.Errorf("tool_choice: %w", err)
	}
	if fn.Type != "function" || fn.Function.Name == "" {
		return "", "", errors.New(`tool_choice must name a function: {"type":"function","function":{"name":...}}`)
	}
	return "function", fn.Function.Name, nil
}

// ResponseFormatInstruction is the best an upstream without a JSON mode can do for
// response_format: a system instruction, for the caller to append after the client's own,
// asking for JSON, with the schema when one is given. The answer is not validated.
func ResponseFormatInstruction(rf *ResponseFormat) string {
	const plain = "Respond with a single valid JSON object and nothing else: no prose, no code fences."
	if rf == nil {
		return ""
	}
	switch rf.Type {
	case "json_object":
		return plain
	case "json_schema":
		if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
			return plain
		}
		var schema bytes.Buffer
		if err := json.Compact(&schema, rf.JSONSchema.Schema); err != nil {
			schema.Reset()
			schema.Write(rf.JSONSchema.Schema)
		}
		return "Respond with a single valid JSON object that conforms to this JSON schema, and nothing else: no prose, no code fences.\nSchema: " + schema.String()
	}
	return ""
}
