package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"opentracy/gpu/engine/lora"
	"opentracy/gpu/hub"
)

// Folders of the data dir that hold local models.
const (
	// ModelsDirName holds downloaded models, one Hugging Face folder each (see gpu/hub).
	ModelsDirName = "models"
	// StudentsDirName holds published students, one folder each: the adapter and StudentFile.
	StudentsDirName = "students"
	// StudentFile, in a student's folder, names its base model.
	StudentFile = "student.json"
)

// Kinds of local model.
const (
	KindModel   = "model"
	KindStudent = "student"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrNotFound: no local model or student of that name.
	ErrNotFound = errors.New("not found")
	// ErrExists: the name is taken by a model or a student.
	ErrExists = errors.New("already exists")
	// ErrNotReady: the model is there but cannot be served (see Model.Problem).
	ErrNotReady = errors.New("not ready")
	// ErrUnsupported: the model's family is not one the engine runs.
	ErrUnsupported = errors.New("not supported by the engine")
)

// Model is a local model: a downloaded model folder, or a student (an adapter on one of them).
type Model struct {
	// Name is what requests call it: "local/<Name>".
	Name string `json:"name"`
	// Kind is KindModel or KindStudent.
	Kind string `json:"kind"`
	// Family is the engine family (qwen3, llama), empty when the engine cannot run it.
	Family string `json:"family,omitempty"`
	// Dir is the model folder (a student's base model folder).
	Dir string `json:"dir"`
	// AdapterDir is a student's folder, holding its PEFT adapter; empty for a plain model.
	AdapterDir string `json:"adapter_dir,omitempty"`
	// BaseModel is a student's base model name.
	BaseModel string `json:"base_model,omitempty"`
	// Params is the base model's parameter count (0 when unknown).
	Params int64 `json:"params,omitempty"`
	// CreatedAt is when the model was downloaded or the student published.
	CreatedAt   time.Time         `json:"created_at,omitzero"`
	Description string            `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Problem says why the model cannot be served; empty when it can.
	Problem string `json:"problem,omitempty"`

	// notReady is the error behind Problem: ErrNotReady or ErrUnsupported.
	notReady error
	// stamp identifies what is on disk, so that a loaded model can tell it was replaced.
	stamp string
}

// Ready reports whether the model can be served.
func (m Model) Ready() bool { return m.Problem == "" }

// studentFile is StudentFile's content.
type studentFile struct {
	BaseModel   string            `json:"base_model"`
	CreatedAt   time.Time         `json:"created_at"`
	Description string            `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// StudentSpec is a student to publish.
type StudentSpec struct {
	// Name is the new model's name: letters, digits, '.', '_', '-', starting with a letter or
	// digit, at most 64 characters, without "--" (which marks downloaded models' folders).
	Name string
	// BaseModel is the model the adapter was trained on: a folder name in the models folder
	// ("Qwen--Qwen3-0.6B") or its repository ("Qwen/Qwen3-0.6B").
	BaseModel string
	// AdapterDir is a PEFT LoRA folder (adapter_config.json, adapter_model.safetensors); its two
	// files are copied, so the folder may be deleted afterwards.
	AdapterDir  string
	Description string
	// Metadata is kept with the student (e.g. the distillation job and dataset).
	Metadata map[string]string
}

// Registry is the local models in a data dir: it lists them, and publishes and removes students.
// The folders are the only state, so several Registries (the provider's, the distillation
// job's) on one data dir agree; mu only orders this process's own changes.
type Registry struct {
	modelsDir, studentsDir string
	now                    func() time.Time
	mu                     sync.Mutex
}

// NewRegistry returns the registry of DATA_DIR/models and DATA_DIR/students.
func NewRegistry(dataDir string) *Registry {
	return &Registry{
		modelsDir:   filepath.Join(dataDir, ModelsDirName),
		studentsDir: filepath.Join(dataDir, StudentsDirName),
		now:         time.Now,
	}
}

// ModelsDir is the folder of downloaded models.
func (r *Registry) ModelsDir() string { return r.modelsDir }

// StudentsDir is the folder of published students.
func (r *Registry) StudentsDir() string { return r.studentsDir }

// List returns every local model, ready or not (see Model.Problem), sorted by name.
func (r *Registry) List() ([]Model, error) {
	hubModels, err := hub.List(r.modelsDir)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]hub.Model, len(hubModels))
	var out []Model
	for _, hm := range hubModels {
		byName[hm.Name] = hm
		out = append(out, r.fromHub(hm))
	}
	entries, err := os.ReadDir(r.studentsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list students: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue // dot-folders are publications or removals in progress
		}
		s, err := r.student(e.Name(), func(name string) (hub.Model, bool, error) { hm, ok := byName[name]; return hm, ok, nil })
		if errors.Is(err, ErrNotFound) {
			continue // a folder without StudentFile is not a student
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Model) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns one local model by name (a student first, then a model folder), ready or not.
func (r *Registry) Get(name string) (Model, error) {
	name = canonicalName(name)
	if !safeName(name) {
		return Model{}, fmt.Errorf("local model %q: %w", name, ErrNotFound)
	}
	s, err := r.student(name, r.hubModel)
	if !errors.Is(err, ErrNotFound) {
		return s, err
	}
	hm, ok, err := r.hubModel(name)
	if err != nil {
		return Model{}, err
	}
	if !ok {
		return Model{}, fmt.Errorf("local model %q: %w", name, ErrNotFound)
	}
	return r.fromHub(hm), nil
}

