package tinytok

import (
	"path/filepath"
	"slices"
	"testing"

	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/tokenizer"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		family   lm.Family
		template string
		eos      string
	}{
		{lm.Qwen3, "qwen3", "<|im_end|>"},
		{lm.Llama, "llama3", "<|eot_id|>"},
	} {
		t.Run(string(tc.family), func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, tc.family); err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := VocabSize(tc.family)
			if tok.VocabSize() != want {
				t.Errorf("VocabSize = %d, want %d", tok.VocabSize(), want)
			}
			eos, ok := tok.EOS()
			if id, _ := tok.TokenID(tc.eos); !ok || eos != id || id < 256 {
				t.Errorf("EOS = %d (%v), want the id of %s (%d)", eos, ok, tc.eos, id)
			}
			text := "héllo " + tc.eos + "\n"
			ids := tok.Encode(text, false)
			wantIDs := []int{'h', 0xC3, 0xA9, 'l', 'l', 'o', ' ', eos, '\n'}
			if !slices.Equal(ids, wantIDs) {
				t.Errorf("Encode(%q) = %v, want %v", text, ids, wantIDs)
			}
			if got := tok.Decode(ids, false); got != text {
				t.Errorf("Decode = %q, want %q", got, text)
			}
			tmpl, exact, err := chat.Detect(tok.ChatTemplate())
			if err != nil || !exact || tmpl.Name() != tc.template {
				t.Errorf("chat.Detect = %v exact=%v err=%v, want %s exactly", tmpl, exact, err, tc.template)
			}

			// A tiny model built on it takes the tokenizer's vocabulary and EOS.
			mdir := filepath.Join(t.TempDir(), "m")
			if err := lm.InitTinyWith(mdir, lm.TinyOptions{Family: tc.family, TokenizerDir: dir}); err != nil {
				t.Fatal(err)
			}
			cfg, err := lm.LoadConfig(mdir)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.VocabSize != want || !slices.Contains(cfg.EOSTokenIDs(), eos) {
				t.Errorf("tiny model: vocab %d eos %v, want %d and %d", cfg.VocabSize, cfg.EOSTokenIDs(), want, eos)
			}
		})
	}
	if err := Write(t.TempDir(), "gpt2"); err == nil {
		t.Error("unknown family: no error")
	}
}
