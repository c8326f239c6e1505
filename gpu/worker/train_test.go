//go:build unix

package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"opentracy/gpu/engine/lora"
	"opentracy/gpu/train"
	"opentracy/gpu/worker"
)

const trainSteps = 6

// trainData writes a tiny chat fine-tuning file: answers that repeat the question.
func trainData(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "train.jsonl")
	var b strings.Builder
	for i, w := range []string{"ab", "cd", "ef", "gh", "ij", "kl", "mn", "op"} {
		line, err := json.Marshal(map[string]any{"messages": []map[string]string{
			{"role": "user", "content": fmt.Sprintf("echo %s %d", w, i)},
			{"role": "assistant", "content": w},
		}})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func trainRequest(t *testing.T, f *fixture, data string) worker.TrainRequest {
	out := filepath.Join(t.TempDir(), "adapter")
	return worker.TrainRequest{BaseDir: f.dir, Data: data, OutDir: out, Rank: 4, Dropout: 0.1,
		LearningRate: 1e-2, Steps: trainSteps, BatchSize: 2, WarmupSteps: 1, MaxSeqLen: 128, Seed: 3}
}

// trainAll trains on r and returns the losses of the steps.
func trainAll(t *testing.T, ctx context.Context, r worker.Runner, req worker.TrainRequest, each func(worker.TrainProgress)) ([]float64, worker.TrainResult, error) {
	t.Helper()
	var losses []float64
	res, err := r.Train(ctx, req, func(p worker.TrainProgress) {
		if p.Steps != trainSteps || p.Step < 1 || p.Step > trainSteps || p.ETASeconds < 0 || p.TokensPerSec <= 0 {
			t.Errorf("progress %+v", p)
		}
		losses = append(losses, p.Loss)
		if each != nil {
			each(p)
		}
	})
	return losses, res, err
}

// refLosses are the in-process engine's losses for trainRequest, computed once.
var refLosses struct {
	once   sync.Once
	losses []float64
	err    error
}

func referenceLosses(t *testing.T, f *fixture) []float64 {
	t.Helper()
	refLosses.once.Do(func() {
		e := worker.NewEngine(worker.EngineOptions{Logger: testLogger(t)})
		defer e.Close()
		var res worker.TrainResult
		refLosses.losses, res, refLosses.err = trainAll(t, context.Background(), e, trainRequest(t, f, trainData(t)), nil)
		if refLosses.err == nil && (res.Steps != trainSteps || res.Loss != refLosses.losses[len(refLosses.losses)-1]) {
			refLosses.err = fmt.Errorf("result %+v after losses %v", res, refLosses.losses)
		}
	})
	if refLosses.err != nil {
		t.Fatal(refLosses.err)
	}
	return refLosses.losses
}

// checkAdapter checks that dir holds a PEFT adapter that loads, and generates with it.
func checkAdapter(t *testing.T, r worker.Runner, f *fixture, dir string) {
	t.Helper()
	for _, name := range []string{lora.ConfigFile, lora.WeightsFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("adapter: %v", err)
		}
	}
	if _, err := r.Load(t.Context(), worker.LoadRequest{Model: "student", Dir: f.dir, AdapterDir: dir}); err != nil {
		t.Fatalf("load the adapter: %v", err)
	}
	if _, _, done := generateAll(t, r, chatRequest("student", 3)); done.CompletionTokens != 3 {
		t.Errorf("student generation %+v", done)
	}
}

