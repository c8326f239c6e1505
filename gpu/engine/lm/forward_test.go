package lm

import (
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/core/tensors"
)

// bf16ULPError runs fn over bf16 inputs xs and returns the largest distance, in bf16 units in the
// last place, between its outputs and x·sigmoid(x) computed in float64.
func bf16ULPError(t *testing.T, xs []bfloat16.BFloat16, fn func(*Node) *Node) float64 {
	t.Helper()
	e, err := NewExec(backend(t), fn)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Finalize()
	out, err := e.Call(tensors.FromFlatDataAndDimensions(xs, len(xs)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tensors.CopyFlatData[bfloat16.BFloat16](out[0])
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, x := range xs {
		xf := float64(x.Float32())
		want := xf / (1 + math.Exp(-xf))
		if want == 0 {
			continue
		}
		// One bf16 ulp at want: 8 significant bits.
		ulp := math.Ldexp(1, math.Ilogb(want)-7)
		worst = max(worst, math.Abs(float64(got[i].Float32())-want)/ulp)
	}
	return worst
}

// SiLU must round to bf16 once, as torch's kernel does: within half an ulp of the exact value.
// Rounding the sigmoid to bf16 first (the naive graph) is off by more, which this test sees.
func TestSiLURoundsOnceInBF16(t *testing.T) {
	var xs []bfloat16.BFloat16
	for i := -2048; i <= 2048; i++ {
		xs = append(xs, bfloat16.FromFloat32(float32(i)/256))
	}
	if got := bf16ULPError(t, xs, silu); got > 0.5+1e-6 {
		t.Errorf("silu: worst error %.3f ulp; want ≤ 0.5 (one rounding)", got)
	}
	naive := func(x *Node) *Node { return Mul(x, Sigmoid(x)) }
	if got := bf16ULPError(t, xs, naive); got <= 0.5+1e-6 {
		t.Errorf("the bf16 sigmoid-then-multiply graph is within %.3f ulp: this test cannot tell the two apart", got)
	}
}

// Attention scores leave the q·k product in float32. Two keys whose scores differ by less than
// bf16 resolves (32 and 32+2⁻⁴ before scaling; bf16's spacing at 32 is 2⁻²) get the same weight
// from bf16 scores, and then values -256 and +256 cancel exactly; float32 scores give the second
// key 0.5039 against 0.4961 (both exact in bf16, as the probabilities are rounded for P·V).
func TestAttentionScoresStayFloat32(t *testing.T) {
	m := tinyModel(t, TinyOptions{Family: Qwen3, DType: "bfloat16"}, Options{DType: dtypes.BFloat16})
	c := m.Config
	nH, nKV, d := c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim
	if d != 16 {
		t.Fatalf("head_dim %d: the numbers below assume 16", d)
	}
	fill := func(n int, f func(i int) float32) *tensors.Tensor {
		v := make([]bfloat16.BFloat16, n)
		for i := range v {
			v[i] = bfloat16.FromFloat32(f(i))
		}
		return tensors.FromFlatDataAndDimensions(v, n)
	}
	q := fill(nH*d, func(int) float32 { return 2 })
	k := fill(2*nKV*d, func(i int) float32 { // key 1 all ones; key 2 one component 1+2⁻⁵
		if i >= nKV*d && i%d == 0 {
			return 1 + 1.0/32
		}
		return 1
	})
	v := fill(2*nKV*d, func(i int) float32 {
		if i < nKV*d {
			return -256
		}
		return 256
	})
	e, err := NewExec(backend(t), func(qn, kn, vn *Node) *Node {
		allowed := Const(qn.Graph(), [][][]bool{{{true, true}}})
		return m.attention(Reshape(qn, 1, 1, nH, d), Reshape(kn, 1, 2, nKV, d), Reshape(vn, 1, 2, nKV, d), allowed)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Finalize()
	out, err := e.Call(q, k, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tensors.CopyFlatData[bfloat16.BFloat16](out[0])
	if err != nil {
		t.Fatal(err)
	}
	// 256·(0.5039-0.4961) = 2.
	for i, o := range got {
		if f := o.Float32(); f < 1.5 || f > 2.5 {
			t.Fatalf("output %d = %v; want ≈ 2 (0 means the scores were rounded to bf16)", i, f)
		}
	}
}
