package runtime_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"opentracy/gpu/download"
	"opentracy/gpu/download/downloadtest"
	"opentracy/gpu/runtime"
)

type entry struct {
	name string
	mode os.FileMode
	data []byte
}

// wheel builds a wheel (a zip) holding entries.
func wheel(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Store} // stored, so sizes are what the test says
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fixture is a small GPU runtime served from a loopback server, shaped like the real wheels.
type fixture struct {
	srv      *downloadtest.Server
	manifest runtime.Manifest
	wheels   map[string][]byte // URL path → content
	plugin   []byte
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{srv: downloadtest.New(t), wheels: map[string][]byte{}}
	f.plugin = random(240_000, 1)
	pjrt := wheel(t,
		entry{"jax_plugins/xla_cuda12/__init__.py", 0o644, []byte("# plugin\n")},
		entry{"jax_plugins/xla_cuda12/xla_cuda_plugin.so", 0o755, f.plugin},
		entry{"jax_cuda12_pjrt-0.8.1.dist-info/METADATA", 0o644, []byte("Name: jax-cuda12-pjrt\n")},
	)
	cublas := wheel(t,
		entry{"nvidia/__init__.py", 0o644, nil},
		entry{"nvidia/cublas/include/cublas.h", 0o644, []byte("/* header */")},
		entry{"nvidia/cublas/lib/libcublas.so.12", 0o755, random(300_000, 2)},
		entry{"nvidia/cublas/lib/libcublasLt.so.12", 0o755, random(400_000, 3)},
	)
	nvcc := wheel(t,
		entry{"nvidia/cuda_nvcc/bin/ptxas", 0o755, []byte("#!/bin/sh\necho ptxas\n")},
		entry{"nvidia/cuda_nvcc/bin/nvlink", 0o644, []byte("nvlink")}, // no exec bit in the zip: bin/ makes it a program
		entry{"nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc", 0o644, []byte("BC")},
		entry{"nvidia/cuda_nvcc/include/crt/host_config.h", 0o644, []byte("/* header */")},
	)
	f.manifest = runtime.Manifest{
		Version: "cuda12-test-1", CUDAMajor: 12, OS: "linux", Arch: "amd64",
		Plugin: "nvidia/xla_cuda_plugin.so", NvidiaDir: "nvidia",
		Wheels: []runtime.Wheel{
			f.add("/p/jax_cuda12_pjrt-0.8.1-py3-none-manylinux_2_27_x86_64.whl", "jax-cuda12-pjrt", pjrt, false,
				runtime.Extract{From: "jax_plugins/xla_cuda12/xla_cuda_plugin.so", To: "nvidia/xla_cuda_plugin.so"}),
			f.add("/p/nvidia_cublas_cu12-12.9.2.10-py3-none-manylinux_2_27_x86_64.whl", "nvidia-cublas-cu12", cublas, true,
				runtime.Extract{From: "nvidia/cublas/lib/", To: "nvidia/cublas/lib/"}),
			f.add("/p/nvidia_cuda_nvcc_cu12-12.9.86-py3-none-manylinux2010_x86_64.whl", "nvidia-cuda-nvcc-cu12", nvcc, true,
				runtime.Extract{From: "nvidia/cuda_nvcc/bin/", To: "nvidia/cuda_nvcc/bin/"},
				runtime.Extract{From: "nvidia/cuda_nvcc/nvvm/libdevice/", To: "nvidia/cuda_nvcc/nvvm/libdevice/"}),
		},
	}
	return f
}

func (f *fixture) add(urlPath, name string, data []byte, pinSize bool, rules ...runtime.Extract) runtime.Wheel {
	f.srv.Put(urlPath, data)
	f.wheels[urlPath] = data
	w := runtime.Wheel{Name: name, Version: "test", URL: f.srv.URL + urlPath, SHA256: hexSum(data), Extract: rules}
	if strings.HasPrefix(name, "jax-") {
		// As in the shipped manifest: a path under the configured mirror.
		w.URL = strings.TrimPrefix(urlPath, "/")
	}
	if pinSize {
		w.Size = int64(len(data))
	}
	return w
}

