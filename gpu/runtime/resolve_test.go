package runtime_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"opentracy/gpu/runtime"
)

var h100 = runtime.Info{Present: true, Driver: "550.54.15", CUDA: 12040,
	Devices: []runtime.GPU{{Name: "NVIDIA H100 80GB HBM3", MemoryTotal: 80 << 30}}}

var noGPU = runtime.Info{Reason: "NVIDIA driver not available: ERROR_LIBRARY_NOT_FOUND"}

func touch(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), mode); err != nil {
		t.Fatal(err)
	}
}

// pipLayout makes a site-packages-like folder: a plugin and an nvidia/ folder of wheels' libraries.
func pipLayout(t *testing.T) (plugin, nvidia string) {
	root := t.TempDir()
	plugin = filepath.Join(root, "jax_plugins", "xla_cuda12", "xla_cuda_plugin.so")
	nvidia = filepath.Join(root, "nvidia")
	touch(t, plugin, 0o600)
	touch(t, filepath.Join(nvidia, "cublas", "lib", "libcublas.so.12"), 0o600)
	touch(t, filepath.Join(nvidia, "cudnn", "lib", "libcudnn.so.9"), 0o600)
	touch(t, filepath.Join(nvidia, "cuda_nvcc", "bin", "ptxas"), 0o700)
	touch(t, filepath.Join(nvidia, "cuda_nvcc", "include", "x.h"), 0o600) // no library: not on the path
	return plugin, nvidia
}

func env(t *testing.T, e []string, key string) string {
	t.Helper()
	var found []string
	for _, kv := range e {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			found = append(found, v)
		}
	}
	if len(found) > 1 {
		t.Fatalf("%s set %d times", key, len(found))
	}
	if len(found) == 0 {
		return ""
	}
	return found[0]
}

func TestResolveCPUCases(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     runtime.Config
		gpu     runtime.Info
		status  runtime.Status
		message string
	}{
		{"configured go", runtime.Config{Backend: "go"}, h100, runtime.StatusCPU, "as configured"},
		{"auto without GPU", runtime.Config{}, noGPU, runtime.StatusNoGPU, runtime.MsgNoGPU},
		{"auto without runtime", runtime.Config{Backend: "auto"}, h100, runtime.StatusNeedsRuntime, runtime.MsgNeedsRuntime},
		{"auto with a missing plugin", runtime.Config{PluginPath: "/nonexistent/xla_cuda_plugin.so"}, h100, runtime.StatusUnusable, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := runtime.Resolve(tc.cfg, tc.gpu, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Backend != runtime.BackendGo || p.Status != tc.status || !strings.Contains(p.Message, tc.message) {
				t.Fatalf("plan %+v", p)
			}
			e := p.Environ([]string{"HOME=/home/u", "GOMLX_BACKEND=xla"})
			if env(t, e, runtime.EnvBackend) != "go" || env(t, e, runtime.EnvNoAutoInstall) != "1" || env(t, e, "HOME") != "/home/u" {
				t.Fatalf("env %v", e)
			}
		})
	}
}

