package traces

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// A single-pass JSON scanner for the write path of every store. Decoding a message into
// map[string]any to pick a few strings out of it made JSON decoding most of the Go side of
// writing a trace. This scanner walks the bytes once, validates them as strictly as encoding/json
// and decodes only the strings it keeps; the tests (and a fuzz target) check it against that
// decoder-based definition, which they keep.

var errSyntax = errors.New("invalid JSON")

// maxDepth is encoding/json's nesting limit, beyond which it rejects a document.
const maxDepth = 10000

// scanner reads one JSON document in b.
type scanner struct {
	b     []byte
	depth int
	// text, when set, receives the strings SearchText keeps; key is the object key the current
	// value sits under ("" at the top and inherited through arrays).
	text func(s string)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) skipSpace(i int) int {
	for i < len(s.b) && isSpace(s.b[i]) {
		i++
	}
	return i
}

// value scans the value at b[i] (no leading space) and returns the index after it.
func (s *scanner) value(i int, key string) (int, error) {
	if i >= len(s.b) {
		return 0, errSyntax
	}
	switch c := s.b[i]; {
	case c == '"':
		end, plain, err := s.str(i)
		if err != nil {
			return 0, err
		}
		if s.text != nil && searchedKey(key) {
			s.text(decodeString(s.b[i:end], plain))
		}
		return end, nil
	case c == '{':
		return s.object(i, key)
	case c == '[':
		return s.array(i, key)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number(i)
	}
	return 0, errSyntax
}

// searchedKey reports whether SearchText keeps a string found under key.
func searchedKey(key string) bool {
	switch key {
	case "", "content", "text", "prompt", "input":
		return true
	}
	return false
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return errSyntax
	}
	return nil
}

func (s *scanner) object(i int, _ string) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer func() { s.depth-- }()
	i = s.skipSpace(i + 1)
	if i < len(s.b) && s.b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(s.b) || s.b[i] != '"' {
			return 0, errSyntax
		}
		end, plain, err := s.str(i)
		if err != nil {
			return 0, err
		}
		k := ""
		if s.text != nil {
			k = decodeString(s.b[i:end], plain)
		}
		i = s.skipSpace(end)
		if i >= len(s.b) || s.b[i] != ':' {
			return 0, errSyntax
		}
		if i, err = s.value(s.skipSpace(i+1), k); err != nil {
			return 0, err
		}
		var done bool
		if i, done, err = s.afterElement(i, '}'); done || err != nil {
			return i, err
		}
	}
}

// afterElement reads the ',' before the next element or the closing byte of the container;
// done reports the close, with i just past it.
func (s *scanner) afterElement(i int, closing byte) (next int, done bool, err error) {
	i = s.skipSpace(i)
	if i >= len(s.b) {
		return 0, false, errSyntax
	}
	switch s.b[i] {
	case ',':
		return s.skipSpace(i + 1), false, nil
	case closing:
		return i + 1, true, nil
	}
	return 0, false, errSyntax
}

func (s *scanner) array(i int, key string) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer func() { s.depth-- }()
	i = s.skipSpace(i + 1)
	if i < len(s.b) && s.b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = s.value(i, key); err != nil {
			return 0, err
		}
		var done bool
		if i, done, err = s.afterElement(i, ']'); done || err != nil {
			return i, err
		}
	}
}

func (s *scanner) literal(i int, lit string) (int, error) {
	if len(s.b)-i < len(lit) || string(s.b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number(i int) (int, error) {
	b := s.b
	digits := func(i int) (int, bool) {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i, _ = digits(i)
	default:
		return 0, errSyntax
	}
	var ok bool
	if i < len(b) && b[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return 0, errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return 0, errSyntax
		}
	}
	return i, nil
}

// str scans the string starting at b[i] == '"' and returns the index after its closing quote,
// and whether it is plain: no escapes and valid UTF-8, so that its bytes are its value.
func (s *scanner) str(i int) (int, bool, error) {
	b := s.b
	plain := true
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !ascii && plain {
				plain = utf8.Valid(b[i+1 : j])
			}
			return j + 1, plain, nil
		case c == '\\':
			plain = false
			j++
			if j >= len(b) {
				return 0, false, errSyntax
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-j < 5 {
					return 0, false, errSyntax
				}
				for _, h := range b[j+1 : j+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, false, errSyntax
					}
				}
				j += 4
			default:
				return 0, false, errSyntax
			}
		case c < 0x20:
			return 0, false, errSyntax
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, false, errSyntax
}

// decodeString returns the value of the string token tok (quotes included), decoding escapes
// and replacing invalid UTF-8 the way encoding/json does.
func decodeString(tok []byte, plain bool) string {
	if plain {
		return string(tok[1 : len(tok)-1])
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return "" // unreachable: str validated the token
	}
	return v
}

// document scans all of b as one JSON value between optional spaces.
func (s *scanner) document() error {
	i, err := s.value(s.skipSpace(0), "")
	if err != nil {
		return err
	}
	if s.skipSpace(i) != len(s.b) {
		return errSyntax
	}
	return nil
}

