package lm

import (
	"os"
	"path/filepath"
	"testing"
)

func writeConfig(t *testing.T, js string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Published config.json of Qwen/Qwen3-0.6B.
const qwen3Config = `{
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
  "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
  "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
  "use_cache": true, "use_sliding_window": false, "vocab_size": 151936
}`

// Published config.json of meta-llama/Llama-3.2-1B-Instruct.
const llamaConfig = `{
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
  "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256
}`

func TestRealConfigs(t *testing.T) {
	q, err := LoadConfig(writeConfig(t, qwen3Config))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range q.weightSpecs() {
		n := 1
		for _, d := range s.shape {
			n *= d
		}
		total += n
	}
	// Qwen3-0.6B: 0.6B parameters, 0.44B without the (tied) embedding.
	if total != 596_049_920 {
		t.Errorf("Qwen3-0.6B parameter count from its config = %d", total)
	}
	if q.HeadDim != 128 || q.RopeScaling.Kind() != "default" || len(q.EOSTokenIDs()) != 1 {
		t.Errorf("qwen3 config: %+v", q)
	}

	l, err := LoadConfig(writeConfig(t, llamaConfig))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.EOSTokenIDs(); len(got) != 3 || got[2] != 128009 {
		t.Errorf("eos ids = %v", got)
	}
	if l.RopeScaling.Kind() != "llama3" || l.RopeScaling.Factor != 32 {
		t.Errorf("rope scaling = %+v", l.RopeScaling)
	}
	// transformers v5 spells rope settings as rope_parameters.
	v5 := `{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
	  "num_attention_heads":4,"vocab_size":10,"rope_parameters":{"rope_theta":500000,"rope_type":"llama3",
	  "factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}}`
	c, err := LoadConfig(writeConfig(t, v5))
	if err != nil {
		t.Fatal(err)
	}
	if c.RopeTheta != 500000 || c.RopeScaling.Kind() != "llama3" || c.HeadDim != 16 || c.NumKeyValueHeads != 4 {
		t.Errorf("v5 config: theta %v scaling %+v head_dim %d", c.RopeTheta, c.RopeScaling, c.HeadDim)
	}
	for name, bad := range map[string]string{
		"family":  `{"model_type":"gpt2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10}`,
		"gqa":     `{"model_type":"qwen3","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3,"vocab_size":10}`,
		"act":     `{"model_type":"qwen3","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10,"hidden_act":"gelu"}`,
		"sliding": `{"model_type":"qwen3","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10,"use_sliding_window":true}`,
	} {
		if _, err := LoadConfig(writeConfig(t, bad)); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}

func TestInitTinyWithTokenizer(t *testing.T) {
	tok := t.TempDir()
	os.WriteFile(filepath.Join(tok, "tokenizer.json"), []byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2}},
	  "added_tokens":[{"id":3,"content":"<|endoftext|>"},{"id":4,"content":"<|im_end|>"}]}`), 0o644)
	os.WriteFile(filepath.Join(tok, "tokenizer_config.json"), []byte(`{"eos_token":"<|im_end|>"}`), 0o644)
	dir := filepath.Join(t.TempDir(), "m")
	if err := InitTinyWith(dir, TinyOptions{TokenizerDir: tok}); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.VocabSize != 5 || c.EOSTokenIDs()[0] != 4 {
		t.Errorf("vocab %d eos %v", c.VocabSize, c.EOSTokenIDs())
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "model.safetensors", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestBucket(t *testing.T) {
	for n, want := range map[int]int{0: 16, 1: 16, 16: 16, 17: 24, 24: 24, 25: 32, 33: 48, 49: 64, 100: 128, 129: 192, 1000: 1024, 1025: 1536} {
		if got := Bucket(n); got != want {
			t.Errorf("Bucket(%d) = %d, want %d", n, got, want)
		}
	}
	for n, want := range map[int]int{1: 1, 2: 2, 3: 4, 5: 8, 8: 8} {
		if got := BatchBucket(n); got != want {
			t.Errorf("BatchBucket(%d) = %d, want %d", n, got, want)
		}
	}
}