// hubModel inspects one model folder; gpu/hub lists whole folders only, so this lists them.
func (r *Registry) hubModel(name string) (hub.Model, bool, error) {
	if st, err := os.Stat(filepath.Join(r.modelsDir, name)); err != nil || !st.IsDir() {
		return hub.Model{}, false, nil
	}
	list, err := hub.List(r.modelsDir)
	if err != nil {
		return hub.Model{}, false, err
	}
	i := slices.IndexFunc(list, func(m hub.Model) bool { return m.Name == name })
	if i < 0 {
		return hub.Model{}, false, nil
	}
	return list[i], true, nil
}

func (r *Registry) fromHub(hm hub.Model) Model {
	m := Model{Name: hm.Name, Kind: KindModel, Family: hm.Family, Dir: hm.Path, Params: hm.Params, CreatedAt: hm.DownloadedAt}
	switch {
	case !hm.Complete:
		m.Problem, m.notReady = hm.Problem, ErrNotReady
	case !hm.Supported():
		m.Problem = fmt.Sprintf("model type %q is not one the engine runs (qwen3, llama)", hm.ModelType)
		m.notReady = ErrUnsupported
	}
	m.stamp = r.modelStamp(hm.Path)
	return m
}

// student reads a student's folder; base finds its base model.
func (r *Registry) student(name string, base func(string) (hub.Model, bool, error)) (Model, error) {
	dir := filepath.Join(r.studentsDir, name)
	raw, err := os.ReadFile(filepath.Join(dir, StudentFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Model{}, fmt.Errorf("student %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Model{}, fmt.Errorf("student %q: %w", name, err)
	}
	m := Model{Name: name, Kind: KindStudent, AdapterDir: dir}
	var sf studentFile
	if err := json.Unmarshal(raw, &sf); err != nil {
		m.Problem, m.notReady = fmt.Sprintf("unreadable %s: %v", StudentFile, err), ErrNotReady
		return m, nil
	}
	m.BaseModel, m.CreatedAt, m.Description, m.Metadata = sf.BaseModel, sf.CreatedAt, sf.Description, sf.Metadata
	var hm hub.Model
	ok := safeName(sf.BaseModel)
	if ok {
		if hm, ok, err = base(sf.BaseModel); err != nil {
			return Model{}, err
		}
	}
	if !ok {
		m.Problem, m.notReady = fmt.Sprintf("base model %q is not in the models folder", sf.BaseModel), ErrNotReady
		return m, nil
	}
	bm := r.fromHub(hm)
	m.Family, m.Dir, m.Params = bm.Family, bm.Dir, bm.Params
	if !bm.Ready() {
		m.Problem, m.notReady = fmt.Sprintf("base model %s: %s", bm.Name, bm.Problem), bm.notReady
	}
	for _, f := range []string{lora.ConfigFile, lora.WeightsFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil && m.Problem == "" {
			m.Problem, m.notReady = f+" is missing", ErrNotReady
		}
	}
	m.stamp = r.studentStamp(dir, bm.Dir)
	return m, nil
}

// stampOf says what is on disk now for m ("" when m is gone): the modification times of the
// files that are written last (the download manifest, StudentFile). It costs a stat or two, so
// every request can check that its loaded model is still the one on disk.
func (r *Registry) stampOf(m Model) string {
	if m.Kind == KindStudent {
		return r.studentStamp(m.AdapterDir, m.Dir)
	}
	return r.modelStamp(m.Dir)
}

func (r *Registry) modelStamp(dir string) string {
	return mtime(filepath.Join(dir, hub.ManifestName))
}

func (r *Registry) studentStamp(dir, baseDir string) string {
	s, b := mtime(filepath.Join(dir, StudentFile)), r.modelStamp(baseDir)
	if s == "" || b == "" {
		return ""
	}
	return s + "/" + b
}

func mtime(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return ""
	}
	return strconv.FormatInt(st.ModTime().UnixNano(), 10)
}

// studentName is the rule for student names; "--" is left out so that a student can never take
// the name of a downloaded model's folder.
var studentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateStudentName checks a name for a new student.
func ValidateStudentName(name string) error {
	if !studentName.MatchString(name) || strings.Contains(name, "--") || strings.Contains(name, "..") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("%q is not a valid student name: use letters, digits, '.', '_' and '-' (no \"--\"), starting with a letter or digit, at most 64 characters", name)
	}
	return nil
}

