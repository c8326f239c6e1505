package lm

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
)

// TestLlama3RopeScaling checks RopeInvFreq against reference values of transformers'
// _compute_llama3_parameters for Llama 3.1's rope settings (head_dim 128, rope_theta 500000,
// factor 8, low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 8192).
// The references were computed in float64 with a line-by-line Python transcription of that
// function (default inv_freq, then torch.where on wavelen for the low/medium/high bands).
func TestLlama3RopeScaling(t *testing.T) {
	c := &Config{
		ModelType: Llama, HiddenSize: 4096, IntermediateSize: 14336, NumHiddenLayers: 1,
		NumAttentionHeads: 32, NumKeyValueHeads: 8, VocabSize: 128256, RopeTheta: 500000,
		RopeScaling: &RopeScaling{RopeType: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192},
	}
	if err := c.normalize(); err != nil {
		t.Fatal(err)
	}
	inv := c.RopeInvFreq()
	if len(inv) != 64 {
		t.Fatalf("len = %d", len(inv))
	}
	ref := map[int]float64{
		0:  1.0,                    // high frequency: unchanged
		1:  0.8146172338565447,     //
		20: 0.016560440080994446,   //
		28: 0.0032114459947525913,  // last high-frequency entry
		29: 0.002166570763503359,   // first medium entry (smoothed)
		30: 0.0013718935677611381,  //
		32: 0.0005248461609929547,  //
		34: 0.00017850781276799638, // last medium entry
		35: 9.556212353964683e-05,  // low frequency: divided by 8
		45: 1.2297638677963614e-05, //
		63: 3.068925988914511e-07,  //
	}
	for i, want := range ref {
		if math.Abs(inv[i]-want) > 1e-12*want {
			t.Errorf("inv_freq[%d] = %.17g, want %.17g", i, inv[i], want)
		}
	}
	// Independent re-derivation in the shape of the torch code (where on whole vectors), over
	// every index.
	for i := range inv {
		f := 1 / math.Pow(500000, float64(2*i)/128)
		wl := 2 * math.Pi / f
		fl := f
		if wl > 8192 {
			fl = f / 8
		}
		sm := (8192/wl - 1) / (4 - 1)
		smoothed := (1-sm)*fl/8 + sm*fl
		want := fl
		if !(wl < 2048) && !(wl > 8192) {
			want = smoothed
		}
		if math.Abs(inv[i]-want) > 1e-15 {
			t.Errorf("inv_freq[%d] = %g, re-derived %g", i, inv[i], want)
		}
	}
}

func TestRopeVariants(t *testing.T) {
	c := &Config{ModelType: Qwen3, HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 1,
		NumAttentionHeads: 4, HeadDim: 16, VocabSize: 10, RopeTheta: 10000}
	if err := c.normalize(); err != nil {
		t.Fatal(err)
	}
	plain := c.RopeInvFreq()
	if plain[0] != 1 || math.Abs(plain[1]-math.Pow(10000, -2.0/16)) > 1e-15 {
		t.Errorf("default inv_freq = %v", plain[:2])
	}
	c.RopeScaling = &RopeScaling{Type: "linear", Factor: 4}
	if err := c.normalize(); err != nil {
		t.Fatal(err)
	}
	for i, f := range c.RopeInvFreq() {
		if math.Abs(f-plain[i]/4) > 1e-15 {
			t.Errorf("linear[%d] = %g, want %g", i, f, plain[i]/4)
		}
	}
	c.RopeScaling = &RopeScaling{RopeType: "yarn", Factor: 4}
	if err := c.normalize(); err == nil {
		t.Error("yarn should be rejected, not silently ignored")
	}
}

// TestRotateHalf pins the rotation convention of the graph code: with position p, head vector
// element pairs are (i, i+d/2) — transformers' rotate_half layout, not adjacent elements — and
// (x1, x2) becomes (x1·cos θ − x2·sin θ, x2·cos θ + x1·sin θ) with θ = p·inv_freq[i].
func TestRotateHalf(t *testing.T) {
	m := tinyModel(t, TinyOptions{Family: Llama}, Options{})
	inv := m.Config.RopeInvFreq()
	half := len(inv)
	d := 2 * half
	x := make([]float32, d)
	for i := range x {
		x[i] = float32(i+1) / 7
	}
	const p = 37
	e, err := gmodel.NewExec(m.Backend(), m.Store(), func(_ *gmodel.Scope, xs, pos *Node) *Node {
		cos, sin := m.ropeTables(pos)
		return applyRope(xs, cos, sin)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Finalize()
	out, err := e.Call(tensors.FromFlatDataAndDimensions(x, 1, 1, 1, d), [][]int32{{p}})
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](out[0])
	for i := 0; i < half; i++ {
		th := float64(float32(p) * float32(inv[i]))
		c, s := math.Cos(th), math.Sin(th)
		x1, x2 := float64(x[i]), float64(x[i+half])
		if math.Abs(float64(got[i])-(x1*c-x2*s)) > 1e-5 || math.Abs(float64(got[i+half])-(x2*c+x1*s)) > 1e-5 {
			t.Fatalf("pair %d: got (%v, %v), want (%v, %v)", i, got[i], got[i+half], x1*c-x2*s, x2*c+x1*s)
		}
	}
}
