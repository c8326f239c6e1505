// Package hub downloads models from the Hugging Face Hub into the models folder and manages what
// is there. A model lives in DATA_DIR/models/<owner>--<name>/ as a Hugging Face folder (config.json,
// safetensors, tokenizer.json, …); the manifest file is written last, so a folder without it is a
// download that has not finished and is never offered as ready.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"opentracy/gpu/download"
)

// DefaultEndpoint is the public Hub.
const DefaultEndpoint = "https://huggingface.co"

// Environment variables the caller may honour (the Hub's own tools read the same ones).
const (
	EnvEndpoint = "HF_ENDPOINT"
	EnvToken    = "HF_TOKEN"
)

// DefaultRevision is the branch downloaded when none is given.
const DefaultRevision = "main"

// Errors callers tell apart with errors.Is.
var (
	// ErrNotFound: no such repository, revision, file or local model.
	ErrNotFound = errors.New("not found")
	// ErrAccessDenied: the repository is gated or private and the token (or its absence) does not
	// give access.
	ErrAccessDenied = errors.New("access denied")
	// ErrUnsupported: the repository lacks what the engine needs (safetensors weights, a config,
	// a tokenizer.json).
	ErrUnsupported = errors.New("not usable by the engine")
	// ErrBusy: the model is being downloaded or deleted by another call.
	ErrBusy = errors.New("busy")
)

// Progress reports a download; see download.Progress.
type Progress = download.Progress

// Options configure a Hub.
type Options struct {
	// ModelsDir is where models live (DATA_DIR/models). Created with mode 0700.
	ModelsDir string
	// Endpoint is the Hub's base URL; empty means DefaultEndpoint (callers pass HF_ENDPOINT here).
	Endpoint string
	// Token authenticates to gated and private repositories. It is sent to the endpoint's domain
	// only (a redirect elsewhere drops it) and never logged.
	Token string
	// HTTP sends the requests; nil uses the download package's default client.
	HTTP *http.Client
	// Log receives what happens; nil discards it.
	Log *slog.Logger
	// Retries, Backoff and StallTimeout tune the downloader (zero: its defaults).
	Retries      int
	Backoff      time.Duration
	StallTimeout time.Duration
}

// LogValue keeps the token out of logs even when Options itself is logged.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("models_dir", o.ModelsDir),
		slog.String("endpoint", o.Endpoint),
		slog.Bool("token", o.Token != ""),
	)
}

// Hub downloads into and manages one models folder. Its methods are safe for concurrent use; two
// calls on the same model do not run at once (the second gets ErrBusy).
type Hub struct {
	dir      string
	endpoint string
	client   *download.Client
	log      *slog.Logger

	mu   sync.Mutex
	busy map[string]bool
}

// New returns a Hub for opts.ModelsDir.
func New(opts Options) (*Hub, error) {
	if opts.ModelsDir == "" {
		return nil, errors.New("hub: no models folder")
	}
	endpoint := strings.TrimRight(opts.Endpoint, "/")
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub: endpoint %q is not an http(s) URL", opts.Endpoint)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		dir:      opts.ModelsDir,
		endpoint: endpoint,
		log:      log,
		busy:     map[string]bool{},
		client: &download.Client{
			HTTP:         opts.HTTP,
			Token:        opts.Token,
			UserAgent:    "opentracy",
			Retries:      opts.Retries,
			Backoff:      opts.Backoff,
			StallTimeout: opts.StallTimeout,
			Log:          log,
		},
	}, nil
}

// Dir is the models folder.
func (h *Hub) Dir() string { return h.dir }

// repoPattern is the Hub's rule for owner and name: letters, digits, '.', '_', '-', not starting
// with '.' or '-', and (checked apart) no "--" or "..", which also keeps DirName reversible.
var repoPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)

// ValidateRepo checks a repository id such as "Qwen/Qwen3-0.6B".
func ValidateRepo(repo string) error {
	if !repoPattern.MatchString(repo) || strings.Contains(repo, "--") || strings.Contains(repo, "..") ||
		strings.HasSuffix(repo, ".") || strings.HasSuffix(repo, "-") {
		return fmt.Errorf("%q is not a Hugging Face repository id (owner/name)", repo)
	}
	return nil
}

// DirName is the folder name of a repository's model: "Qwen/Qwen3-0.6B" → "Qwen--Qwen3-0.6B".
func DirName(repo string) string { return strings.Replace(repo, "/", "--", 1) }

// RepoOf reverses DirName.
func RepoOf(name string) string { return strings.Replace(name, "--", "/", 1) }

