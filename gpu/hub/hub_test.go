package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"opentracy/gpu/download"
	"opentracy/gpu/download/downloadtest"
	"opentracy/gpu/hub"
	"opentracy/gpu/hub/hubtest"
)

// safetensors builds a safetensors file whose tensors have the given shapes (float32 zeros).
func safetensors(t *testing.T, shapes map[string][]int64) []byte {
	t.Helper()
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var offset int64
	names := make([]string, 0, len(shapes))
	for name := range shapes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		n := int64(4)
		for _, d := range shapes[name] {
			n *= d
		}
		header[name] = map[string]any{"dtype": "F32", "shape": shapes[name], "data_offsets": []int64{offset, offset + n}}
		offset += n
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, uint64(len(hdr)))
	buf.Write(hdr)
	buf.Write(make([]byte, offset))
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// qwenRepo is a tiny Qwen3-shaped model in two shards, with files the engine does not need.
func qwenRepo(t *testing.T) *hubtest.Repo {
	shard1 := safetensors(t, map[string][]int64{"model.embed_tokens.weight": {64, 16}, "model.layers.0.self_attn.q_proj.weight": {16, 16}})
	shard2 := safetensors(t, map[string][]int64{"model.layers.0.mlp.up_proj.weight": {32, 16}, "model.norm.weight": {16}})
	index := fmt.Sprintf(`{"metadata":{"total_size":%d},"weight_map":{
		"model.embed_tokens.weight":"model-00001-of-00002.safetensors",
		"model.layers.0.self_attn.q_proj.weight":"model-00001-of-00002.safetensors",
		"model.layers.0.mlp.up_proj.weight":"model-00002-of-00002.safetensors",
		"model.norm.weight":"model-00002-of-00002.safetensors"}}`, len(shard1)+len(shard2))
	return &hubtest.Repo{
		ID:     "Qwen/Qwen3-Tiny",
		Commit: commitA,
		Files: map[string][]byte{
			"config.json":                      []byte(`{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3","hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":8,"vocab_size":64,"tie_word_embeddings":true}`),
			"generation_config.json":           []byte(`{"temperature":0.6}`),
			"tokenizer.json":                   []byte(`{"version":"1.0","model":{"type":"BPE","vocab":{}}}`),
			"tokenizer_config.json":            []byte(`{"eos_token":"<|im_end|>"}`),
			"LICENSE":                          []byte("Apache License 2.0\n"),
			"README.md":                        []byte("# tiny\n"),
			"model.safetensors.index.json":     []byte(index),
			"model-00001-of-00002.safetensors": shard1,
			"model-00002-of-00002.safetensors": shard2,
			"consolidated.safetensors":         append(shard1, shard2...), // not in the index: skipped
			"original/params.json":             []byte(`{}`),              // subfolder: skipped
			".gitattributes":                   []byte("*.safetensors filter=lfs\n"),
		},
		LFS: map[string]bool{
			"model-00001-of-00002.safetensors": true, "model-00002-of-00002.safetensors": true,
			"consolidated.safetensors": true, "tokenizer.json": true,
		},
	}
}

