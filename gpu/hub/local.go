package hub

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"opentracy/backend/atomicfile"
	"opentracy/gpu/download"
)

// ManifestName is the file, in a model folder, that records a finished download. It is written
// last: a folder without it is incomplete.
const ManifestName = "opentracy-model.json"

// Model families the engine runs.
const (
	FamilyQwen3 = "qwen3"
	FamilyLlama = "llama"
)

// Manifest records what a download fetched.
type Manifest struct {
	Repo         string         `json:"repo"`
	Revision     string         `json:"revision"`
	Commit       string         `json:"commit,omitempty"`
	DownloadedAt time.Time      `json:"downloaded_at"`
	Files        []ManifestFile `json:"files"`
}

// ManifestFile is one downloaded file.
type ManifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// Model is a model folder as found on disk.
type Model struct {
	// Name is the folder name, DirName(Repo); Delete takes it.
	Name string `json:"name"`
	// Repo is the Hugging Face repository it came from.
	Repo string `json:"repo"`
	// Path is the folder.
	Path string `json:"path"`
	// Revision and Commit are what was downloaded (empty when incomplete).
	Revision string `json:"revision,omitempty"`
	Commit   string `json:"commit,omitempty"`
	// Family is FamilyQwen3 or FamilyLlama, or empty for a model the engine does not run;
	// ModelType and Architectures are what config.json says.
	Family        string   `json:"family,omitempty"`
	ModelType     string   `json:"model_type,omitempty"`
	Architectures []string `json:"architectures,omitempty"`
	// Params is the parameter count: exact from the safetensors headers when the weights are all
	// there, otherwise estimated from config.json (0 when neither is possible).
	Params      int64 `json:"params"`
	ParamsExact bool  `json:"params_exact"`
	// SizeBytes is what the folder takes on disk, partial files included.
	SizeBytes int64 `json:"size_bytes"`
	// Complete is true once the download finished and every file it recorded is there.
	Complete bool `json:"complete"`
	// Problem says why an incomplete model is not ready.
	Problem      string    `json:"problem,omitempty"`
	DownloadedAt time.Time `json:"downloaded_at,omitzero"`
}

// Supported reports whether the engine can run the model's family.
func (m Model) Supported() bool { return m.Family != "" }

// List returns the models in modelsDir, sorted by name; a missing folder has none.
func List(modelsDir string) ([]Model, error) {
	entries, err := os.ReadDir(modelsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	var models []Model
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		m, err := inspect(filepath.Join(modelsDir, e.Name()), e.Name())
		if err != nil {
			return nil, err
		}
		models = append(models, m)
	}
	return models, nil
}

// Get returns one model by folder name.
func Get(modelsDir, name string) (Model, error) {
	if !validName(name) {
		return Model{}, fmt.Errorf("%q is not a model name: %w", name, ErrNotFound)
	}
	dir := filepath.Join(modelsDir, name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return Model{}, fmt.Errorf("model %s: %w", name, ErrNotFound)
	}
	return inspect(dir, name)
}

// Delete removes the model folder called name from modelsDir.
func Delete(modelsDir, name string) error {
	if !validName(name) {
		return fmt.Errorf("%q is not a model name: %w", name, ErrNotFound)
	}
	dir := filepath.Join(modelsDir, name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("model %s: %w", name, ErrNotFound)
	}
	// The manifest goes first, so a delete cut short leaves an incomplete model, not a broken one
	// that looks ready.
	if err := removeManifest(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete model %s: %w", name, err)
	}
	return nil
}

// validName accepts only what DirName makes, so Delete cannot reach outside modelsDir.
func validName(name string) bool {
	return strings.Contains(name, "--") && ValidateRepo(RepoOf(name)) == nil
}

// inspect reads a model folder.
func inspect(dir, name string) (Model, error) {
	m := Model{Name: name, Repo: RepoOf(name), Path: dir}
	size, err := dirSize(dir)
	if err != nil {
		return Model{}, err
	}
	m.SizeBytes = size

	man, err := readManifest(dir)
	switch {
	case err != nil:
		m.Problem = fmt.Sprintf("unreadable %s: %v", ManifestName, err)
	case man == nil:
		m.Problem = "download not finished"
	default:
		m.Repo, m.Revision, m.Commit, m.DownloadedAt = man.Repo, man.Revision, man.Commit, man.DownloadedAt
		if err := filesPresent(dir, man.Files); err != nil {
			m.Problem = err.Error()
		} else {
			m.Complete = true
		}
	}

	cfg, err := readConfig(filepath.Join(dir, "config.json"))
	if err == nil {
		m.ModelType, m.Architectures = cfg.ModelType, cfg.Architectures
		m.Family = family(cfg)
		m.Params = cfg.estimateParams()
	} else if m.Complete {
		m.Problem = "config.json: " + err.Error()
		m.Complete = false
	}
	if m.Complete {
		if n, err := safetensorsParams(dir, man.Files); err == nil && n > 0 {
			m.Params, m.ParamsExact = n, true
		}
	}
	return m, nil
}

