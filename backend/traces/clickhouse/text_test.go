package clickhouse

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"opentracy/backend/traces"
)

// textCorpus covers the shapes the gateway records and the edges of the fast path.
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

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// The fast walk gives the shared preview exactly and the shared search text up to line order.
func TestFastTextMatchesShared(t *testing.T) {
	for _, in := range textCorpus {
		checkFastText(t, []byte(in))
	}
}

func FuzzFastTextMatchesShared(f *testing.F) {
	for _, in := range textCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkFastText(t, in)
	})
}

func checkFastText(t *testing.T, in []byte) {
	t.Helper()
	prev, text := previewAndSearch(in, nil)
	// Where an object has two text keys, the shared walk's order (over a Go map) is random, and
	// so is the preview's: compare only when it is determined.
	if want := traces.Preview(in); prev != want && !orderMatters(in) {
		t.Errorf("preview of %q = %q, want %q", in, prev, want)
	}
	want := ""
	if len(in) > 0 {
		want = strings.ToLower(traces.SearchText(in))
	}
	if got, want := lines(text), lines(want); !slices.Equal(got, want) {
		t.Errorf("search text of %q = %q, want %q", in, got, want)
	}
}

// orderMatters reports an object with more than one of the keys whose strings are collected.
func orderMatters(in []byte) bool {
	var walk func(r gjson.Result) bool
	walk = func(r gjson.Result) bool {
		found := false
		switch {
		case r.IsArray():
			r.ForEach(func(_, v gjson.Result) bool {
				found = walk(v)
				return !found
			})
		case r.IsObject():
			n := 0
			r.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "", "content", "text", "prompt", "input":
					n++
				}
				found = n > 1 || walk(v)
				return !found
			})
		}
		return found
	}
	return gjson.ValidBytes(in) && walk(gjson.ParseBytes(in))
}

// A deeply nested document must not make the walk quadratic (the shared path is linear).
func TestDeepNestingIsLinear(t *testing.T) {
	in := []byte(strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000))
	start := time.Now()
	previewAndSearch(in, in)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("200k levels took %v", d)
	}
}