// Download fetches repo at revision (DefaultRevision when empty) into the models folder and
// returns the model as List shows it. An interrupted download resumes where it stopped; a model
// already complete at the revision's current commit is not downloaded again.
func (h *Hub) Download(ctx context.Context, repo, revision string, progress func(Progress)) (Model, error) {
	if err := ValidateRepo(repo); err != nil {
		return Model{}, err
	}
	if revision == "" {
		revision = DefaultRevision
	}
	name := DirName(repo)
	if !h.acquire(name) {
		return Model{}, fmt.Errorf("%s: %w: a download or delete of it is under way", repo, ErrBusy)
	}
	defer h.release(name)

	info, err := h.repoInfo(ctx, repo, revision)
	if err != nil {
		return Model{}, err
	}
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, download.DirMode); err != nil {
		return Model{}, fmt.Errorf("create %s: %w", dir, err)
	}
	old, _ := readManifest(dir)
	if old != nil && old.Repo == repo && old.Commit != "" && old.Commit == info.SHA && filesPresent(dir, old.Files) == nil {
		h.log.Info("model already downloaded", "repo", repo, "commit", info.SHA)
		return inspect(dir, name)
	}
	// Until the new manifest is written the folder is a download in progress, whatever it held.
	if err := removeManifest(dir); err != nil {
		return Model{}, err
	}

	ref := info.SHA // every file from the one commit, even if the branch moves meanwhile
	if ref == "" {
		ref = revision
	}
	files, err := h.selectFiles(ctx, repo, ref, dir, info)
	if err != nil {
		return Model{}, err
	}
	h.log.Info("downloading model", "repo", repo, "revision", revision, "commit", info.SHA,
		"files", len(files), "bytes", totalSize(files))
	if err := h.client.Fetch(ctx, files, progress); err != nil {
		return Model{}, h.explain(repo, err)
	}

	m := Manifest{Repo: repo, Revision: revision, Commit: info.SHA, DownloadedAt: time.Now().UTC()}
	for _, f := range files {
		m.Files = append(m.Files, ManifestFile{Name: filepath.Base(f.Path), Size: f.Size, SHA256: f.SHA256})
	}
	if old != nil {
		removeStale(dir, old.Files, m.Files)
	}
	if err := writeManifest(dir, m); err != nil {
		return Model{}, err
	}
	h.log.Info("model downloaded", "repo", repo, "commit", info.SHA)
	return inspect(dir, name)
}

// List returns the models in the folder.
func (h *Hub) List() ([]Model, error) { return List(h.dir) }

// Delete removes a model folder by name (DirName of its repository). A model being downloaded
// cannot be deleted.
func (h *Hub) Delete(name string) error {
	if !h.acquire(name) {
		return fmt.Errorf("%s: %w: it is being downloaded", name, ErrBusy)
	}
	defer h.release(name)
	return Delete(h.dir, name)
}

func (h *Hub) acquire(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[name] {
		return false
	}
	h.busy[name] = true
	return true
}

func (h *Hub) release(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.busy, name)
}

// repoInfo is the part of GET /api/models/{repo}/revision/{rev}?blobs=true used here.
type repoInfo struct {
	ID       string    `json:"id"`
	SHA      string    `json:"sha"`
	Siblings []sibling `json:"siblings"`
}

type sibling struct {
	RFilename string `json:"rfilename"`
	// Size is present with blobs=true; for LFS files it equals LFS.Size.
	Size *int64 `json:"size"`
	LFS  *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

func (h *Hub) repoInfo(ctx context.Context, repo, revision string) (repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", h.endpoint, repo, url.PathEscape(revision))
	body, err := h.client.Get(ctx, u, 16<<20)
	if err != nil {
		return repoInfo{}, h.explain(repo, err)
	}
	var info repoInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return repoInfo{}, fmt.Errorf("%s: unreadable answer from the Hub: %w", repo, err)
	}
	if info.SHA != "" && !isCommit(info.SHA) {
		return repoInfo{}, fmt.Errorf("%s: the Hub answered commit %q, which is not a commit id", repo, info.SHA)
	}
	return info, nil
}

// explain turns HTTP failures into errors a user can act on.
func (h *Hub) explain(repo string, err error) error {
	var se *download.StatusError
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: %w", repo, err)
	}
	detail := ""
	if se.Message != "" {
		detail = " (the Hub says: " + se.Message + ")"
	}
	page := h.endpoint + "/" + repo
	switch {
	case se.StatusCode == http.StatusUnauthorized && h.client.Token == "":
		return fmt.Errorf("%s is gated or private: accept its licence on %s while logged in, then set a "+
			"Hugging Face access token (%s)%s: %w", repo, page, EnvToken, detail, ErrAccessDenied)
	case se.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%s: the Hugging Face token was refused (wrong or expired?), or the repository is private "+
			"to another account%s: %w", repo, detail, ErrAccessDenied)
	case se.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s is gated and this token's account has no access yet: request it on %s, wait for "+
			"approval, and use a token that may read gated repositories%s: %w", repo, page, detail, ErrAccessDenied)
	case se.StatusCode == http.StatusNotFound:
		what := "repository or revision"
		if se.Code == "EntryNotFound" {
			what = "file"
		} else if se.Code == "RevisionNotFound" {
			what = "revision"
		}
		return fmt.Errorf("%s: %s not found on %s%s: %w", repo, what, h.endpoint, detail, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", repo, err)
}

