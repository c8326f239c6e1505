package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"

	"opentracy/gpu/engine/safetensors"
)

// File names of a PEFT adapter folder.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// peftKeyPrefix is what PEFT's LoraModel wrapping adds in front of a causal LM's module names.
const peftKeyPrefix = "base_model.model."

// peftConfig is adapter_config.json for a LoRA adapter. Fields the engine does not implement
// are read too, so Load can refuse them instead of silently computing something else.
type peftConfig struct {
	PeftType            string             `json:"peft_type"`
	TaskType            string             `json:"task_type"`
	BaseModelNameOrPath string             `json:"base_model_name_or_path"`
	R                   int                `json:"r"`
	LoraAlpha           float64            `json:"lora_alpha"`
	LoraDropout         float64            `json:"lora_dropout"`
	TargetModules       json.RawMessage    `json:"target_modules"`
	Bias                string             `json:"bias"`
	FanInFanOut         bool               `json:"fan_in_fan_out"`
	UseRSLoRA           bool               `json:"use_rslora"`
	UseDoRA             bool               `json:"use_dora"`
	LoraBias            bool               `json:"lora_bias"`
	ModulesToSave       []string           `json:"modules_to_save"`
	AlphaPattern        map[string]float64 `json:"alpha_pattern"`
	TargetParameters    []string           `json:"target_parameters"`

	targetList   []string
	targetRegex  string
	alphaPattern []alphaRule
}

type alphaRule struct {
	re    *regexp.Regexp
	alpha float64
}

// peftConfigFor renders cfg as the adapter_config.json PEFT writes.
func peftConfigFor(cfg Config) ([]byte, error) {
	var targets any = cfg.TargetModules
	if cfg.TargetRegex != "" {
		targets = cfg.TargetRegex
	} else if len(cfg.TargetModules) == 0 {
		targets = DefaultTargets
	}
	doc := map[string]any{
		"peft_type":               "LORA",
		"task_type":               "CAUSAL_LM",
		"base_model_name_or_path": cfg.BaseModel,
		"r":                       cfg.Rank,
		"lora_alpha":              cfg.Alpha,
		"lora_dropout":            cfg.Dropout,
		"target_modules":          targets,
		"bias":                    "none",
		"fan_in_fan_out":          false,
		"inference_mode":          true,
		"init_lora_weights":       true,
		"use_rslora":              cfg.UseRSLoRA,
		"use_dora":                false,
		"modules_to_save":         nil,
		"rank_pattern":            map[string]int{},
		"alpha_pattern":           map[string]float64{},
		"layers_to_transform":     nil,
		"layers_pattern":          nil,
		"revision":                nil,
		"auto_mapping":            nil,
	}
	return json.MarshalIndent(doc, "", "  ")
}

// ReadConfig parses dir/adapter_config.json and returns the engine's view of it.
func ReadConfig(dir string) (Config, error) {
	pc, err := readpeftConfig(dir)
	if err != nil {
		return Config{}, err
	}
	return pc.engineConfig(), nil
}

func readpeftConfig(dir string) (*peftConfig, error) {
	p := filepath.Join(dir, ConfigFile)
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	var pc peftConfig
	if err := json.Unmarshal(raw, &pc); err != nil {
		return nil, fmt.Errorf("lora: parse %s: %w", p, err)
	}
	if err := pc.check(); err != nil {
		return nil, fmt.Errorf("lora: %s: %w", p, err)
	}
	return &pc, nil
}

// check rejects adapters whose semantics the engine does not implement.
func (pc *peftConfig) check() error {
	if !strings.EqualFold(pc.PeftType, "LORA") {
		return fmt.Errorf("peft_type %q is not LORA", pc.PeftType)
	}
	if pc.TaskType != "" && pc.TaskType != "CAUSAL_LM" {
		return fmt.Errorf("task_type %q is not CAUSAL_LM", pc.TaskType)
	}
	if pc.R <= 0 {
		return fmt.Errorf("r must be positive, got %d", pc.R)
	}
	if pc.Bias != "" && pc.Bias != "none" {
		return fmt.Errorf("bias %q is not supported (only \"none\")", pc.Bias)
	}
	if pc.UseDoRA {
		return errors.New("DoRA adapters are not supported")
	}
	if pc.FanInFanOut {
		return errors.New("fan_in_fan_out adapters are not supported")
	}
	if len(pc.ModulesToSave) > 0 {
		return fmt.Errorf("modules_to_save %v is not supported", pc.ModulesToSave)
	}
	if pc.LoraBias {
		return errors.New("lora_bias is not supported")
	}
	if len(pc.TargetParameters) > 0 {
		return fmt.Errorf("target_parameters %v is not supported", pc.TargetParameters)
	}
	if pc.LoraAlpha == 0 {
		pc.LoraAlpha = 8 // PEFT's default
	}
	if len(pc.TargetModules) > 0 && string(pc.TargetModules) != "null" {
		var list []string
		if err := json.Unmarshal(pc.TargetModules, &list); err == nil {
			pc.targetList = list
		} else if err := json.Unmarshal(pc.TargetModules, &pc.targetRegex); err != nil {
			return fmt.Errorf("target_modules is neither a list nor a string: %s", pc.TargetModules)
		}
	}
	for key, alpha := range pc.AlphaPattern {
		// PEFT matches pattern keys against the end of the module name.
		re, err := regexp.Compile(`^(.*\.)?` + key + `$`)
		if err != nil {
			return fmt.Errorf("alpha_pattern key %q: %w", key, err)
		}
		pc.alphaPattern = append(pc.alphaPattern, alphaRule{re, alpha})
	}
	sort.Slice(pc.alphaPattern, func(i, j int) bool {
		return pc.alphaPattern[i].re.String() < pc.alphaPattern[j].re.String()
	})
	return nil
}

