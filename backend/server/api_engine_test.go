package server

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opentracy/backend/api"
	"opentracy/backend/providers/local"
	"opentracy/backend/traces"
	"opentracy/gpu/download/downloadtest"
	"opentracy/gpu/runtime"
)

// h100 is what NVML reports on a GPU machine.
var h100 = runtime.Info{Present: true, Driver: "550.54.15", CUDA: 12040, Devices: []runtime.GPU{
	{Index: 0, Name: "NVIDIA H100 80GB HBM3", MemoryTotal: 80 << 30, MemoryFree: 79 << 30, ComputeMajor: 9, ComputeMinor: 0},
}}

var noGPU = runtime.Info{Reason: "NVIDIA driver not available: ERROR_LIBRARY_NOT_FOUND"}

// setGPU makes the server see info instead of asking NVML.
func (ts *testServer) setGPU(info runtime.Info) {
	e := ts.engine
	e.gpuMu.Lock()
	defer e.gpuMu.Unlock()
	e.detect = func() runtime.Info { return info }
	e.gpuAt = time.Time{}
}

func (ts *testServer) engineStatus(t *testing.T) api.Engine {
	t.Helper()
	resp, body := ts.send(t, "GET", "/api/engine", "")
	if resp.StatusCode != 200 {
		t.Fatalf("engine: %d %s", resp.StatusCode, body)
	}
	var out api.Engine
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// zipOf builds a wheel holding files (name → content; names under bin/ or ending .so are programs).
func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Store}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeMirror serves a two-wheel GPU runtime (the plugin and one NVIDIA library) as a package
// mirror does, and returns it with the manifest describing it.
func fakeMirror(t *testing.T) (*downloadtest.Server, runtime.Manifest, string) {
	t.Helper()
	srv := downloadtest.New(t)
	plugin := zipOf(t, map[string][]byte{"jax_plugins/xla_cuda12/xla_cuda_plugin.so": bytes.Repeat([]byte("P"), 600_000)})
	cublas := zipOf(t, map[string][]byte{
		"nvidia/cublas/lib/libcublas.so.12":   bytes.Repeat([]byte("B"), 900_000),
		"nvidia/cublas/include/cublas.h":      []byte("/* header */"),
		"nvidia_cublas_cu12.dist-info/RECORD": []byte(""),
	})
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	pluginPath := "/packages/aa/jax_cuda12_pjrt-0.8.1-py3-none-manylinux_2_27_x86_64.whl"
	cublasPath := "/packages/bb/nvidia_cublas_cu12-12.9.2.10-py3-none-manylinux_2_27_x86_64.whl"
	srv.Put(pluginPath, plugin)
	srv.Put(cublasPath, cublas)
	m := runtime.Manifest{
		Version: "cuda12-test-1", CUDAMajor: 12, OS: "linux", Arch: "amd64",
		Plugin: "nvidia/xla_cuda_plugin.so", NvidiaDir: "nvidia",
		Wheels: []runtime.Wheel{
			{Name: "jax-cuda12-pjrt", Version: "0.8.1", URL: strings.TrimPrefix(pluginPath, "/"), SHA256: sum(plugin),
				Extract: []runtime.Extract{{From: "jax_plugins/xla_cuda12/xla_cuda_plugin.so", To: "nvidia/xla_cuda_plugin.so"}}},
			{Name: "nvidia-cublas-cu12", Version: "12.9.2.10", URL: strings.TrimPrefix(cublasPath, "/"), SHA256: sum(cublas), Size: int64(len(cublas)),
				Extract: []runtime.Extract{{From: "nvidia/cublas/lib/", To: "nvidia/cublas/lib/"}}},
		},
	}
	return srv, m, cublasPath
}

