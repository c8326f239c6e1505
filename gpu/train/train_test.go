package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/lora"
)

// TestLossFalls trains LoRA on the echo task and checks that the loss on the training data falls
// below half its starting value while the base weights stay bit-for-bit the same.
func TestLossFalls(t *testing.T) {
	for _, family := range []lm.Family{lm.Qwen3, lm.Llama} {
		t.Run(string(family), func(t *testing.T) {
			dir := tinyDir(t, family)
			m := loadModel(t, dir)
			data := echoData(t, dir, m, 12)
			base := values(t, m, lm.BaseScope)
			tr, err := New(m, data, Config{
				LoRA: lora.Config{Rank: 8, Alpha: 16, Dropout: 0.05}, LearningRate: 2e-2, Steps: 32, BatchSize: 4,
				WarmupSteps: 3, Seed: 1, Logger: quiet,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			ctx := context.Background()
			before, err := tr.EvalLoss(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			var progress []Progress
			if _, err := tr.Run(ctx, func(p Progress) { progress = append(progress, p) }); err != nil {
				t.Fatal(err)
			}
			after, err := tr.EvalLoss(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: eval loss %.4f → %.4f; step losses %.4f … %.4f", family, before, after, progress[0].Loss, progress[len(progress)-1].Loss)
			if !(after < 0.5*before) {
				t.Errorf("loss fell from %.4f to %.4f only; want below half", before, after)
			}
			if len(progress) != 32 || progress[31].Step != 32 || progress[31].Steps != 32 {
				t.Fatalf("progress: %d reports, last %+v", len(progress), progress[len(progress)-1])
			}
			for _, p := range progress {
				if p.Tokens <= 0 || p.TokensPerSec <= 0 || p.LearningRate <= 0 || p.GradNorm <= 0 || math.IsNaN(p.Loss) {
					t.Fatalf("implausible progress %+v", p)
				}
			}
			if got := progress[1].LearningRate; got != LearningRate(1, 32, 3, 2e-2, 0) {
				t.Errorf("step 2 learning rate %v, want the schedule's", got)
			}
			if d, err := maxAbsDiff(base, values(t, m, lm.BaseScope)); err != nil || d != 0 {
				t.Errorf("base weights changed by training: max diff %v, %v", d, err)
			}
			for _, v := range m.TrainableVariables() {
				if v.DType().String() != "Float32" {
					t.Errorf("LoRA variable %s is %s, want float32", v.Path(), v.DType())
				}
			}
		})
	}
}

// TestResumeExact trains 8 steps with a checkpoint at step 4, then resumes a fresh model from
// that checkpoint: steps 5–8 must give the same losses and the same adapter, with dropout on and
// gradient accumulation, so data order, optimizer and RNG state all have to be restored.
func TestResumeExact(t *testing.T) {
	dir := tinyDir(t, lm.Qwen3)
	ckpts := filepath.Join(t.TempDir(), "ckpt")
	cfg := Config{
		LoRA: lora.Config{Rank: 4, Alpha: 8, Dropout: 0.1}, LearningRate: 5e-3, Steps: 8, BatchSize: 2, GradAccum: 2,
		Seed: 11, CheckpointDir: ckpts, CheckpointEvery: 4, KeepCheckpoints: 5, Logger: quiet,
	}
	m1 := loadModel(t, dir)
	data := echoData(t, dir, m1, 10) // 5 micro-batches per epoch: steps straddle epochs
	tr1, err := New(m1, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := run(t, tr1)
	final1 := values(t, m1, lora.StorePrefix)
	tr1.Close()

	m2 := loadModel(t, dir)
	cfg.Resume = filepath.Join(ckpts, "step-000004")
	tr2, err := New(m2, echoData(t, dir, m2, 10), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	if st := tr2.State(); st.Step != 4 {
		t.Fatalf("resumed at step %d, want 4", st.Step)
	}
	got := run(t, tr2)
	if len(got) != 4 {
		t.Fatalf("resumed run made %d steps, want 4", len(got))
	}
	for i, l := range got {
		w := want[4+i]
		t.Logf("step %d: loss %.9g uninterrupted, %.9g resumed", 5+i, w, l)
		if math.Abs(l-w) > 1e-6*math.Max(1, math.Abs(w)) {
			t.Errorf("step %d: resumed loss %.9g, uninterrupted %.9g", 5+i, l, w)
		}
	}
	if d, err := maxAbsDiff(final1, values(t, m2, lora.StorePrefix)); err != nil || d > 1e-6 {
		t.Errorf("final adapters differ by %v (%v)", d, err)
	}
	if latest, err := LatestCheckpoint(ckpts); err != nil || filepath.Base(latest) != "step-000008" {
		t.Errorf("LatestCheckpoint = %q, %v; want step-000008", latest, err)
	}

	// Other data cannot be resumed exactly: refused.
	m3 := loadModel(t, dir)
	if _, err := New(m3, echoData(t, dir, m3, 9), cfg); err == nil {
		t.Error("resuming on other data: no error")
	}
}

// TestCancel stops a run from its progress callback: Run returns the context's error at the
// step boundary, with a checkpoint there that a second run finishes from.
func TestCancel(t *testing.T) {
	dir := tinyDir(t, lm.Qwen3)
	ckpts := filepath.Join(t.TempDir(), "ckpt")
	m := loadModel(t, dir)
	data := echoData(t, dir, m, 6)
	cfg := Config{LoRA: lora.Config{Rank: 4}, LearningRate: 1e-3, Steps: 6, BatchSize: 2, Seed: 2, CheckpointDir: ckpts, Logger: quiet}
	tr, err := New(m, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res, err := tr.Run(ctx, func(p Progress) {
		if p.Step == 3 {
			cancel()
		}
	})
	tr.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	if res.State.Step != 3 || filepath.Base(res.Checkpoint) != "step-000003" {
		t.Fatalf("stopped at %+v, checkpoint %q; want step 3", res.State, res.Checkpoint)
	}
	for _, f := range []string{StateFile, OptimizerFile, lora.ConfigFile, lora.WeightsFile} {
		if _, err := os.Stat(filepath.Join(res.Checkpoint, f)); err != nil {
			t.Errorf("checkpoint lacks %s: %v", f, err)
		}
	}
	cfg.Resume = res.Checkpoint
	m2 := loadModel(t, dir)
	tr2, err := New(m2, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	if got := run(t, tr2); len(got) != 3 {
		t.Errorf("resumed run made %d steps, want 3", len(got))
	}
}

// TestAccumulation: one step over 4 sequences of different lengths gives the same loss and the
// same update as batch 4, 2 micro-batches of 2, or 4 of 1 (the loss is token-weighted, not a
// mean of micro-batch means).
func TestAccumulation(t *testing.T) {
	dir := tinyDir(t, lm.Qwen3)
	type result struct {
		losses []float64
		params map[string][]float32
	}
	train := func(batch, accum int) result {
		m := loadModel(t, dir)
		data := echoData(t, dir, m, 4)
		tr, err := New(m, data, Config{
			LoRA: lora.Config{Rank: 4, Alpha: 8}, LearningRate: 1e-3, Steps: 3, BatchSize: batch, GradAccum: accum,
			WarmupRatio: -1, Seed: 5, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		return result{run(t, tr), values(t, m, lora.StorePrefix)}
	}
	ref := train(4, 1)
	for _, c := range []struct{ batch, accum int }{{2, 2}, {1, 4}} {
		got := train(c.batch, c.accum)
		for i := range ref.losses {
			if d := math.Abs(got.losses[i] - ref.losses[i]); d > 1e-5*ref.losses[i] {
				t.Errorf("batch %d × accum %d, step %d: loss %.7f, batch 4: %.7f", c.batch, c.accum, i+1, got.losses[i], ref.losses[i])
			}
		}
		d, err := maxAbsDiff(ref.params, got.params)
		t.Logf("batch %d × accum %d: losses %v, params max diff %.3g", c.batch, c.accum, got.losses, d)
		// An update is ~lr (1e-3) per step; differences from summation order are far smaller.
		if err != nil || d > 2e-5 {
			t.Errorf("batch %d × accum %d: adapter differs from batch 4 by %v (%v)", c.batch, c.accum, d, err)
		}
	}
}

// TestClipping checks the gradient the optimizer sees after global-norm clipping: AdamW's first
// moment after one step is (1-β1)·g, so its norm must be (1-β1)·MaxGradNorm, and it must point
// where the unclipped gradient does.
func TestClipping(t *testing.T) {
	dir := tinyDir(t, lm.Qwen3)
	step := func(maxNorm float64) (map[string][]float32, float64) {
		m := loadModel(t, dir)
		data := echoData(t, dir, m, 4)
		tr, err := New(m, data, Config{
			LoRA: lora.Config{Rank: 4, Alpha: 8}, LearningRate: 1e-3, Steps: 1, BatchSize: 4, MaxGradNorm: maxNorm,
			Seed: 5, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var norm float64
		if _, err := tr.Run(context.Background(), func(p Progress) { norm = p.GradNorm }); err != nil {
			t.Fatal(err)
		}
		return values(t, m, expAvgScope+"/"), norm
	}
	free, rawNorm := step(-1)
	const limit = 1e-3
	clipped, reported := step(limit)
	if rawNorm <= 10*limit || math.Abs(reported-rawNorm) > 1e-5*rawNorm {
		t.Fatalf("gradient norm %v (clipped run reports %v); want the same raw norm, well above %v", rawNorm, reported, limit)
	}
	norm := func(vals map[string][]float32) float64 {
		s := 0.0
		for _, v := range vals {
			for _, x := range v {
				s += float64(x) * float64(x)
			}
		}
		return math.Sqrt(s) / (1 - 0.9)
	}
	if g := norm(free); math.Abs(g-rawNorm) > 1e-4*rawNorm {
		t.Errorf("unclipped: optimizer saw a gradient of norm %v, want %v", g, rawNorm)
	}
	if g := norm(clipped); math.Abs(g-limit) > 1e-3*limit {
		t.Errorf("clipped: optimizer saw a gradient of norm %v, want %v", g, limit)
	}
	scale := float32(limit / rawNorm)
	for k, v := range free {
		for i := range v {
			if d := abs32(clipped[k][i] - v[i]*scale); d > 1e-4*abs32(v[i]*scale)+1e-12 {
				t.Fatalf("%s[%d]: clipped moment %g, want %g", k, i, clipped[k][i], v[i]*scale)
			}
		}
	}
}

func TestLearningRate(t *testing.T) {
	const peak = 1e-3
	for _, c := range []struct {
		step, total, warmup int
		want                float64
	}{
		{0, 100, 10, peak / 10},
		{9, 100, 10, peak},
		{10, 100, 10, peak},
		{55, 100, 10, peak / 2},
		{0, 1, 0, peak},
		{0, 5, 5, peak / 5},
	} {
		if got := LearningRate(c.step, c.total, c.warmup, peak, 0); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("LearningRate(%d, %d, %d) = %v, want %v", c.step, c.total, c.warmup, got, c.want)
		}
	}
	if got := LearningRate(99, 100, 0, peak, 1e-4); got <= 1e-4 || got > 1.01e-4 {
		t.Errorf("last step with a floor: %v, want just above 1e-4", got)
	}
}
