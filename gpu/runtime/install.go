package runtime

import (
	"archive/zip"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"opentracy/backend/atomicfile"
	"opentracy/gpu/download"
)

// defaultManifest pins the GPU runtime the app installs. Its entries must be verified against
// the package index whenever they change (see its note).
//
//go:embed gpu-runtime.json
var defaultManifest string

// ReadyName is the marker, in an installed runtime's folder, written once everything is in place.
const ReadyName = "ready.json"

// ErrBusy: an install is already running.
var ErrBusy = errors.New("an install of the GPU runtime is already running")

// Manifest describes a GPU runtime: wheels to download and what to take out of them.
type Manifest struct {
	Note string `json:"note,omitempty"`
	// Version names the runtime's folder (DATA_DIR/gpu-runtime/<version>); change it with any entry.
	Version   string `json:"version"`
	CUDAMajor int    `json:"cuda_major"`
	// OS and Arch are the platform the wheels are built for (linux, amd64).
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// Plugin and NvidiaDir are paths inside the runtime's folder.
	Plugin    string  `json:"plugin"`
	NvidiaDir string  `json:"nvidia_dir"`
	Wheels    []Wheel `json:"wheels"`
}

// Wheel is one package file.
type Wheel struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// URL is absolute, or a path resolved against Installer.Mirror.
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	// Size in bytes; 0 when not pinned (the download's length is used).
	Size    int64     `json:"size"`
	Extract []Extract `json:"extract"`
}

