package sqlite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"opentracy/backend/traces"
)

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
	if !bytes.Equal(joinArray(elems), raw) {
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
	got, want := searchText(data), traces.SearchText(data)
	if json.Valid(data) && hasDuplicateKeys(data) {
		for _, f := range fragments(want) {
			if !strings.Contains(got, f) {
				t.Fatalf("searchText(%s) = %q lacks %q", short(data), got, f)
			}
		}
	} else if !slices.Equal(fragments(got), fragments(want)) {
		t.Fatalf("searchText(%s) = %q, traces.SearchText = %q", short(data), got, want)
	}
	elems, ok := splitArray(data)
	refElems, refOK := refSplitArray(data)
	if ok != refOK || fmt.Sprintf("%q", elems) != fmt.Sprintf("%q", refElems) {
		t.Fatalf("splitArray(%s) = %d elements %v, reference %d %v", short(data), len(elems), ok, len(refElems), refOK)
	}
	if json.Valid(data) && hasDuplicateKeys(data) {
		return // which "role" or "content" wins is the map's choice
	}
	wantPreview := traces.Preview(data)
	if got := preview(data, nil); got != wantPreview {
		t.Fatalf("preview(%s) = %q, traces.Preview = %q", short(data), got, wantPreview)
	}
	if ok && len(elems) > 0 {
		if got := preview(data, elems); got != wantPreview {
			t.Fatalf("preview(%s, split) = %q, traces.Preview = %q", short(data), got, wantPreview)
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

func TestScannerMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkJSON(t, []byte(s))
	}
	for i := range 2000 {
		tr := genTrace(i)
		checkJSON(t, tr.Input)
		checkJSON(t, tr.Output)
		if elems, ok := splitArray(tr.Input); ok {
			for _, e := range elems {
				checkJSON(t, e)
			}
		}
	}
}

func FuzzScanner(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkJSON(t, data)
	})
}