func TestResolveExplicitCUDAFailsLoudly(t *testing.T) {
	plugin, _ := pipLayout(t)
	for _, tc := range []struct {
		name string
		cfg  runtime.Config
		gpu  runtime.Info
		want string
	}{
		{"no GPU", runtime.Config{Backend: "xla:cuda"}, noGPU, "no NVIDIA GPU was found"},
		{"no runtime", runtime.Config{Backend: "xla:cuda"}, h100, "Install GPU runtime"},
		{"missing plugin", runtime.Config{Backend: "xla:cuda", PluginPath: "/nope.so"}, h100, "does not exist"},
		{"missing library folder", runtime.Config{Backend: "XLA:CUDA", PluginPath: plugin, NvidiaLibDir: "/no/such/dir"}, h100, "does not exist"},
		{"unknown backend", runtime.Config{Backend: "tpu"}, h100, "use auto, go or xla:cuda"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runtime.Resolve(tc.cfg, tc.gpu, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestResolveConfiguredPluginAndLibraries(t *testing.T) {
	plugin, nvidia := pipLayout(t)
	p, err := runtime.Resolve(runtime.Config{Backend: "xla:cuda", PluginPath: plugin, NvidiaLibDir: nvidia}, h100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Backend != runtime.BackendCUDA || p.Status != runtime.StatusGPU || !strings.Contains(p.Message, "H100") {
		t.Fatalf("plan %+v", p)
	}
	wantDirs := []string{filepath.Join(nvidia, "cublas", "lib"), filepath.Join(nvidia, "cudnn", "lib")}
	if !slices.Equal(p.LibDirs, wantDirs) || p.CUDADataDir != filepath.Join(nvidia, "cuda_nvcc") || len(p.Warnings) != 0 {
		t.Fatalf("plan %+v", p)
	}

	base := []string{
		"PATH=/usr/bin",
		"XLA_FLAGS=--xla_gpu_autotune_level=2 --xla_gpu_cuda_data_dir=/old/cuda",
		"LD_LIBRARY_PATH=/opt/lib:" + wantDirs[0],
	}
	e := p.Environ(base)
	if got := env(t, e, runtime.EnvBackend); got != "xla:"+plugin {
		t.Fatalf("GOMLX_BACKEND=%s", got)
	}
	if env(t, e, runtime.EnvNoAutoInstall) != "1" {
		t.Fatal("GoMLX may download a plugin by itself")
	}
	if got := env(t, e, runtime.EnvXLAFlags); got != "--xla_gpu_autotune_level=2 --xla_gpu_cuda_data_dir="+filepath.Join(nvidia, "cuda_nvcc") {
		t.Fatalf("XLA_FLAGS=%s", got)
	}
	if got := env(t, e, runtime.EnvLibraryPath); got != wantDirs[0]+":"+wantDirs[1]+":/opt/lib" {
		t.Fatalf("LD_LIBRARY_PATH=%s", got)
	}
	if env(t, e, "PATH") != "/usr/bin" || !slices.Equal(base[:1], []string{"PATH=/usr/bin"}) {
		t.Fatal("the base environment was lost or changed")
	}
}

func TestResolveRelativePluginAndNvidiaBesideIt(t *testing.T) {
	// go-xla's layout: <root>/nvidia/<plugin>.so with the libraries in <root>/nvidia/*/lib.
	root := t.TempDir()
	touch(t, filepath.Join(root, "nvidia", "pjrt_c_api_cuda_plugin.so"), 0o600)
	touch(t, filepath.Join(root, "nvidia", "cuda_runtime", "lib", "libcudart.so.12"), 0o600)
	t.Chdir(root)
	p, err := runtime.Resolve(runtime.Config{PluginPath: "nvidia/pjrt_c_api_cuda_plugin.so"}, h100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(p.PluginPath) || p.Backend != runtime.BackendCUDA {
		t.Fatalf("plan %+v", p)
	}
	// The plugin's own folder is not a library folder.
	if len(p.LibDirs) != 1 || !strings.HasSuffix(p.LibDirs[0], filepath.Join("nvidia", "cuda_runtime", "lib")) {
		t.Fatalf("lib dirs %v", p.LibDirs)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "ptxas") {
		t.Fatalf("warnings %v", p.Warnings)
	}
}

func TestResolveOldDriver(t *testing.T) {
	plugin, nvidia := pipLayout(t)
	inst := &runtime.Installation{Version: "v", CUDAMajor: 12, PluginPath: plugin, NvidiaDir: nvidia}
	old := h100
	old.Driver, old.CUDA = "470.256.02", 11040
	p, err := runtime.Resolve(runtime.Config{}, old, inst)
	if err != nil {
		t.Fatal(err)
	}
	if p.Backend != runtime.BackendGo || p.Status != runtime.StatusUnusable || !strings.Contains(p.Message, "update the driver") {
		t.Fatalf("plan %+v", p)
	}
	if _, err := runtime.Resolve(runtime.Config{Backend: "xla:cuda"}, old, inst); err == nil {
		t.Fatal("xla:cuda with an old driver accepted")
	}
	if p, err := runtime.Resolve(runtime.Config{}, h100, inst); err != nil || p.Backend != runtime.BackendCUDA {
		t.Fatalf("current driver: %+v, %v", p, err)
	}
}
