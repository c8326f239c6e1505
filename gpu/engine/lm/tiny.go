package lm

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"opentracy/gpu/engine/safetensors"
)

// TinyOptions shape a random model written by InitTinyWith. Zero fields take the defaults
// noted on each.
type TinyOptions struct {
	Family       Family // default Qwen3
	VocabSize    int    // default 384, or the tokenizer's size when TokenizerDir is set
	Hidden       int    // default 64
	Layers       int    // default 2
	Heads        int    // default 4
	KVHeads      int    // default 2
	HeadDim      int    // default 16
	Intermediate int    // default 128
	MaxPositions int    // default 1024
	// DType is "float32" (default) or "bfloat16" for the stored weights.
	DType string
	// ShardBytes, when > 0, splits the weights into shards of at most that size with a
	// model.safetensors.index.json, as large checkpoints are.
	ShardBytes int64
	// Seed makes the weights reproducible (default 1).
	Seed uint64
	// TokenizerDir, when set, is a folder with tokenizer.json (and optionally
	// tokenizer_config.json, special_tokens_map.json): those files are copied next to the model
	// and the vocabulary and EOS id follow the tokenizer, so the tiny model can be driven by text.
	TokenizerDir string
}

// InitTiny writes a small random model of the given family (qwen3 or llama) into dir as a valid
// Hugging Face folder: config.json, generation_config.json and model.safetensors.
func InitTiny(dir string, family Family) error {
	return InitTinyWith(dir, TinyOptions{Family: family})
}

// InitTinyWith is InitTiny with explicit options.
func InitTinyWith(dir string, o TinyOptions) error {
	o.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lm: init tiny: %w", err)
	}
	eos := o.VocabSize - 1
	if o.TokenizerDir != "" {
		vocab, eosID, err := copyTokenizer(o.TokenizerDir, dir)
		if err != nil {
			return fmt.Errorf("lm: init tiny: %w", err)
		}
		o.VocabSize = vocab
		if eosID >= 0 {
			eos = eosID
		}
	}
	cfg := map[string]any{
		"model_type":              string(o.Family),
		"hidden_size":             o.Hidden,
		"intermediate_size":       o.Intermediate,
		"num_hidden_layers":       o.Layers,
		"num_attention_heads":     o.Heads,
		"num_key_value_heads":     o.KVHeads,
		"head_dim":                o.HeadDim,
		"vocab_size":              o.VocabSize,
		"max_position_embeddings": o.MaxPositions,
		"rms_norm_eps":            1e-6,
		"hidden_act":              "silu",
		"attention_bias":          false,
		"torch_dtype":             o.DType,
		"bos_token_id":            0,
		"eos_token_id":            eos,
	}
	switch o.Family {
	case Qwen3:
		cfg["architectures"] = []string{"Qwen3ForCausalLM"}
		cfg["rope_theta"] = 1000000.0
		cfg["tie_word_embeddings"] = true
	case Llama:
		cfg["architectures"] = []string{"LlamaForCausalLM"}
		cfg["rope_theta"] = 500000.0
		cfg["tie_word_embeddings"] = false
		cfg["mlp_bias"] = false
		// Scaled like Llama 3.1/3.2, but against a short original context so the tiny model's
		// frequencies land in all three regions of the llama3 formula.
		cfg["rope_scaling"] = map[string]any{
			"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
			"original_max_position_embeddings": 64,
		}
	default:
		return fmt.Errorf("lm: init tiny: unknown family %q", o.Family)
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "generation_config.json"), map[string]any{
		"bos_token_id": 0, "eos_token_id": []int{eos}, "do_sample": true, "temperature": 0.7, "top_p": 0.9, "top_k": 20,
	}); err != nil {
		return err
	}
	c, err := LoadConfig(dir)
	if err != nil {
		return err
	}
	dtype := safetensors.F32
	if o.DType == "bfloat16" {
		dtype = safetensors.BF16
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x7e57))
	var ts []safetensors.Tensor
	for _, spec := range c.weightSpecs() {
		n := 1
		for _, d := range spec.shape {
			n *= d
		}
		vals := make([]float32, n)
		isNorm := len(spec.shape) == 1 && !isBias(spec.name)
		for i := range vals {
			if isNorm { // around 1, as trained norms are, but not exactly 1 so they matter
				vals[i] = float32(1 + 0.1*rng.NormFloat64())
			} else {
				// std 1/sqrt(fan_in) keeps activations O(1) through the tiny stack, so logits
				// differ enough between tokens for argmax tests to be meaningful.
				vals[i] = float32(rng.NormFloat64() / math.Sqrt(float64(spec.shape[len(spec.shape)-1])))
			}
		}
		t, err := safetensors.FromFloat32(spec.name, spec.shape, vals, dtype)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	meta := map[string]string{"format": "pt"}
	if o.ShardBytes > 0 {
		err = safetensors.WriteSharded(dir, ts, o.ShardBytes, meta)
	} else {
		err = safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, meta)
	}
	if err != nil {
		return fmt.Errorf("lm: init tiny: %w", err)
	}
	return nil
}

func (o *TinyOptions) defaults() {
	if o.Family == "" {
		o.Family = Qwen3
	}
	set := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	set(&o.VocabSize, 384)
	set(&o.Hidden, 64)
	set(&o.Layers, 2)
	set(&o.Heads, 4)
	set(&o.KVHeads, 2)
	set(&o.HeadDim, 16)
	set(&o.Intermediate, 128)
	set(&o.MaxPositions, 1024)
	if o.DType == "" {
		o.DType = "float32"
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

func isBias(name string) bool {
	return len(name) > 5 && name[len(name)-5:] == ".bias"
}

func writeJSON(path string, v any) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("lm: encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("lm: %w", err)
	}
	return nil
}

// copyTokenizer copies the tokenizer files of src into dst and returns the vocabulary size
// (highest id + 1 over the model vocabulary and added tokens) and the EOS id (-1 if unknown).
func copyTokenizer(src, dst string) (vocab, eos int, err error) {
	raw, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		return 0, -1, err
	}
	var tj struct {
		Model struct {
			Vocab json.RawMessage `json:"vocab"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(raw, &tj); err != nil {
		return 0, -1, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	maxID := -1
	var byString map[string]int
	if json.Unmarshal(tj.Model.Vocab, &byString) == nil {
		for _, id := range byString {
			maxID = max(maxID, id)
		}
	} else {
		var pairs [][]any // unigram: [[piece, score], ...], ids are positions
		if err := json.Unmarshal(tj.Model.Vocab, &pairs); err != nil {
			return 0, -1, fmt.Errorf("tokenizer.json: unrecognised model.vocab")
		}
		maxID = len(pairs) - 1
	}
	added := map[string]int{}
	for _, t := range tj.AddedTokens {
		maxID = max(maxID, t.ID)
		added[t.Content] = t.ID
	}
	if maxID < 0 {
		return 0, -1, fmt.Errorf("tokenizer.json has an empty vocabulary")
	}
	eos = -1
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			if name == "tokenizer.json" {
				return 0, -1, err
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return 0, -1, err
		}
		if name == "tokenizer_config.json" {
			var tc struct {
				EOS json.RawMessage `json:"eos_token"`
			}
			if json.Unmarshal(b, &tc) == nil {
				var s string
				var obj struct {
					Content string `json:"content"`
				}
				if json.Unmarshal(tc.EOS, &s) != nil && json.Unmarshal(tc.EOS, &obj) == nil {
					s = obj.Content
				}
				if id, ok := added[s]; ok {
					eos = id
				}
			}
		}
	}
	return maxID + 1, eos, nil
}
