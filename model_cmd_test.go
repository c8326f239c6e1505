package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute"

	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/lora"
	"opentracy/gpu/hub/hubtest"
	"opentracy/gpu/train"
)

// modelEnv isolates a `model` command from the machine: the pure-Go backend, no config file,
// a private data dir, no Hub token.
func modelEnv(t *testing.T) (dataDir string) {
	t.Helper()
	dataDir = filepath.Join(t.TempDir(), "data")
	t.Setenv("GOMLX_BACKEND", "go")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("OPENTRACY_CONFIG", "")
	t.Setenv("OPENTRACY_DATA_DIR", dataDir)
	t.Setenv("HF_TOKEN", "")
	return dataDir
}

func mustRun(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	code, out, errOut := runCommand(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out, errOut
}

// TestModelTrainGenerate drives the CLI end to end on the CPU: a tiny model, LoRA training on
// chat JSONL (every answer is "ok!"), generation with the adapter, a resumed run, logits and
// the benchmarks.
func TestModelTrainGenerate(t *testing.T) {
	modelEnv(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny")
	out, _ := mustRun(t, "model", "init-tiny", "--family", "qwen3", "--out", model)
	if !strings.Contains(out, "vocabulary 265") {
		t.Errorf("init-tiny: %q", out)
	}

	var data bytes.Buffer
	for _, q := range []string{"abc", "hello", "dog", "cat", "sun", "moon", "tree", "blue"} {
		line, _ := json.Marshal(map[string]any{"messages": []map[string]string{
			{"role": "user", "content": q}, {"role": "assistant", "content": "ok!"},
		}})
		data.Write(append(line, '\n'))
	}
	dataPath := filepath.Join(dir, "train.jsonl")
	if err := os.WriteFile(dataPath, data.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	adapter := filepath.Join(dir, "adapter")
	trainArgs := []string{"model", "train", "--model", model, "--data", dataPath, "--out", adapter,
		"--batch", "4", "--lr", "1e-2", "--rank", "8", "--save-every", "10"}
	out, _ = mustRun(t, append(trainArgs, "--steps", "20")...)
	for _, want := range []string{"data: 8 examples → 8 sequences", "step 1/20  loss ", "step 20/20  loss ", "adapter saved to " + adapter} {
		if !strings.Contains(out, want) {
			t.Errorf("train output lacks %q:\n%s", want, out)
		}
	}
	losses := regexp.MustCompile(`(?m)^step \d+/20  loss ([0-9.]+)`).FindAllStringSubmatch(out, -1)
	if len(losses) != 20 {
		t.Fatalf("%d progress lines, want 20", len(losses))
	}
	first, _ := strconv.ParseFloat(losses[0][1], 64)
	last, _ := strconv.ParseFloat(losses[19][1], 64)
	if !(last < first/2) {
		t.Errorf("loss %v → %v: did not fall by half", first, last)
	}
	for _, f := range []string{lora.ConfigFile, lora.WeightsFile, "checkpoints/step-000010/" + train.StateFile, "checkpoints/step-000020/" + train.OptimizerFile} {
		if _, err := os.Stat(filepath.Join(adapter, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}

	gen := []string{"model", "generate", "--model", model, "--chat", "--prompt", "xyz", "--max-tokens", "10", "--temperature", "0"}
	out, errOut := mustRun(t, append(gen, "--adapter", adapter)...)
	if out != "ok!\n" || !strings.Contains(errOut, "finish: stop") {
		t.Errorf("generate with the adapter: %q (%s); want the trained answer", out, errOut)
	}
	if out, _ := mustRun(t, gen...); out == "ok!\n" {
		t.Error("the base model answers like the adapter")
	}

	// Resuming continues from the last checkpoint (step 20) up to the new step count.
	out, _ = mustRun(t, append(trainArgs, "--steps", "22", "--resume", "auto")...)
	if !strings.Contains(out, "step-000020 at step 20") || !strings.Contains(out, "step 22/22") || strings.Contains(out, "step 20/22") {
		t.Errorf("resume:\n%s", out)
	}

	// Logits as .npy, and raw with a JSON shape file.
	npy := filepath.Join(dir, "l.npy")
	out, _ = mustRun(t, "model", "logits", "--model", model, "--ids", "1,2,3", "--out", npy)
	var info struct {
		Shape  []int `json:"shape"`
		Argmax []int `json:"argmax"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Shape) != 3 || info.Shape[1] != 3 || info.Shape[2] != 265 || len(info.Argmax) != 3 {
		t.Fatalf("logits report %q: %v", out, err)
	}
	raw, err := os.ReadFile(npy)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.LittleEndian.Uint16(raw[8:10]))
	header := string(raw[10 : 10+hlen])
	if !bytes.HasPrefix(raw, []byte("\x93NUMPY\x01\x00")) || (10+hlen)%64 != 0 || !strings.Contains(header, "'shape': (1, 3, 265)") ||
		len(raw) != 10+hlen+3*265*4 {
		t.Fatalf("npy: header %q, %d bytes", header, len(raw))
	}
	row := raw[10+hlen+265*4 : 10+hlen+2*265*4] // position 1
	best, bestV := 0, float32(math.Inf(-1))
	for i := 0; i < 265; i++ {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:])); v > bestV {
			best, bestV = i, v
		}
	}
	if best != info.Argmax[1] {
		t.Errorf("npy row 1 argmax %d, reported %d", best, info.Argmax[1])
	}
	bin := filepath.Join(dir, "l.bin")
	mustRun(t, "model", "logits", "--model", model, "--ids", "1,2,3", "--out", bin)
	rawBin, _ := os.ReadFile(bin)
	side, _ := os.ReadFile(bin + ".json")
	if !bytes.Equal(rawBin, raw[10+hlen:]) || !strings.Contains(string(side), `"shape":[1,3,265]`) {
		t.Errorf("raw logits differ from the npy data, or sidecar %q", side)
	}

	// --dtype picks the compute dtype: bf16 logits are near the float32 ones, not equal.
	out, _ = mustRun(t, "model", "logits", "--model", model, "--ids", "1,2,3", "--out", bin, "--dtype", "bfloat16")
	if !strings.Contains(out, `"model_dtype":"BFloat16"`) {
		t.Errorf("logits --dtype bfloat16: %q", out)
	}
	rawBF16, _ := os.ReadFile(bin)
	if len(rawBF16) != len(rawBin) || bytes.Equal(rawBF16, rawBin) {
		t.Errorf("bf16 logits: %d bytes, identical to float32: %v", len(rawBF16), bytes.Equal(rawBF16, rawBin))
	}

	profile := filepath.Join(dir, "decode.pprof")
	for _, args := range [][]string{
		{"--mode", "train", "--seq", "32", "--batch", "2", "--steps", "2", "--warmup", "1"},
		{"--mode", "decode", "--max-new-tokens", "8", "--steps", "1", "--cpuprofile", profile},
	} {
		out, _ := mustRun(t, append([]string{"model", "bench", "--model", model}, args...)...)
		var rep map[string]any
		if err := json.Unmarshal([]byte(out), &rep); err != nil || strings.Count(out, "\n") != 1 {
			t.Fatalf("bench %v: %q: %v", args, out, err)
		}
		if tps, _ := rep["tokens_per_s"].(float64); tps <= 0 || rep["backend"] != "go" {
			t.Errorf("bench %v: %v", args, rep)
		}
		if args[1] == "decode" {
			// The breakdown: prefill, the steps (7 after the prefill's token) and the host's share.
			prefill, _ := rep["prefill_s"].(float64)
			step, _ := rep["step_ms"].(float64)
			host, ok := rep["host_ms_per_token"].(float64)
			total, _ := rep["total_s"].(map[string]any)["median"].(float64)
			if prefill <= 0 || step <= 0 || !ok || host < 0 || prefill+7*step/1e3 > total*1.01 {
				t.Errorf("decode breakdown: prefill %vs, step %vms, host %vms/token, total %vs", prefill, step, host, total)
			}
		}
	}
	// A gzipped pprof profile of the timed runs.
	if b, err := os.ReadFile(profile); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("--cpuprofile wrote %d bytes (%v); want a gzipped profile", len(b), err)
	}
}

// TestModelHubCommands downloads a tiny model from a fake Hub, lists it, runs it by name and
// deletes it.
func TestModelHubCommands(t *testing.T) {
	dataDir := modelEnv(t)
	src := filepath.Join(t.TempDir(), "tiny")
	mustRun(t, "model", "init-tiny", "--family", "llama", "--out", src)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	fh := hubtest.New(t)
	fh.Add(&hubtest.Repo{ID: "Org/Tiny", Commit: "0123456789abcdef0123456789abcdef01234567", Files: files})
	t.Setenv("HF_ENDPOINT", fh.URL)

	out, _ := mustRun(t, "model", "download", "Org/Tiny")
	if !strings.Contains(out, "downloaded Org/Tiny (llama") || !strings.Contains(out, "done") {
		t.Errorf("download: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "models", "Org--Tiny", "model.safetensors")); err != nil {
		t.Errorf("weights not in the models folder: %v", err)
	}
	out, _ = mustRun(t, "model", "list")
	if !regexp.MustCompile(`Org/Tiny\s+llama\s+\S+\s+\S+ MB\s+ready`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}
	out, _ = mustRun(t, "model", "generate", "--model", "Org/Tiny", "--prompt", "hi", "--max-tokens", "3", "--temperature", "0")
	if out == "" {
		t.Error("generate by name printed nothing")
	}
	out, _ = mustRun(t, "model", "rm", "Org/Tiny", "--data-dir", dataDir)
	if !strings.Contains(out, "deleted Org/Tiny") {
		t.Errorf("rm: %q", out)
	}
	out, _ = mustRun(t, "model", "list", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("list after rm: %q", out)
	}
}

func TestModelUsageErrors(t *testing.T) {
	modelEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"model"}, 2, "Commands:"},
		{[]string{"model", "-h"}, 0, "GOMLX_BACKEND"},
		{[]string{"model", "fly"}, 2, `unknown command "fly"`},
		{[]string{"model", "train", "--data", "x.jsonl"}, 2, "--model is required"},
		{[]string{"model", "train", "-h"}, 0, "-accum int"},
		{[]string{"model", "download"}, 2, "missing argument"},
		{[]string{"model", "rm", "a/b", "c/d"}, 2, `unexpected argument "c/d"`},
		{[]string{"model", "init-tiny", "--out", t.TempDir(), "--family", "gpt2"}, 1, "unknown family"},
		{[]string{"model", "generate", "--model", "Nobody/Nothing", "--prompt", "x"}, 1, "neither a model folder nor a downloaded model"},
		{[]string{"model", "bench", "--model", "x", "--mode", "fly"}, 1, "want train or decode"},
		{[]string{"model", "logits", "--model", "x", "--ids", "1", "--out", "x.npy", "--dtype", "int8"}, 1, "want float32, bfloat16 or float16"},
		{[]string{"model", "info"}, 2, "--model is required"},
		{[]string{"model", "info", "--model", t.TempDir()}, 1, "neither a model folder nor a downloaded model"},
	} {
		start := time.Now()
		code, _, errOut := runCommand(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q (%v)", tc.args, code, errOut, tc.code, tc.want, time.Since(start))
		}
	}
}

// TestModelInfo describes a tiny model, as text and JSON, with an adapter, and one whose
// tokenizer has no chat template.
func TestModelInfo(t *testing.T) {
	modelEnv(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny")
	mustRun(t, "model", "init-tiny", "--family", "qwen3", "--out", model)

	// An adapter on q_proj and v_proj of both layers: rank 4, so 4·(64+64) + 4·(64+32) per layer.
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	m, err := lm.Load(t.Context(), b, model, lm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := m.NewAdapter(lora.Config{Rank: 4, Alpha: 8, TargetModules: []string{"q_proj", "v_proj"}})
	if err != nil {
		t.Fatal(err)
	}
	adapter := filepath.Join(dir, "adapter")
	if err := ad.Save(adapter); err != nil {
		t.Fatal(err)
	}
	m.Close()

	out, _ := mustRun(t, "model", "info", "--model", model, "--adapter", adapter)
	for _, want := range []string{
		"family        qwen3 (Qwen3ForCausalLM)",
		"layers        2, hidden size 64, intermediate 128",
		"attention     4 heads, 2 key/value heads, head dim 16",
		"vocabulary    265",
		"dtype         float32 (stored as F32)",
		"parameters    91.1K (91072;",
		"tokenizer     265 tokens (9 added), BOS none, EOS <|im_end|>",
		"chat template qwen3 (the reference template, exactly)",
		"  LoRA        rank 4, alpha 8, dropout 0, on q_proj, v_proj",
		"  size        4 modules, 1.8K parameters (1792)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}

	out, _ = mustRun(t, "model", "info", "--model", model, "--json", "--adapter", adapter)
	var info struct {
		Family       string `json:"family"`
		Layers       int    `json:"layers"`
		HiddenSize   int    `json:"hidden_size"`
		Heads        int    `json:"heads"`
		KVHeads      int    `json:"kv_heads"`
		VocabSize    int    `json:"vocab_size"`
		DType        string `json:"dtype"`
		Params       int64  `json:"params"`
		ChatTemplate struct {
			Name   string `json:"name"`
			Source string `json:"source"`
			Exact  bool   `json:"exact"`
		} `json:"chat_template"`
		Tokenizer struct {
			Found bool   `json:"found"`
			EOS   string `json:"eos"`
		} `json:"tokenizer"`
		Adapter *struct {
			Rank    int   `json:"rank"`
			Modules int   `json:"modules"`
			Params  int64 `json:"params"`
		} `json:"adapter"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if info.Family != "qwen3" || info.Layers != 2 || info.HiddenSize != 64 || info.Heads != 4 || info.KVHeads != 2 || info.VocabSize != 265 ||
		info.DType != "float32" || info.Params != 91072 || info.ChatTemplate.Name != "qwen3" || info.ChatTemplate.Source != "tokenizer" ||
		!info.ChatTemplate.Exact || !info.Tokenizer.Found || info.Tokenizer.EOS != "<|im_end|>" ||
		info.Adapter == nil || info.Adapter.Rank != 4 || info.Adapter.Modules != 4 || info.Adapter.Params != 1792 {
		t.Errorf("json %+v\n%s", info, out)
	}

	// Without a chat template in the tokenizer, serving uses the family's: info says so.
	cfgPath := filepath.Join(model, "tokenizer_config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var tc map[string]any
	if err := json.Unmarshal(raw, &tc); err != nil {
		t.Fatal(err)
	}
	delete(tc, "chat_template")
	raw, _ = json.Marshal(tc)
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ = mustRun(t, "model", "info", "--model", model)
	if !strings.Contains(out, "chat template qwen3 (the tokenizer has none the engine knows: the family's)") || strings.Contains(out, "adapter") {
		t.Errorf("info without a template:\n%s", out)
	}
}
