// Package localtest writes local models for tests: a tiny random Qwen3 that speaks through the
// real Qwen3 tokenizer and chat template (from the engine's reference test packages, installed on
// first use), laid out in a data dir exactly as gpu/hub leaves a finished download, and PEFT
// adapters for it.
package localtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/lora"
	"opentracy/gpu/engine/safetensors"
	"opentracy/gpu/engine/tokenizer/reftest"
	"opentracy/gpu/hub"
)

// Shape of the tiny model: small enough that a token takes milliseconds on the CPU backend (the
// 151k-token vocabulary dominates), with more context than any test uses.
const (
	Hidden  = 16
	Heads   = 2
	KVHeads = 1
	HeadDim = 8
	Layers  = 1
	// MaxPositions is the context length.
	MaxPositions = 1024
)

// Options returns the lm.TinyOptions of the tiny model with the Qwen3 tokenizer.
func Options(t testing.TB) lm.TinyOptions {
	t.Helper()
	return lm.TinyOptions{
		Family: lm.Qwen3, Hidden: Hidden, Heads: Heads, KVHeads: KVHeads, HeadDim: HeadDim, Layers: Layers,
		Intermediate: 2 * Hidden, MaxPositions: MaxPositions, TokenizerDir: reftest.ModelDir(t, reftest.Qwen3),
	}
}

// WriteModel writes the tiny model as DATA_DIR/models/<name> with seed (0 for the default) and
// returns its folder.
func WriteModel(t testing.TB, dataDir, name string, seed uint64) string {
	t.Helper()
	o := Options(t)
	o.Seed = seed
	dir := filepath.Join(dataDir, "models", name) // local.ModelsDirName (importing it would cycle)
	if err := lm.InitTinyWith(dir, o); err != nil {
		t.Fatal(err)
	}
	WriteManifest(t, dir)
	return dir
}

// LinkModel puts the model folder src into DATA_DIR/models/<name> as hard links (copies where
// links cannot be made), with its own manifest, and returns the new folder: a second model
// without writing its weights again. To change a file of the copy, remove it and write a new
// one: writing into a link changes the original too.
func LinkModel(t testing.TB, src, dataDir, name string) string {
	t.Helper()
	dir := filepath.Join(dataDir, "models", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == hub.ManifestName {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())
		if os.Link(from, to) != nil {
			data, err := os.ReadFile(from)
			if err == nil {
				err = os.WriteFile(to, data, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	WriteManifest(t, dir)
	return dir
}

// WriteManifest marks a model folder as a finished download of everything in it, as gpu/hub
// does when a download ends.
func WriteManifest(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := hub.Manifest{Repo: "test/" + filepath.Base(dir), Revision: "main", DownloadedAt: time.Now().UTC()}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if e.Type().IsRegular() && e.Name() != hub.ManifestName {
			m.Files = append(m.Files, hub.ManifestFile{Name: e.Name(), Size: info.Size()})
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, hub.ManifestName), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteAdapter writes a PEFT LoRA adapter for the tiny model into dir: rank 2 on every layer's
// q_proj and v_proj, with random A and B large enough to change what the model says.
func WriteAdapter(t testing.TB, dir string, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const rank = 2
	cfg := map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank,
		"lora_dropout": 0.0, "target_modules": []string{"q_proj", "v_proj"}, "bias": "none"}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lora.ConfigFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	random := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	var ts []safetensors.Tensor
	for l := range Layers {
		for module, out := range map[string]int{"q_proj": Heads * HeadDim, "v_proj": KVHeads * HeadDim} {
			key := fmt.Sprintf("base_model.model.model.layers.%d.self_attn.%s", l, module)
			a, err := safetensors.FromFloat32(key+".lora_A.weight", []int{rank, Hidden}, random(rank*Hidden), safetensors.F32)
			if err != nil {
				t.Fatal(err)
			}
			b, err := safetensors.FromFloat32(key+".lora_B.weight", []int{out, rank}, random(out*rank), safetensors.F32)
			if err != nil {
				t.Fatal(err)
			}
			ts = append(ts, a, b)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, lora.WeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}
