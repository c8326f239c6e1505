package traces

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// refSearchText is SearchText's definition, through encoding/json: the reference the scanner is
// checked against.
func refSearchText(raw []byte) string {
	v, err := refDecode(raw)
	if err != nil {
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	var sb strings.Builder
	refCollectText(&sb, v, "")
	return sb.String()
}

func refCollectText(sb *strings.Builder, v any, key string) {
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
			refCollectText(sb, e, key)
		}
	case map[string]any:
		for k, e := range v {
			refCollectText(sb, e, k)
		}
	}
}

// refDecode decodes a JSON document; numbers stay text, so that one too large for a float64 is
// valid JSON as it is for the scanner.
func refDecode(raw []byte) (any, error) {
	if !json.Valid(raw) {
		return nil, errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	return v, dec.Decode(&v)
}

// refPreview is Preview's definition, through encoding/json.
func refPreview(input []byte) string {
	if len(input) == 0 {
		return ""
	}
	v, err := refDecode(input)
	if err != nil {
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
			refCollectText(&sb, m["content"], "content")
			text = sb.String()
			break
		}
		if text == "" && len(v) > 0 {
			if s, ok := v[len(v)-1].(string); ok {
				text = s
			}
		}
	}
	text = strings.TrimSpace(text)
	if utf8.RuneCountInString(text) > PreviewRunes {
		text = string([]rune(text)[:PreviewRunes])
	}
	return text
}

// refSplitArray is the decoder-based splitArray the scanner replaced: the reference.
func refSplitArray(raw []byte) ([][]byte, bool) {
	if len(raw) < 2 || raw[0] != '[' || raw[len(raw)-1] != ']' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, false
	}
	var elems [][]byte
	for dec.More() {
		var m json.RawMessage
		if err := dec.Decode(&m); err != nil {
			return nil, false
		}
		elems = append(elems, m)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false
	}
	if !bytes.Equal(JoinArray(elems), raw) {
		return nil, false
	}
	return elems, true
}

// hasDuplicateKeys reports whether some object of the valid document b repeats a key: a map
// keeps only the last, the scanner reads them all.
func hasDuplicateKeys(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		obj    bool
		keys   map[string]bool
		expect bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if k, isKey := tok.(string); isKey && top != nil && top.obj && top.expect {
			if top.keys[k] {
				return true
			}
			top.keys[k] = true
			top.expect = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, expect: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].expect = true
		}
	}
}

// fragments are the lines of a search text, sorted and without empty ones: the order of an
// object's keys, which a map does not keep, moves the separators around empty strings.
func fragments(s string) []string {
	f := slices.DeleteFunc(strings.Split(s, "\n"), func(l string) bool { return l == "" })
	slices.Sort(f)
	return f
}

// short keeps failure messages readable.
func short(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%q...(%d bytes)", b[:200], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// checkJSON compares the scanner with encoding/json and the traces package on one input.
func checkJSON(t *testing.T, data []byte) {
	t.Helper()
	sc := scanner{b: data}
	if got, want := sc.document() == nil, json.Valid(data); got != want {
		t.Fatalf("valid(%s) = %v, encoding/json says %v", short(data), got, want)
	}
	got, want := SearchText(data), refSearchText(data)
	if json.Valid(data) && hasDuplicateKeys(data) {
		for _, f := range fragments(want) {
			if !strings.Contains(got, f) {
				t.Fatalf("SearchText(%s) = %q lacks %q", short(data), got, f)
			}
		}
	} else if !slices.Equal(fragments(got), fragments(want)) {
		t.Fatalf("SearchText(%s) = %q, reference %q", short(data), got, want)
	}
	elems, ok := SplitArray(data)
	refElems, refOK := refSplitArray(data)
	if ok != refOK || fmt.Sprintf("%q", elems) != fmt.Sprintf("%q", refElems) {
		t.Fatalf("SplitArray(%s) = %d elements %v, reference %d %v", short(data), len(elems), ok, len(refElems), refOK)
	}
	if json.Valid(data) && hasDuplicateKeys(data) {
		return // which "role" or "content" wins is the map's choice
	}
	wantPreview := refPreview(data)
	if got := Preview(data); got != wantPreview {
		t.Fatalf("Preview(%s) = %q, reference %q", short(data), got, wantPreview)
	}
	if ok && len(elems) > 0 {
		if got := PreviewOf(data, elems); got != wantPreview {
			t.Fatalf("PreviewOf(%s, split) = %q, reference %q", short(data), got, wantPreview)
		}
	}
}

var jsonSeeds = []string{
	``, ` `, `null`, `true`, `false`, `0`, `-0`, `1.5e10`, `01`, `1.`, `-`, `1e`, `.5`, `"s"`, ` "s" `,
	`"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"`, `"\ud800"`, `"\x"`, `"\u12"`, "\"\x01\"", "\"caf\xe9\"",
	`[]`, `[ ]`, `{}`, `{ }`, `[1,2]`, `[1, 2]`, `[1,]`, `[,1]`, `[1][2]`, `[1]]`, `[[1]`, `{"a":1,}`,
	`{"a" 1}`, `{1:2}`, `[{"a":1},"x",[1,2]]`, `[{"a":1}, {"b":2}]`,
	`[{"role":"system","content":"sys"},{"role":"user","content":"first"},{"role":"assistant","content":"reply"},{"role":"user","content":"second question"}]`,
	`[{"role":"user","content":[{"type":"text","text":"describe"},{"type":"image_url","image_url":{"url":"http://x"}}]}]`,
	`[{"role":"user","content":null},"tail"]`, `[{"role":"user"},"tail"]`, `[{"role":"user","content":""},"tail"]`,
	`[{"role":"\u0075ser","content":"escaped role"}]`, `[{"role":"user","content":{"text":"obj","other":"no"}}]`,
	`[{"content":"x","role":"user"}]`, `["a","b"]`, `[1,"last"]`, `[{"role":1,"content":"x"}]`,
	`{"prompt":"p","input":["i1",["i2"]],"messages":[{"content":"c"}],"other":"o","text":{"deep":"d"}}`,
	`[{"index":0,"message":{"role":"assistant","content":"answer","tool_calls":[{"function":{"arguments":"{}"}}]}}]`,
	"  [{\"role\":\"user\",\"content\":\"  padded  \"}]  ", `[{"role":"user","content":"` + strings.Repeat("é", 300) + `"}]`,
	`{"a":{"a":{"a":[[[["deep"]]]]}}}`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000), `{"content":"a","content":"b"}`,
}