func (f *fixture) installer(t *testing.T, root string) *runtime.Installer {
	return &runtime.Installer{Root: root, Manifest: f.manifest, Mirror: f.srv.URL, Backoff: time.Millisecond, SkipPlatformCheck: true}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestInstallResumesVerifiesAndExtracts(t *testing.T) {
	f := newFixture(t)
	cublasPath := "/p/nvidia_cublas_cu12-12.9.2.10-py3-none-manylinux_2_27_x86_64.whl"
	f.srv.Fail(cublasPath, downloadtest.Fault{DropAfter: 1000})
	root := filepath.Join(t.TempDir(), "gpu-runtime")
	in := f.installer(t, root)

	var phases []string
	inst, err := in.Install(context.Background(), func(p runtime.InstallProgress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(phases, []string{runtime.PhaseDownload, runtime.PhaseExtract, runtime.PhaseDone}) {
		t.Fatalf("phases %v", phases)
	}
	reqs := f.srv.Requests(cublasPath)
	if len(reqs) != 2 || reqs[1].Range != "bytes=1000-" || f.srv.Sent(cublasPath) != int64(len(f.wheels[cublasPath])) {
		t.Fatalf("the cuBLAS wheel was not resumed: %+v", reqs)
	}

	dir := filepath.Join(root, "cuda12-test-1")
	if inst == nil || inst.Dir != dir || inst.PluginPath != filepath.Join(dir, "nvidia", "xla_cuda_plugin.so") ||
		inst.NvidiaDir != filepath.Join(dir, "nvidia") || inst.CUDAMajor != 12 || len(inst.Wheels) != 3 {
		t.Fatalf("installation %+v", inst)
	}
	if got, _ := os.ReadFile(inst.PluginPath); !bytes.Equal(got, f.plugin) {
		t.Fatal("plugin content differs")
	}
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		} else if err == nil && mode(t, p) != 0o700 {
			t.Errorf("folder %s mode %v", p, mode(t, p))
		}
		return err
	})
	want := []string{
		"nvidia/cublas/lib/libcublas.so.12", "nvidia/cublas/lib/libcublasLt.so.12",
		"nvidia/cuda_nvcc/bin/nvlink", "nvidia/cuda_nvcc/bin/ptxas", "nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc",
		"nvidia/xla_cuda_plugin.so", "ready.json",
	}
	if !slices.Equal(files, want) {
		t.Fatalf("installed files %v\nwant %v", files, want)
	}
	if mode(t, filepath.Join(dir, "nvidia/cuda_nvcc/bin/ptxas")) != 0o700 || mode(t, filepath.Join(dir, "nvidia/cuda_nvcc/bin/nvlink")) != 0o700 {
		t.Fatal("programs lost their execute bit")
	}
	// Files keep the wheel's execute bit, and only their owner may read them.
	if mode(t, filepath.Join(dir, "nvidia/cublas/lib/libcublas.so.12")) != 0o700 ||
		mode(t, filepath.Join(dir, "nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc")) != 0o600 {
		t.Fatal("extracted files have the wrong modes")
	}
	if _, err := os.Stat(filepath.Join(root, "downloads")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("downloaded wheels left behind")
	}

	// The installed runtime drives the engine's environment.
	p, err := runtime.Resolve(runtime.Config{}, h100, inst)
	if err != nil || p.Backend != runtime.BackendCUDA {
		t.Fatalf("plan %+v, %v", p, err)
	}
	e := p.Environ(nil)
	if env(t, e, runtime.EnvBackend) != "xla:"+inst.PluginPath ||
		env(t, e, runtime.EnvXLAFlags) != "--xla_gpu_cuda_data_dir="+filepath.Join(dir, "nvidia", "cuda_nvcc") ||
		env(t, e, runtime.EnvLibraryPath) != filepath.Join(dir, "nvidia", "cublas", "lib") {
		t.Fatalf("environment %v", e)
	}

	// Installing again finds it and downloads nothing.
	before := len(f.srv.Requests(""))
	again, err := in.Install(context.Background(), nil)
	if err != nil || again == nil || again.Dir != dir || len(f.srv.Requests("")) != before {
		t.Fatalf("second install: %+v, %v", again, err)
	}

	if err := runtime.Remove(root, "cuda12-test-1"); err != nil {
		t.Fatal(err)
	}
	if got, err := in.Installed(); got != nil || err != nil {
		t.Fatalf("after Remove: %+v, %v", got, err)
	}
}

func TestInstallRejectsAWheelWithTheWrongChecksum(t *testing.T) {
	f := newFixture(t)
	f.manifest.Wheels[1].SHA256 = hexSum([]byte("the published wheel"))
	root := t.TempDir()
	_, err := f.installer(t, root).Install(context.Background(), nil)
	if !errors.Is(err, download.ErrChecksum) || !strings.Contains(err.Error(), "nvidia-cublas-cu12") {
		t.Fatalf("err = %v", err)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.Name() != "downloads" {
			t.Fatalf("%s created by a failed install", e.Name())
		}
	}
}