// Extract copies wheel entries into the runtime's folder: From ending in "/" takes everything
// under that prefix (to To plus the rest of the entry's path), otherwise the one entry From.
type Extract struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// DefaultManifest is the runtime this build of the app installs.
func DefaultManifest() (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal([]byte(defaultManifest), &m); err != nil {
		return Manifest{}, fmt.Errorf("GPU runtime manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

var versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// Validate checks that the manifest is complete and cannot write outside the runtime's folder.
func (m Manifest) Validate() error {
	if !versionPattern.MatchString(m.Version) {
		return fmt.Errorf("GPU runtime manifest: version %q is not a folder name", m.Version)
	}
	if len(m.Wheels) == 0 {
		return errors.New("GPU runtime manifest: no wheels")
	}
	if !filepath.IsLocal(m.Plugin) || !filepath.IsLocal(m.NvidiaDir) {
		return errors.New("GPU runtime manifest: plugin and nvidia_dir must be paths inside the runtime's folder")
	}
	pluginCovered := false
	names := map[string]bool{}
	for _, w := range m.Wheels {
		u, err := url.Parse(w.URL)
		absolute := err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
		relative := err == nil && u.Scheme == "" && u.Host == "" && path.IsAbs("/"+u.Path) && !strings.Contains(u.Path, "..")
		if !absolute && !relative {
			return fmt.Errorf("GPU runtime manifest: %s: bad URL %q", w.Name, w.URL)
		}
		file := path.Base(u.Path)
		if !strings.HasSuffix(file, ".whl") || names[file] {
			return fmt.Errorf("GPU runtime manifest: %s: the URL must end in a wheel file name, once", w.Name)
		}
		names[file] = true
		if b, err := hex.DecodeString(w.SHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("GPU runtime manifest: %s: sha256 %q is not 64 hex digits", w.Name, w.SHA256)
		}
		if w.Size < 0 || len(w.Extract) == 0 {
			return fmt.Errorf("GPU runtime manifest: %s: needs a size ≥ 0 and something to extract", w.Name)
		}
		for _, x := range w.Extract {
			if x.From == "" || !filepath.IsLocal(strings.TrimSuffix(x.To, "/")) ||
				strings.HasSuffix(x.From, "/") != strings.HasSuffix(x.To, "/") {
				return fmt.Errorf("GPU runtime manifest: %s: bad extract rule %+v", w.Name, x)
			}
			if x.To == m.Plugin {
				pluginCovered = true
			}
		}
	}
	if !pluginCovered {
		return fmt.Errorf("GPU runtime manifest: no wheel provides the plugin %s", m.Plugin)
	}
	return nil
}

// Installation is an installed GPU runtime.
type Installation struct {
	Version   string `json:"version"`
	CUDAMajor int    `json:"cuda_major"`
	// Dir is DATA_DIR/gpu-runtime/<version>; PluginPath and NvidiaDir are absolute paths in it.
	Dir         string    `json:"-"`
	PluginPath  string    `json:"-"`
	NvidiaDir   string    `json:"-"`
	InstalledAt time.Time `json:"installed_at"`
	// Plugin and Nvidia are the paths relative to Dir, as the ready marker keeps them (so the
	// data dir can move).
	Plugin string `json:"plugin"`
	Nvidia string `json:"nvidia_dir"`
	// Wheels are the packages it came from ("name==version").
	Wheels []string `json:"wheels"`
}

// Installed returns the runtime installed under root (DATA_DIR/gpu-runtime) as version, or nil
// when it is not there or not finished.
func Installed(root, version string) (*Installation, error) {
	if !versionPattern.MatchString(version) {
		return nil, fmt.Errorf("GPU runtime version %q is not a folder name", version)
	}
	dir := filepath.Join(root, version)
	data, err := os.ReadFile(filepath.Join(dir, ReadyName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read GPU runtime marker: %w", err)
	}
	var in Installation
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("read GPU runtime marker %s: %w", filepath.Join(dir, ReadyName), err)
	}
	if in.Version != version || !filepath.IsLocal(in.Plugin) || !filepath.IsLocal(in.Nvidia) {
		return nil, fmt.Errorf("GPU runtime marker %s does not describe %s", filepath.Join(dir, ReadyName), version)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	in.Dir, in.PluginPath, in.NvidiaDir = abs, filepath.Join(abs, in.Plugin), filepath.Join(abs, in.Nvidia)
	return &in, nil
}

// Remove deletes an installed runtime version. The marker goes first, so a removal cut short
// leaves a runtime that is not offered as installed.
func Remove(root, version string) error {
	if !versionPattern.MatchString(version) {
		return fmt.Errorf("GPU runtime version %q is not a folder name", version)
	}
	dir := filepath.Join(root, version)
	if err := os.Remove(filepath.Join(dir, ReadyName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove GPU runtime: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove GPU runtime: %w", err)
	}
	return nil
}

// Install phases (InstallProgress.Phase).
const (
	PhaseDownload = "download"
	PhaseExtract  = "extract"
	PhaseDone     = "done"
)

// InstallProgress reports an install.
type InstallProgress struct {
	Phase string `json:"phase"`
	// Download is set in the download phase.
	Download download.Progress `json:"download"`
	// Wheel, Index and Count are set in the extract phase.
	Wheel        string `json:"wheel,omitempty"`
	Index, Count int    `json:"-"`
}

// Installer installs a GPU runtime into Root (DATA_DIR/gpu-runtime).
type Installer struct {
	Root     string
	Manifest Manifest
	// Mirror is the base URL the manifest's relative wheel paths are under: the file host of a
	// Python package index or a mirror of it (config engine.wheel_mirror).
	Mirror string
	// HTTP sends the requests (nil: the download package's default).
	HTTP *http.Client
	Log  *slog.Logger
	// Retries, Backoff and StallTimeout tune the downloader (zero: its defaults).
	Retries      int
	Backoff      time.Duration
	StallTimeout time.Duration
	// KeepDownloads keeps the wheels after extraction (they take about 1.5 GB).
	KeepDownloads bool
	// SkipPlatformCheck allows installing on another OS or architecture (for tests with fixture
	// wheels only: the real libraries would not load).
	SkipPlatformCheck bool

	mu sync.Mutex
}

// NewInstaller installs the default manifest into root.
func NewInstaller(root string, log *slog.Logger) (*Installer, error) {
	m, err := DefaultManifest()
	if err != nil {
		return nil, err
	}
	return &Installer{Root: root, Manifest: m, Log: log}, nil
}

// Installed returns the manifest's runtime if it is installed.
func (in *Installer) Installed() (*Installation, error) {
	return Installed(in.Root, in.Manifest.Version)
}

// Install downloads the wheels (resuming an earlier attempt), verifies them, extracts what the
// engine needs into Root/<version> and writes the ready marker. A runtime already installed is
// returned as it is. Only one Install runs at a time.
func (in *Installer) Install(ctx context.Context, progress func(InstallProgress)) (*Installation, error) {
	if !in.mu.TryLock() {
		return nil, ErrBusy
	}
	defer in.mu.Unlock()
	m := in.Manifest
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if !in.SkipPlatformCheck && (goruntime.GOOS != m.OS || goruntime.GOARCH != m.Arch) {
		return nil, fmt.Errorf("the GPU runtime exists for %s/%s only; this is %s/%s", m.OS, m.Arch, goruntime.GOOS, goruntime.GOARCH)
	}
	if inst, err := in.Installed(); err != nil || inst != nil {
		return inst, err
	}
	log := in.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	report := func(p InstallProgress) {
		if progress != nil {
			progress(p)
		}
	}
	if err := os.MkdirAll(in.Root, download.DirMode); err != nil {
		return nil, fmt.Errorf("create %s: %w", in.Root, err)
	}

	// Downloads live apart from the staging folder so an interrupted install resumes them.
	downloads := filepath.Join(in.Root, "downloads")
	files := make([]download.File, len(m.Wheels))
	for i, w := range m.Wheels {
		u, err := in.wheelURL(w)
		if err != nil {
			return nil, fmt.Errorf("install GPU runtime: %w", err)
		}
		files[i] = download.File{
			Name: w.Name + " " + w.Version, URL: u.String(), Path: filepath.Join(downloads, path.Base(u.Path)),
			Size: w.Size, SHA256: w.SHA256,
		}
	}
	log.Info("installing GPU runtime", "version", m.Version, "wheels", len(files))
	client := &download.Client{HTTP: in.HTTP, Log: log, Retries: in.Retries, Backoff: in.Backoff,
		StallTimeout: in.StallTimeout, UserAgent: "opentracy"}
	if err := client.Fetch(ctx, files, func(p download.Progress) {
		report(InstallProgress{Phase: PhaseDownload, Download: p})
	}); err != nil {
		return nil, fmt.Errorf("install GPU runtime: %w", err)
	}

	final := filepath.Join(in.Root, m.Version)
	staging := final + ".partial"
	if err := os.RemoveAll(staging); err != nil {
		return nil, fmt.Errorf("clear %s: %w", staging, err)
	}
	if err := os.MkdirAll(staging, download.DirMode); err != nil {
		return nil, fmt.Errorf("create %s: %w", staging, err)
	}
	for i, w := range m.Wheels {
		report(InstallProgress{Phase: PhaseExtract, Wheel: w.Name, Index: i, Count: len(m.Wheels)})
		if err := extract(ctx, files[i].Path, staging, w.Extract); err != nil {
			_ = os.RemoveAll(staging)
			return nil, fmt.Errorf("install GPU runtime: %s: %w", w.Name, err)
		}
	}
	if st, err := os.Stat(filepath.Join(staging, m.Plugin)); err != nil || !st.Mode().IsRegular() {
		_ = os.RemoveAll(staging)
		return nil, fmt.Errorf("install GPU runtime: the plugin %s was not extracted", m.Plugin)
	}

	inst := Installation{Version: m.Version, CUDAMajor: m.CUDAMajor, InstalledAt: time.Now().UTC(),
		Plugin: m.Plugin, Nvidia: m.NvidiaDir}
	for _, w := range m.Wheels {
		inst.Wheels = append(inst.Wheels, w.Name+"=="+w.Version)
	}
	marker, err := json.MarshalIndent(inst, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode GPU runtime marker: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(staging, ReadyName), append(marker, '\n'), download.FileMode); err != nil {
		return nil, fmt.Errorf("write GPU runtime marker: %w", err)
	}
	// The folder appears complete in one rename; an older half-installed copy goes first.
	if err := os.RemoveAll(final); err != nil {
		return nil, fmt.Errorf("clear %s: %w", final, err)
	}
	if err := os.Rename(staging, final); err != nil {
		return nil, fmt.Errorf("move GPU runtime into place: %w", err)
	}
	if !in.KeepDownloads {
		if err := os.RemoveAll(downloads); err != nil {
			log.Warn("could not remove the downloaded wheels", "dir", downloads, "err", err)
		}
	}
	report(InstallProgress{Phase: PhaseDone})
	log.Info("GPU runtime installed", "version", m.Version, "dir", final)
	return in.Installed()
}

// extract copies the entries of the wheel at whl that the rules select into dir.
func extract(ctx context.Context, whl, dir string, rules []Extract) error {
	zr, err := zip.OpenReader(whl)
	if err != nil {
		return fmt.Errorf("open wheel: %w", err)
	}
	defer zr.Close()
	used := make([]bool, len(rules))
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.FileInfo().IsDir() {
			continue
		}
		for i, r := range rules {
			rel, ok := target(f.Name, r)
			if !ok {
				continue
			}
			if !filepath.IsLocal(rel) {
				return fmt.Errorf("wheel entry %q would land outside the runtime's folder", f.Name)
			}
			if f.Mode()&fs.ModeSymlink != 0 {
				return fmt.Errorf("wheel entry %q is a symbolic link", f.Name)
			}
			if err := writeEntry(ctx, f, filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
				return err
			}
			used[i] = true
			break
		}
	}
	for i, ok := range used {
		if !ok {
			return fmt.Errorf("the wheel has nothing at %s: the manifest does not match it", rules[i].From)
		}
	}
	return nil
}

// target maps a wheel entry to its path in the runtime's folder under rule r.
func target(name string, r Extract) (string, bool) {
	if strings.HasSuffix(r.From, "/") {
		rest, ok := strings.CutPrefix(name, r.From)
		if !ok || rest == "" {
			return "", false
		}
		return r.To + rest, true
	}
	return r.To, name == r.From
}

func writeEntry(ctx context.Context, f *zip.File, dest string) error {
	if err := os.MkdirAll(filepath.Dir(dest), download.DirMode); err != nil {
		return fmt.Errorf("create folder for %s: %w", f.Name, err)
	}
	// Files keep the wheel's execute bit (programs such as ptxas need it; bin/ marks them too).
	mode := download.FileMode
	if f.Mode()&0o111 != 0 || strings.Contains(f.Name, "/bin/") {
		mode = 0o700
	}
	src, err := f.Open()
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Name, err)
	}
	defer src.Close()
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", dest, err)
	}
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			out.Close()
			return err
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return fmt.Errorf("write %s: %w", dest, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			out.Close()
			return fmt.Errorf("read %s: %w", f.Name, rerr) // includes zip's own CRC check
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	return nil
}

// ErrNoMirror: the manifest names wheels by path and no mirror was configured to fetch them from.
var ErrNoMirror = errors.New("no wheel mirror configured: set engine.wheel_mirror to the base URL the GPU runtime's wheel paths are under")

// wheelURL is w's absolute URL (validated by Manifest.Validate).
func (in *Installer) wheelURL(w Wheel) (*url.URL, error) {
	u, err := url.Parse(w.URL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Name, err)
	}
	if u.IsAbs() {
		return u, nil
	}
	if in.Mirror == "" {
		return nil, ErrNoMirror
	}
	base, err := url.Parse(strings.TrimSuffix(in.Mirror, "/") + "/")
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("wheel mirror %q: want an http(s) URL", in.Mirror)
	}
	return base.ResolveReference(&url.URL{Path: strings.TrimPrefix(u.Path, "/")}), nil
}
