package lm

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph code reads better unqualified, as in gomlx itself
	"github.com/gomlx/gomlx/support/exceptions"

	"opentracy/gpu/engine/lora"
)

// maskedScore is added where attention is not allowed; finite so fully masked rows (padding
// queries) give a harmless uniform softmax instead of NaN.
const maskedScore = -1e30

// weight returns the node of a base weight; it panics (turned into an error by the executor)
// if the checkpoint did not provide it.
func (m *Model) weight(g *Graph, name string) *Node {
	v := m.store.GetVariable(BaseScope + name)
	if v == nil {
		exceptions.Panicf("lm: weight %q is not loaded", name)
	}
	return v.NodeValue(g)
}

func (m *Model) hasWeight(name string) bool {
	return m.store.GetVariable(BaseScope+name) != nil
}

// linear applies an HF nn.Linear (weight [out, in], optional bias) plus the module's LoRA update.
func (m *Model) linear(x *Node, module string) *Node {
	g := x.Graph()
	y := lora.LinearT(x, m.weight(g, module+".weight"))
	if m.hasWeight(module + ".bias") {
		y = Add(y, ExpandLeftToRank(m.weight(g, module+".bias"), y.Rank()))
	}
	return m.adapter.Apply(module, x, y)
}

// rmsNorm is transformers' LlamaRMSNorm/Qwen3RMSNorm: normalise in float32, cast back, scale.
// It uses Div(Sqrt) rather than Rsqrt, which has no gradient on the pure-Go backend.
func (m *Model) rmsNorm(x *Node, weightName string) *Node {
	g := x.Graph()
	xf := x
	if xf.DType() != dtypes.Float32 {
		xf = ConvertDType(xf, dtypes.Float32)
	}
	variance := ReduceAndKeep(Square(xf), ReduceMean, -1)
	xf = Div(xf, Sqrt(AddScalar(variance, m.Config.RMSNormEps)))
	w := m.weight(g, weightName)
	return Mul(ConvertDType(xf, x.DType()), ExpandLeftToRank(w, x.Rank()))
}

// ropeTables returns cos and sin, shaped [B, T, 1, head_dim] in the model dtype, for integer
// positions [B, T]. Frequencies are computed in float32 like transformers, and each half of the
// head dimension reuses them (the rotate_half convention).
func (m *Model) ropeTables(positions *Node) (cos, sin *Node) {
	g := positions.Graph()
	half := len(m.invFreq)
	inv := Reshape(Const(g, m.invFreq), 1, 1, half)
	freqs := Mul(ExpandAxes(ConvertDType(positions, dtypes.Float32), -1), inv) // [B, T, half]
	emb := Concatenate([]*Node{freqs, freqs}, -1)
	cos = ExpandAxes(ConvertDType(Cos(emb), m.dtype), 2)
	sin = ExpandAxes(ConvertDType(Sin(emb), m.dtype), 2)
	return cos, sin
}

// applyRope rotates x [B, T, heads, head_dim]: x·cos + rotate_half(x)·sin, where
// rotate_half(x) = concat(-x[..., d/2:], x[..., :d/2]).
func applyRope(x, cos, sin *Node) *Node {
	d := x.Shape().Dimensions[3]
	x1 := SliceAxis(x, 3, AxisRange(0, d/2))
	x2 := SliceAxis(x, 3, AxisRange(d/2, d))
	rot := Concatenate([]*Node{Neg(x2), x1}, -1)
	return Add(Mul(x, cos), Mul(rot, sin))
}

// attention computes grouped-query attention without repeating K/V: q [B, T, nH, D],
// k and v [B, S, nKV, D], allowed [B, T, S] (true where query t may attend key s).
// Scores leave the q·k product in float32 and softmax runs in float32, as in the fused
// attention kernels transformers uses (SDPA): rounding scores to bf16 first measurably widened
// the logits' error on a GPU. Returns [B, T, nH·D] with heads ordered as transformers'
// repeat_kv orders them.
func (m *Model) attention(q, k, v, allowed *Node) *Node {
	c := m.Config
	dims := q.Shape().Dimensions
	b, t, nKV, d := dims[0], dims[1], c.NumKeyValueHeads, c.HeadDim
	groups := c.NumAttentionHeads / nKV
	s := k.Shape().Dimensions[1]
	q5 := Reshape(q, b, t, nKV, groups, d)
	// [B, nKV, T, G, S]: batch axes (b, kv head), then q's free axes (t, g), then k's (s).
	scores := Dot(q5, k).WithOutputDType(dtypes.Float32).General([]int{4}, []int{0, 2}, []int{3}, []int{0, 2})
	scores = MulScalar(scores, 1/math.Sqrt(float64(d)))
	mask := BroadcastToDims(Reshape(allowed, b, 1, t, 1, s), b, nKV, t, groups, s)
	scores = Where(mask, scores, Scalar(q.Graph(), dtypes.Float32, maskedScore))
	probs := ConvertDType(Softmax(scores, -1), v.DType())
	// [B, nKV, T, G, D]
	out := DotGeneral(probs, []int{4}, []int{0, 1}, v, []int{1}, []int{0, 2})
	out = TransposeAllDims(out, 0, 2, 1, 3, 4)
	return Reshape(out, b, t, c.NumAttentionHeads*d)
}

