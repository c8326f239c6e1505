package lm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"

	"opentracy/gpu/engine/lora"
	"opentracy/gpu/engine/safetensors"
)

// BaseScope is the Store scope of the (frozen) base weights: "/base/<HF tensor name>".
const BaseScope = "/base/"

// Options tune Load.
type Options struct {
	// DType is the dtype weights are kept in and matmuls run in. The zero value picks float32 on
	// the pure-Go backend (which has no fast bf16 path) and the checkpoint's dtype elsewhere.
	DType dtypes.DType
	// DecodeRoom is how many decode steps a new session's KV cache holds before it grows
	// (default 256); growth doubles the cache bucket.
	DecodeRoom int
	// OneHotCacheWrites forces the select-based KV cache write even where the backend has
	// DynamicUpdateSlice (the Go backend always uses it): a fallback should a backend's in-place
	// update misbehave, and a way to compare the two.
	OneHotCacheWrites bool
	// Logger receives load and compile progress; nil means slog.Default().
	Logger *slog.Logger
}

// GenerationConfig is the part of generation_config.json used as generation defaults.
type GenerationConfig struct {
	EOSTokenID  json.RawMessage `json:"eos_token_id,omitempty"`
	PadTokenID  *int            `json:"pad_token_id,omitempty"`
	Temperature *float64        `json:"temperature,omitempty"`
	TopP        *float64        `json:"top_p,omitempty"`
	TopK        *int            `json:"top_k,omitempty"`
	DoSample    *bool           `json:"do_sample,omitempty"`
}

// Model is a loaded causal language model (Qwen3 or Llama 3.x) on a gomlx backend.
//
// Its weights live in a gomlx Store under BaseScope and are not trainable; an attached LoRA
// adapter adds trainable variables under lora.StorePrefix. Graph-building methods (Logits,
// TokenLogProbs, Loss, ...) read the weights from that Store, so they can be used inside any
// gomlx executor or trainer built on Store().
//
// A Model is safe for concurrent use by several sessions; attaching or merging an adapter must
// not race with running sessions.
type Model struct {
	Config     *Config
	Generation GenerationConfig
	Dir        string

	backend    compute.Backend
	store      *gmodel.Store
	dtype      dtypes.DType
	invFreq    []float32
	decodeRoom int
	useDUS     bool // backend has DynamicUpdateSlice for in-place KV cache writes
	log        *slog.Logger

	mu      sync.Mutex
	adapter *lora.Adapter
	execs   *execs
}

// Load reads a Hugging Face model folder (config.json, *.safetensors or a sharded index,
// optional generation_config.json) onto backend.
func Load(ctx context.Context, backend compute.Backend, dir string, opts Options) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	m, err := newModel(backend, cfg, dir, opts)
	if err != nil {
		return nil, err
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
		if err := json.Unmarshal(raw, &m.Generation); err != nil {
			return nil, fmt.Errorf("lm: parse generation_config.json: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lm: %w", err)
	}
	st, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lm: %w", err)
	}
	defer st.Close()
	if err := m.loadWeights(ctx, st); err != nil {
		m.store.Finalize()
		return nil, err
	}
	m.log.Info("model loaded", "dir", dir, "family", cfg.ModelType, "layers", cfg.NumHiddenLayers,
		"hidden", cfg.HiddenSize, "vocab", cfg.VocabSize, "dtype", m.dtype, "backend", backend.Name(),
		"params", m.store.NumParameters())
	return m, nil
}