// SearchText returns the human text of a message, a choices array, a prompt string or an
// embeddings input: strings under "content", "text", "prompt" and "input" and bare top-level
// strings, one per line, in document order. Invalid UTF-8 comes back as U+FFFD, and what is not
// JSON is returned as it is.
func SearchText(raw []byte) string {
	var sb strings.Builder
	s := scanner{b: raw, text: func(v string) {
		if sb.Len() > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(v)
	}}
	if s.document() != nil {
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	return sb.String()
}

// JoinArray is the inverse of SplitArray: the JSON array of elems, with no spaces.
func JoinArray(elems [][]byte) []byte {
	n := 2 + len(elems)
	for _, e := range elems {
		n += len(e)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
}

// SplitArray returns the elements of a JSON array when the array is exactly "[" + elements
// joined by "," + "]", so that joining them back gives the same bytes. Anything else (an object,
// a string, whitespace between elements, invalid JSON) returns false and is stored whole. The
// elements alias raw.
func SplitArray(raw []byte) ([][]byte, bool) {
	if len(raw) < 2 || raw[0] != '[' || raw[len(raw)-1] != ']' {
		return nil, false
	}
	if string(raw) == "[]" {
		return nil, true
	}
	// Each element is checked on its own, as json.Decoder did: nesting counts from it.
	s := scanner{b: raw}
	var elems [][]byte
	i := 1
	for {
		if i < len(raw) && isSpace(raw[i]) {
			return nil, false // whitespace between elements would be lost
		}
		end, err := s.value(i, "")
		if err != nil || end >= len(raw) {
			return nil, false
		}
		elems = append(elems, raw[i:end:end])
		switch raw[end] {
		case ',':
			i = end + 1
		case ']':
			if end != len(raw)-1 {
				return nil, false // trailing data
			}
			return elems, true
		default:
			return nil, false
		}
	}
}

// elements returns the spans of a valid JSON array's elements, spaces allowed anywhere.
func elements(raw []byte) ([][]byte, bool) {
	s := scanner{b: raw}
	i := s.skipSpace(0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	s.depth = 1
	i = s.skipSpace(i + 1)
	var elems [][]byte
	if i < len(raw) && raw[i] == ']' {
		return elems, s.skipSpace(i+1) == len(raw)
	}
	for {
		end, err := s.value(i, "")
		if err != nil {
			return nil, false
		}
		elems = append(elems, raw[i:end:end])
		i = s.skipSpace(end)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = s.skipSpace(i + 1)
		case ']':
			return elems, s.skipSpace(i+1) == len(raw)
		default:
			return nil, false
		}
	}
}

// Preview is the start of the last user message of a messages array, or of a prompt string.
func Preview(input []byte) string { return PreviewOf(input, nil) }

// PreviewOf is Preview where elems, when not nil, are input's elements already split by
// SplitArray.
func PreviewOf(input []byte, elems [][]byte) string {
	if len(input) == 0 {
		return ""
	}
	if elems == nil {
		start := 0
		for start < len(input) && isSpace(input[start]) {
			start++
		}
		if start == len(input) {
			return ""
		}
		switch input[start] {
		case '"':
			s := scanner{b: input}
			end, plain, err := s.str(start)
			if err != nil || s.skipSpace(end) != len(input) {
				return ""
			}
			return truncatePreview(decodeString(input[start:end], plain))
		case '[':
			var ok bool
			if elems, ok = elements(input); !ok {
				return ""
			}
		default:
			return "" // an object or a number has no preview
		}
	}
	text := ""
	for i := len(elems) - 1; i >= 0; i-- {
		content, ok := userContent(elems[i])
		if !ok {
			continue
		}
		if content != nil {
			var sb strings.Builder
			s := scanner{b: content, text: func(v string) {
				if sb.Len() > 0 {
					sb.WriteByte('\n')
				}
				sb.WriteString(v)
			}}
			if _, err := s.value(0, "content"); err != nil {
				return ""
			}
			text = sb.String()
		}
		break
	}
	if text == "" && len(elems) > 0 {
		if last := elems[len(elems)-1]; last[0] == '"' {
			s := scanner{b: last}
			end, plain, _ := s.str(0)
			text = decodeString(last[:end], plain)
		}
	}
	return truncatePreview(text)
}

// userContent reports whether elem is an object whose "role" is "user" (the last "role" key
// wins, as in a map) and returns its last "content" value, nil when there is none.
func userContent(elem []byte) ([]byte, bool) {
	if elem[0] != '{' {
		return nil, false
	}
	s := scanner{b: elem, depth: 1}
	var role, content []byte
	var rolePlain bool
	i := s.skipSpace(1)
	if i < len(elem) && elem[i] == '}' {
		return nil, false
	}
	for i < len(elem) {
		end, plain, err := s.str(i)
		if err != nil {
			return nil, false
		}
		k := decodeString(elem[i:end], plain)
		i = s.skipSpace(end)
		i = s.skipSpace(i + 1) // ':'
		vend, err := s.value(i, "")
		if err != nil {
			return nil, false
		}
		switch k {
		case "role":
			role = elem[i:vend]
			if role[0] == '"' {
				_, rolePlain, _ = s.str(i)
			}
		case "content":
			content = elem[i:vend]
			if string(content) == "null" {
				content = nil // a null value is no content, as a missing key
			}
		}
		i = s.skipSpace(vend)
		if i < len(elem) && elem[i] == '}' {
			break
		}
		i = s.skipSpace(i + 1) // ','
	}
	if len(role) == 0 || role[0] != '"' || decodeString(role, rolePlain) != "user" {
		return nil, false
	}
	return content, true
}

func truncatePreview(text string) string {
	text = strings.TrimSpace(text)
	if len(text) <= PreviewRunes {
		return text // fewer bytes than runes allowed
	}
	i, n := 0, 0
	for i < len(text) && n < PreviewRunes {
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
		n++
	}
	return text[:i]
}
