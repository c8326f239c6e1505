package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Backends an engine can use (Config.Backend).
const (
	// BackendAuto uses the GPU when there is one and its runtime is installed, else the CPU.
	BackendAuto = "auto"
	// BackendGo is GoMLX's pure-Go backend: the CPU, everywhere, slowly.
	BackendGo = "go"
	// BackendCUDA is XLA with the CUDA PJRT plugin; asking for it makes a missing GPU an error.
	BackendCUDA = "xla:cuda"
)

// Environment variables a worker process reads (GoMLX, XLA and the dynamic loader).
const (
	EnvBackend       = "GOMLX_BACKEND"
	EnvNoAutoInstall = "GOMLX_NO_AUTO_INSTALL"
	EnvXLAFlags      = "XLA_FLAGS"
	EnvLibraryPath   = "LD_LIBRARY_PATH"
)

// Messages shown when the engine cannot use a GPU.
const (
	MsgNoGPU        = "no NVIDIA GPU: training runs on the CPU backend, slowly"
	MsgNeedsRuntime = "GPU found but the GPU runtime is not installed: click Install GPU runtime"
)

// Config chooses the engine's backend (the config file's engine section).
type Config struct {
	// Backend is auto (the default when empty), go or xla:cuda.
	Backend string `yaml:"backend"`
	// PluginPath is a CUDA PJRT plugin to use instead of the installed GPU runtime: the
	// xla_cuda_plugin.so of JAX's jax-cuda12-pjrt (or -cuda13) wheel.
	PluginPath string `yaml:"pjrt_plugin"`
	// NvidiaLibDir is the folder of the NVIDIA libraries the plugin needs (a site-packages/nvidia
	// folder of pip wheels, or a CUDA toolkit); empty means the installed GPU runtime's, or the
	// nvidia folder beside the plugin.
	NvidiaLibDir string `yaml:"nvidia_lib_dir"`
}

// Status says what a Plan runs on and why.
type Status string

const (
	// StatusGPU: the GPU runtime is ready.
	StatusGPU Status = "gpu"
	// StatusCPU: the CPU backend was asked for.
	StatusCPU Status = "cpu"
	// StatusNoGPU: no GPU, so the CPU backend.
	StatusNoGPU Status = "no-gpu"
	// StatusNeedsRuntime: a GPU but no GPU runtime, so the CPU backend until it is installed.
	StatusNeedsRuntime Status = "needs-runtime"
	// StatusUnusable: a GPU and a runtime that cannot work together (old driver, broken
	// configuration), so the CPU backend.
	StatusUnusable Status = "unusable"
)

// Plan is the backend an engine worker should use and the environment that selects it.
type Plan struct {
	// Backend is BackendGo or BackendCUDA.
	Backend string `json:"backend"`
	Status  Status `json:"status"`
	// Message explains the choice to the user.
	Message string `json:"message"`
	// PluginPath, CUDADataDir and LibDirs are set for BackendCUDA.
	PluginPath  string   `json:"plugin_path,omitempty"`
	CUDADataDir string   `json:"cuda_data_dir,omitempty"`
	LibDirs     []string `json:"lib_dirs,omitempty"`
	// Warnings are problems that do not stop the GPU from being used.
	Warnings []string `json:"warnings,omitempty"`
	GPU      Info     `json:"gpu"`
}

