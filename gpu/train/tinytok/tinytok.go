// Package tinytok writes a byte-level tokenizer for tiny test models: one token per byte (no
// merges) plus the chat special tokens of a model family, in Hugging Face's tokenizer.json
// format, with the family's real chat template in tokenizer_config.json.
//
// A tiny model built on it (lm.TinyOptions.TokenizerDir) is a complete model folder that takes
// text and chat, with a vocabulary of a few hundred tokens instead of Qwen3's 151,936, so tests
// and CPU smoke runs train and generate in seconds.
package tinytok

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"opentracy/gpu/engine/lm"
)

// The families' chat templates, verbatim from their tokenizer_config.json (Qwen3; the
// Meta-Llama-3 Instruct revision that appends the assistant header only when asked), so that
// chat.Detect recognises them exactly.
var (
	//go:embed qwen3.jinja
	qwen3Template string
	//go:embed llama3.jinja
	llama3Template string
)

type special struct {
	content string
	special bool
}

// specials returns the family's added tokens (ids 256, 257, ... in order), its EOS token (end of
// turn, which ends generation), its BOS token ("" if none) and its chat template.
func specials(family lm.Family) (toks []special, eos, bos, template string, err error) {
	switch family {
	case lm.Qwen3, "":
		return []special{
			{"<|endoftext|>", true}, {"<|im_start|>", true}, {"<|im_end|>", true},
			{"<think>", false}, {"</think>", false}, {"<tool_call>", false}, {"</tool_call>", false},
			{"<tool_response>", false}, {"</tool_response>", false},
		}, "<|im_end|>", "", qwen3Template, nil
	case lm.Llama:
		return []special{
			{"<|begin_of_text|>", true}, {"<|end_of_text|>", true}, {"<|start_header_id|>", true},
			{"<|end_header_id|>", true}, {"<|eot_id|>", true}, {"<|eom_id|>", true}, {"<|python_tag|>", true},
		}, "<|eot_id|>", "<|begin_of_text|>", llama3Template, nil
	}
	return nil, "", "", "", fmt.Errorf("tinytok: unknown family %q", family)
}

// VocabSize returns the number of tokens Write gives a family: 256 bytes plus its special tokens.
func VocabSize(family lm.Family) (int, error) {
	toks, _, _, _, err := specials(family)
	return 256 + len(toks), err
}

// Write writes tokenizer.json and tokenizer_config.json for family into dir (created if needed).
func Write(dir string, family lm.Family) error {
	toks, eos, bos, template, err := specials(family)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tinytok: %w", err)
	}
	vocab := make(map[string]int, 256)
	for b, r := range byteAlphabet() {
		vocab[string(r)] = b
	}
	added := make([]map[string]any, len(toks))
	for i, t := range toks {
		added[i] = map[string]any{
			"id": 256 + i, "content": t.content, "single_word": false, "lstrip": false, "rstrip": false,
			"normalized": false, "special": t.special,
		}
	}
	doc := map[string]any{
		"version":      "1.0",
		"truncation":   nil,
		"padding":      nil,
		"added_tokens": added,
		"normalizer":   nil,
		// No regex split: with no merges every byte is its own token anyway.
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		"post_processor": nil,
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": []string{},
		},
	}
	cfg := map[string]any{
		"tokenizer_class":  "PreTrainedTokenizerFast",
		"model_max_length": 131072,
		"eos_token":        eos,
		"pad_token":        toks[0].content,
		"bos_token":        nil,
		"chat_template":    template,
	}
	if bos != "" {
		cfg["bos_token"] = bos
	}
	for name, v := range map[string]any{"tokenizer.json": doc, "tokenizer_config.json": cfg} {
		js, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("tinytok: encode %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(js, '\n'), 0o644); err != nil {
			return fmt.Errorf("tinytok: %w", err)
		}
	}
	return nil
}

// byteAlphabet is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
// others are shifted to U+0100 and up, so that every byte is a visible character in the vocab.
func byteAlphabet() [256]rune {
	var out [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			out[b] = rune(b)
		} else {
			out[b] = rune(256 + n)
			n++
		}
	}
	return out
}