func newHub(t *testing.T, f *hubtest.Hub, token string, logs *bytes.Buffer) *hub.Hub {
	t.Helper()
	opts := hub.Options{
		ModelsDir: filepath.Join(t.TempDir(), "models"),
		Endpoint:  f.URL,
		Token:     token,
		Backoff:   time.Millisecond,
	}
	if logs != nil {
		opts.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h, err := hub.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var wantFiles = []string{
	"LICENSE", "README.md", "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
	"model-00002-of-00002.safetensors", "model.safetensors.index.json", hub.ManifestName, "tokenizer.json",
	"tokenizer_config.json",
}

func folderFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestDownloadFetchesWhatTheEngineNeeds(t *testing.T) {
	f := hubtest.New(t)
	r := qwenRepo(t)
	f.Add(r)
	h := newHub(t, f, "", nil)

	var last hub.Progress
	m, err := h.Download(context.Background(), r.ID, "", func(p hub.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.Dir(), "Qwen--Qwen3-Tiny")
	if got := folderFiles(t, dir); !slices.Equal(got, wantFiles) {
		t.Fatalf("folder holds %v\nwant %v", got, wantFiles)
	}
	for name, data := range r.Files {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err == nil && !bytes.Equal(got, data) {
			t.Fatalf("%s differs", name)
		}
	}
	if !m.Complete || m.Family != hub.FamilyQwen3 || m.Commit != commitA || m.Revision != "main" || m.Repo != r.ID {
		t.Fatalf("model %+v", m)
	}
	// 64*16 + 16*16 + 32*16 + 16 weights, counted from the safetensors headers.
	if m.Params != 1808 || !m.ParamsExact {
		t.Fatalf("params %d (exact %v), want 1808 exact", m.Params, m.ParamsExact)
	}
	if last.Done != last.Total || last.Total == 0 || !last.FileComplete {
		t.Fatalf("last progress %+v", last)
	}

	api := f.Requests("/api/models/Qwen/Qwen3-Tiny/revision/main")
	if len(api) != 1 || api[0].Query != "blobs=true" {
		t.Fatalf("API requests %+v", api)
	}
	// Files come from the commit the API named, not from the moving branch.
	for _, req := range f.Requests("") {
		if strings.Contains(req.Path, "/resolve/") && !strings.Contains(req.Path, "/resolve/"+commitA+"/") {
			t.Fatalf("file fetched by branch: %s", req.Path)
		}
	}
	if n := len(f.FileRequests(r, "consolidated.safetensors")); n != 0 {
		t.Fatal("a safetensors file outside the index was downloaded")
	}

	var man hub.Manifest
	data, err := os.ReadFile(filepath.Join(dir, hub.ManifestName))
	if err != nil || json.Unmarshal(data, &man) != nil || len(man.Files) != len(wantFiles)-1 {
		t.Fatalf("manifest %s, %v", data, err)
	}
	for _, mf := range man.Files {
		if r.LFS[mf.Name] != (mf.SHA256 != "") {
			t.Fatalf("manifest entry %+v: sha256 only for LFS files", mf)
		}
	}

	// Asking again for a complete model only asks the API which commit is current.
	before := len(f.Requests(""))
	if _, err := h.Download(context.Background(), r.ID, "main", nil); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Requests("")) - before; n != 1 {
		t.Fatalf("second download made %d requests, want 1 (the API)", n)
	}
}

func TestDownloadResumesADroppedShard(t *testing.T) {
	f := hubtest.New(t)
	r := qwenRepo(t)
	big := safetensors(t, map[string][]int64{"model.layers.0.mlp.up_proj.weight": {256, 256}, "model.norm.weight": {16}})
	r.Files["model-00002-of-00002.safetensors"] = big
	f.Add(r)
	f.Fail(f.FilePath(r, "model-00002-of-00002.safetensors"), downloadtest.Fault{DropAfter: 100_000})
	h := newHub(t, f, "", nil)

	m, err := h.Download(context.Background(), r.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Complete {
		t.Fatalf("model %+v", m)
	}
	reqs := f.FileRequests(r, "model-00002-of-00002.safetensors")
	if len(reqs) != 2 || reqs[1].Range != "bytes=100000-" {
		t.Fatalf("shard requests %+v", reqs)
	}
	if sent := reqs[0].Sent + reqs[1].Sent; sent != int64(len(big)) {
		t.Fatalf("sent %d bytes for a %d-byte shard", sent, len(big))
	}
}

func TestInterruptedDownloadIsIncompleteAndResumesLater(t *testing.T) {
	f := hubtest.New(t)
	r := qwenRepo(t)
	big := safetensors(t, map[string][]int64{"w": {300, 300}})
	r.Files["model-00002-of-00002.safetensors"] = big
	f.Add(r)
	path := f.FilePath(r, "model-00002-of-00002.safetensors")
	f.Fail(path, downloadtest.Fault{StallAfter: 50_000})
	h := newHub(t, f, "", debugLogs(t))

	ctx, cancel := context.WithCancel(context.Background())
	_, err := h.Download(ctx, r.ID, "", func(p hub.Progress) {
		if p.File == "model-00002-of-00002.safetensors" && p.FileDone >= 50_000 {
			cancel() // the user closes the app mid-download
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	models, err := h.List()
	if err != nil || len(models) != 1 {
		t.Fatalf("List = %+v, %v", models, err)
	}
	if m := models[0]; m.Complete || m.Problem != "download not finished" || m.SizeBytes < 50_000 || m.Family != hub.FamilyQwen3 {
		t.Fatalf("interrupted model listed as %+v", m)
	}

	m, err := h.Download(context.Background(), r.ID, "", nil)
	if err != nil || !m.Complete {
		t.Fatalf("second download: %+v, %v", m, err)
	}
	reqs := f.Requests(path)
	if got := reqs[len(reqs)-1]; got.Range != "bytes=50000-" || got.Sent != int64(len(big)-50_000) {
		t.Fatalf("the second download did not resume: %+v", reqs)
	}
}

func TestCorruptShardIsRejected(t *testing.T) {
	f := hubtest.New(t)
	r := qwenRepo(t)
	r.SHA256 = map[string]string{"model-00001-of-00002.safetensors": sha([]byte("the real content"))}
	f.Add(r)
	h := newHub(t, f, "", nil)

	_, err := h.Download(context.Background(), r.ID, "", nil)
	if !errors.Is(err, download.ErrChecksum) || !strings.Contains(err.Error(), "model-00001-of-00002.safetensors") {
		t.Fatalf("err = %v, want a checksum error naming the shard", err)
	}
	dir := filepath.Join(h.Dir(), "Qwen--Qwen3-Tiny")
	for _, name := range []string{"model-00001-of-00002.safetensors", "model-00001-of-00002.safetensors.part", hub.ManifestName} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s exists after a checksum failure", name)
		}
	}
	models, _ := h.List()
	if len(models) != 1 || models[0].Complete {
		t.Fatalf("List = %+v", models)
	}
}

func TestGatedRepositoryErrors(t *testing.T) {
	f := hubtest.New(t)
	r := qwenRepo(t)
	r.ID, r.Gated = "meta-llama/Llama-3.2-1B", true
	f.Add(r)

	var logs bytes.Buffer
	_, err := newHub(t, f, "", &logs).Download(context.Background(), r.ID, "", nil)
	if !errors.Is(err, hub.ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
	for _, want := range []string{"gated or private", f.URL + "/meta-llama/Llama-3.2-1B", "HF_TOKEN", "restricted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	_, err = newHub(t, f, "hf_tokenvalue123", &logs).Download(context.Background(), r.ID, "", nil)
	if !errors.Is(err, hub.ErrAccessDenied) || !strings.Contains(err.Error(), "no access yet") {
		t.Fatalf("with a token: err = %v", err)
	}
	if strings.Contains(logs.String(), "hf_tokenvalue123") {
		t.Fatal("token logged")
	}

	// Some gated repositories list their files to anyone but refuse the files themselves.
	r2 := qwenRepo(t)
	r2.ID, r2.GatedFiles = "meta-llama/Llama-3.2-3B", true
	f.Add(r2)
	_, err = newHub(t, f, "", nil).Download(context.Background(), r2.ID, "", nil)
	if !errors.Is(err, hub.ErrAccessDenied) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("gated files: err = %v", err)
	}
}

func TestMissingAndUnusableRepositories(t *testing.T) {
	f := hubtest.New(t)
	h := newHub(t, f, "", nil)
	if _, err := h.Download(context.Background(), "nobody/nothing", "", nil); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("missing repo: %v", err)
	}
	r := qwenRepo(t)
	f.Add(r)
	if _, err := h.Download(context.Background(), r.ID, "v9", nil); !errors.Is(err, hub.ErrNotFound) || !strings.Contains(err.Error(), "revision") {
		t.Fatalf("missing revision: %v", err)
	}

	old := &hubtest.Repo{ID: "someone/bin-only", Commit: commitA, Files: map[string][]byte{
		"config.json": []byte(`{"model_type":"llama"}`), "tokenizer.json": []byte(`{}`), "pytorch_model.bin": []byte("pickle"),
	}}
	f.Add(old)
	if _, err := h.Download(context.Background(), old.ID, "", nil); !errors.Is(err, hub.ErrUnsupported) || !strings.Contains(err.Error(), "safetensors") {
		t.Fatalf("bin-only repo: %v", err)
	}

	for _, bad := range []string{"", "noslash", "a/b/c", "../etc", "a/..", "a--b/c", "-a/b", "a/b.", "a /b"} {
		if _, err := h.Download(context.Background(), bad, "", nil); err == nil || errors.Is(err, hub.ErrNotFound) {
			t.Errorf("repo %q: err = %v, want a validation error", bad, err)
		}
	}
}

func TestNewRevisionReplacesFilesAndDropsStaleOnes(t *testing.T) {
	f := hubtest.New(t)
	r := qwenRepo(t)
	f.Add(r)
	h := newHub(t, f, "", nil)
	if _, err := h.Download(context.Background(), r.ID, "", nil); err != nil {
		t.Fatal(err)
	}

	// The next commit merges the weights into one file.
	one := safetensors(t, map[string][]int64{"w": {8, 8}})
	r2 := qwenRepo(t)
	r2.Commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	for _, n := range []string{"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "consolidated.safetensors"} {
		delete(r2.Files, n)
	}
	r2.Files["model.safetensors"] = one
	r2.LFS["model.safetensors"] = true
	f.Add(r2)

	m, err := h.Download(context.Background(), r.ID, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Complete || m.Commit != r2.Commit || m.Params != 64 {
		t.Fatalf("model %+v", m)
	}
	got := folderFiles(t, m.Path)
	if slices.Contains(got, "model-00001-of-00002.safetensors") || !slices.Contains(got, "model.safetensors") {
		t.Fatalf("folder after the new revision: %v", got)
	}
	// Files that did not change were not fetched again.
	if n := len(f.FileRequests(r2, "config.json")); n != 0 {
		t.Fatalf("unchanged config.json fetched %d times", n)
	}
}

func TestListAndDelete(t *testing.T) {
	dir := t.TempDir()
	models, err := hub.List(filepath.Join(dir, "missing"))
	if err != nil || len(models) != 0 {
		t.Fatalf("missing folder: %v, %v", models, err)
	}

	// A folder without a manifest, with real configs: the estimate matches the published counts.
	for name, cfg := range map[string]string{
		"Qwen--Qwen3-0.6B":             `{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3","hidden_size":1024,"intermediate_size":3072,"num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,"vocab_size":151936,"tie_word_embeddings":true}`,
		"meta-llama--Llama-3.2-1B":     `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":2048,"intermediate_size":8192,"num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,"head_dim":64,"vocab_size":128256,"tie_word_embeddings":true,"attention_bias":false,"mlp_bias":false}`,
		"mistralai--Mistral-7B-v0.1":   `{"architectures":["MistralForCausalLM"],"model_type":"mistral"}`,
		"broken--no-config-at-all-yet": ``,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if cfg != "" {
			if err := os.WriteFile(filepath.Join(p, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "stray-file.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	models, err = hub.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]hub.Model{}
	for _, m := range models {
		got[m.Name] = m
		if m.Complete {
			t.Errorf("%s complete without a manifest", m.Name)
		}
	}
	if len(models) != 4 {
		t.Fatalf("List = %+v", models)
	}
	if m := got["Qwen--Qwen3-0.6B"]; m.Family != hub.FamilyQwen3 || m.Params != 596_049_920 || m.ParamsExact || m.Repo != "Qwen/Qwen3-0.6B" {
		t.Errorf("qwen3 %+v", m)
	}
	if m := got["meta-llama--Llama-3.2-1B"]; m.Family != hub.FamilyLlama || m.Params != 1_235_814_400 {
		t.Errorf("llama %+v", m)
	}
	if m := got["mistralai--Mistral-7B-v0.1"]; m.Supported() || m.ModelType != "mistral" || m.Params != 0 {
		t.Errorf("mistral %+v", m)
	}

	for _, bad := range []string{"..", ".", "../x", "x", "a--b/../../c", ""} {
		if err := hub.Delete(dir, bad); err == nil {
			t.Errorf("Delete(%q) accepted", bad)
		}
	}
	if err := hub.Delete(dir, "Qwen--Qwen3-0.6B"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Qwen--Qwen3-0.6B")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("model still there after Delete")
	}
	if err := hub.Delete(dir, "Qwen--Qwen3-0.6B"); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stray-file.txt")); err != nil {
		t.Fatal("Delete touched something else")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := hub.New(hub.Options{}); err == nil {
		t.Fatal("no models folder accepted")
	}
	if _, err := hub.New(hub.Options{ModelsDir: t.TempDir(), Endpoint: "ftp://x"}); err == nil {
		t.Fatal("ftp endpoint accepted")
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("opts", "opts", hub.Options{Token: "hf_secret"})
	if strings.Contains(logs.String(), "hf_secret") {
		t.Fatalf("Options logs its token: %s", logs.String())
	}
}

func debugLogs(t *testing.T) *bytes.Buffer {
	var b bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(b.String())
		}
	})
	return &b
}