// AddStudent publishes an adapter as a new local model. The student appears whole or not at
// all: its folder is assembled under a hidden name and renamed into place. The adapter's
// configuration is checked now; its tensors are checked against the base model when the student
// first loads (that needs the model).
func (r *Registry) AddStudent(ctx context.Context, spec StudentSpec) (Model, error) {
	if err := ValidateStudentName(spec.Name); err != nil {
		return Model{}, err
	}
	baseName := canonicalName(spec.BaseModel)
	if !safeName(baseName) {
		return Model{}, fmt.Errorf("base model %q: %w", spec.BaseModel, ErrNotFound)
	}
	hm, ok, err := r.hubModel(baseName)
	if err != nil {
		return Model{}, err
	}
	if !ok {
		return Model{}, fmt.Errorf("base model %q: %w", spec.BaseModel, ErrNotFound)
	}
	if base := r.fromHub(hm); !base.Ready() {
		return Model{}, fmt.Errorf("base model %s: %s: %w", base.Name, base.Problem, base.notReady)
	}
	if _, err := lora.ReadConfig(spec.AdapterDir); err != nil {
		return Model{}, fmt.Errorf("student %s: %w", spec.Name, err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, taken := range []string{filepath.Join(r.studentsDir, spec.Name), filepath.Join(r.modelsDir, spec.Name)} {
		if _, err := os.Lstat(taken); err == nil {
			return Model{}, fmt.Errorf("local model %q: %w", spec.Name, ErrExists)
		}
	}
	if err := os.MkdirAll(r.studentsDir, 0o700); err != nil {
		return Model{}, fmt.Errorf("publish student: %w", err)
	}
	tmp, err := os.MkdirTemp(r.studentsDir, ".publish-"+spec.Name+"-")
	if err != nil {
		return Model{}, fmt.Errorf("publish student: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for _, f := range []string{lora.ConfigFile, lora.WeightsFile} {
		if err := ctx.Err(); err != nil {
			return Model{}, err
		}
		if err := copyFile(filepath.Join(spec.AdapterDir, f), filepath.Join(tmp, f)); err != nil {
			return Model{}, fmt.Errorf("publish student %s: %w", spec.Name, err)
		}
	}
	sf := studentFile{BaseModel: baseName, CreatedAt: r.now().UTC(), Description: spec.Description, Metadata: spec.Metadata}
	data, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return Model{}, fmt.Errorf("publish student %s: %w", spec.Name, err)
	}
	if err := writeSynced(filepath.Join(tmp, StudentFile), append(data, '\n')); err != nil {
		return Model{}, fmt.Errorf("publish student %s: %w", spec.Name, err)
	}
	if err := os.Rename(tmp, filepath.Join(r.studentsDir, spec.Name)); err != nil {
		return Model{}, fmt.Errorf("publish student %s: %w", spec.Name, err)
	}
	return r.Get(spec.Name)
}

// RemoveStudent deletes a published student. Its folder is first renamed to a hidden name, so a
// removal cut short never leaves a half-deleted student that still lists.
func (r *Registry) RemoveStudent(name string) error {
	if !safeName(name) {
		return fmt.Errorf("student %q: %w", name, ErrNotFound)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	dir := filepath.Join(r.studentsDir, name)
	if _, err := os.Stat(filepath.Join(dir, StudentFile)); err != nil {
		return fmt.Errorf("student %q: %w", name, ErrNotFound)
	}
	trash, err := os.MkdirTemp(r.studentsDir, ".remove-"+name+"-")
	if err != nil {
		return fmt.Errorf("remove student %s: %w", name, err)
	}
	gone := filepath.Join(trash, name)
	if err := os.Rename(dir, gone); err != nil {
		os.Remove(trash)
		return fmt.Errorf("remove student %s: %w", name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove student %s: %w", name, err)
	}
	return nil
}

// canonicalName maps the repository form "owner/name" to its folder name "owner--name".
func canonicalName(name string) string {
	if strings.Contains(name, "/") {
		return hub.DirName(name)
	}
	return name
}

// safeName accepts a single path element that is not hidden, so a name cannot leave its folder.
func safeName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, "/\\\x00")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
