package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// pyJSON re-serializes JSON the way the templates' tojson filter does in transformers:
// Python's json.dumps(x, ensure_ascii=False) with its default separators (", " and ": ", or ","
// and ": " with an indent), keys in their original order. Numbers keep their literal text, so
// JSON that Python would re-format (1e5 → 100000.0) is the one case that can differ.
func pyJSON(raw json.RawMessage, indent int) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	if err := writePyValue(&b, dec, indent, 0); err != nil {
		return "", fmt.Errorf("tojson: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", fmt.Errorf("tojson: trailing data after the value")
	}
	return b.String(), nil
}

func writePyValue(b *strings.Builder, dec *json.Decoder, indent, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	newline := func(d int) {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat(" ", indent*d))
	}
	switch v := tok.(type) {
	case json.Delim:
		closing := map[json.Delim]byte{'{': '}', '[': ']'}[v]
		b.WriteByte(byte(v))
		first := true
		for dec.More() {
			if !first {
				if indent > 0 {
					b.WriteByte(',')
				} else {
					b.WriteString(", ")
				}
			}
			if indent > 0 {
				newline(depth + 1)
			}
			first = false
			if v == '{' {
				key, err := dec.Token()
				if err != nil {
					return err
				}
				ks, ok := key.(string)
				if !ok {
					return fmt.Errorf("object key %v is not a string", key)
				}
				writePyString(b, ks)
				b.WriteString(": ")
			}
			if err := writePyValue(b, dec, indent, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
		if indent > 0 && !first {
			newline(depth)
		}
		b.WriteByte(closing)
	case string:
		writePyString(b, v)
	case json.Number:
		b.WriteString(v.String())
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		b.WriteString("null")
	default:
		return fmt.Errorf("unexpected token %v", tok)
	}
	return nil
}

// writePyString quotes s as json.dumps(ensure_ascii=False) does: only the quote, the backslash
// and control characters are escaped (unlike Go's encoding/json, which also escapes <, >, & and
// U+2028/U+2029).
func writePyString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xF])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// pyString quotes s as tojson does.
func pyString(s string) string {
	var b strings.Builder
	writePyString(&b, s)
	return b.String()
}