// Files an engine needs besides the weights; the required ones must be in the repository.
var (
	requiredFiles = []string{"config.json", "tokenizer.json"}
	optionalFiles = []string{"generation_config.json", "tokenizer_config.json", "special_tokens_map.json",
		"chat_template.jinja", "chat_template.json", "LICENSE", "LICENSE.txt", "LICENSE.md", "README.md",
		"USE_POLICY.md", "NOTICE"}
)

const indexFile = "model.safetensors.index.json"

// selectFiles picks what the engine needs from the repository's listing: configs and tokenizer,
// and the safetensors weights (the shards named by the index when there is one, so other
// top-level safetensors such as consolidated copies are not downloaded twice).
func (h *Hub) selectFiles(ctx context.Context, repo, ref, dir string, info repoInfo) ([]download.File, error) {
	byName := map[string]sibling{}
	for _, s := range info.Siblings {
		// Only top-level files: subfolders hold other formats (original/, onnx/, …).
		if s.RFilename != "" && !strings.ContainsAny(s.RFilename, `/\`) && safeName(s.RFilename) {
			byName[s.RFilename] = s
		}
	}
	for _, name := range requiredFiles {
		if _, ok := byName[name]; !ok {
			return nil, fmt.Errorf("%s has no %s: %w", repo, name, ErrUnsupported)
		}
	}
	var weights []string
	if _, ok := byName[indexFile]; ok {
		// The index is small; fetch it first to learn the shards.
		idx := h.file(repo, ref, dir, byName[indexFile])
		if err := h.client.Fetch(ctx, []download.File{idx}, nil); err != nil {
			return nil, h.explain(repo, err)
		}
		shards, err := readIndex(idx.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", repo, err)
		}
		for _, s := range shards {
			if _, ok := byName[s]; !ok {
				return nil, fmt.Errorf("%s: %s names %s, which the repository lacks: %w", repo, indexFile, s, ErrUnsupported)
			}
		}
		weights = append([]string{indexFile}, shards...)
	} else {
		for name := range byName {
			if strings.HasSuffix(name, ".safetensors") {
				weights = append(weights, name)
			}
		}
		slices.Sort(weights)
	}
	if len(weights) == 0 {
		return nil, fmt.Errorf("%s has no safetensors weights (only other formats such as .bin or .gguf): %w", repo, ErrUnsupported)
	}

	var files []download.File
	for _, name := range append(append(slices.Clone(requiredFiles), optionalFiles...), weights...) {
		if s, ok := byName[name]; ok {
			files = append(files, h.file(repo, ref, dir, s))
		}
	}
	return files, nil
}

func (h *Hub) file(repo, ref, dir string, s sibling) download.File {
	f := download.File{
		Name: s.RFilename,
		URL:  fmt.Sprintf("%s/%s/resolve/%s/%s", h.endpoint, repo, url.PathEscape(ref), url.PathEscape(s.RFilename)),
		Path: filepath.Join(dir, s.RFilename),
	}
	if s.Size != nil {
		f.Size = *s.Size
	}
	if s.LFS != nil {
		// LFS files carry a sha256; the others only a git blob id, so their size is the check.
		f.SHA256 = strings.ToLower(s.LFS.SHA256)
		if s.LFS.Size > 0 {
			f.Size = s.LFS.Size
		}
	}
	return f
}

// readIndex returns the shard files of a safetensors index, sorted and without repeats.
func readIndex(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", indexFile, err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("read %s: %w", indexFile, err)
	}
	var shards []string
	for _, s := range idx.WeightMap {
		if path.Base(s) != s || !safeName(s) || !strings.HasSuffix(s, ".safetensors") {
			return nil, fmt.Errorf("%s names shard %q, which is not a top-level safetensors file", indexFile, s)
		}
		shards = append(shards, s)
	}
	slices.Sort(shards)
	shards = slices.Compact(shards)
	if len(shards) == 0 {
		return nil, fmt.Errorf("%s lists no weights", indexFile)
	}
	return shards, nil
}

// safeName accepts a plain file name that cannot leave the model folder or hide as a dot-file.
func safeName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.HasPrefix(name, ".") &&
		!strings.ContainsAny(name, "/\\\x00") && name != ManifestName
}

func isCommit(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func totalSize(files []download.File) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}
