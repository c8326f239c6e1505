package lm

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"opentracy/gpu/engine/lora"
)

// TestBatchedMatchesSingle checks that padding (left for sessions, left or right for the full
// forward) does not change any row's logits.
func TestBatchedMatchesSingle(t *testing.T) {
	m := tinyModel(t, TinyOptions{}, Options{})
	ctx := context.Background()
	prompts := [][]int{{1, 2, 3, 4, 5, 6, 7}, {9}, {100, 200, 300}}
	batched, err := func() ([][]float32, error) {
		s, l, err := m.NewSession(ctx, prompts, 3)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		l2, err := s.Step(ctx, []int{11, 12, 13})
		if err != nil {
			return nil, err
		}
		return append(l, l2...), nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	for r, p := range prompts {
		s, l, err := m.NewSession(ctx, [][]int{p}, 3)
		if err != nil {
			t.Fatal(err)
		}
		l2, err := s.Step(ctx, []int{11 + r})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(batched[r], l[0]); d > 1e-4 {
			t.Errorf("row %d prefill: batched differs from single by %g", r, d)
		}
		if d := maxAbsDiff(batched[len(prompts)+r], l2[0]); d > 1e-4 {
			t.Errorf("row %d decode: batched differs from single by %g", r, d)
		}
	}

	// Full forward: the same sequence right-padded and left-padded in a batch.
	seq := []int{5, 6, 7, 8}
	single, err := m.ForwardLogits(ctx, [][]int{seq}, nil)
	if err != nil {
		t.Fatal(err)
	}
	padded, err := m.ForwardLogits(ctx,
		[][]int{{5, 6, 7, 8, 0, 0}, {0, 0, 5, 6, 7, 8}},
		[][]int{{1, 1, 1, 1, 0, 0}, {0, 0, 1, 1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range seq {
		if d := maxAbsDiff(padded[0][i], single[0][i]); d > 1e-4 {
			t.Errorf("right padding, position %d: differs by %g", i, d)
		}
		if d := maxAbsDiff(padded[1][i+2], single[0][i]); d > 1e-4 {
			t.Errorf("left padding, position %d: differs by %g", i, d)
		}
	}
}

func TestShardedAndBF16Load(t *testing.T) {
	ctx := context.Background()
	ref := tinyModel(t, TinyOptions{Family: Llama}, Options{})
	want, err := ref.ForwardLogits(ctx, [][]int{{3, 1, 4, 1, 5}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("sharded", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "m")
		if err := InitTinyWith(dir, TinyOptions{Family: Llama, ShardBytes: 40_000}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "model.safetensors.index.json")); err != nil {
			t.Fatalf("not sharded: %v", err)
		}
		shards, _ := filepath.Glob(filepath.Join(dir, "model-*.safetensors"))
		if len(shards) < 3 {
			t.Fatalf("want several shards, got %v", shards)
		}
		m, err := Load(ctx, backend(t), dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		got, err := m.ForwardLogits(ctx, [][]int{{3, 1, 4, 1, 5}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got[0] {
			if d := maxAbsDiff(got[0][i], want[0][i]); d != 0 {
				t.Fatalf("sharded logits differ by %g", d)
			}
		}
	})

	t.Run("bf16", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "m")
		if err := InitTinyWith(dir, TinyOptions{Family: Llama, DType: "bfloat16"}); err != nil {
			t.Fatal(err)
		}
		// On the Go backend bf16 weights are widened to float32 by default ...
		m32, err := Load(ctx, backend(t), dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m32.Close()
		if m32.DType() != dtypes.Float32 {
			t.Fatalf("auto dtype on the Go backend = %s, want float32", m32.DType())
		}
		got32, err := m32.ForwardLogits(ctx, [][]int{{3, 1, 4, 1, 5}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// ... and can be kept in bf16, the GPU path.
		m16, err := Load(ctx, backend(t), dir, Options{DType: dtypes.BFloat16})
		if err != nil {
			t.Fatal(err)
		}
		defer m16.Close()
		got16, err := m16.ForwardLogits(ctx, [][]int{{3, 1, 4, 1, 5}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want[0] {
			// bf16 storage rounds weights to 8 bits of mantissa: close to, not equal to, f32.
			if d := maxAbsDiff(got32[0][i], want[0][i]); d > 0.1 || d == 0 {
				t.Errorf("bf16-stored weights: position %d differs from f32 by %g", i, d)
			}
			if d := maxAbsDiff(got16[0][i], got32[0][i]); d > 0.25 {
				t.Errorf("bf16 compute: position %d differs from f32 compute by %g", i, d)
			}
			if argmax(got16[0][i]) != argmax(got32[0][i]) && maxAbsDiff(got16[0][i], got32[0][i]) > 0.05 {
				t.Errorf("bf16 compute changed the argmax at %d", i)
			}
		}
	})
}

// randomizeAdapter gives B (and A) random values, so the adapter changes the outputs.
func randomizeAdapter(t *testing.T, ad *lora.Adapter, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, v := range ad.Variables() {
		dims := v.Shape().Dimensions
		vals := make([]float32, v.Shape().Size())
		for i := range vals {
			vals[i] = float32(rng.NormFloat64() * 0.1)
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, dims...)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoRA(t *testing.T) {
	ctx := context.Background()
	ids := [][]int{{7, 3, 99, 12, 5, 64}}
	m := tinyModel(t, TinyOptions{Family: Qwen3}, Options{})
	base, err := m.ForwardLogits(ctx, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := lora.Config{Rank: 4, Alpha: 8, Dropout: 0.1, Seed: 3}
	ad, err := m.NewAdapter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ad.Modules()); got != 14 {
		t.Fatalf("adapted modules = %d, want 7 per layer × 2", got)
	}
	for v := range m.Store().IterVariables() {
		if v.Trainable != (len(v.Path()) > len(lora.StorePrefix) && v.Path()[:len(lora.StorePrefix)] == lora.StorePrefix) {
			t.Errorf("variable %s trainable=%v", v.Path(), v.Trainable)
		}
	}

	t.Run("B=0 equals base", func(t *testing.T) {
		got, err := m.ForwardLogits(ctx, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got[0] {
			if d := maxAbsDiff(got[0][i], base[0][i]); d > 1e-6 {
				t.Fatalf("fresh adapter changed logits by %g", d)
			}
		}
	})

	randomizeAdapter(t, ad, 9)
	adapted, err := m.ForwardLogits(ctx, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(adapted[0][5], base[0][5]); d < 1e-3 {
		t.Fatalf("a random adapter should change the logits (diff %g)", d)
	}

	t.Run("PEFT save and load", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "adapter")
		if err := ad.Save(dir); err != nil {
			t.Fatal(err)
		}
		m2 := tinyModel(t, TinyOptions{Family: Qwen3}, Options{})
		if _, err := m2.LoadAdapter(dir); err != nil {
			t.Fatal(err)
		}
		got, err := m2.ForwardLogits(ctx, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got[0] {
			if d := maxAbsDiff(got[0][i], adapted[0][i]); d != 0 {
				t.Fatalf("reloaded adapter: logits differ by %g", d)
			}
		}
	})

	t.Run("KV cache with adapter", func(t *testing.T) {
		s, l, err := m.NewSession(ctx, ids, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if d := maxAbsDiff(l[0], adapted[0][5]); d > 1e-4 {
			t.Fatalf("session with adapter differs from full forward by %g", d)
		}
	})

	t.Run("merged equals unmerged", func(t *testing.T) {
		if err := m.MergeAdapter(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := m.ForwardLogits(ctx, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got[0] {
			if d := maxAbsDiff(got[0][i], adapted[0][i]); d > 1e-4 {
				t.Fatalf("merged logits differ from unmerged by %g", d)
			}
		}
		if err := m.DetachAdapter(); err == nil {
			t.Fatal("detaching a merged adapter should fail")
		}
	})
}

// TestLossMatchesLogits checks the gather-based loss against a cross-entropy computed on the
// host from the forward logits, including padding and a completion-only loss mask.
func TestLossMatchesLogits(t *testing.T) {
	ctx := context.Background()
	m := tinyModel(t, TinyOptions{}, Options{})
	ids := [][]int{{4, 8, 15, 16, 23, 42}, {0, 0, 1, 2, 3, 5}}
	mask := [][]int{{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}}
	lossMask := [][]int{{0, 0, 0, 1, 1, 1}, {0, 0, 0, 0, 1, 1}}
	logits, err := m.ForwardLogits(ctx, ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	var sum, n float64
	for b := range ids {
		for t := 1; t < len(ids[b]); t++ {
			if mask[b][t] == 0 || lossMask[b][t] == 0 {
				continue
			}
			row := logits[b][t-1]
			mx := float64(row[argmax(row)])
			z := 0.0
			for _, x := range row {
				z += math.Exp(float64(x) - mx)
			}
			sum += mx + math.Log(z) - float64(row[ids[b][t]])
			n++
		}
	}
	want := sum / n

	flat := func(x [][]int) *tensors.Tensor {
		var v []int32
		for _, r := range x {
			for _, e := range r {
				v = append(v, int32(e))
			}
		}
		return tensors.FromFlatDataAndDimensions(v, len(x), len(x[0]))
	}
	e, err := gmodel.NewExec(m.Backend(), m.Store(), func(_ *gmodel.Scope, a, b, c *Node) *Node { return m.Loss(a, b, c) })
	if err != nil {
		t.Fatal(err)
	}
	defer e.Finalize()
	out, err := e.Call(flat(ids), flat(mask), flat(lossMask))
	if err != nil {
		t.Fatal(err)
	}
	got := float64(tensors.ToScalar[float32](out[0]))
	if math.Abs(got-want) > 1e-4 {
		t.Fatalf("loss = %v, host cross-entropy = %v", got, want)
	}
}

// TestTrainerUpdatesOnlyLoRA runs a few optimizer steps through gomlx's Trainer with
// TrainModelFn: the loss must go down and the base weights must not move.
func TestTrainerUpdatesOnlyLoRA(t *testing.T) {
	m := tinyModel(t, TinyOptions{}, Options{})
	// Dropout exercises the training-only random path inside the trainer's graph.
	if _, err := m.NewAdapter(lora.Config{Rank: 4, Alpha: 16, Dropout: 0.1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	embedBefore, err := tensors.CopyFlatData[float32](m.Store().GetVariable(BaseScope + "model.layers.0.self_attn.q_proj.weight").MustValue())
	if err != nil {
		t.Fatal(err)
	}
	trainer := train.NewTrainer(m.Backend(), m.Store(), m.TrainModelFn(), nil,
		optimizer.Adam().LearningRate(1e-2).Done(), nil, nil)
	batch := func() train.Batch {
		ids := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		mask := make([]int32, 16)
		lossMask := make([]int32, 16)
		for i := range mask {
			mask[i] = 1
			if i >= 4 {
				lossMask[i] = 1
			}
		}
		return train.Batch{Inputs: []*tensors.Tensor{
			tensors.FromFlatDataAndDimensions(ids, 2, 8),
			tensors.FromFlatDataAndDimensions(mask, 2, 8),
			tensors.FromFlatDataAndDimensions(lossMask, 2, 8),
		}}
	}
	var first, last float32
	for step := 0; step < 8; step++ {
		metrics, err := trainer.TrainStep(batch()) // TrainStep takes ownership of the batch tensors
		if err != nil {
			t.Fatal(err)
		}
		loss := tensors.ToScalar[float32](metrics[0])
		if step == 0 {
			first = loss
		}
		last = loss
	}
	if !(last < first*0.9) {
		t.Fatalf("loss did not go down: %v -> %v", first, last)
	}
	embedAfter, err := tensors.CopyFlatData[float32](m.Store().GetVariable(BaseScope + "model.layers.0.self_attn.q_proj.weight").MustValue())
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(embedBefore, embedAfter); d != 0 {
		t.Fatalf("a base weight changed by %g during LoRA training", d)
	}
}