func TestEngineWithoutGPU(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Sink = traces.NewMemorySink(1) })

	// This machine's own NVML: where there is none, the engine says so and runs on the CPU.
	got := ts.engineStatus(t)
	if !got.GPU.Present {
		if got.GPU.Reason == "" || got.Plan.Status != api.PlanNoGPU || got.Plan.Backend != runtime.BackendGo ||
			got.Plan.Message != runtime.MsgNoGPU || len(got.GPU.Devices) != 0 || !strings.Contains(got.InstallBlocked, "No NVIDIA GPU") {
			t.Errorf("real detection without a GPU: %+v", got)
		}
	}

	ts.setGPU(noGPU)
	got = ts.engineStatus(t)
	want := api.Engine{
		GPU:            api.GPU{Reason: noGPU.Reason, Devices: []api.GPUDevice{}},
		Plan:           api.EnginePlan{Backend: runtime.BackendGo, Status: api.PlanNoGPU, Message: runtime.MsgNoGPU, Warnings: []string{}},
		ConfigBackend:  "auto",
		RuntimeVersion: ts.engine.installer.Manifest.Version,
	}
	want.RuntimeDownloadBytes = got.RuntimeDownloadBytes
	want.InstallBlocked = got.InstallBlocked
	if gotJSON, wantJSON := mustJSON(got), mustJSON(want); !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("engine\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if got.RuntimeDownloadBytes < 1<<30 || !strings.Contains(got.InstallBlocked, "No NVIDIA GPU") {
		t.Errorf("download size %d, blocked %q", got.RuntimeDownloadBytes, got.InstallBlocked)
	}
	resp, body := ts.send(t, "POST", "/api/engine/runtime/install", "")
	wantErrorBody(t, resp.StatusCode, body, 409, "no_gpu")
	resp, body = ts.send(t, "DELETE", "/api/engine/runtime", "")
	wantErrorBody(t, resp.StatusCode, body, 404, "runtime_not_installed")

	// A GPU, but nowhere to download the runtime from: the error names the setting.
	ts.setGPU(h100)
	got = ts.engineStatus(t)
	if got.Plan.Status != api.PlanNeedsRuntime || got.Plan.Message != runtime.MsgNeedsRuntime || got.WheelMirror ||
		len(got.GPU.Devices) != 1 || got.GPU.Devices[0].Name != "NVIDIA H100 80GB HBM3" || got.GPU.Devices[0].MemoryTotal != 80<<30 ||
		got.GPU.Devices[0].ComputeCapability != "9.0" || got.GPU.CUDA != "12.4" || got.GPU.Driver != "550.54.15" ||
		!strings.Contains(got.InstallBlocked, "engine.wheel_mirror") {
		t.Errorf("GPU without a mirror: %+v", got)
	}
	resp, body = ts.send(t, "POST", "/api/engine/runtime/install", "")
	wantErrorBody(t, resp.StatusCode, body, 409, "no_wheel_mirror")
	if !strings.Contains(body, "engine.wheel_mirror") {
		t.Errorf("the error does not name the setting: %s", body)
	}
}

func TestEngineBackendErrorsAreShown(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.Sink = traces.NewMemorySink(1)
		o.Config.Engine.Backend = runtime.BackendCUDA
	})
	ts.setGPU(noGPU)
	got := ts.engineStatus(t)
	if got.ConfigBackend != runtime.BackendCUDA || got.Plan.Status != api.PlanError || got.Plan.Backend != "" ||
		!strings.Contains(got.Plan.Message, "no NVIDIA GPU") {
		t.Errorf("engine %+v", got)
	}
}