// TestTrainRunnersAgree trains with the same request and seed in-process, over pipes and in a
// child process: the losses are the same, step by step, and each writes an adapter that loads.
func TestTrainRunnersAgree(t *testing.T) {
	f := fix.get(t)
	want := referenceLosses(t, f)
	t.Logf("reference losses %v", want)
	if len(want) != trainSteps || want[len(want)-1] >= want[0] {
		t.Errorf("reference losses %v do not fall", want)
	}
	data := trainData(t)
	for name, r := range map[string]worker.Runner{
		"pipe":  pipeClient(t),
		"child": childClient(t, "serve"),
	} {
		t.Run(name, func(t *testing.T) {
			defer r.Close()
			req := trainRequest(t, f, data)
			losses, res, err := trainAll(t, t.Context(), r, req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(losses, want) {
				t.Errorf("losses %v, want %v", losses, want)
			}
			if res.Steps != trainSteps || res.Loss != want[len(want)-1] || res.AdapterDir != req.OutDir || res.ResumedFrom != "" ||
				res.Tokens <= 0 || res.Checkpoint == "" {
				t.Errorf("result %+v", res)
			}
			checkAdapter(t, r, f, res.AdapterDir)
		})
	}
}

// TestTrainCancel cancels training after its second step: it stops at a step boundary with a
// checkpoint, and a resumed run continues from there to the losses of a run never stopped.
func TestTrainCancel(t *testing.T) {
	f := fix.get(t)
	want := referenceLosses(t, f)
	data := trainData(t)
	for name, r := range map[string]worker.Runner{
		"engine": worker.NewEngine(worker.EngineOptions{Logger: testLogger(t)}),
		"child":  childClient(t, "serve"),
	} {
		t.Run(name, func(t *testing.T) {
			defer r.Close()
			req := trainRequest(t, f, data)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			losses, _, err := trainAll(t, ctx, r, req, func(p worker.TrainProgress) {
				if p.Step == 2 {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("after cancel: %v", err)
			}
			ckpt, err := train.LatestCheckpoint(filepath.Join(req.OutDir, "checkpoints"))
			if err != nil {
				t.Fatal(err)
			}
			// The worker may finish a step before the cancel reaches it, never a step half.
			var step int
			if _, err := fmt.Sscanf(filepath.Base(ckpt), "step-%d", &step); err != nil || step < 2 || step >= trainSteps || step != len(losses) && name == "engine" {
				t.Fatalf("checkpoint %s after %d steps reported (%v)", ckpt, len(losses), err)
			}
			if _, err := os.Stat(filepath.Join(req.OutDir, lora.WeightsFile)); err == nil {
				t.Error("a stopped run saved the final adapter")
			}

			t.Logf("cancelled after step 2: checkpoint %s", ckpt)
			req.Resume = true
			rest, res, err := trainAll(t, t.Context(), r, req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.ResumedFrom != ckpt || res.ResumedStep != step || res.Steps != trainSteps || len(rest) != trainSteps-step {
				t.Errorf("resumed result %+v, %d steps", res, len(rest))
			}
			if !slices.Equal(rest, want[step:]) {
				t.Errorf("resumed losses %v, want %v", rest, want[step:])
			}
		})
	}
}

// TestTrainKilledWorker kills the child with SIGKILL mid-training: the request fails with a
// DeadError naming the cause, and a Train with Resume continues in a new worker from the last
// checkpoint, finishes and writes an adapter that loads.
func TestTrainKilledWorker(t *testing.T) {
	f := fix.get(t)
	want := referenceLosses(t, f)
	c := childClient(t, "serve")
	if _, err := c.Hello(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := c.PID()
	req := trainRequest(t, f, trainData(t))
	req.CheckpointEvery = 1
	killedDuring(t, pid, 2*time.Minute, func(kill func()) error {
		_, _, err := trainAll(t, t.Context(), c, req, func(p worker.TrainProgress) {
			if p.Step == 3 {
				kill()
			}
		})
		return err
	})

	req.Resume = true
	rest, res, err := trainAll(t, t.Context(), c, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed at step 3; resumed %+v", res)
	if res.ResumedStep < 2 || res.ResumedFrom == "" || res.Steps != trainSteps || len(rest) != trainSteps-res.ResumedStep {
		t.Errorf("resumed result %+v after %d steps", res, len(rest))
	}
	if !slices.Equal(rest, want[res.ResumedStep:]) {
		t.Errorf("resumed losses %v, want %v", rest, want[res.ResumedStep:])
	}
	if c.Starts() != 2 || c.PID() == pid {
		t.Errorf("starts %d, pid %d (was %d)", c.Starts(), c.PID(), pid)
	}
	checkAdapter(t, c, f, res.AdapterDir)
}

// TestTrainContinuesAnAdapter trains an adapter further: the first step starts from what the
// first run learned, not from a fresh adapter.
func TestTrainContinuesAnAdapter(t *testing.T) {
	f := fix.get(t)
	want := referenceLosses(t, f)
	e := worker.NewEngine(worker.EngineOptions{Logger: testLogger(t)})
	defer e.Close()
	data := trainData(t)
	first := trainRequest(t, f, data)
	if _, _, err := trainAll(t, t.Context(), e, first, nil); err != nil {
		t.Fatal(err)
	}
	again := trainRequest(t, f, data)
	again.AdapterDir = first.OutDir
	losses, res, err := trainAll(t, t.Context(), e, again, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("continued losses %v", losses)
	if losses[0] >= want[0] || res.Steps != trainSteps {
		t.Errorf("continued losses %v, a fresh adapter's %v; result %+v", losses, want, res)
	}
	checkAdapter(t, e, f, res.AdapterDir)
}

// Bad training data is the request's fault: invalid_request, through the protocol too.
func TestTrainRejectsBadData(t *testing.T) {
	f := fix.get(t)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"messages":[{"role":"user","content":"no answer"}]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := worker.NewEngine(worker.EngineOptions{Logger: testLogger(t)})
	defer e.Close()
	pe := worker.NewEngine(worker.EngineOptions{Logger: testLogger(t)})
	c := worker.NewPipeClient(pe, testLogger(t))
	defer c.Close()
	for name, r := range map[string]worker.Runner{"engine": e, "pipe": c} {
		for data, want := range map[string]string{bad: "line 1", filepath.Join(t.TempDir(), "missing.jsonl"): "no such file"} {
			_, err := r.Train(t.Context(), trainRequest(t, f, data), nil)
			var we *worker.Error
			if !errors.As(err, &we) || we.Code != worker.CodeInvalidRequest || !strings.Contains(err.Error(), want) {
				t.Errorf("%s, %s: %v; want invalid_request naming %q", name, filepath.Base(data), err, want)
			}
		}
	}
}
