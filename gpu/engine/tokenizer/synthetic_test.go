package tokenizer

import (
	"encoding/json"
	"slices"
	"testing"
)

// syntheticTokenizer is a tiny GPT-2-style tokenizer.json exercising what the Qwen3 and Llama 3
// files do not: the ByteLevel regex and prefix space (regexp2 path), merges written as strings, a
// normalized added token, and a post-processor that adds tokens on both sides.
func syntheticTokenizer(t *testing.T) *Tokenizer {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(alphabet.toRune[b])] = b // id = byte value
	}
	vocab["he"], vocab["ll"], vocab["hell"], vocab["Ġw"] = 256, 257, 258, 259
	doc := map[string]any{
		"added_tokens": []map[string]any{
			{"id": 300, "content": "<s>", "special": true},
			{"id": 301, "content": "</s>", "special": true},
			{"id": 302, "content": "café", "special": false, "normalized": true},
		},
		"normalizer":    map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true},
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}, map[string]any{"SpecialToken": map[string]any{"id": "</s>"}}},
			"special_tokens": map[string]any{
				"<s>":  map[string]any{"id": "<s>", "ids": []int{300}},
				"</s>": map[string]any{"id": "</s>", "ids": []int{301}},
			},
		},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{"h e", "l l", "he ll", "Ġ w"}},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := New(raw, []byte(`{"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>"}`))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSyntheticTokenizer(t *testing.T) {
	tok := syntheticTokenizer(t)
	got := tok.Encode("hello world", true)
	want := []int{300, ' ', 258, 'o', 259, 'o', 'r', 'l', 'd', 301}
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if s := tok.Decode(got, true); s != " hello world" {
		t.Errorf("Decode = %q", s)
	}
	// The added token is normalized like the text: a decomposed é still matches it.
	got = tok.Encode("x cafe\u0301", false)
	if want := []int{' ', 'x', ' ', 302}; !slices.Equal(got, want) {
		t.Errorf("normalized added token: %v, want %v", got, want)
	}
	if bos, ok := tok.BOS(); !ok || bos != 300 {
		t.Errorf("BOS = %d %v", bos, ok)
	}
	if eos, ok := tok.EOS(); !ok || eos != 301 {
		t.Errorf("EOS = %d %v", eos, ok)
	}
	if s, ok := tok.Token(258); !ok || s != "hell" {
		t.Errorf("Token(258) = %q", s)
	}
	if id, ok := tok.TokenID("Ġw"); !ok || id != 259 {
		t.Errorf("TokenID(Ġw) = %d", id)
	}
}
