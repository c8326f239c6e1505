package clickhouse

import "testing"

func TestPreviewAndSearch(t *testing.T) {
	in := []byte(`[{"role":"system","content":"Be Brief"},{"role":"user","content":"What is  Go?"}]`)
	out := []byte(`[{"index":0,"message":{"role":"assistant","content":"A LANGUAGE"}}]`)
	prev, text := previewAndSearch(in, out)
	if prev != "What is  Go?" || text != "be brief\nwhat is  go?\na language" {
		t.Errorf("preview %q, search text %q", prev, text)
	}
	if prev, text := previewAndSearch(nil, out); prev != "" || text != "a language" {
		t.Errorf("no input: preview %q, search text %q", prev, text)
	}
}
