package clickhouse

import (
	"strings"

	"opentracy/backend/traces"
)

// previewAndSearch returns the trace list's preview of input and the lower-cased text of input
// and output that Query.Text searches.
func previewAndSearch(input, output []byte) (string, string) {
	var sb strings.Builder
	prev := ""
	if len(input) > 0 {
		prev = traces.Preview(input)
		appendLine(&sb, traces.SearchText(input))
	}
	if len(output) > 0 {
		appendLine(&sb, traces.SearchText(output))
	}
	return prev, strings.ToLower(sb.String())
}

// appendLine adds s as a line of its own.
func appendLine(sb *strings.Builder, s string) {
	if s == "" {
		return
	}
	if sb.Len() > 0 {
		sb.WriteByte('\n')
	}
	sb.WriteString(s)
}
