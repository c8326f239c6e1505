package lm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Family is a supported model_type of config.json.
type Family string

// Supported families.
const (
	Qwen3 Family = "qwen3"
	Llama Family = "llama"
)

// RopeScaling is config.json's rope_scaling (or the scaling part of rope_parameters).
type RopeScaling struct {
	// RopeType is "default", "linear" or "llama3"; older configs call it "type".
	RopeType                      string  `json:"rope_type,omitempty"`
	Type                          string  `json:"type,omitempty"`
	Factor                        float64 `json:"factor,omitempty"`
	LowFreqFactor                 float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor                float64 `json:"high_freq_factor,omitempty"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings,omitempty"`
}

// Kind returns the scaling type, whichever key the config used.
func (r *RopeScaling) Kind() string {
	if r == nil {
		return "default"
	}
	if r.RopeType != "" {
		return r.RopeType
	}
	if r.Type != "" {
		return r.Type
	}
	return "default"
}

// Config is the subset of a Hugging Face config.json the engine uses.
type Config struct {
	ModelType             Family   `json:"model_type"`
	Architectures         []string `json:"architectures,omitempty"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	NumKeyValueHeads      int      `json:"num_key_value_heads"`
	HeadDim               int      `json:"head_dim,omitempty"`
	VocabSize             int      `json:"vocab_size"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	RMSNormEps            float64  `json:"rms_norm_eps"`
	RopeTheta             float64  `json:"rope_theta,omitempty"`
	// RopeScaling is nil for plain RoPE.
	RopeScaling       *RopeScaling `json:"rope_scaling,omitempty"`
	TieWordEmbeddings bool         `json:"tie_word_embeddings"`
	HiddenAct         string       `json:"hidden_act,omitempty"`
	AttentionBias     bool         `json:"attention_bias,omitempty"`
	UseSlidingWindow  bool         `json:"use_sliding_window,omitempty"`
	MLPBias           bool         `json:"mlp_bias,omitempty"`
	// TorchDType is the checkpoint's dtype ("bfloat16", "float32", ...); newer configs say "dtype".
	TorchDType string `json:"torch_dtype,omitempty"`
	DType      string `json:"dtype,omitempty"`
	BOSTokenID *int   `json:"bos_token_id,omitempty"`
	// EOSTokenID is an int or a list of ints in config.json; see EOSTokenIDs.
	EOSTokenID json.RawMessage `json:"eos_token_id,omitempty"`

	// RopeParameters is the transformers v5 spelling (rope_theta and scaling together).
	RopeParameters *struct {
		RopeTheta float64 `json:"rope_theta,omitempty"`
		RopeScaling
	} `json:"rope_parameters,omitempty"`
}

// LoadConfig reads and validates dir/config.json.
func LoadConfig(dir string) (*Config, error) {
	p := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("lm: read config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("lm: parse %s: %w", p, err)
	}
	if err := c.normalize(); err != nil {
		return nil, fmt.Errorf("lm: %s: %w", p, err)
	}
	return &c, nil
}

// normalize fills defaults the way transformers does and rejects what the engine cannot run.
func (c *Config) normalize() error {
	switch c.ModelType {
	case Qwen3, Llama:
	default:
		return fmt.Errorf("model_type %q is not supported (want %q or %q)", c.ModelType, Qwen3, Llama)
	}
	if c.RopeParameters != nil {
		if c.RopeTheta == 0 {
			c.RopeTheta = c.RopeParameters.RopeTheta
		}
		if c.RopeScaling == nil && c.RopeParameters.Kind() != "default" {
			rs := c.RopeParameters.RopeScaling
			c.RopeScaling = &rs
		}
	}
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.HeadDim == 0 && c.NumAttentionHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	if c.HiddenAct == "" {
		c.HiddenAct = "silu"
	}
	if c.MaxPositionEmbeddings == 0 {
		c.MaxPositionEmbeddings = 2048
	}
	switch {
	case c.HiddenSize <= 0, c.IntermediateSize <= 0, c.NumHiddenLayers <= 0, c.NumAttentionHeads <= 0, c.VocabSize <= 0:
		return errors.New("hidden_size, intermediate_size, num_hidden_layers, num_attention_heads and vocab_size must be positive")
	case c.NumAttentionHeads%c.NumKeyValueHeads != 0:
		return fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.NumKeyValueHeads)
	case c.HeadDim%2 != 0:
		return fmt.Errorf("head_dim %d must be even for RoPE", c.HeadDim)
	case c.HiddenAct != "silu":
		return fmt.Errorf("hidden_act %q is not supported (only silu)", c.HiddenAct)
	case c.UseSlidingWindow:
		return errors.New("use_sliding_window is not supported")
	}
	switch k := c.RopeScaling.Kind(); k {
	case "default":
	case "linear":
		if c.RopeScaling.Factor <= 0 {
			return errors.New("rope_scaling linear needs a positive factor")
		}
	case "llama3":
		r := c.RopeScaling
		if r.Factor <= 0 || r.LowFreqFactor <= 0 || r.HighFreqFactor <= r.LowFreqFactor || r.OriginalMaxPositionEmbeddings <= 0 {
			return fmt.Errorf("rope_scaling llama3 needs factor>0, 0<low_freq_factor<high_freq_factor and original_max_position_embeddings>0, got %+v", *r)
		}
	default:
		return fmt.Errorf("rope_scaling type %q is not supported", k)
	}
	return nil
}

// EOSTokenIDs returns eos_token_id as a list (it may be an int or a list in config.json).
func (c *Config) EOSTokenIDs() []int {
	return parseIDs(c.EOSTokenID)
}

func parseIDs(raw json.RawMessage) []int {
	if len(raw) == 0 {
		return nil
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return []int{one}
	}
	var many []int
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return nil
}

// CheckpointDType returns the dtype the checkpoint declares ("bfloat16" when unknown, as for
// every current Qwen3/Llama release).
func (c *Config) CheckpointDType() string {
	if c.DType != "" {
		return c.DType
	}
	if c.TorchDType != "" {
		return c.TorchDType
	}
	return "bfloat16"
}

// RopeInvFreq returns RoPE's inverse frequencies (head_dim/2 values) including rope scaling,
// following transformers' rope initialisation functions: default, linear and llama3.
func (c *Config) RopeInvFreq() []float64 {
	dim := c.HeadDim
	inv := make([]float64, dim/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(dim))
	}
	switch c.RopeScaling.Kind() {
	case "linear":
		for i := range inv {
			inv[i] /= c.RopeScaling.Factor
		}
	case "llama3":
		r := c.RopeScaling
		oldCtx := float64(r.OriginalMaxPositionEmbeddings)
		lowFreqWavelen := oldCtx / r.LowFreqFactor
		highFreqWavelen := oldCtx / r.HighFreqFactor
		for i, f := range inv {
			wavelen := 2 * math.Pi / f
			switch {
			case wavelen < highFreqWavelen: // high frequency: kept
			case wavelen > lowFreqWavelen: // low frequency: interpolated by factor
				inv[i] = f / r.Factor
			default: // in between: smooth blend of the two
				smooth := (oldCtx/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				inv[i] = (1-smooth)*f/r.Factor + smooth*f
			}
		}
	}
	return inv
}
