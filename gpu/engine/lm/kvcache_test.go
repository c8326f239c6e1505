package lm

import (
	"context"
	"testing"

	"github.com/gomlx/compute/dtypes"
)

// fullLastLogits runs the full forward on one unpadded sequence and returns the last position's logits.
func fullLastLogits(t *testing.T, m *Model, seq []int) []float32 {
	t.Helper()
	out, err := m.ForwardLogits(context.Background(), [][]int{seq}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out[0][len(seq)-1]
}

func TestKVCacheMatchesFullForward(t *testing.T) {
	for _, fam := range []Family{Qwen3, Llama} {
		t.Run(string(fam), func(t *testing.T) {
			// DecodeRoom 4 makes the cache grow twice within the test.
			m := tinyModel(t, TinyOptions{Family: fam}, Options{DecodeRoom: 4})
			ctx := context.Background()
			prompts := [][]int{{5, 17, 42, 99, 3, 250}, {7, 8}, {300, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
			steps := 14
			s, logits, err := m.NewSession(ctx, prompts, steps)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			seqs := make([][]int, len(prompts))
			for r, p := range prompts {
				seqs[r] = append([]int(nil), p...)
			}
			for step := 0; ; step++ {
				next := make([]int, len(prompts))
				for r := range prompts {
					want := fullLastLogits(t, m, seqs[r])
					if d := maxAbsDiff(logits[r], want); d > 1e-4 {
						t.Fatalf("step %d row %d: cached logits differ from full forward by %g", step, r, d)
					}
					next[r] = (argmax(want) + step + r) % m.Config.VocabSize // vary tokens beyond greedy
					seqs[r] = append(seqs[r], next[r])
				}
				if step == steps {
					break
				}
				logits, err = s.Step(ctx, next)
				if err != nil {
					t.Fatal(err)
				}
			}
			if s.Capacity() <= Bucket(17+4) {
				t.Errorf("cache did not grow: capacity %d", s.Capacity())
			}
			if _, err := s.Step(ctx, make([]int, len(prompts))); err != ErrSessionFull {
				t.Errorf("step past the budget: err = %v, want ErrSessionFull", err)
			}
		})
	}
}

func TestSessionRejectsBadInput(t *testing.T) {
	m := tinyModel(t, TinyOptions{MaxPositions: 32}, Options{})
	ctx := context.Background()
	for name, prompts := range map[string][][]int{
		"no prompts":   {},
		"empty prompt": {{1}, {}},
		"id too large": {{1, 384}},
		"negative id":  {{-1}},
		"too long":     {make([]int, 33)},
	} {
		if s, _, err := m.NewSession(ctx, prompts, 4); err == nil {
			s.Close()
			t.Errorf("%s: expected an error", name)
		}
	}
	// The context length caps the budget: 30 prompt tokens + at most 2 new ones.
	s, _, err := m.NewSession(ctx, [][]int{make([]int, 30)}, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.MaxNewTokens() != 2 {
		t.Errorf("MaxNewTokens = %d, want 2", s.MaxNewTokens())
	}
	if _, err := s.Step(ctx, []int{1, 2}); err == nil {
		t.Error("wrong number of tokens accepted")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Step(cancelled, []int{1}); err == nil {
		t.Error("cancelled context accepted")
	}
}

// TestBF16Session runs the GPU dtype path (bf16 weights and activations) through a session and
// checks it against the bf16 full forward: same ops in another order, so bf16-level agreement.
func TestBF16Session(t *testing.T) {
	m := tinyModel(t, TinyOptions{Family: Llama, DType: "bfloat16"}, Options{DType: dtypes.BFloat16})
	ctx := context.Background()
	seq := []int{9, 8, 7, 6, 5}
	s, logits, err := m.NewSession(ctx, [][]int{seq[:4]}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next, err := s.Step(ctx, seq[4:])
	if err != nil {
		t.Fatal(err)
	}
	full, err := m.ForwardLogits(ctx, [][]int{seq}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range [][]float32{logits[0], next[0]} {
		want := full[0][3+i]
		if d := maxAbsDiff(got, want); d > 0.1 {
			t.Errorf("position %d: bf16 session differs from bf16 forward by %g", 3+i, d)
		}
	}
}