// family maps config.json to an engine family.
func family(cfg config) string {
	switch {
	case cfg.ModelType == "qwen3" || slices.Contains(cfg.Architectures, "Qwen3ForCausalLM"):
		return FamilyQwen3
	case cfg.ModelType == "llama" || slices.Contains(cfg.Architectures, "LlamaForCausalLM"):
		return FamilyLlama
	}
	return ""
}

// config is the part of config.json needed to recognise a model and estimate its size.
type config struct {
	ModelType         string   `json:"model_type"`
	Architectures     []string `json:"architectures"`
	HiddenSize        int64    `json:"hidden_size"`
	IntermediateSize  int64    `json:"intermediate_size"`
	NumHiddenLayers   int64    `json:"num_hidden_layers"`
	NumAttentionHeads int64    `json:"num_attention_heads"`
	NumKeyValueHeads  int64    `json:"num_key_value_heads"`
	HeadDim           int64    `json:"head_dim"`
	VocabSize         int64    `json:"vocab_size"`
	TieWordEmbeddings bool     `json:"tie_word_embeddings"`
	AttentionBias     bool     `json:"attention_bias"`
	MLPBias           bool     `json:"mlp_bias"`
}

func readConfig(p string) (config, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return config{}, err
	}
	var c config
	if err := json.Unmarshal(data, &c); err != nil {
		return config{}, err
	}
	return c, nil
}

// estimateParams counts the weights of a Llama-style decoder (Qwen3 adds q/k norms): embeddings,
// per layer attention, gated MLP and norms, the final norm and an untied LM head.
func (c config) estimateParams() int64 {
	h, l, v := c.HiddenSize, c.NumHiddenLayers, c.VocabSize
	if h <= 0 || l <= 0 || v <= 0 || c.IntermediateSize <= 0 || c.NumAttentionHeads <= 0 {
		return 0
	}
	hd := c.HeadDim
	if hd <= 0 {
		hd = h / c.NumAttentionHeads
	}
	kv := c.NumKeyValueHeads
	if kv <= 0 {
		kv = c.NumAttentionHeads
	}
	q, k := c.NumAttentionHeads*hd, kv*hd
	attn := h*q + 2*h*k + q*h
	if c.AttentionBias {
		attn += q + 2*k + h
	}
	mlp := 3 * h * c.IntermediateSize
	if c.MLPBias {
		mlp += 2*c.IntermediateSize + h
	}
	norms := 2 * h
	if c.ModelType == "qwen3" {
		norms += 2 * hd
	}
	total := v*h + l*(attn+mlp+norms) + h
	if !c.TieWordEmbeddings {
		total += v * h
	}
	return total
}

// safetensorsParams sums the element counts in the headers of the model's safetensors files
// (a few kilobytes each: the tensors themselves are not read).
func safetensorsParams(dir string, files []ManifestFile) (int64, error) {
	var total int64
	for _, f := range files {
		if !strings.HasSuffix(f.Name, ".safetensors") {
			continue
		}
		n, err := headerParams(filepath.Join(dir, f.Name))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func headerParams(p string) (int64, error) {
	fh, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	var n uint64
	if err := binary.Read(fh, binary.LittleEndian, &n); err != nil {
		return 0, fmt.Errorf("%s: header length: %w", filepath.Base(p), err)
	}
	if n == 0 || n > 100<<20 {
		return 0, fmt.Errorf("%s: header length %d is implausible", filepath.Base(p), n)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(fh, hdr); err != nil {
		return 0, fmt.Errorf("%s: header: %w", filepath.Base(p), err)
	}
	var tensors map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &tensors); err != nil {
		return 0, fmt.Errorf("%s: header: %w", filepath.Base(p), err)
	}
	var total int64
	for name, raw := range tensors {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Shape []int64 `json:"shape"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return 0, fmt.Errorf("%s: tensor %s: %w", filepath.Base(p), name, err)
		}
		count := int64(1)
		for _, d := range t.Shape {
			count *= d
		}
		total += count
	}
	return total, nil
}

func readManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func writeManifest(dir string, m Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, ManifestName), append(data, '\n'), download.FileMode); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

func removeManifest(dir string) error {
	err := os.Remove(filepath.Join(dir, ManifestName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove manifest: %w", err)
	}
	return nil
}

// filesPresent checks that every recorded file is there with its recorded size (List stays cheap:
// contents were verified when downloaded).
func filesPresent(dir string, files []ManifestFile) error {
	if len(files) == 0 {
		return errors.New("manifest lists no files")
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil {
			return fmt.Errorf("%s is missing", f.Name)
		}
		if f.Size > 0 && st.Size() != f.Size {
			return fmt.Errorf("%s has %d bytes, expected %d", f.Name, st.Size(), f.Size)
		}
	}
	return nil
}

// removeStale deletes files an earlier download recorded that the new one does not need.
func removeStale(dir string, old, current []ManifestFile) {
	keep := map[string]bool{}
	for _, f := range current {
		keep[f.Name] = true
	}
	for _, f := range old {
		if !keep[f.Name] && safeName(f.Name) {
			_ = os.Remove(filepath.Join(dir, f.Name))
			_ = os.Remove(filepath.Join(dir, f.Name+download.PartSuffix))
		}
	}
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return n, nil
}
