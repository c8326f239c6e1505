package lora

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"

	"opentracy/gpu/engine/safetensors"
)

var testModules = []Module{
	{Name: "model.layers.0.self_attn.q_proj", In: 8, Out: 8},
	{Name: "model.layers.0.self_attn.k_proj", In: 8, Out: 4},
	{Name: "model.layers.0.mlp.down_proj", In: 16, Out: 8},
	{Name: "model.layers.1.self_attn.q_proj", In: 8, Out: 8},
}

func TestMatches(t *testing.T) {
	c := Config{TargetModules: []string{"q_proj"}}
	if !c.Matches("model.layers.3.self_attn.q_proj") || c.Matches("model.layers.3.self_attn.k_proj") || c.Matches("model.layers.3.self_attn.xq_proj") {
		t.Error("list targets must match whole trailing components")
	}
	if !(Config{}).Matches("model.layers.0.mlp.down_proj") {
		t.Error("default targets must include every linear layer")
	}
	re := Config{TargetRegex: `.*layers\.1\..*(q|k)_proj`}
	if !re.Matches("model.layers.1.self_attn.q_proj") || re.Matches("model.layers.0.self_attn.q_proj") {
		t.Error("regex targets must fully match the module name")
	}
}

func TestNewInitialisesLikePEFT(t *testing.T) {
	store := gmodel.NewStore()
	ad, err := New(store, Config{Rank: 4, Alpha: 8, TargetModules: []string{"q_proj", "down_proj"}, Seed: 5}, testModules)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ad.Modules(), ","); got != "model.layers.0.mlp.down_proj,model.layers.0.self_attn.q_proj,model.layers.1.self_attn.q_proj" {
		t.Fatalf("modules = %s", got)
	}
	tg := ad.targets["model.layers.0.mlp.down_proj"]
	a := tensors.MustCopyFlatData[float32](tg.a.MustValue())
	b := tensors.MustCopyFlatData[float32](tg.b.MustValue())
	bound := 1 / math.Sqrt(16)
	maxAbs := 0.0
	for _, v := range a {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	if maxAbs > bound || maxAbs < bound/2 {
		t.Errorf("A max |value| %g, want close to but within 1/sqrt(in)=%g", maxAbs, bound)
	}
	for _, v := range b {
		if v != 0 {
			t.Fatal("B must start at zero")
		}
	}
	if tg.scale != 2 || !tg.a.Trainable || !tg.b.Trainable {
		t.Errorf("scale %v trainable %v/%v", tg.scale, tg.a.Trainable, tg.b.Trainable)
	}
	if len(ad.Variables()) != 6 {
		t.Errorf("variables = %d", len(ad.Variables()))
	}
	if _, err := New(store, Config{Rank: 4, Alpha: 8, TargetModules: []string{"nothing"}}, testModules); err == nil {
		t.Error("an adapter matching no module must be refused")
	}
	if _, err := New(store, Config{Rank: 0, Alpha: 8}, testModules); err == nil {
		t.Error("rank 0 must be refused")
	}
}

