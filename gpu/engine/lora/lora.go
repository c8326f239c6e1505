// Package lora owns LoRA adapters for the engine's linear layers: their configuration, the
// trainable A/B variables (the base weights stay frozen), the low-rank update applied in the
// forward graph, the merged weight delta, and PEFT-format I/O (adapter_config.json +
// adapter_model.safetensors) so adapters move freely between this engine, PEFT and vLLM.
//
// An adapter is attached to one set of linear modules, named like the Hugging Face modules
// ("model.layers.3.self_attn.q_proj"), each with its in/out features. The variables live in the
// model's gomlx Store under "/lora/<module>.lora_A.weight" (shape [r, in]) and
// ".lora_B.weight" ([out, r]), exactly PEFT's layout, so saving is a rename.
package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers"
	gmodel "github.com/gomlx/gomlx/ml/model"
)

// DefaultTargets are all linear layers of a Qwen3/Llama decoder block.
var DefaultTargets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// StorePrefix is the Store scope holding every LoRA variable.
const StorePrefix = "/lora/"

// Config describes an adapter, in PEFT's terms.
type Config struct {
	// Rank is PEFT's r.
	Rank int
	// Alpha is lora_alpha; the update is scaled by Alpha/Rank (Alpha/sqrt(Rank) with UseRSLoRA).
	Alpha float64
	// Dropout is lora_dropout, applied to the adapter's input only while training.
	Dropout float64
	// TargetModules are module-name suffixes ("q_proj") matched the way PEFT matches a list:
	// the module name equals the entry or ends with "."+entry. Empty means DefaultTargets,
	// unless TargetRegex is set.
	TargetModules []string
	// TargetRegex, when set, is PEFT's string form of target_modules: a regexp that must match
	// the whole module name.
	TargetRegex string
	// BaseModel is base_model_name_or_path, recorded in adapter_config.json.
	BaseModel string
	// UseRSLoRA selects rank-stabilised scaling.
	UseRSLoRA bool
	// Seed makes the kaiming-uniform initialisation of A reproducible.
	Seed uint64
}

// Scale returns the factor applied to B·A·x.
func (c Config) Scale() float64 {
	if c.UseRSLoRA {
		return c.Alpha / math.Sqrt(float64(c.Rank))
	}
	return c.Alpha / float64(c.Rank)
}

func (c Config) validate() error {
	if c.Rank <= 0 {
		return fmt.Errorf("lora: rank must be positive, got %d", c.Rank)
	}
	if c.Alpha <= 0 {
		return fmt.Errorf("lora: alpha must be positive, got %v", c.Alpha)
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return fmt.Errorf("lora: dropout must be in [0,1), got %v", c.Dropout)
	}
	if c.TargetRegex != "" {
		if _, err := regexp.Compile(c.TargetRegex); err != nil {
			return fmt.Errorf("lora: target_modules regexp: %w", err)
		}
	}
	return nil
}

// Matches reports whether the module is adapted under this config.
func (c Config) Matches(module string) bool {
	if c.TargetRegex != "" {
		re, err := regexp.Compile("^(?:" + c.TargetRegex + ")$")
		return err == nil && re.MatchString(module)
	}
	targets := c.TargetModules
	if len(targets) == 0 {
		targets = DefaultTargets
	}
	for _, t := range targets {
		if module == t || strings.HasSuffix(module, "."+t) {
			return true
		}
	}
	return false
}

// Module is a linear layer that may carry an adapter: its Hugging Face module name and its
// in/out features (the base weight is [Out, In]).
type Module struct {
	Name    string
	In, Out int
}

type target struct {
	Module
	rank  int
	scale float64
	a, b  *gmodel.Variable
}

// Adapter is a LoRA adapter attached to a Store.
type Adapter struct {
	cfg     Config
	store   *gmodel.Store
	targets map[string]*target
	names   []string // sorted, for deterministic iteration
	merged  bool
}

// New creates a fresh adapter on the matching modules: A ~ U(-1/√in, 1/√in) (PEFT's
// kaiming_uniform_ with a=√5) and B = 0, so the adapted model starts equal to the base model.
func New(store *gmodel.Store, cfg Config, modules []Module) (*Adapter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x10ba))
	ad := &Adapter{cfg: cfg, store: store, targets: map[string]*target{}}
	for _, m := range modules {
		if !cfg.Matches(m.Name) {
			continue
		}
		bound := 1 / math.Sqrt(float64(m.In))
		aVals := make([]float32, cfg.Rank*m.In)
		for i := range aVals {
			aVals[i] = float32((2*rng.Float64() - 1) * bound)
		}
		bVals := make([]float32, m.Out*cfg.Rank)
		if err := ad.add(m, cfg.Rank, aVals, bVals); err != nil {
			return nil, err
		}
	}
	if len(ad.targets) == 0 {
		return nil, fmt.Errorf("lora: no module matches the target modules %v%s", cfg.TargetModules, cfg.TargetRegex)
	}
	return ad, nil
}