// textCorpus covers the shapes the gateway records: chat messages, content parts, choices,
// tool calls, prompts and embeddings inputs, and their edges.
var textCorpus = []string{
	``,
	`"a plain prompt"`,
	`"  padded prompt  "`,
	`["embedding input one","embedding input two"]`,
	`[1,2,3]`,
	`{"role":"user","content":"an object, not an array"}`,
	`[{"role":"system","content":"sys"},{"role":"user","content":"first"},{"role":"assistant","content":"reply"},{"role":"user","content":"second question"}]`,
	`[{"role":"user","content":[{"type":"text","text":"describe"},{"type":"image_url","image_url":{"url":"http://x"}}]}]`,
	`[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":""},{"type":"text","text":"b"}]}]`,
	`[{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"after empty"}]}]`,
	`[{"role":"user","content":""},"trailing string"]`,
	`[{"role":"assistant","content":"no user"},"last string wins"]`,
	`[{"role":"user"}]`,
	`[{"role":"user","content":null}]`,
	`[{"role":"USER","content":"not the user role"}]`,
	`[{"role":"user","content":"first copy","content":"last copy wins"}]`,
	`[{"role":"user","role":"assistant","content":"last role wins"}]`,
	`[{"role":"user","content":[{"text":"a","text":"b"}]}]`,
	`[{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"text":"x","text":"y"}]`,
	`[{"role":"user","content":"caf\u00e9 \"quoted\" \\ back\/slash \n newline \t tab"}]`,
	`[{"role":"user","content":"emoji \ud83d\ude00 escaped"}]`,
	`[{"role":"user","content":"lone \ud800 surrogate"}]`,
	"[{\"role\":\"user\",\"content\":\"raw caf\xe9 invalid\"}]",
	`[{"role":"user","content":"` + strings.Repeat("é", 300) + `"}]`,
	`[{"role":"user","content":"x"}`, // truncated: not JSON
	`not json at all`,
	`["big number",1E700]`,
	`["escaped quote \" then [ and { inside a string"]`,
	strings.Repeat("[", 70) + `"deep"` + strings.Repeat("]", 70),
	strings.Repeat(`{"content":`, 70) + `"deep"` + strings.Repeat("}", 70),
	`[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}]`,
	`[{"index":0,"message":{"role":"assistant","content":"answer"},"finish_reason":"stop"}]`,
	` [ {"role" : "user" , "content" : "spaced out" } ] `,
	`[{"prompt":"p","input":["i1",{"text":"t"}],"other":"skipped","content":{"nested":"skipped too","text":"kept"}}]`,
}

func TestScannerMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkJSON(t, []byte(s))
	}
	for _, s := range textCorpus {
		checkJSON(t, []byte(s))
		if elems, ok := SplitArray([]byte(s)); ok {
			for _, e := range elems {
				checkJSON(t, e)
			}
		}
	}
}

func FuzzScanner(f *testing.F) {
	for _, s := range slices.Concat(jsonSeeds, textCorpus) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkJSON(t, data)
	})
}

// A deeply nested document must not make the scan quadratic.
func TestDeepNestingIsLinear(t *testing.T) {
	in := []byte(strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000))
	start := time.Now()
	SearchText(in)
	Preview(in)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("200k levels took %v", d)
	}
}