// writePEFT writes an adapter folder the way PEFT does (bf16 weights, its config keys).
func writePEFT(t *testing.T, cfg string, tensors map[string][]int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for name, shape := range tensors {
		n := 1
		for _, d := range shape {
			n *= d
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(i%7) * 0.125
		}
		st, err := safetensors.FromFloat32(name, shape, vals, safetensors.BF16)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, st)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

const peftConfigJSON = `{
  "alpha_pattern": {"down_proj": 32},
  "auto_mapping": null,
  "base_model_name_or_path": "Qwen/Qwen3-0.6B",
  "bias": "none",
  "corda_config": null,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 16,
  "lora_bias": false,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "peft_version": "0.17.0",
  "r": 8,
  "rank_pattern": {"down_proj": 2},
  "revision": null,
  "target_modules": ["q_proj", "down_proj"],
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_dora": false,
  "use_qalora": false,
  "use_rslora": false
}`

func TestLoadPEFTFolder(t *testing.T) {
	dir := writePEFT(t, peftConfigJSON, map[string][]int{
		"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {8, 8},
		"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": {8, 8},
		"base_model.model.model.layers.0.mlp.down_proj.lora_A.weight":    {2, 16},
		"base_model.model.model.layers.0.mlp.down_proj.lora_B.weight":    {8, 2},
	})
	store := gmodel.NewStore()
	ad, err := Load(store, dir, testModules)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ad.Modules()); got != 2 {
		t.Fatalf("modules = %d", got)
	}
	if s := ad.targets["model.layers.0.self_attn.q_proj"].scale; s != 2 {
		t.Errorf("q_proj scale = %v, want 16/8", s)
	}
	if s := ad.targets["model.layers.0.mlp.down_proj"].scale; s != 16 {
		t.Errorf("down_proj scale = %v, want alpha_pattern 32 / rank 2", s)
	}
	a := tensors.MustCopyFlatData[float32](ad.targets["model.layers.0.mlp.down_proj"].a.MustValue())
	if a[3] != 0.375 {
		t.Errorf("A[3] = %v, want 0.375", a[3])
	}
	if ad.Config().BaseModel != "Qwen/Qwen3-0.6B" || ad.Config().Dropout != 0.05 {
		t.Errorf("config = %+v", ad.Config())
	}

	// Round trip: our files must carry PEFT's names, shapes and config fields.
	out := filepath.Join(t.TempDir(), "saved")
	if err := ad.Save(out); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(out, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := strings.Join(f.Names(), " "); got != "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight base_model.model.model.layers.0.mlp.down_proj.lora_B.weight base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight" {
		t.Errorf("saved keys: %s", got)
	}
	bt, _ := f.Tensor("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight")
	if len(bt.Shape) != 2 || bt.Shape[0] != 8 || bt.Shape[1] != 2 {
		t.Errorf("lora_B shape %v, want [out, r] = [8 2]", bt.Shape)
	}
	var doc map[string]any
	raw, _ := os.ReadFile(filepath.Join(out, ConfigFile))
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "bias": "none", "r": 8.0, "lora_alpha": 16.0, "base_model_name_or_path": "Qwen/Qwen3-0.6B"} {
		if doc[k] != want {
			t.Errorf("adapter_config.json %s = %v, want %v", k, doc[k], want)
		}
	}
	if tm, _ := doc["target_modules"].([]any); len(tm) != 2 {
		t.Errorf("target_modules = %v", doc["target_modules"])
	}
}

func TestLoadRefusesWhatItCannotRun(t *testing.T) {
	okTensors := map[string][]int{
		"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {8, 8},
		"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": {8, 8},
	}
	cases := map[string]struct {
		cfg     string
		tensors map[string][]int
	}{
		"dora":        {strings.Replace(peftConfigJSON, `"use_dora": false`, `"use_dora": true`, 1), okTensors},
		"bias":        {strings.Replace(peftConfigJSON, `"bias": "none"`, `"bias": "lora_only"`, 1), okTensors},
		"not lora":    {strings.Replace(peftConfigJSON, `"peft_type": "LORA"`, `"peft_type": "IA3"`, 1), okTensors},
		"saved embed": {strings.Replace(peftConfigJSON, `"modules_to_save": null`, `"modules_to_save": ["lm_head"]`, 1), okTensors},
		"unknown tensor": {peftConfigJSON, map[string][]int{
			"base_model.model.model.embed_tokens.lora_embedding_A": {8, 10},
		}},
		"unknown module": {peftConfigJSON, map[string][]int{
			"base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight": {8, 8},
			"base_model.model.model.layers.9.self_attn.q_proj.lora_B.weight": {8, 8},
		}},
		"wrong shape": {peftConfigJSON, map[string][]int{
			"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {8, 9},
			"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": {8, 8},
		}},
		"half pair": {peftConfigJSON, map[string][]int{
			"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {8, 8},
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writePEFT(t, c.cfg, c.tensors)
			if _, err := Load(gmodel.NewStore(), dir, testModules); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}
