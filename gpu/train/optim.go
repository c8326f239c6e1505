package train

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph code reads better unqualified
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
)

// Store scopes of the trainer's own variables, all float32 and shaped like the LoRA matrices.
const (
	stateScope   = "/train/"
	accScope     = stateScope + "grad_sum"   // gradient sums of the micro-batches of this step
	expAvgScope  = stateScope + "exp_avg"    // AdamW first moment
	expAvgSqName = stateScope + "exp_avg_sq" // AdamW second moment
)

// LearningRate returns the learning rate of optimizer step `step` (0-based) out of total:
// linear warmup from peak/warmup to peak over the first warmup steps, then a cosine decay
// from peak towards minLR, reached after the last step.
func LearningRate(step, total, warmup int, peak, minLR float64) float64 {
	if step < warmup {
		return peak * float64(step+1) / float64(warmup)
	}
	decay := total - warmup
	if decay <= 0 {
		return peak
	}
	progress := float64(step-warmup) / float64(decay)
	return minLR + (peak-minLR)*0.5*(1+math.Cos(math.Pi*progress))
}

// stateVar creates (or resets) a float32 variable shaped like v under scope, with vals or zeros.
func stateVar(store *gmodel.Store, scope string, v *gmodel.Variable, vals []float32) (*gmodel.Variable, error) {
	dims := v.Shape().Dimensions
	if vals == nil {
		vals = make([]float32, v.Shape().Size())
	}
	t := tensors.FromFlatDataAndDimensions(vals, dims...)
	path := scope + v.Path()
	if old := store.GetVariable(path); old != nil {
		if err := old.SetValue(t); err != nil {
			return nil, fmt.Errorf("train: set %s: %w", path, err)
		}
		return old, nil
	}
	nv, err := store.CreateVariable(path, t)
	if err != nil {
		return nil, fmt.Errorf("train: create %s: %w", path, err)
	}
	return nv.SetTrainable(false), nil
}

// buildMicroExec returns the executor of one micro-batch: the summed negative log-likelihood
// of its completion tokens, whose gradient with respect to the LoRA matrices is added to the
// gradient sums. Summing (not averaging) per micro-batch and dividing by the step's token count
// in apply makes k accumulated micro-batches equal one batch k times larger.
func (t *Trainer) buildMicroExec() (*gmodel.Exec, error) {
	store := t.m.Store()
	return gmodel.NewExec(t.m.Backend(), store, func(_ *gmodel.Scope, ids, mask, lossMask *Node) *Node {
		g := ids.Graph()
		store.SetTraining(g, true) // LoRA dropout is active only in training graphs
		nll := Neg(ReduceAllSum(t.m.SequenceLogProbs(ids, mask, lossMask)))
		params := make([]*Node, len(t.params))
		for i, v := range t.params {
			params[i] = v.NodeValue(g)
		}
		grads := Gradient(nll, params...)
		for i, acc := range t.acc {
			acc.SetNodeValue(Add(acc.NodeValue(g), grads[i]))
		}
		return nll
	})
}

// buildEvalExec returns the summed NLL of a batch's completion tokens, without training.
func (t *Trainer) buildEvalExec() (*gmodel.Exec, error) {
	return gmodel.NewExec(t.m.Backend(), t.m.Store(), func(_ *gmodel.Scope, ids, mask, lossMask *Node) *Node {
		return Neg(ReduceAllSum(t.m.SequenceLogProbs(ids, mask, lossMask)))
	})
}

// buildApplyExec returns the optimizer step. Inputs (float32 scalars): the learning rate,
// 1/number of completion tokens of the step, and Adam's bias corrections 1-β1^t and
// √(1-β2^t) (computed on the host in float64). It averages the gradient sums, clips them to
// the global norm MaxGradNorm (as torch.nn.utils.clip_grad_norm_), applies AdamW with
// decoupled weight decay exactly as torch.optim.AdamW does, zeroes the sums and returns the
// global norm before clipping. A non-finite norm leaves parameters and moments untouched.
func (t *Trainer) buildApplyExec() (*gmodel.Exec, error) {
	c := t.cfg
	return gmodel.NewExec(t.m.Backend(), t.m.Store(), func(_ *gmodel.Scope, lr, invTokens, bc1, sqrtBC2 *Node) *Node {
		g := lr.Graph()
		grads := make([]*Node, len(t.params))
		sumSq := Scalar(g, dtypes.Float32, 0)
		for i, acc := range t.acc {
			grads[i] = Mul(acc.NodeValue(g), invTokens)
			sumSq = Add(sumSq, ReduceAllSum(Square(grads[i])))
		}
		norm := Sqrt(sumSq)
		coef := Scalar(g, dtypes.Float32, 1)
		if c.MaxGradNorm > 0 {
			coef = MinScalar(Div(Scalar(g, dtypes.Float32, c.MaxGradNorm), AddScalar(norm, 1e-6)), 1.0)
		}
		finite := IsFinite(norm)
		decay := OneMinus(MulScalar(lr, c.WeightDecay))
		stepSize := Div(lr, bc1)
		for i, p := range t.params {
			dims := p.Shape().Dimensions
			ok := BroadcastToDims(finite, dims...)
			grad := Mul(grads[i], coef)
			m0, v0, p0 := t.expAvg[i].NodeValue(g), t.expAvgSq[i].NodeValue(g), p.NodeValue(g)
			m1 := Add(MulScalar(m0, c.Beta1), MulScalar(grad, 1-c.Beta1))
			v1 := Add(MulScalar(v0, c.Beta2), MulScalar(Square(grad), 1-c.Beta2))
			denom := AddScalar(Div(Sqrt(v1), sqrtBC2), c.Epsilon)
			p1 := Sub(Mul(p0, decay), Mul(stepSize, Div(m1, denom)))
			t.expAvg[i].SetNodeValue(Where(ok, m1, m0))
			t.expAvgSq[i].SetNodeValue(Where(ok, v1, v0))
			p.SetNodeValue(Where(ok, p1, p0))
			t.acc[i].SetNodeValue(ZerosLike(grads[i]))
		}
		return norm
	})
}

func scalar32(v float64) *tensors.Tensor { return tensors.FromScalar(float32(v)) }
