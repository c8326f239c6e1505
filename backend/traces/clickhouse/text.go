package clickhouse

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"opentracy/backend/traces"
)

// The preview and the searchable text of a trace are those of traces.Preview and
// traces.SearchText, which decode the JSON into maps and slices. That costs most of the CPU of a
// large insert, so the common case (valid JSON, valid UTF-8) walks the JSON in place instead; the
// rest goes through the shared functions. TestFastTextMatchesShared holds the two together.

// previewAndSearch returns the trace list's preview of input and the lower-cased text of input
// and output that Query.Text searches.
func previewAndSearch(input, output []byte) (string, string) {
	var sb strings.Builder
	prev := ""
	if len(input) > 0 {
		r, text, ok := fastSearchText(input)
		if ok {
			prev = fastPreview(r)
		} else {
			prev, text = traces.Preview(input), traces.SearchText(input)
		}
		appendLine(&sb, text)
	}
	if len(output) > 0 {
		_, text, ok := fastSearchText(output)
		if !ok {
			text = traces.SearchText(output)
		}
		appendLine(&sb, text)
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

// fastSearchText parses raw and returns traces.SearchText's text, or false when raw is not
// something the in-place walk reads exactly as encoding/json does (or cheaply): invalid JSON,
// invalid UTF-8
// (encoding/json replaces it), escaped UTF-16 surrogates, deep nesting, an object with a
// repeated key (encoding/json keeps the last) or a number too large for float64 (encoding/json
// fails).
func fastSearchText(raw []byte) (gjson.Result, string, bool) {
	if !utf8.Valid(raw) || !shallowNoSurrogates(raw) || !gjson.ValidBytes(raw) {
		return gjson.Result{}, "", false
	}
	r := gjson.ParseBytes(raw)
	var sb strings.Builder
	if !fastText(&sb, r, "") {
		return gjson.Result{}, "", false
	}
	return r, sb.String(), true
}

// maxFastDepth bounds the nesting the in-place walk takes: each level re-scans what it holds,
// so a deeply nested document (which no chat message is) goes to the linear shared path.
const maxFastDepth = 64

// shallowNoSurrogates reports that raw nests at most maxFastDepth deep and has no \uD800–\uDFFF
// escape, paired or not (emoji escaped by an ASCII-only encoder: rare, and lone surrogates are
// replaced differently).
func shallowNoSurrogates(raw []byte) bool {
	depth, inString := 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch c {
			case '"':
				inString = false
			case '\\':
				if i+3 < len(raw) && raw[i+1] == 'u' && (raw[i+2] == 'd' || raw[i+2] == 'D') {
					switch raw[i+3] {
					case '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'A', 'B', 'C', 'D', 'E', 'F':
						return false
					}
				}
				i++ // the escaped character cannot end the string
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if depth++; depth > maxFastDepth {
				return false
			}
		case ']', '}':
			depth--
		}
	}
	return true
}

// fastText is traces.SearchText's walk over a parsed value: strings under "content", "text",
// "prompt" and "input" and bare top-level strings, one per line, with the same separators (the
// preview is built from them). Lines come in document order where the shared walk's order over
// object keys is random: a search matches each term anywhere, so the order does not matter. It
// returns false at an object with a repeated key or a number out of float64's range.
func fastText(sb *strings.Builder, r gjson.Result, key string) bool {
	ok := true
	switch {
	case r.Type == gjson.Number:
		// encoding/json rejects the whole document when a number overflows float64.
		_, err := strconv.ParseFloat(r.Raw, 64)
		ok = err == nil
	case r.Type == gjson.String:
		switch key {
		case "", "content", "text", "prompt", "input":
			if sb.Len() > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(r.Str)
		}
	case r.IsArray():
		r.ForEach(func(_, v gjson.Result) bool {
			ok = fastText(sb, v, key)
			return ok
		})
	case r.IsObject():
		var keys keySet
		r.ForEach(func(k, v gjson.Result) bool {
			ok = keys.add(k.Str) && fastText(sb, v, k.Str)
			return ok
		})
	}
	return ok
}

// keySet finds a repeated key among an object's keys without allocating for small objects.
type keySet struct {
	small [16]string
	n     int
	big   map[string]bool
}

// add reports false when k was added before.
func (s *keySet) add(k string) bool {
	if s.big != nil {
		if s.big[k] {
			return false
		}
		s.big[k] = true
		return true
	}
	for _, seen := range s.small[:s.n] {
		if seen == k {
			return false
		}
	}
	if s.n < len(s.small) {
		s.small[s.n] = k
		s.n++
		return true
	}
	s.big = make(map[string]bool, 2*len(s.small))
	for _, seen := range s.small {
		s.big[seen] = true
	}
	s.big[k] = true
	return true
}

// fastPreview is traces.Preview over a value that fastSearchText accepted.
func fastPreview(r gjson.Result) string {
	text := ""
	switch {
	case r.Type == gjson.String:
		text = r.Str
	case r.IsArray():
		elems := r.Array()
		for i := len(elems) - 1; i >= 0; i-- {
			if !elems[i].IsObject() {
				continue
			}
			var role, content gjson.Result
			elems[i].ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "role":
					role = v
				case "content":
					content = v
				}
				return true
			})
			if role.Type != gjson.String || role.Str != "user" {
				continue
			}
			var sb strings.Builder
			fastText(&sb, content, "content")
			text = sb.String()
			break
		}
		if last := len(elems) - 1; text == "" && last >= 0 && elems[last].Type == gjson.String {
			text = elems[last].Str
		}
	}
	return truncateRunes(strings.TrimSpace(text), traces.PreviewRunes)
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
