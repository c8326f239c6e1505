//go:build unix

package worker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/compute"
	"github.com/google/go-cmp/cmp"

	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/generate"
	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/tokenizer"
	"opentracy/gpu/train/tinytok"
	"opentracy/gpu/worker"
)

// envChild makes the test binary a worker: "serve" runs worker.Main, "fail" dies at once the
// way a broken GPU runtime would, "noisy" is a worker whose native libraries print on stdout.
const envChild = "OPENTRACY_WORKER_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "serve":
		os.Exit(worker.Main(context.Background(), []string{"--log-level", "debug"}, os.Stderr))
	case "noisy":
		go func() {
			for range 20 {
				fmt.Println("libfoo: hello from native code")
				time.Sleep(5 * time.Millisecond)
			}
		}()
		os.Exit(worker.Main(context.Background(), nil, os.Stderr))
	case "fail":
		fmt.Fprintln(os.Stderr, "some setup line")
		fmt.Fprintln(os.Stderr, "fatal error: the GPU caught fire")
		os.Exit(3)
	}
	// Tests and the workers they start run on the pure-Go backend.
	os.Setenv(compute.ConfigEnvVar, "go")
	code := m.Run()
	fix.close()
	os.Exit(code)
}

// fix is the tiny model (byte-level tokenizer, Qwen3 template), written once, and the
// engine's own copy of it for reference answers.
var fix fixture

type fixture struct {
	mu    sync.Mutex
	root  string
	dir   string
	model *lm.Model
	tok   *tokenizer.Tokenizer
	b     compute.Backend
}

