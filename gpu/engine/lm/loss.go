package lm

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive
	gmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
)

// TokenLogProbs returns log p(ids[:, t+1] | ids[:, :t+1]) as float32 [B, T-1] for ids and
// mask [B, T] (mask: 1 real token, 0 padding). It is the building block of every loss: SFT
// cross-entropy, and the policy/anchor log-ratios of BOND.
//
// The log-softmax is taken with a gather of the label logit and a logsumexp, never a one-hot
// [B, T, V] tensor; the last position's logits are not computed at all.
func (m *Model) TokenLogProbs(ids, mask *Node) *Node {
	t := ids.Shape().Dimensions[1]
	hidden := m.Hidden(ids, mask)
	logits := m.lmHead(SliceAxis(hidden, 1, AxisRange(0, t-1))) // [B, T-1, V]
	labels := SliceAxis(ids, 1, AxisRange(1, t))
	return GatherLogProbs(logits, labels)
}

// GatherLogProbs returns log softmax(logits)[label] for logits [B, T, V] and integer labels
// [B, T], as float32 [B, T].
func GatherLogProbs(logits, labels *Node) *Node {
	g := logits.Graph()
	dims := logits.Shape().Dimensions
	b, t, v := dims[0], dims[1], dims[2]
	if logits.DType() != dtypes.Float32 {
		logits = ConvertDType(logits, dtypes.Float32)
	}
	peak := StopGradient(ReduceAndKeep(logits, ReduceMax, -1))
	lse := Add(Log(ReduceSum(Exp(Sub(logits, peak)), -1)), Reshape(peak, b, t))
	n := b * t
	rows := Iota(g, shapes.Make(dtypes.Int32, n, 1), 0)
	idx := Concatenate([]*Node{rows, Reshape(ConvertDType(labels, dtypes.Int32), n, 1)}, 1)
	picked := Reshape(Gather(Reshape(logits, n, v), idx), b, t)
	return Sub(picked, lse)
}

// lossWeights returns the float32 [B, T-1] weights of the predictions of tokens 1..T-1: 1 where
// the predicted token is real and marked in lossMask.
func lossWeights(mask, lossMask *Node) *Node {
	t := mask.Shape().Dimensions[1]
	isReal := NotEqual(mask, ZerosLike(mask))
	counted := NotEqual(lossMask, ZerosLike(lossMask))
	w := LogicalAnd(isReal, counted)
	return ConvertDType(SliceAxis(w, 1, AxisRange(1, t)), dtypes.Float32)
}

// SequenceLogProbs returns, per row, the sum of the log-probabilities of the tokens marked in
// lossMask (float32 [B]): the log-likelihood of each completion.
func (m *Model) SequenceLogProbs(ids, mask, lossMask *Node) *Node {
	return ReduceSum(Mul(m.TokenLogProbs(ids, mask), lossWeights(mask, lossMask)), -1)
}

// Loss is the supervised fine-tuning loss: mean negative log-likelihood over the tokens marked in
// lossMask (the completion tokens; lossMask[b, t] = 1 means token ids[b, t] is predicted and
// counted). ids, mask and lossMask are [B, T] integers; the result is a float32 scalar.
func (m *Model) Loss(ids, mask, lossMask *Node) *Node {
	w := lossWeights(mask, lossMask)
	nll := Neg(ReduceAllSum(Mul(m.TokenLogProbs(ids, mask), w)))
	return Div(nll, MaxScalar(ReduceAllSum(w), 1))
}

// TrainModelFn adapts Loss to gomlx's train.Trainer. The batch inputs are [ids, mask, lossMask]
// ([B, T] int32 each, no labels); the function registers the loss with train.AddMainLoss and
// returns it as the single prediction, so the trainer is built with a nil loss function.
func (m *Model) TrainModelFn() train.ModelFn {
	return func(_ *gmodel.Scope, _ any, inputs []*Node) []*Node {
		loss := m.Loss(inputs[0], inputs[1], inputs[2])
		train.AddMainLoss(loss)
		return []*Node{loss}
	}
}