func newModel(backend compute.Backend, cfg *Config, dir string, opts Options) (*Model, error) {
	dtype := opts.DType
	if dtype == dtypes.InvalidDType {
		dtype = dtypes.Float32
		if backend.String() != "go" {
			switch cfg.CheckpointDType() {
			case "bfloat16":
				dtype = dtypes.BFloat16
			case "float16":
				dtype = dtypes.Float16
			}
		}
	}
	switch dtype {
	case dtypes.Float32, dtypes.BFloat16, dtypes.Float16:
	default:
		return nil, fmt.Errorf("lm: unsupported compute dtype %s", dtype)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	room := opts.DecodeRoom
	if room <= 0 {
		room = 256
	}
	inv := cfg.RopeInvFreq()
	inv32 := make([]float32, len(inv))
	for i, f := range inv {
		inv32[i] = float32(f)
	}
	return &Model{
		Config:     cfg,
		Dir:        dir,
		backend:    backend,
		store:      gmodel.NewStore(),
		dtype:      dtype,
		invFreq:    inv32,
		decodeRoom: room,
		useDUS:     !opts.OneHotCacheWrites && backend.Capabilities().Operations[compute.OpTypeDynamicUpdateSlice],
		log:        log.With("component", "lm"),
		execs:      &execs{},
	}, nil
}

// Backend returns the backend the model runs on.
func (m *Model) Backend() compute.Backend { return m.backend }

// Store returns the gomlx Store holding the weights (and adapter variables).
func (m *Model) Store() *gmodel.Store { return m.store }

// DType returns the dtype of the weights and activations.
func (m *Model) DType() dtypes.DType { return m.dtype }

// EOSTokenIDs returns the end-of-sequence ids: generation_config.json's when present (Qwen3
// lists both <|im_end|> and <|endoftext|> there), else config.json's.
func (m *Model) EOSTokenIDs() []int {
	if ids := parseIDs(m.Generation.EOSTokenID); len(ids) > 0 {
		return ids
	}
	return m.Config.EOSTokenIDs()
}

// Close releases the weights and compiled graphs.
func (m *Model) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.execs.finalize()
	m.execs = &execs{}
	m.store.Finalize()
}

// weightSpec is one expected checkpoint tensor.
type weightSpec struct {
	name  string
	shape []int
}

// weightSpecs lists the tensors the forward pass reads, with their HF names and shapes.
func (c *Config) weightSpecs() []weightSpec {
	h, d := c.HiddenSize, c.HeadDim
	specs := []weightSpec{
		{name: "model.embed_tokens.weight", shape: []int{c.VocabSize, h}},
		{name: "model.norm.weight", shape: []int{h}},
	}
	if !c.TieWordEmbeddings {
		specs = append(specs, weightSpec{name: "lm_head.weight", shape: []int{c.VocabSize, h}})
	}
	for l := 0; l < c.NumHiddenLayers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		specs = append(specs,
			weightSpec{name: p + "input_layernorm.weight", shape: []int{h}},
			weightSpec{name: p + "post_attention_layernorm.weight", shape: []int{h}},
		)
		for _, lin := range c.linearModules(l) {
			specs = append(specs, weightSpec{name: lin.Name + ".weight", shape: []int{lin.Out, lin.In}})
			isAttn := strings.Contains(lin.Name, ".self_attn.")
			if (isAttn && c.AttentionBias) || (!isAttn && c.MLPBias) {
				specs = append(specs, weightSpec{name: lin.Name + ".bias", shape: []int{lin.Out}})
			}
		}
		if c.ModelType == Qwen3 {
			specs = append(specs,
				weightSpec{name: p + "self_attn.q_norm.weight", shape: []int{d}},
				weightSpec{name: p + "self_attn.k_norm.weight", shape: []int{d}},
			)
		}
	}
	return specs
}

// linearModules returns layer l's linear layers with their in/out features.
func (c *Config) linearModules(l int) []lora.Module {
	h, i := c.HiddenSize, c.IntermediateSize
	q, kv := c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim
	p := fmt.Sprintf("model.layers.%d.", l)
	return []lora.Module{
		{Name: p + "self_attn.q_proj", In: h, Out: q},
		{Name: p + "self_attn.k_proj", In: h, Out: kv},
		{Name: p + "self_attn.v_proj", In: h, Out: kv},
		{Name: p + "self_attn.o_proj", In: q, Out: h},
		{Name: p + "mlp.gate_proj", In: h, Out: i},
		{Name: p + "mlp.up_proj", In: h, Out: i},
		{Name: p + "mlp.down_proj", In: i, Out: h},
	}
}