func TestInterruptedInstallIsNotReadyAndResumes(t *testing.T) {
	f := newFixture(t)
	cublasPath := "/p/nvidia_cublas_cu12-12.9.2.10-py3-none-manylinux_2_27_x86_64.whl"
	f.srv.Fail(cublasPath, downloadtest.Fault{StallAfter: 5000})
	root := t.TempDir()
	in := f.installer(t, root)

	ctx, cancel := context.WithCancel(context.Background())
	_, err := in.Install(ctx, func(p runtime.InstallProgress) {
		if p.Download.File == "nvidia-cublas-cu12 test" && p.Download.FileDone >= 5000 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if got, err := in.Installed(); got != nil || err != nil {
		t.Fatalf("a cancelled install is ready: %+v, %v", got, err)
	}
	inst, err := in.Install(context.Background(), nil)
	if err != nil || inst == nil {
		t.Fatalf("second install: %v", err)
	}
	reqs := f.srv.Requests(cublasPath)
	if last := reqs[len(reqs)-1]; last.Range != "bytes=5000-" {
		t.Fatalf("not resumed: %+v", reqs)
	}
	// The pjrt wheel, complete before the cancel, was not downloaded twice.
	if n := len(f.srv.Requests("/p/jax_cuda12_pjrt-0.8.1-py3-none-manylinux_2_27_x86_64.whl")); n != 1 {
		t.Fatalf("plugin wheel downloaded %d times", n)
	}
}

func TestInstallRefusesHostileOrMismatchedWheels(t *testing.T) {
	f := newFixture(t)
	evil := wheel(t,
		entry{"nvidia/cublas/lib/libcublas.so.12", 0o644, []byte("ok")},
		entry{"nvidia/cublas/lib/../../../../escaped.so", 0o644, []byte("evil")},
	)
	f.manifest.Wheels[1] = f.add("/p/evil.whl", "nvidia-cublas-cu12", evil, true,
		runtime.Extract{From: "nvidia/cublas/lib/", To: "nvidia/cublas/lib/"})
	root := filepath.Join(t.TempDir(), "rt")
	_, err := f.installer(t, root).Install(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escaped.so")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an entry escaped the runtime's folder")
	}

	f2 := newFixture(t)
	f2.manifest.Wheels[2].Extract = append(f2.manifest.Wheels[2].Extract, runtime.Extract{From: "nvidia/cuda_nvcc/lib/", To: "nvidia/cuda_nvcc/lib/"})
	_, err = f2.installer(t, t.TempDir()).Install(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("err = %v", err)
	}

	in := f2.installer(t, t.TempDir())
	in.SkipPlatformCheck = false
	in.Manifest.OS = "plan9"
	if _, err := in.Install(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "plan9") {
		t.Fatalf("platform check: %v", err)
	}
}

func TestInstallNeedsAMirrorForWheelPaths(t *testing.T) {
	f := newFixture(t)
	in := f.installer(t, t.TempDir())
	in.Mirror = ""
	if _, err := in.Install(t.Context(), nil); !errors.Is(err, runtime.ErrNoMirror) {
		t.Fatalf("Install without a mirror = %v, want ErrNoMirror", err)
	}
}

func TestDefaultManifest(t *testing.T) {
	m, err := runtime.DefaultManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.CUDAMajor != 12 || m.OS != "linux" || m.Arch != "amd64" || m.Note == "" {
		t.Fatalf("manifest %+v", m)
	}
	names := map[string]bool{}
	for _, w := range m.Wheels {
		names[w.Name] = true
		if strings.Contains(w.URL, "://") || !strings.Contains(w.URL, strings.ReplaceAll(w.Name, "-", "_")+"-"+w.Version+"-") {
			t.Errorf("%s %s: URL %s does not name the pinned wheel", w.Name, w.Version, w.URL)
		}
	}
	for _, need := range []string{"jax-cuda12-pjrt", "nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12", "nvidia-cudnn-cu12", "nvidia-cuda-nvcc-cu12"} {
		if !names[need] {
			t.Errorf("manifest lacks %s", need)
		}
	}

	bad := m
	bad.Wheels = slices.Clone(m.Wheels)
	bad.Wheels[0].Extract = []runtime.Extract{{From: "x.so", To: "../x.so"}}
	if bad.Validate() == nil {
		t.Fatal("a rule writing outside the folder passed validation")
	}
	bad.Wheels[0] = m.Wheels[0]
	bad.Wheels[0].SHA256 = "abc"
	if bad.Validate() == nil {
		t.Fatal("a short sha256 passed validation")
	}
}