func (f *fixture) get(t *testing.T) *fixture {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.model != nil {
		return f
	}
	var err error
	if f.root, err = os.MkdirTemp("", "worker-test-"); err != nil {
		t.Fatal(err)
	}
	tokDir := filepath.Join(f.root, "tok")
	if err := tinytok.Write(tokDir, lm.Qwen3); err != nil {
		t.Fatal(err)
	}
	f.dir = filepath.Join(f.root, "tiny")
	if err := lm.InitTinyWith(f.dir, lm.TinyOptions{Family: lm.Qwen3, TokenizerDir: tokDir, Hidden: 32, Layers: 1,
		Heads: 2, KVHeads: 1, HeadDim: 16, Intermediate: 64, MaxPositions: 2048}); err != nil {
		t.Fatal(err)
	}
	if f.b, err = compute.NewWithConfig("go"); err != nil {
		t.Fatal(err)
	}
	if f.model, err = lm.Load(t.Context(), f.b, f.dir, lm.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if f.tok, err = tokenizer.Load(f.dir); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) close() {
	if f.model != nil {
		f.model.Close()
		f.b.Finalize()
	}
	if f.root != "" {
		os.RemoveAll(f.root)
	}
}

var msgs = []chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Say hello"}}

// reference is the engine's greedy answer to msgs, straight from package generate.
func (f *fixture) reference(t *testing.T, maxTokens int) generate.Result {
	t.Helper()
	off := false
	text, err := chat.Qwen3().Render(msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: &off})
	if err != nil {
		t.Fatal(err)
	}
	res, err := generate.Generate(t.Context(), generate.FromModel(f.model), f.tok, [][]int{f.tok.Encode(text, false)},
		generate.Params{MaxTokens: maxTokens, EOS: []int{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func chatRequest(model string, maxTokens int) worker.GenerateRequest {
	off := false
	return worker.GenerateRequest{Model: model, Messages: msgs, EnableThinking: &off,
		Sampling: worker.Sampling{MaxTokens: maxTokens, IgnoreEOS: true}}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func childClient(t *testing.T, mode string) *worker.Client {
	t.Helper()
	c := worker.NewClient(worker.ClientOptions{
		Command:    []string{os.Args[0], "-test.run=^$"},
		Env:        append(os.Environ(), envChild+"="+mode),
		Logger:     testLogger(t),
		CancelWait: 20 * time.Second,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func pipeClient(t *testing.T) *worker.Client {
	t.Helper()
	c := worker.NewPipeClient(worker.NewEngine(worker.EngineOptions{Backend: "go", Logger: testLogger(t)}), testLogger(t))
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProtocolRoundTrip speaks the protocol by hand to a Server: the hello, a health check, a
// load, a streamed generation (deltas then done), errors with codes, an unload.
func TestProtocolRoundTrip(t *testing.T) {
	f := fix.get(t)
	want := f.reference(t, 5)

	// Every message survives JSON.
	temp := 0.7
	for _, m := range []worker.Message{
		{ID: 1, Type: worker.TypeGenerate, Generate: &worker.GenerateRequest{Model: "m", Messages: msgs, PromptIDs: []int{1, 2},
			Tools:    []json.RawMessage{json.RawMessage(`{"type":"function"}`)},
			Sampling: worker.Sampling{MaxTokens: 3, Temperature: 0.5, TopP: 0.9, TopK: 4, Seed: 1<<63 + 5, Stop: []string{"x"}}, Stream: true}},
		{ID: 2, Type: worker.TypeLoaded, Loaded: &worker.ModelInfo{Model: "m", Family: "qwen3", ContextLength: 9, EOS: []int{3},
			Generation: worker.Defaults{Temperature: &temp}}},
		{ID: 3, Type: worker.TypeDone, Done: &worker.Done{Text: "hi", Tokens: []int{4}, FinishReason: "stop", PromptTokens: 2, CompletionTokens: 2}},
		{ID: 4, Type: worker.TypeError, Error: &worker.Error{Code: worker.CodeContextLength, Message: "too long"}},
		{ID: 5, Type: worker.TypeTrain, Train: &worker.TrainRequest{BaseDir: "b", AdapterDir: "a", Data: "d.jsonl", OutDir: "o",
			CheckpointDir: "c", Resume: true, Rank: 8, Alpha: 16, Dropout: 0.1, TargetModules: []string{"q_proj"}, LearningRate: 1e-4,
			MinLR: 1e-6, Steps: 10, Epochs: 2, BatchSize: 4, GradAccum: 2, MaxSeqLen: 512, WarmupSteps: 1, WeightDecay: 0.01,
			MaxGradNorm: -1, Seed: 1<<63 + 1, CheckpointEvery: 5}},
		{ID: 5, Type: worker.TypeTrainProgress, TrainProgress: &worker.TrainProgress{Step: 2, Steps: 10, Loss: 1.25, LearningRate: 1e-4,
			GradNorm: 0.5, TokensPerSec: 300, Epoch: 0.2, ETASeconds: 12.5, ElapsedSeconds: 3}},
		{ID: 5, Type: worker.TypeTrainDone, TrainDone: &worker.TrainResult{Steps: 10, Loss: 0.5, Tokens: 99, AdapterDir: "o",
			Checkpoint: "c/step-000010", ResumedFrom: "c/step-000004", ResumedStep: 4}},
	} {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back worker.Message
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, back, cmp.AllowUnexported(worker.Error{})); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", m.Type, diff)
		}
	}

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	engine := worker.NewEngine(worker.EngineOptions{Logger: testLogger(t)})
	defer engine.Close()
	served := make(chan error, 1)
	go func() { served <- worker.NewServer(engine, testLogger(t)).Serve(t.Context(), inR, outW); outW.Close() }()
	enc := json.NewEncoder(inW)
	dec := json.NewDecoder(bufio.NewReader(outR))
	send := func(m worker.Message) {
		t.Helper()
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() worker.Message {
		t.Helper()
		var m worker.Message
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	hello := recv()
	if hello.ID != 0 || hello.Type != worker.TypeHello || hello.Hello.Protocol != worker.ProtocolVersion || hello.Hello.Backend != "go" ||
		hello.Hello.Device == "" || hello.Hello.PID != os.Getpid() || hello.Hello.Error != "" {
		t.Fatalf("hello %+v %+v", hello, hello.Hello)
	}
	send(worker.Message{ID: 7, Type: worker.TypeHealth})
	if h := recv(); h.ID != 7 || h.Type != worker.TypeHello || h.Hello.Backend != "go" {
		t.Fatalf("health answer %+v", h)
	}
	send(worker.Message{ID: 8, Type: worker.TypeLoad, Load: &worker.LoadRequest{Model: "m1", Dir: f.dir}})
	loaded := recv()
	if loaded.ID != 8 || loaded.Type != worker.TypeLoaded || loaded.Loaded.Family != "qwen3" || loaded.Loaded.Template != chat.Qwen3().Name() ||
		loaded.Loaded.ContextLength != 2048 || loaded.Loaded.Params == 0 || loaded.Loaded.VocabSize != f.model.Config.VocabSize {
		t.Fatalf("loaded %+v %+v", loaded, loaded.Loaded)
	}
	req := chatRequest("m1", 5)
	req.Stream = true
	send(worker.Message{ID: 9, Type: worker.TypeGenerate, Generate: &req})
	var text strings.Builder
	var tokens []int
	for i := 0; ; i++ {
		m := recv()
		if m.ID != 9 {
			t.Fatalf("answer to %d", m.ID)
		}
		if m.Type == worker.TypeDone {
			d := m.Done
			if d.Text != want.Text || !slices.Equal(d.Tokens, want.Tokens) || d.PromptTokens != want.PromptTokens ||
				d.CompletionTokens != 5 || d.FinishReason != "length" {
				t.Errorf("done %+v, want %+v", d, want)
			}
			break
		}
		if m.Type != worker.TypeDelta {
			t.Fatalf("message %+v", m)
		}
		if (i == 0) != (m.Delta.PromptTokens == want.PromptTokens) {
			t.Errorf("delta %d: prompt tokens %d", i, m.Delta.PromptTokens)
		}
		text.WriteString(m.Delta.Text)
		tokens = append(tokens, m.Delta.Token)
	}
	if text.String() != want.Text || !slices.Equal(tokens, want.Tokens) {
		t.Errorf("streamed %q %v, want %q %v", text.String(), tokens, want.Text, want.Tokens)
	}

	// Errors carry codes.
	long := make([]int, 2100)
	for i, tc := range []struct {
		msg  worker.Message
		code string
	}{
		{worker.Message{Type: worker.TypeGenerate, Generate: &worker.GenerateRequest{Model: "nope", PromptIDs: []int{1}}}, worker.CodeNotLoaded},
		{worker.Message{Type: worker.TypeGenerate, Generate: &worker.GenerateRequest{Model: "m1", PromptIDs: long}}, worker.CodeContextLength},
		{worker.Message{Type: worker.TypeGenerate, Generate: &worker.GenerateRequest{Model: "m1", PromptIDs: []int{1 << 20}}}, worker.CodeInvalidRequest},
		{worker.Message{Type: worker.TypeGenerate, Generate: &worker.GenerateRequest{Model: "m1", Messages: []chat.Message{{Role: "wizard", Content: "x"}}}}, worker.CodeInvalidRequest},
		{worker.Message{Type: worker.TypeLoad, Load: &worker.LoadRequest{Model: "m2", Dir: t.TempDir()}}, worker.CodeLoadFailed},
		{worker.Message{Type: "dance"}, worker.CodeInvalidRequest},
	} {
		tc.msg.ID = uint64(100 + i)
		send(tc.msg)
		m := recv()
		if m.ID != tc.msg.ID || m.Type != worker.TypeError || m.Error.Code != tc.code || m.Error.Message == "" {
			t.Errorf("%s: answer %+v %+v, want code %s", tc.msg.Type, m, m.Error, tc.code)
		}
	}

	send(worker.Message{ID: 200, Type: worker.TypeUnload, Unload: &worker.UnloadRequest{Model: "m1"}})
	if m := recv(); m.ID != 200 || m.Type != worker.TypeOK {
		t.Errorf("unload answer %+v", m)
	}
	send(worker.Message{ID: 201, Type: worker.TypeGenerate, Generate: &worker.GenerateRequest{Model: "m1", PromptIDs: []int{1}}})
	if m := recv(); m.Type != worker.TypeError || m.Error.Code != worker.CodeNotLoaded {
		t.Errorf("after unload: %+v", m)
	}
	inW.Close() // the parent went away: the server ends
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// generateAll runs req on r, streaming, and returns the streamed text and tokens with the result.
func generateAll(t *testing.T, r worker.Runner, req worker.GenerateRequest) (string, []int, worker.Done) {
	t.Helper()
	var text strings.Builder
	var tokens []int
	done, err := r.Generate(t.Context(), req, func(d worker.Delta) error {
		text.WriteString(d.Text)
		if d.Token >= 0 {
			tokens = append(tokens, d.Token)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return text.String(), tokens, done
}

// TestRunnersMatchTheEngine generates with the in-process engine, the pipe client and a child
// process: each gives the engine's own greedy answer, streamed and whole.
func TestRunnersMatchTheEngine(t *testing.T) {
	f := fix.get(t)
	want := f.reference(t, 12)
	for name, r := range map[string]worker.Runner{
		"engine": worker.NewEngine(worker.EngineOptions{Logger: testLogger(t)}),
		"pipe":   pipeClient(t),
		"child":  childClient(t, "serve"),
	} {
		t.Run(name, func(t *testing.T) {
			defer r.Close()
			h, err := r.Hello(t.Context())
			if err != nil || h.Backend != "go" || h.Protocol != worker.ProtocolVersion || (name == "child") == (h.PID == os.Getpid()) {
				t.Fatalf("hello %+v %v", h, err)
			}
			info, err := r.Load(t.Context(), worker.LoadRequest{Model: "a", Name: "tiny", Dir: f.dir})
			if err != nil || info.Model != "a" || info.Template != chat.Qwen3().Name() || !info.TemplateExact {
				t.Fatalf("load %+v %v", info, err)
			}
			done, err := r.Generate(t.Context(), chatRequest("a", 12), nil)
			if err != nil {
				t.Fatal(err)
			}
			if done.Text != want.Text || !slices.Equal(done.Tokens, want.Tokens) || done.PromptTokens != want.PromptTokens ||
				done.CompletionTokens != want.CompletionTokens || done.FinishReason != string(want.FinishReason) {
				t.Errorf("whole %+v, want %+v", done, want)
			}
			text, tokens, done2 := generateAll(t, r, chatRequest("a", 12))
			if text != want.Text || !slices.Equal(tokens, want.Tokens) || !cmp.Equal(done, done2) {
				t.Errorf("streamed %q %v %+v, want %q %v", text, tokens, done2, want.Text, want.Tokens)
			}
			// Prompt ids, sampling with a seed: reproducible.
			ids := []int{'a', 'b', 'c'}
			sampled := worker.GenerateRequest{Model: "a", PromptIDs: ids, Sampling: worker.Sampling{MaxTokens: 8, Temperature: 1, TopK: 20, Seed: 42, IgnoreEOS: true}}
			ref, err := generate.Generate(t.Context(), generate.FromModel(f.model), f.tok, [][]int{ids}, sampled.Sampling.Params(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := r.Generate(t.Context(), sampled, nil); err != nil || !slices.Equal(got.Tokens, ref[0].Tokens) {
				t.Errorf("sampled %v %v, want %v", got.Tokens, err, ref[0].Tokens)
			}
			if err := r.Unload(t.Context(), "a"); err != nil {
				t.Fatal(err)
			}
			var we *worker.Error
			if _, err := r.Generate(t.Context(), chatRequest("a", 1), nil); !errors.As(err, &we) || we.Code != worker.CodeNotLoaded {
				t.Errorf("after unload: %v", err)
			}
		})
	}
}

// TestCancel stops a long generation by its context, on each runner: it ends at once with the
// context's error and the model serves the next request.
func TestCancel(t *testing.T) {
	f := fix.get(t)
	for name, r := range map[string]worker.Runner{
		"engine": worker.NewEngine(worker.EngineOptions{Logger: testLogger(t)}),
		"pipe":   pipeClient(t),
		"child":  childClient(t, "serve"),
	} {
		t.Run(name, func(t *testing.T) {
			defer r.Close()
			if _, err := r.Load(t.Context(), worker.LoadRequest{Model: "a", Dir: f.dir}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			n := 0
			start := time.Now()
			_, err := r.Generate(ctx, chatRequest("a", 0), func(worker.Delta) error {
				if n++; n == 3 {
					cancel()
				}
				return nil
			})
			if !errors.Is(err, context.Canceled) || n > 400 {
				t.Fatalf("after cancel: %v, %d deltas in %s", err, n, time.Since(start))
			}
			// A receiver that fails stops the generation too, with its error.
			boom := errors.New("client went away")
			m := 0
			_, err = r.Generate(t.Context(), chatRequest("a", 0), func(worker.Delta) error {
				if m++; m == 2 {
					return boom
				}
				return nil
			})
			if !errors.Is(err, boom) || m > 400 {
				t.Fatalf("receiver error: %v after %d deltas", err, m)
			}
			if _, _, done := generateAll(t, r, chatRequest("a", 3)); done.CompletionTokens != 3 {
				t.Errorf("next request: %+v", done)
			}
		})
	}
}

// killedDuring runs call, which calls kill (SIGKILL to pid) when it chooses, waits up to within
// for it to return, and requires its error to report that death.
func killedDuring(t *testing.T, pid int, within time.Duration, call func(kill func()) error) (*worker.DeadError, error) {
	t.Helper()
	kill := func() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Error(err)
		}
	}
	result := make(chan error, 1)
	go func() { result <- call(kill) }()
	var err error
	select {
	case err = <-result:
	case <-time.After(within):
		t.Fatal("the call hangs after its worker was killed")
	}
	var dead *worker.DeadError
	if !errors.As(err, &dead) || dead.Cause != "signal: killed" || !strings.Contains(err.Error(), "engine worker died: signal: killed") {
		t.Fatalf("error %v", err)
	}
	return dead, err
}

// TestKilledWorker kills the child with SIGKILL mid-generation: the request in flight fails with
// the cause, and the next one runs in a new worker, which loads the model again by itself.
func TestKilledWorker(t *testing.T) {
	f := fix.get(t)
	want := f.reference(t, 4)
	c := childClient(t, "serve")
	if _, err := c.Load(t.Context(), worker.LoadRequest{Model: "a", Name: "tiny", Dir: f.dir}); err != nil {
		t.Fatal(err)
	}
	pid := c.PID()
	if pid == 0 || pid == os.Getpid() {
		t.Fatalf("worker pid %d", pid)
	}
	n := 0
	dead, err := killedDuring(t, pid, 60*time.Second, func(kill func()) error {
		_, err := c.Generate(t.Context(), chatRequest("a", 0), func(worker.Delta) error {
			if n++; n == 2 {
				kill()
			}
			return nil
		})
		return err
	})
	if !errors.Is(err, worker.ErrDied) || !strings.Contains(err.Error(), "engine worker died: signal: killed (out of memory?)") {
		t.Fatalf("error %v", err)
	}
	if len(dead.Output) == 0 || !strings.Contains(strings.Join(dead.Output, "\n"), "model loaded") {
		t.Errorf("no worker output in the report: %q", dead.Output)
	}
	if c.PID() != 0 {
		t.Errorf("a dead worker is still current: %d", c.PID())
	}

	done, err := c.Generate(t.Context(), chatRequest("a", 4), nil)
	if err != nil || done.Text != want.Text {
		t.Fatalf("after the restart: %+v %v, want %q", done, err, want.Text)
	}
	if c.Starts() != 2 || c.PID() == pid || c.PID() == 0 {
		t.Errorf("starts %d, pid %d (was %d)", c.Starts(), c.PID(), pid)
	}
}

// TestWorkersThatCannotStart: a worker that dies before its hello, and one whose backend does
// not start, give errors that say why, quickly.
func TestWorkersThatCannotStart(t *testing.T) {
	c := childClient(t, "fail")
	start := time.Now()
	_, err := c.Hello(t.Context())
	if err == nil || !strings.Contains(err.Error(), "start engine worker: engine worker died: exit status 3") ||
		!strings.Contains(err.Error(), "fatal error: the GPU caught fire") {
		t.Errorf("dying worker: %v", err)
	}
	// The second try waits out the pause after a failed start, and fails the same way.
	if _, err2 := c.Hello(t.Context()); err2 == nil || time.Since(start) > 20*time.Second {
		t.Errorf("second start: %v after %s", err2, time.Since(start))
	}

	bad := worker.NewClient(worker.ClientOptions{
		Command: []string{os.Args[0], "-test.run=^$"},
		Env:     append(os.Environ(), envChild+"=serve", compute.ConfigEnvVar+"=nosuch:thing"),
		Logger:  testLogger(t),
	})
	defer bad.Close()
	var we *worker.Error
	if _, err := bad.Hello(t.Context()); !errors.As(err, &we) || we.Code != worker.CodeBackend || !strings.Contains(err.Error(), `backend "nosuch"`) {
		t.Errorf("unknown backend: %v", err)
	}
}

// TestStdoutNoise: what native code prints on the worker's stdout does not reach the protocol.
func TestStdoutNoise(t *testing.T) {
	f := fix.get(t)
	c := childClient(t, "noisy")
	if _, err := c.Load(t.Context(), worker.LoadRequest{Model: "a", Dir: f.dir}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, done := generateAll(t, c, chatRequest("a", 5)); done.CompletionTokens != 5 {
			t.Fatalf("%+v", done)
		}
	}
}

// TestClientClose: closing the client ends the worker and fails later requests.
func TestClientClose(t *testing.T) {
	c := childClient(t, "serve")
	if _, err := c.Hello(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := c.PID()
	c.Close()
	if _, err := c.Hello(t.Context()); !errors.Is(err, worker.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("worker %d still runs after Close", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