// add registers a target with the given values, creating or overwriting its variables.
func (ad *Adapter) add(m Module, rank int, aVals, bVals []float32) error {
	return ad.addScaled(m, rank, ad.cfg.Alpha, aVals, bVals)
}

// addScaled is add with a per-module alpha (PEFT's alpha_pattern).
func (ad *Adapter) addScaled(m Module, rank int, alpha float64, aVals, bVals []float32) error {
	if _, dup := ad.targets[m.Name]; dup {
		return fmt.Errorf("lora: module %s given twice", m.Name)
	}
	t := &target{Module: m, rank: rank, scale: alpha / float64(rank)}
	if ad.cfg.UseRSLoRA {
		t.scale = alpha / math.Sqrt(float64(rank))
	}
	var err error
	if t.a, err = setVariable(ad.store, StorePrefix+m.Name+".lora_A.weight", aVals, rank, m.In); err != nil {
		return err
	}
	if t.b, err = setVariable(ad.store, StorePrefix+m.Name+".lora_B.weight", bVals, m.Out, rank); err != nil {
		return err
	}
	ad.targets[m.Name] = t
	ad.names = append(ad.names, m.Name)
	sort.Strings(ad.names)
	return nil
}

func setVariable(store *gmodel.Store, path string, vals []float32, dims ...int) (*gmodel.Variable, error) {
	t := tensors.FromFlatDataAndDimensions(vals, dims...)
	if v := store.GetVariable(path); v != nil {
		if err := v.SetValue(t); err != nil {
			return nil, fmt.Errorf("lora: set %s: %w", path, err)
		}
		return v.SetTrainable(true), nil
	}
	v, err := store.CreateVariable(path, t)
	if err != nil {
		return nil, fmt.Errorf("lora: create %s: %w", path, err)
	}
	return v.SetTrainable(true), nil
}

// Config returns the adapter's configuration.
func (ad *Adapter) Config() Config { return ad.cfg }

// Modules returns the adapted module names, sorted.
func (ad *Adapter) Modules() []string { return append([]string(nil), ad.names...) }

// Has reports whether the module carries this adapter.
func (ad *Adapter) Has(module string) bool {
	_, ok := ad.targets[module]
	return ok
}

// Variables returns the adapter's trainable variables (A then B of each module, sorted by
// module): the only variables a LoRA training step should update.
func (ad *Adapter) Variables() []*gmodel.Variable {
	out := make([]*gmodel.Variable, 0, 2*len(ad.names))
	for _, n := range ad.names {
		out = append(out, ad.targets[n].a, ad.targets[n].b)
	}
	return out
}

// Merged reports whether the adapter was folded into the base weights (see SetMerged).
func (ad *Adapter) Merged() bool { return ad.merged }

// SetMerged records that the base weights now include the adapter, so Apply stops adding it.
// The owner of the base weights does the folding (with Delta) and calls this.
func (ad *Adapter) SetMerged(merged bool) { ad.merged = merged }

// Apply returns y plus the adapter's update for module given its input x (y = x·Wᵀ of the base
// layer): y + scale·(dropout(x)·Aᵀ)·Bᵀ. The low-rank path runs in float32 whatever the model's
// dtype, as PEFT keeps adapter weights in float32; the sum is cast back to y's dtype.
// It returns y unchanged for modules without an adapter or once merged.
func (ad *Adapter) Apply(module string, x, y *graph.Node) *graph.Node {
	if ad == nil || ad.merged {
		return y
	}
	t, ok := ad.targets[module]
	if !ok {
		return y
	}
	g := x.Graph()
	xf := x
	if xf.DType() != dtypes.Float32 {
		xf = graph.ConvertDType(xf, dtypes.Float32)
	}
	if ad.cfg.Dropout > 0 {
		// DropoutStatic is a no-op unless the graph is a training graph.
		xf = layers.DropoutStatic(ad.store.RootScope(), xf, ad.cfg.Dropout)
	}
	a := t.a.NodeValue(g)
	b := t.b.NodeValue(g)
	h := LinearT(xf, a) // [..., r]
	up := LinearT(h, b) // [..., out]
	up = graph.MulScalar(up, t.scale)
	return graph.Add(y, graph.ConvertDType(up, y.DType()))
}

// Delta returns scale·B·A ([out, in], float32) for the module, the amount to add to the base
// weight to merge the adapter; nil for modules without an adapter.
func (ad *Adapter) Delta(g *graph.Graph, module string) *graph.Node {
	t, ok := ad.targets[module]
	if !ok {
		return nil
	}
	ba := graph.DotGeneral(t.b.NodeValue(g), []int{1}, nil, t.a.NodeValue(g), []int{0}, nil)
	return graph.MulScalar(ba, t.scale)
}

// LinearT returns x·wᵀ for x [..., in] and w [out, in] (PyTorch's nn.Linear layout) without
// materialising a transpose.
func LinearT(x, w *graph.Node) *graph.Node {
	return graph.DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
}