// LinearModules returns every linear layer a LoRA adapter may target.
func (m *Model) LinearModules() []lora.Module {
	var out []lora.Module
	for l := 0; l < m.Config.NumHiddenLayers; l++ {
		out = append(out, m.Config.linearModules(l)...)
	}
	return out
}

func (m *Model) loadWeights(ctx context.Context, st *safetensors.Dir) error {
	want := map[string]bool{}
	for _, spec := range m.Config.weightSpecs() {
		want[spec.name] = true
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("lm: load: %w", err)
		}
		if !st.Has(spec.name) {
			return fmt.Errorf("lm: checkpoint %s has no tensor %q", m.Dir, spec.name)
		}
		t, err := st.Tensor(spec.name)
		if err != nil {
			return fmt.Errorf("lm: %w", err)
		}
		if !equalInts(t.Shape, spec.shape) {
			return fmt.Errorf("lm: tensor %q has shape %v, config.json implies %v", spec.name, t.Shape, spec.shape)
		}
		tensor, err := m.toDevice(t)
		if err != nil {
			return fmt.Errorf("lm: tensor %q: %w", spec.name, err)
		}
		v, err := m.store.CreateVariable(BaseScope+spec.name, tensor)
		if err != nil {
			return fmt.Errorf("lm: %w", err)
		}
		v.SetTrainable(false)
	}
	for _, name := range st.Names() {
		if !want[name] {
			// e.g. rotary inv_freq buffers of old exports, or lm_head of a tied checkpoint.
			m.log.Debug("ignoring checkpoint tensor", "name", name)
		}
	}
	return nil
}

// toDevice converts a checkpoint tensor to the model dtype and uploads it. When the dtypes match
// and the mapped bytes are aligned, the upload reads the memory map directly (no Go copy).
func (m *Model) toDevice(t safetensors.Tensor) (*tensors.Tensor, error) {
	shape := shapes.Make(m.dtype, t.Shape...)
	n := t.NumElements()
	var flat any
	same := (m.dtype == dtypes.Float32 && t.DType == safetensors.F32) ||
		(m.dtype == dtypes.BFloat16 && t.DType == safetensors.BF16) ||
		(m.dtype == dtypes.Float16 && t.DType == safetensors.F16)
	aligned := n > 0 && uintptr(unsafe.Pointer(&t.Data[0]))%uintptr(t.DType.Size()) == 0
	switch {
	case same && aligned && m.dtype == dtypes.Float32:
		flat = unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), n)
	case same && aligned && m.dtype == dtypes.BFloat16:
		flat = unsafe.Slice((*bfloat16.BFloat16)(unsafe.Pointer(&t.Data[0])), n)
	case same && aligned && m.dtype == dtypes.Float16:
		flat = unsafe.Slice((*float16.Float16)(unsafe.Pointer(&t.Data[0])), n)
	default:
		f32, err := safetensors.ToFloat32(t)
		if err != nil {
			return nil, err
		}
		switch m.dtype {
		case dtypes.Float32:
			flat = f32
		case dtypes.BFloat16:
			out := make([]bfloat16.BFloat16, n)
			for i, v := range f32 {
				out[i] = bfloat16.BFloat16(safetensors.Float32ToBF16(v))
			}
			flat = out
		case dtypes.Float16:
			out := make([]float16.Float16, n)
			for i, v := range f32 {
				out[i] = float16.Float16(safetensors.Float32ToF16(v))
			}
			flat = out
		}
	}
	buf, err := m.backend.BufferFromFlatData(0, flat, shape)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	return tensors.FromBuffer(buf)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