// attendFn receives layer l's post-RoPE q [B,T,nH,D], k and v [B,T,nKV,D] and returns the
// attention output [B,T,nH·D]; it decides where keys come from (this call or a KV cache).
type attendFn func(layer int, q, k, v *Node) *Node

// decoder runs the embeddings and every decoder block and returns the final-normed hidden
// states [B, T, H].
func (m *Model) decoder(ids, positions *Node, attend attendFn) *Node {
	c := m.Config
	g := ids.Graph()
	dims := ids.Shape().Dimensions
	b, t := dims[0], dims[1]
	x := Gather(m.weight(g, "model.embed_tokens.weight"), ExpandAxes(ids, -1)) // [B, T, H]
	cos, sin := m.ropeTables(positions)
	for l := 0; l < c.NumHiddenLayers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		h := m.rmsNorm(x, p+"input_layernorm.weight")
		q := Reshape(m.linear(h, p+"self_attn.q_proj"), b, t, c.NumAttentionHeads, c.HeadDim)
		k := Reshape(m.linear(h, p+"self_attn.k_proj"), b, t, c.NumKeyValueHeads, c.HeadDim)
		v := Reshape(m.linear(h, p+"self_attn.v_proj"), b, t, c.NumKeyValueHeads, c.HeadDim)
		if m.hasWeight(p + "self_attn.q_norm.weight") { // Qwen3: per-head RMSNorm before RoPE
			q = m.rmsNorm(q, p+"self_attn.q_norm.weight")
			k = m.rmsNorm(k, p+"self_attn.k_norm.weight")
		}
		q = applyRope(q, cos, sin)
		k = applyRope(k, cos, sin)
		a := attend(l, q, k, v)
		x = Add(x, m.linear(a, p+"self_attn.o_proj"))
		h = m.rmsNorm(x, p+"post_attention_layernorm.weight")
		gate := m.linear(h, p+"mlp.gate_proj")
		up := m.linear(h, p+"mlp.up_proj")
		x = Add(x, m.linear(Mul(silu(gate), up), p+"mlp.down_proj"))
	}
	return m.rmsNorm(x, "model.norm.weight")
}

// silu is x·sigmoid(x) computed in float32 and rounded once to x's dtype, as torch's SiLU
// kernel does for bf16 (rounding the sigmoid first adds a second bf16 error per element).
func silu(x *Node) *Node {
	if x.DType() == dtypes.Float32 {
		return Mul(x, Sigmoid(x))
	}
	xf := ConvertDType(x, dtypes.Float32)
	return ConvertDType(Mul(xf, Sigmoid(xf)), x.DType())
}

// lmHead projects hidden states [..., H] to float32 logits [..., V].
func (m *Model) lmHead(x *Node) *Node {
	name := "lm_head.weight"
	if m.Config.TieWordEmbeddings {
		name = "model.embed_tokens.weight"
	}
	return ConvertDType(lora.LinearT(x, m.weight(x.Graph(), name)), dtypes.Float32)
}

// positionsFromMask returns transformers' position ids for a padded batch: the running count of
// real tokens minus one (0 at padding). It works for left and right padding alike.
func positionsFromMask(valid *Node) *Node {
	pos := SubScalar(CumSum(ConvertDType(valid, dtypes.Int32), 1), 1)
	return MaxScalar(pos, 0)
}

// causalAllowed returns [B, T, T]: key s is visible to query t when s <= t and s is valid.
func causalAllowed(valid *Node) *Node {
	g := valid.Graph()
	dims := valid.Shape().Dimensions
	b, t := dims[0], dims[1]
	qPos := Iota(g, shapes.Make(dtypes.Int32, 1, t, 1), 1)
	kPos := Iota(g, shapes.Make(dtypes.Int32, 1, 1, t), 2)
	causal := BroadcastToDims(GreaterOrEqual(qPos, kPos), b, t, t)
	keys := BroadcastToDims(Reshape(valid, b, 1, t), b, t, t)
	return LogicalAnd(causal, keys)
}

// Hidden builds the full-sequence forward pass and returns the final hidden states [B, T, H].
// ids and mask are [B, T] integers; mask is 1 for real tokens and 0 for padding (left or right).
func (m *Model) Hidden(ids, mask *Node) *Node {
	valid := NotEqual(mask, ZerosLike(mask))
	positions := positionsFromMask(valid)
	allowed := causalAllowed(valid)
	return m.decoder(ids, positions, func(_ int, q, k, v *Node) *Node {
		return m.attention(q, k, v, allowed)
	})
}

// Logits builds the full-sequence forward pass: float32 logits [B, T, V] for ids and mask [B, T].
func (m *Model) Logits(ids, mask *Node) *Node {
	return m.lmHead(m.Hidden(ids, mask))
}
