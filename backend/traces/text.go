package traces

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// PreviewRunes bounds Summary.Preview.
const PreviewRunes = 200

// SearchText returns the human text of a message, a choices array, a prompt string or an
// embeddings input: strings under "content", "text", "prompt" and "input" and bare top-level
// strings, one per line. Invalid UTF-8 comes back as U+FFFD (encoding/json's decoding).
func SearchText(raw []byte) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		// Not JSON: index it as text.
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	var sb strings.Builder
	collectText(&sb, v, "")
	return sb.String()
}

func collectText(sb *strings.Builder, v any, key string) {
	switch v := v.(type) {
	case string:
		switch key {
		case "", "content", "text", "prompt", "input":
			if sb.Len() > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(v)
		}
	case []any:
		for _, e := range v {
			collectText(sb, e, key)
		}
	case map[string]any:
		for k, e := range v {
			collectText(sb, e, k)
		}
	}
}

// Preview is the start of the last user message of a messages array, or of a prompt string.
func Preview(input []byte) string {
	if len(input) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(input, &v); err != nil {
		return ""
	}
	text := ""
	switch v := v.(type) {
	case string:
		text = v
	case []any:
		for i := len(v) - 1; i >= 0; i-- {
			m, ok := v[i].(map[string]any)
			if !ok || m["role"] != "user" {
				continue
			}
			var sb strings.Builder
			collectText(&sb, m["content"], "content")
			text = sb.String()
			break
		}
		if text == "" && len(v) > 0 {
			if s, ok := v[len(v)-1].(string); ok {
				text = s
			}
		}
	}
	return truncateRunes(strings.TrimSpace(text), PreviewRunes)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

// SummaryOf is t as a row of the trace list.
func SummaryOf(t *Trace) Summary {
	return Summary{
		ID: t.ID, StartedAt: t.StartedAt, Endpoint: t.Endpoint, RequestedModel: t.RequestedModel,
		Alias: t.Alias, Model: t.Model, Provider: t.Provider, Status: t.Status, Error: t.Error,
		Stream: t.Stream, LatencyMillis: t.LatencyMillis, TTFTMillis: t.TTFTMillis, Usage: t.Usage,
		CostUSD: t.CostUSD, Preview: Preview(t.Input),
	}
}