// Resolve picks the backend from the configuration, the detected GPU and the installed GPU runtime
// (nil when none). With Backend xla:cuda anything missing is an error; with auto the engine falls
// back to the CPU and the Plan's Message says why.
func Resolve(cfg Config, gpu Info, installed *Installation) (Plan, error) {
	backend := strings.ToLower(strings.TrimSpace(cfg.Backend))
	if backend == "" {
		backend = BackendAuto
	}
	switch backend {
	case BackendGo:
		return Plan{Backend: BackendGo, Status: StatusCPU, GPU: gpu,
			Message: "CPU backend, as configured (engine backend: go)"}, nil
	case BackendAuto, BackendCUDA:
	default:
		return Plan{}, fmt.Errorf("engine backend %q: use %s, %s or %s", cfg.Backend, BackendAuto, BackendGo, BackendCUDA)
	}
	explicit := backend == BackendCUDA
	cpu := func(status Status, msg string) (Plan, error) {
		if explicit {
			return Plan{}, fmt.Errorf("engine backend is %s, but %s", BackendCUDA, msg)
		}
		if status == StatusUnusable {
			msg += " (the engine uses the CPU backend meanwhile)"
		}
		return Plan{Backend: BackendGo, Status: status, Message: msg, GPU: gpu}, nil
	}

	if !gpu.Present {
		if explicit {
			return cpu(StatusNoGPU, "no NVIDIA GPU was found ("+gpu.Reason+")")
		}
		return cpu(StatusNoGPU, MsgNoGPU)
	}

	plan := Plan{Backend: BackendCUDA, Status: StatusGPU, GPU: gpu}
	cudaMajor := 0
	var nvidiaDir string
	switch {
	case cfg.PluginPath != "":
		p, err := regularFile(cfg.PluginPath)
		if err != nil {
			return cpu(StatusUnusable, "the configured PJRT plugin cannot be used: "+err.Error())
		}
		plan.PluginPath = p
		nvidiaDir = cfg.NvidiaLibDir
		if nvidiaDir == "" && installed != nil {
			nvidiaDir = installed.NvidiaDir
		}
		if nvidiaDir == "" {
			// go-xla's layout: the libraries in the nvidia folder beside the plugin's folder.
			if d := filepath.Join(filepath.Dir(filepath.Dir(p)), "nvidia"); isDir(d) {
				nvidiaDir = d
			}
		}
	case installed != nil:
		plan.PluginPath, nvidiaDir, cudaMajor = installed.PluginPath, installed.NvidiaDir, installed.CUDAMajor
		if cfg.NvidiaLibDir != "" {
			nvidiaDir = cfg.NvidiaLibDir
		}
		if _, err := regularFile(plan.PluginPath); err != nil {
			return cpu(StatusUnusable, "the installed GPU runtime is damaged ("+err.Error()+"): install it again")
		}
	default:
		if explicit {
			return cpu(StatusNeedsRuntime, "the GPU runtime is not installed: click Install GPU runtime, or set engine pjrt_plugin")
		}
		return cpu(StatusNeedsRuntime, MsgNeedsRuntime)
	}

	if cudaMajor > 0 && gpu.CUDA > 0 && gpu.CUDAMajor() < cudaMajor {
		return cpu(StatusUnusable, fmt.Sprintf("the NVIDIA driver %s supports CUDA %s, and the GPU runtime needs CUDA %d: update the driver",
			gpu.Driver, gpu.CUDAVersion(), cudaMajor))
	}

	if nvidiaDir == "" {
		plan.Warnings = append(plan.Warnings, "no NVIDIA library folder configured: the plugin must find CUDA libraries on the system")
	} else {
		abs, err := filepath.Abs(nvidiaDir)
		if err != nil || !isDir(abs) {
			return cpu(StatusUnusable, fmt.Sprintf("the NVIDIA library folder %s does not exist", nvidiaDir))
		}
		plan.LibDirs = libDirs(abs, plan.PluginPath)
		if len(plan.LibDirs) == 0 {
			return cpu(StatusUnusable, fmt.Sprintf("the NVIDIA library folder %s holds no libraries", abs))
		}
		plan.CUDADataDir = cudaDataDir(abs)
		if plan.CUDADataDir == "" {
			plan.CUDADataDir = abs
			plan.Warnings = append(plan.Warnings, "ptxas not found under "+abs+
				": XLA falls back to the driver's compiler, which may be slower or fail on new GPUs")
		}
	}
	plan.Message = "GPU: " + gpu.Summary()
	return plan, nil
}

// Environ returns base (a process environment, as os.Environ gives) with the plan's variables
// set: the backend, no downloads by GoMLX, XLA's CUDA folder and the library path. A worker
// process must start with it: the dynamic loader reads LD_LIBRARY_PATH only at start.
func (p Plan) Environ(base []string) []string {
	env := slices.Clone(base)
	if p.Backend != BackendCUDA {
		env = setEnv(env, EnvBackend, BackendGo)
		return setEnv(env, EnvNoAutoInstall, "1")
	}
	env = setEnv(env, EnvBackend, "xla:"+p.PluginPath)
	// The app installs the runtime itself, with checksums, only when the user asks.
	env = setEnv(env, EnvNoAutoInstall, "1")
	if p.CUDADataDir != "" {
		var flags []string
		for f := range strings.FieldsSeq(getEnv(env, EnvXLAFlags)) {
			if !strings.HasPrefix(f, "--xla_gpu_cuda_data_dir") {
				flags = append(flags, f)
			}
		}
		flags = append(flags, "--xla_gpu_cuda_data_dir="+p.CUDADataDir)
		env = setEnv(env, EnvXLAFlags, strings.Join(flags, " "))
	}
	if len(p.LibDirs) > 0 {
		dirs := slices.Clone(p.LibDirs)
		for d := range strings.SplitSeq(getEnv(env, EnvLibraryPath), string(os.PathListSeparator)) {
			if d != "" && !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
		env = setEnv(env, EnvLibraryPath, strings.Join(dirs, string(os.PathListSeparator)))
	}
	return env
}

// libDirs lists the library folders under an NVIDIA folder: itself when it holds libraries (a
// flat folder), its lib/lib64 (a CUDA toolkit) and each package's lib (pip wheels:
// nvidia/cublas/lib, nvidia/cudnn/lib, …). The plugin itself does not make a folder one.
func libDirs(root, plugin string) []string {
	var dirs []string
	for _, d := range []string{root, filepath.Join(root, "lib"), filepath.Join(root, "lib64")} {
		if hasSharedLibrary(d, plugin) {
			dirs = append(dirs, d)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(root, "*", "lib"))
	slices.Sort(matches)
	for _, d := range matches {
		if hasSharedLibrary(d, plugin) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// cudaDataDir finds the folder XLA wants in --xla_gpu_cuda_data_dir: the one holding bin/ptxas
// (and nvvm/libdevice).
func cudaDataDir(root string) string {
	for _, d := range []string{root, filepath.Join(root, "cuda_nvcc")} {
		if st, err := os.Stat(filepath.Join(d, "bin", "ptxas")); err == nil && st.Mode().IsRegular() {
			return d
		}
	}
	return ""
}

func hasSharedLibrary(dir, except string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if filepath.Join(dir, e.Name()) == except {
			continue
		}
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".so") || strings.Contains(e.Name(), ".so.")) {
			return true
		}
	}
	return false
}

// regularFile makes p absolute and checks it is a file.
func regularFile(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s does not exist", abs)
		}
		return "", fmt.Errorf("%s: %w", abs, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a file", abs)
	}
	return abs, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func getEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// setEnv replaces every key=… entry of env with one key=value.
func setEnv(env []string, key, value string) []string {
	env = slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == key
	})
	return append(env, key+"="+value)
}