func (pc *peftConfig) engineConfig() Config {
	return Config{
		Rank:          pc.R,
		Alpha:         pc.LoraAlpha,
		Dropout:       pc.LoraDropout,
		TargetModules: pc.targetList,
		TargetRegex:   pc.targetRegex,
		BaseModel:     pc.BaseModelNameOrPath,
		UseRSLoRA:     pc.UseRSLoRA,
	}
}

func (pc *peftConfig) alphaFor(module string) float64 {
	for _, r := range pc.alphaPattern {
		if r.re.MatchString(module) {
			return r.alpha
		}
	}
	return pc.LoraAlpha
}

// moduleFromKey maps a PEFT tensor key to (module name, "A" or "B"); ok is false for keys that
// are not LoRA weights.
func moduleFromKey(key string) (module, which string, ok bool) {
	k := strings.TrimPrefix(key, peftKeyPrefix)
	for _, w := range []string{"A", "B"} {
		for _, suffix := range []string{".lora_" + w + ".weight", ".lora_" + w + ".default.weight"} {
			if strings.HasSuffix(k, suffix) {
				return strings.TrimSuffix(k, suffix), w, true
			}
		}
	}
	return "", "", false
}

// Load reads a PEFT LoRA adapter folder onto the given modules of a base model. Ranks come from
// the tensors (so rank_pattern adapters load), alphas from lora_alpha and alpha_pattern.
// Any tensor that is not a LoRA A/B weight of a known module is an error: silently ignoring it
// would run a different model than the one that was trained.
func Load(store *gmodel.Store, dir string, modules []Module) (*Adapter, error) {
	pc, err := readpeftConfig(dir)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	defer f.Close()

	byName := make(map[string]Module, len(modules))
	for _, m := range modules {
		byName[m.Name] = m
	}
	type pair struct{ a, b *safetensors.Tensor }
	pairs := map[string]*pair{}
	for _, key := range f.Names() {
		module, which, ok := moduleFromKey(key)
		if !ok {
			return nil, fmt.Errorf("lora: %s: tensor %q is not a LoRA A/B weight (unsupported adapter content)", dir, key)
		}
		if _, known := byName[module]; !known {
			return nil, fmt.Errorf("lora: %s: tensor %q is for module %q, which the base model does not have", dir, key, module)
		}
		t, err := f.Tensor(key)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		p := pairs[module]
		if p == nil {
			p = &pair{}
			pairs[module] = p
		}
		if which == "A" {
			p.a = &t
		} else {
			p.b = &t
		}
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("lora: %s: no LoRA weights", dir)
	}
	ad := &Adapter{cfg: pc.engineConfig(), store: store, targets: map[string]*target{}}
	names := make([]string, 0, len(pairs))
	for n := range pairs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p, m := pairs[name], byName[name]
		if p.a == nil || p.b == nil {
			return nil, fmt.Errorf("lora: %s: module %s has only one of lora_A/lora_B", dir, name)
		}
		if len(p.a.Shape) != 2 || len(p.b.Shape) != 2 || p.a.Shape[1] != m.In || p.b.Shape[0] != m.Out || p.a.Shape[0] != p.b.Shape[1] {
			return nil, fmt.Errorf("lora: %s: module %s: lora_A %v and lora_B %v do not fit a [%d, %d] weight",
				dir, name, p.a.Shape, p.b.Shape, m.Out, m.In)
		}
		aVals, err := safetensors.ToFloat32(*p.a)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		bVals, err := safetensors.ToFloat32(*p.b)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		if err := ad.addScaled(m, p.a.Shape[0], pc.alphaFor(name), aVals, bVals); err != nil {
			return nil, err
		}
	}
	return ad, nil
}

// Save writes the adapter as a PEFT folder (adapter_config.json + adapter_model.safetensors
// with float32 weights under PEFT's key names), creating dir if needed.
func (ad *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	var ts []safetensors.Tensor
	for _, name := range ad.names {
		t := ad.targets[name]
		for _, part := range []struct {
			v    *gmodel.Variable
			key  string
			dims []int
		}{
			{t.a, "lora_A", []int{t.rank, t.In}},
			{t.b, "lora_B", []int{t.Out, t.rank}},
		} {
			val, err := part.v.Value()
			if err != nil {
				return fmt.Errorf("lora: read %s: %w", part.v.Path(), err)
			}
			flat, err := tensors.CopyFlatData[float32](val)
			if err != nil {
				return fmt.Errorf("lora: read %s: %w", part.v.Path(), err)
			}
			st, err := safetensors.FromFloat32(peftKeyPrefix+name+"."+part.key+".weight", part.dims, flat, safetensors.F32)
			if err != nil {
				return fmt.Errorf("lora: %w", err)
			}
			ts = append(ts, st)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	js, err := peftConfigFor(ad.cfg)
	if err != nil {
		return fmt.Errorf("lora: encode config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	return nil
}