func TestRuntimeInstallJob(t *testing.T) {
	mirror, manifest, cublasPath := fakeMirror(t)
	mirror.Fail(cublasPath, downloadtest.Fault{StallAfter: 300_000})
	dataDir := t.TempDir()
	ts := startServer(t, func(o *Options) {
		o.Sink = traces.NewMemorySink(1)
		o.Config.DataDir = dataDir
		o.Config.Engine.WheelMirror = mirror.URL
	})
	ts.engine.installer.Manifest = manifest
	ts.setGPU(h100)
	evs := ts.watchJobs(t)

	if got := ts.engineStatus(t); !got.WheelMirror || got.InstallBlocked != "" || got.Runtime != nil || got.Install != nil {
		t.Fatalf("before: %+v", got)
	}
	resp, body := ts.send(t, "POST", "/api/engine/runtime/install", "")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("install: %d %s", resp.StatusCode, body)
	}
	first := jobOf(t, body)
	if first.Kind != api.JobRuntimeInstall || first.Version != "cuda12-test-1" || first.State != api.JobRunning {
		t.Fatalf("job %+v", first)
	}
	waitProgress(t, ts, first.ID, 600_000+300_000)
	resp, body = ts.send(t, "POST", "/api/engine/runtime/install", "")
	wantErrorBody(t, resp.StatusCode, body, 409, "job_running")
	resp, body = ts.send(t, "DELETE", "/api/engine/runtime", "")
	wantErrorBody(t, resp.StatusCode, body, 409, "job_running")
	if got := ts.engineStatus(t); got.Install == nil || got.Install.ID != first.ID || got.Install.State != api.JobRunning ||
		got.Install.Progress.File != "nvidia-cublas-cu12 12.9.2.10" {
		t.Errorf("while installing: %+v", got.Install)
	}

	resp, body = ts.send(t, "POST", "/api/jobs/"+first.ID+"/cancel", "")
	if resp.StatusCode != 200 || jobOf(t, body).State != api.JobCanceled {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	if got := ts.engineStatus(t); got.Runtime != nil || got.Install == nil || got.Install.State != api.JobCanceled {
		t.Errorf("after cancel: %+v", got)
	}

	// Again: the wheels resume, are checked and extracted, and the engine plans for the GPU.
	_, body = ts.send(t, "POST", "/api/engine/runtime/install", "")
	second := jobOf(t, body)
	if done := waitJob(t, ts, second.ID); done.State != api.JobDone || done.Phase != runtime.PhaseDone {
		t.Fatalf("install: %+v", done)
	}
	reqs := mirror.Requests(cublasPath)
	if last := reqs[len(reqs)-1]; last.Range != "bytes=300000-" {
		t.Errorf("the wheel was not resumed: %+v", reqs)
	}
	phases := map[string]bool{}
	for _, e := range evs.waitFinal(t, second.ID) {
		phases[e.Phase] = true
	}
	if !phases[runtime.PhaseDownload] || !phases[runtime.PhaseExtract] || !phases[runtime.PhaseDone] {
		t.Errorf("phases seen in events: %v", phases)
	}

	got := ts.engineStatus(t)
	dir := filepath.Join(dataDir, local.RuntimeDirName, "cuda12-test-1")
	if got.Runtime == nil || got.Runtime.Version != "cuda12-test-1" || got.Runtime.Path != dir || got.Runtime.CUDAMajor != 12 ||
		len(got.Runtime.Wheels) != 2 || got.Install != nil {
		t.Fatalf("installed: %+v", got)
	}
	if got.Plan.Status != api.PlanGPU || got.Plan.Backend != runtime.BackendCUDA || !strings.Contains(got.Plan.Message, "H100") ||
		!strings.Contains(got.InstallBlocked, "remove it first") {
		t.Errorf("plan with the runtime: %+v", got)
	}
	resp, body = ts.send(t, "POST", "/api/engine/runtime/install", "")
	wantErrorBody(t, resp.StatusCode, body, 409, "runtime_installed")

	resp, body = ts.send(t, "DELETE", "/api/engine/runtime", "")
	if resp.StatusCode != 200 {
		t.Fatalf("remove: %d %s", resp.StatusCode, body)
	}
	var removed api.Engine
	if err := json.Unmarshal([]byte(body), &removed); err != nil || removed.Runtime != nil || removed.Plan.Status != api.PlanNeedsRuntime {
		t.Errorf("after removal: %s", body)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("runtime folder left: %v", err)
	}
}
