//go:build unix

package local_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tidwall/gjson"

	"opentracy/backend/providers"
	"opentracy/backend/providers/local"
	"opentracy/backend/providers/local/localtest"
	"opentracy/gpu/runtime"
)

// childProvider serves dataDir with its models in an engine worker: this test binary, which
// TestMain turns into one.
func childProvider(t *testing.T, dataDir string) *local.Provider {
	t.Helper()
	p, err := local.New(local.Options{DataDir: dataDir, MaxLoaded: 2, Env: goEnv(), Isolate: true,
		WorkerCommand: []string{os.Args[0], "-test.run=^$"}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// workerPID starts the provider's engine if needed and returns the worker's process id.
func workerPID(t *testing.T, p *local.Provider) int {
	t.Helper()
	h, mode, err := p.Engine(t.Context())
	if err != nil || mode != "worker" || h.PID == 0 || h.PID == os.Getpid() || h.Backend != "go" {
		t.Fatalf("engine %+v in %q: %v", h, mode, err)
	}
	return h.PID
}

// TestChildMode serves chat completions from a model in the engine worker: the same answers
// as the engine in-process, whole and streamed.
func TestChildMode(t *testing.T) {
	f := shared.get(t)
	p := childProvider(t, f.data)
	workerPID(t, p)
	want := f.reference(t, helloMsgs, false, 6)
	got := complete(t, p, "tiny", `{"model":"local/tiny","messages":`+hello+`,"max_tokens":6,"temperature":0}`)
	if got.Get("choices.0.message.content").String() != want.Text || got.Get("choices.0.finish_reason").String() != string(want.FinishReason) ||
		got.Get("usage.prompt_tokens").Int() != int64(want.PromptTokens) || got.Get("usage.completion_tokens").Int() != int64(want.CompletionTokens) {
		t.Errorf("answer %s, want %q (%d+%d tokens)", got.Raw, want.Text, want.PromptTokens, want.CompletionTokens)
	}
	// The in-process provider says the same, byte for byte but for the ids.
	inProc := complete(t, f.p, "tiny", `{"messages":`+hello+`,"max_tokens":6,"temperature":0}`)
	if inProc.Get("choices").Raw != got.Get("choices").Raw || inProc.Get("usage").Raw != got.Get("usage").Raw {
		t.Errorf("in-process %s\nchild %s", inProc.Raw, got.Raw)
	}

	resp, err := send(t.Context(), p, "tiny", `{"messages":`+hello+`,"max_tokens":6,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	evs := events(t, body)
	var text strings.Builder
	for _, ev := range evs[1 : len(evs)-3] {
		text.WriteString(gjson.Get(ev, "choices.0.delta.content").String())
	}
	n := len(evs)
	if text.String() != want.Text || evs[n-1] != "[DONE]" || gjson.Get(evs[n-2], "usage").Raw != got.Get("usage").Raw ||
		gjson.Get(evs[n-3], "choices.0.finish_reason").String() != string(want.FinishReason) {
		t.Errorf("stream %s", body)
	}
	st := loaded(t, p, "tiny")
	if st.Requests != 2 || st.CompletionTokens != int64(2*want.CompletionTokens) || st.PromptTokens != int64(2*want.PromptTokens) {
		t.Errorf("loaded %+v", st)
	}

	// A refusal keeps its code across the process boundary.
	long := strings.Repeat("word ", localtest.MaxPositions+10)
	_, err = send(t.Context(), p, "tiny", `{"messages":[{"role":"user","content":"`+long+`"}]}`)
	wantError(t, err, 400, "context_length_exceeded")
}

// TestChildModeStopsGeneration closes or cancels a stream whose model runs in the worker: the
// worker stops generating.
func TestChildModeStopsGeneration(t *testing.T) {
	p := childProvider(t, shared.get(t).data)
	complete(t, p, "tiny", `{"messages":`+hello+`,"max_tokens":1}`) // loaded
	before := loaded(t, p, "tiny")
	resp, err := send(t.Context(), p, "tiny", `{"messages":`+hello+`,"temperature":0,"stream":true}`)
	if err != nil {
		t.Fatal(err)
	}
	readEvents(t, bufio.NewReader(resp.Body), 3)
	resp.Body.Close() // returns once the worker has stopped the generation
	st := loaded(t, p, "tiny")
	if generated := st.CompletionTokens - before.CompletionTokens; st.Busy || generated < 2 {
		t.Fatalf("after close: busy %v, %d tokens", st.Busy, generated)
	}
	// The model is free: the next request is answered.
	if got := complete(t, p, "tiny", `{"messages":`+hello+`,"max_tokens":2}`); got.Get("usage.completion_tokens").Int() != 2 {
		t.Errorf("next answer %s", got.Raw)
	}
}

// TestChildModeWorkerKilled kills the worker with SIGKILL while it streams: the stream ends
// with an error event naming the cause, and the next requests (whole and streamed) are
// answered by a new worker, which loads the model again.
func TestChildModeWorkerKilled(t *testing.T) {
	f := shared.get(t)
	p := childProvider(t, f.data)
	want := complete(t, f.p, "tiny", `{"messages":`+hello+`,"max_tokens":4,"temperature":0}`).Get("choices.0.message.content").String()
	complete(t, p, "tiny", `{"messages":`+hello+`,"max_tokens":1}`) // loaded
	pid := workerPID(t, p)

	resp, err := send(t.Context(), p, "tiny", `{"messages":`+hello+`,"temperature":0,"stream":true}`)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	readEvents(t, br, 3)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br) // ends: no hang
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	evs := events(t, rest)
	last := evs[len(evs)-1]
	if msg := gjson.Get(last, "error.message").String(); !strings.Contains(msg, "local model tiny failed: engine worker died: signal: killed (out of memory?)") {
		t.Errorf("stream ends with %s", last)
	}

	got := complete(t, p, "tiny", `{"messages":`+hello+`,"max_tokens":4,"temperature":0}`)
	if got.Get("choices.0.message.content").String() != want {
		t.Errorf("after the restart: %s, want %q", got.Raw, want)
	}
	if again := workerPID(t, p); again == pid {
		t.Errorf("same worker %d", again)
	}

	// A worker killed between requests: the next one starts a new worker too.
	if err := syscall.Kill(workerPID(t, p), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	resp, err = send(t.Context(), p, "tiny", `{"messages":`+hello+`,"max_tokens":4,"temperature":0,"stream":true}`)
	if err != nil {
		// Sent before the death was seen: the gateway's retry gets the new worker.
		wantError(t, err, 503, "engine_worker_died")
		resp, err = send(t.Context(), p, "tiny", `{"messages":`+hello+`,"max_tokens":4,"temperature":0,"stream":true}`)
		if err != nil {
			t.Fatal(err)
		}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if evs := events(t, body); evs[len(evs)-1] != "[DONE]" {
		t.Errorf("stream after the second kill: %s", body)
	}
}

// TestBackendChoice: the engine configuration picks where models run when GOMLX_BACKEND is not
// set; a GPU plan runs them in the worker, with the plan's environment.
func TestBackendChoice(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	noGPU := func(*slog.Logger) runtime.Info { return runtime.Info{Reason: "test: no driver"} }

	// The CPU, as configured: in-process.
	p, err := local.New(local.Options{DataDir: t.TempDir(), Env: noEnv, Engine: runtime.Config{Backend: "go"}, DetectGPU: noGPU})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if h, mode, err := p.Engine(t.Context()); err != nil || mode != "in-process" || h.Backend != "go" || h.PID != os.Getpid() {
		t.Errorf("engine %+v %q %v", h, mode, err)
	}

	// A GPU asked for where there is none: the check says so.
	p2, err := local.New(local.Options{DataDir: t.TempDir(), Env: noEnv, Engine: runtime.Config{Backend: "xla:cuda"}, DetectGPU: noGPU})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if err := p2.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "no NVIDIA GPU") {
		t.Errorf("xla:cuda without a GPU: %v", err)
	}

	// A GPU and an installed runtime (a fake one): the worker runs with the plan's environment,
	// and its failure to start the plugin comes back as the check's answer.
	data := t.TempDir()
	installFakeRuntime(t, data)
	p3, err := local.New(local.Options{DataDir: data, Env: noEnv, DetectGPU: fakeGPU,
		WorkerCommand: []string{os.Args[0], "-test.run=^$"}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p3.Close()
	_, mode, err := p3.Engine(t.Context())
	if mode != "worker" || err == nil || !strings.Contains(err.Error(), "start engine worker") {
		t.Errorf("GPU plan: %q %v", mode, err)
	}
	var perr *providers.Error
	if cerr := p3.Check(t.Context()); !errors.As(cerr, &perr) || perr.Status != 503 || !strings.Contains(string(perr.Body), "backend_unavailable") {
		t.Errorf("check: %v", cerr)
	}
}

func fakeGPU(*slog.Logger) runtime.Info {
	return runtime.Info{Present: true, Driver: "550.54", CUDA: 12040, Devices: []runtime.GPU{{Name: "Test GPU", MemoryTotal: 80 << 30}}}
}

// installFakeRuntime puts a GPU runtime in dataDir whose plugin is not one: a worker started on
// it fails to start its backend.
func installFakeRuntime(t *testing.T, dataDir string) {
	t.Helper()
	m, err := runtime.DefaultManifest()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, local.RuntimeDirName, m.Version)
	for name, content := range map[string]string{
		"nvidia/xla_cuda_plugin.so":  "not a plugin",
		"nvidia/cublas/lib/libx.so":  "",
		runtime.ReadyName:            `{"version":"` + m.Version + `","cuda_major":12,"plugin":"nvidia/xla_cuda_plugin.so","nvidia_dir":"nvidia"}`,
		"nvidia/cuda_nvcc/bin/ptxas": "",
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResetEngineFollowsTheGPURuntime: a GPU without its runtime runs models on the CPU, in
// process; once the runtime is installed, ResetEngine unloads them and the next use runs in the
// worker on the GPU plan, without a restart.
func TestResetEngineFollowsTheGPURuntime(t *testing.T) {
	data := t.TempDir()
	localtest.WriteModel(t, data, "tiny", 0)
	const model = "tiny"
	p, err := local.New(local.Options{DataDir: data, Env: func(string) (string, bool) { return "", false }, DetectGPU: fakeGPU,
		WorkerCommand: []string{os.Args[0], "-test.run=^$"}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if h, mode, err := p.Engine(t.Context()); err != nil || mode != "in-process" || h.Backend != "go" {
		t.Fatalf("GPU without runtime: engine %+v in %q: %v", h, mode, err)
	}
	resp, err := p.Chat(t.Context(), &providers.Request{Model: model, Body: []byte(`{"model":"` + model + `","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if l := p.Loaded(); len(l) != 1 {
		t.Fatalf("loaded %+v; want the model", l)
	}

	installFakeRuntime(t, data)
	if _, mode, _ := p.Engine(t.Context()); mode != "in-process" {
		t.Fatalf("before ResetEngine: %q; want the choice kept", mode)
	}
	p.ResetEngine()
	if l := p.Loaded(); len(l) != 0 {
		t.Errorf("after ResetEngine still loaded: %+v", l)
	}
	_, mode, err := p.Engine(t.Context())
	if mode != "worker" || err == nil || !strings.Contains(err.Error(), "start engine worker") {
		t.Errorf("after ResetEngine: %q %v; want the worker on the (fake) GPU runtime", mode, err)
	}
}
