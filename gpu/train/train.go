// Package train fine-tunes the engine's models with LoRA: supervised fine-tuning on chat
// examples, with the loss on the completion tokens only.
//
// Data: ReadJSONL reads OpenAI's chat fine-tuning format; Tokenize renders each example with the
// model's chat template (package chat) into prompt and completion tokens. Batches: each epoch's
// order is a seeded shuffle in which windows of examples are grouped by length; sequences are
// right-padded to lm.Bucket lengths and batches to lm.BatchBucket sizes, so few graphs compile.
//
// Optimisation: AdamW (decoupled weight decay, torch's update rule) on the LoRA matrices only,
// a cosine learning-rate schedule with linear warmup, gradient accumulation over micro-batches
// (token-weighted, so k micro-batches equal one batch k times larger) and clipping to a global
// gradient norm. The base weights are frozen and stay in the model's dtype — bfloat16 on the
// GPU — while the LoRA matrices, their gradients and the optimizer moments are float32, as in
// PEFT with mixed precision.
//
// Checkpoints hold the adapter (PEFT format), the optimizer moments, the step, the data order
// position and the dropout RNG state; resuming one gives the same losses as never stopping.
// Run reports progress after every step and, when its context ends, stops at the next step
// boundary and writes a checkpoint.
package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"

	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/lora"
)

// Config sets up a training run. Zero fields take the defaults noted on each.
type Config struct {
	// LoRA is the adapter to create (Rank 16, Alpha 2×Rank, Dropout as given, all linear
	// layers). Ignored when resuming: the checkpoint's adapter is loaded.
	LoRA lora.Config
	// LearningRate is the peak learning rate (2e-4); MinLearningRate is where the cosine
	// decay ends (0).
	LearningRate, MinLearningRate float64
	// WarmupSteps of linear warmup; when 0, WarmupRatio (0.03; negative: none) of the steps.
	WarmupSteps int
	WarmupRatio float64
	// Steps is the number of optimizer steps; when 0, Epochs (1) passes over the data.
	Steps  int
	Epochs float64
	// BatchSize is the number of sequences per micro-batch (4); GradAccum the number of
	// micro-batches per optimizer step (1).
	BatchSize, GradAccum int
	// WeightDecay is AdamW's decoupled weight decay (0.01).
	WeightDecay float64
	// Beta1, Beta2 and Epsilon are AdamW's (0.9, 0.999, 1e-8).
	Beta1, Beta2, Epsilon float64
	// MaxGradNorm clips the global gradient norm (1.0; negative: no clipping).
	MaxGradNorm float64
	// Seed fixes the data order, the LoRA initialisation and dropout.
	Seed uint64
	// CheckpointDir receives checkpoints named step-NNNNNN ("" writes none).
	CheckpointDir string
	// CheckpointEvery writes a checkpoint every that many steps (0: only when Run ends).
	CheckpointEvery int
	// KeepCheckpoints is how many checkpoints to keep, newest first (2).
	KeepCheckpoints int
	// Resume is a checkpoint folder to continue from (see LatestCheckpoint).
	Resume string
	// Logger receives progress and warnings; nil means slog.Default().
	Logger *slog.Logger

	// keepAdapter trains the adapter already attached to the model (RunJob's Job.Adapter)
	// instead of a fresh one.
	keepAdapter bool
}

func (c *Config) defaults() {
	if c.LoRA.Rank == 0 {
		c.LoRA.Rank = 16
	}
	if c.LoRA.Alpha == 0 {
		c.LoRA.Alpha = 2 * float64(c.LoRA.Rank)
	}
	if c.LoRA.Seed == 0 {
		c.LoRA.Seed = c.Seed
	}
	setF := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	setF(&c.LearningRate, 2e-4)
	setF(&c.WarmupRatio, 0.03)
	setF(&c.WeightDecay, 0.01)
	setF(&c.Beta1, 0.9)
	setF(&c.Beta2, 0.999)
	setF(&c.Epsilon, 1e-8)
	setF(&c.MaxGradNorm, 1)
	if c.Steps == 0 && c.Epochs == 0 {
		c.Epochs = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = 4
	}
	if c.GradAccum == 0 {
		c.GradAccum = 1
	}
	if c.KeepCheckpoints == 0 {
		c.KeepCheckpoints = 2
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	switch {
	case c.BatchSize < 0 || c.GradAccum < 0:
		return fmt.Errorf("train: batch size %d and accumulation %d must be positive", c.BatchSize, c.GradAccum)
	case c.Steps < 0 || c.Epochs < 0:
		return errors.New("train: steps and epochs must not be negative")
	case c.LearningRate < 0 || c.MinLearningRate < 0 || c.MinLearningRate > c.LearningRate:
		return fmt.Errorf("train: learning rates %v → %v are not 0 <= min <= peak", c.LearningRate, c.MinLearningRate)
	case c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1:
		return fmt.Errorf("train: AdamW betas %v, %v must be in [0, 1)", c.Beta1, c.Beta2)
	case c.WeightDecay < 0:
		return errors.New("train: weight decay must not be negative")
	}
	return nil
}

// State is where a run stands; it is saved in checkpoints.
type State struct {
	// Step is the number of optimizer steps done.
	Step int `json:"step"`
	// Epoch and Batch locate the next micro-batch: Batch indexes the micro-batches of Epoch.
	Epoch int `json:"epoch"`
	Batch int `json:"batch"`
	// Tokens is the number of real tokens (prompt and completion) trained on so far.
	Tokens int64 `json:"tokens"`
	// Loss is the last step's loss.
	Loss float64 `json:"loss"`
}

// Progress is reported after every optimizer step.
type Progress struct {
	Step, Steps int
	// Epoch is the fraction of passes over the data done.
	Epoch float64
	// Loss is the step's mean negative log-likelihood per completion token.
	Loss float64
	// LearningRate is the rate the step used; GradNorm the global gradient norm before clipping.
	LearningRate, GradNorm float64
	// Tokens is the number of real tokens of the step (padding excluded); TokensPerSec their rate.
	Tokens       int
	TokensPerSec float64
	StepTime     time.Duration
	// Elapsed is the time of this Run so far; ETA estimates the rest from the steps after the
	// first (which includes compiling the graphs).
	Elapsed, ETA time.Duration
}

// Result is what Run did.
type Result struct {
	State State
	// Checkpoint is the last checkpoint written ("" if none).
	Checkpoint string
}

// Trainer trains a LoRA adapter on one model. It is not safe for concurrent use, and the
// model must not serve requests while it trains (the adapter changes under it).
type Trainer struct {
	m    *lm.Model
	cfg  Config
	log  *slog.Logger
	data []Sequence
	lens []int

	params, acc, expAvg, expAvgSq []*gmodel.Variable
	micro, apply, eval            *gmodel.Exec

	state       State
	total       int // optimizer steps in the run
	warmup      int
	perEpoch    int // micro-batches per epoch
	order       [][]int
	orderEpoch  int
	fingerprint string
}

// New prepares training on data: it attaches a fresh adapter to m (or the one of cfg.Resume,
// with its optimizer and data-order state) and builds the training graphs.
func New(m *lm.Model, data []Sequence, cfg Config) (*Trainer, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, errors.New("train: no training sequences")
	}
	t := &Trainer{m: m, cfg: cfg, log: cfg.Logger.With("component", "train"), data: data, orderEpoch: -1}
	t.lens = make([]int, len(data))
	for i, s := range data {
		if s.PromptLen < 1 || s.Completion() < 1 {
			return nil, fmt.Errorf("train: sequence %d has %d prompt and %d completion tokens; both must be positive", i, s.PromptLen, s.Completion())
		}
		if len(s.IDs) > m.Config.MaxPositionEmbeddings {
			return nil, fmt.Errorf("train: sequence %d has %d tokens, more than the model's %d positions", i, len(s.IDs), m.Config.MaxPositionEmbeddings)
		}
		for _, id := range s.IDs {
			if id < 0 || id >= m.Config.VocabSize {
				return nil, fmt.Errorf("train: sequence %d: token id %d out of range [0,%d)", i, id, m.Config.VocabSize)
			}
		}
		t.lens[i] = len(s.IDs)
	}
	t.fingerprint = fingerprint(data)
	t.perEpoch = (len(data) + cfg.BatchSize - 1) / cfg.BatchSize
	t.total = cfg.Steps
	if t.total == 0 {
		t.total = max(1, int(math.Ceil(cfg.Epochs*float64(t.perEpoch)/float64(cfg.GradAccum))))
	}
	t.warmup = cfg.WarmupSteps
	if t.warmup == 0 && cfg.WarmupRatio > 0 {
		t.warmup = int(math.Ceil(cfg.WarmupRatio * float64(t.total)))
	}

	var moments *savedMoments
	if cfg.Resume != "" {
		st, mom, err := t.loadCheckpoint(cfg.Resume)
		if err != nil {
			return nil, err
		}
		t.state, moments = st, mom
	} else {
		if !cfg.keepAdapter || m.Adapter() == nil {
			if _, err := m.NewAdapter(cfg.LoRA); err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
		}
		if err := m.Store().SetRNGStateFromSeed(int64(cfg.Seed)); err != nil {
			return nil, fmt.Errorf("train: seed dropout: %w", err)
		}
	}
	t.params = m.TrainableVariables()
	for _, p := range t.params {
		mv, vv := moments.get(p.Path())
		for _, spec := range []struct {
			dst   *[]*gmodel.Variable
			scope string
			vals  []float32
		}{{&t.acc, accScope, nil}, {&t.expAvg, expAvgScope, mv}, {&t.expAvgSq, expAvgSqName, vv}} {
			v, err := stateVar(m.Store(), spec.scope, p, spec.vals)
			if err != nil {
				t.Close()
				return nil, err
			}
			*spec.dst = append(*spec.dst, v)
		}
	}
	var err error
	if t.micro, err = t.buildMicroExec(); err == nil {
		if t.apply, err = t.buildApplyExec(); err == nil {
			t.eval, err = t.buildEvalExec()
		}
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("train: build graphs: %w", err)
	}
	return t, nil
}

// Close releases the trainer's graphs and optimizer state; the trained adapter stays attached
// to the model.
func (t *Trainer) Close() {
	for _, e := range []*gmodel.Exec{t.micro, t.apply, t.eval} {
		if e != nil {
			e.Finalize()
		}
	}
	t.micro, t.apply, t.eval = nil, nil, nil
	if err := t.m.Store().DeleteVariablesInScope(stateScope); err != nil {
		t.log.Warn("release optimizer state", "err", err)
	}
}

// State returns where the run stands.
func (t *Trainer) State() State { return t.state }

// TotalSteps returns the number of optimizer steps the run makes.
func (t *Trainer) TotalSteps() int { return t.total }

// SaveAdapter writes the adapter as a PEFT folder.
func (t *Trainer) SaveAdapter(dir string) error {
	ad := t.m.Adapter()
	if ad == nil {
		return errors.New("train: no adapter attached")
	}
	return ad.Save(dir)
}

// batchAt returns the micro-batch at (epoch, index), computing the epoch's order when needed.
func (t *Trainer) batchAt(epoch, index int) []int {
	if t.orderEpoch != epoch {
		t.order = epochBatches(t.lens, t.cfg.BatchSize, t.cfg.Seed, epoch)
		t.orderEpoch = epoch
	}
	return t.order[index]
}

// Run trains until the configured number of steps. onProgress, if not nil, is called after each
// step. When ctx ends, Run stops at the next step boundary (a step half accumulated is
// dropped), writes a checkpoint when CheckpointDir is set, and returns ctx's error.
func (t *Trainer) Run(ctx context.Context, onProgress func(Progress)) (Result, error) {
	var res Result
	if t.micro == nil {
		return res, errors.New("train: trainer is closed")
	}
	// Gradient sums left by a step cut short belong to no step.
	for _, p := range t.params {
		if _, err := stateVar(t.m.Store(), accScope, p, nil); err != nil {
			return res, err
		}
	}
	start := time.Now()
	firstStep := t.state.Step
	var steady time.Duration // time of the steps after this Run's first
	checkpoint := func() error {
		if t.cfg.CheckpointDir == "" {
			return nil
		}
		dir, err := t.writeCheckpoint()
		if err != nil {
			return err
		}
		res.Checkpoint = dir
		return nil
	}
	for t.state.Step < t.total {
		stepStart := time.Now()
		next := t.state
		var nll float64
		var lossTokens, tokens int
		for k := 0; k < t.cfg.GradAccum; k++ {
			if err := ctx.Err(); err != nil {
				res.State = t.state
				if cerr := checkpoint(); cerr != nil {
					return res, errors.Join(err, cerr)
				}
				return res, fmt.Errorf("train: stopped at step %d: %w", t.state.Step, err)
			}
			mb := makeBatch(t.data, t.batchAt(next.Epoch, next.Batch))
			if next.Batch++; next.Batch >= t.perEpoch {
				next.Epoch, next.Batch = next.Epoch+1, 0
			}
			out, err := t.micro.Call(mb.ids, mb.mask, mb.lossMask)
			mb.finalize()
			if err != nil {
				return res, fmt.Errorf("train: step %d: %w", t.state.Step+1, err)
			}
			v, err := readScalar(out[0])
			if err != nil {
				return res, err
			}
			nll += v
			lossTokens += mb.lossTokens
			tokens += mb.tokens
		}
		lr := LearningRate(t.state.Step, t.total, t.warmup, t.cfg.LearningRate, t.cfg.MinLearningRate)
		n := float64(t.state.Step + 1)
		bc1 := 1 - math.Pow(t.cfg.Beta1, n)
		bc2 := 1 - math.Pow(t.cfg.Beta2, n)
		out, err := t.apply.Call(scalar32(lr), scalar32(1/float64(max(lossTokens, 1))), scalar32(bc1), scalar32(math.Sqrt(bc2)))
		if err != nil {
			return res, fmt.Errorf("train: step %d: optimizer: %w", t.state.Step+1, err)
		}
		norm, err := readScalar(out[0])
		if err != nil {
			return res, err
		}
		if math.IsNaN(norm) || math.IsInf(norm, 0) {
			t.log.Warn("non-finite gradient: step skipped", "step", t.state.Step+1)
		}
		next.Step++
		next.Tokens += int64(tokens)
		next.Loss = nll / float64(max(lossTokens, 1))
		t.state = next

		elapsed := time.Since(stepStart)
		if t.state.Step-firstStep > 1 {
			steady += elapsed
		}
		if onProgress != nil {
			p := Progress{
				Step: t.state.Step, Steps: t.total, Loss: t.state.Loss, LearningRate: lr, GradNorm: norm,
				Tokens: tokens, TokensPerSec: float64(tokens) / elapsed.Seconds(), StepTime: elapsed,
				Epoch:   float64(t.state.Epoch) + float64(t.state.Batch)/float64(t.perEpoch),
				Elapsed: time.Since(start),
			}
			per := elapsed
			if done := t.state.Step - firstStep - 1; done > 0 {
				per = steady / time.Duration(done)
			}
			p.ETA = per * time.Duration(t.total-t.state.Step)
			onProgress(p)
		}
		if t.cfg.CheckpointEvery > 0 && t.state.Step%t.cfg.CheckpointEvery == 0 && t.state.Step < t.total {
			if err := checkpoint(); err != nil {
				return res, err
			}
		}
	}
	res.State = t.state
	if err := checkpoint(); err != nil {
		return res, err
	}
	return res, nil
}

// EvalLoss returns the mean negative log-likelihood per completion token of seqs under the
// current adapter (no dropout, no update), in batches of BatchSize in the given order.
func (t *Trainer) EvalLoss(ctx context.Context, seqs []Sequence) (float64, error) {
	if t.eval == nil {
		return 0, errors.New("train: trainer is closed")
	}
	var nll float64
	var count int
	for start := 0; start < len(seqs); start += t.cfg.BatchSize {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		idx := make([]int, 0, t.cfg.BatchSize)
		for i := start; i < min(start+t.cfg.BatchSize, len(seqs)); i++ {
			idx = append(idx, i)
		}
		mb := makeBatch(seqs, idx)
		out, err := t.eval.Call(mb.ids, mb.mask, mb.lossMask)
		mb.finalize()
		if err != nil {
			return 0, fmt.Errorf("train: eval: %w", err)
		}
		v, err := readScalar(out[0])
		if err != nil {
			return 0, err
		}
		nll += v
		count += mb.lossTokens
	}
	if count == 0 {
		return 0, errors.New("train: no completion tokens to evaluate")
	}
	return nll / float64(count), nil
}

func readScalar(t *tensors.Tensor) (float64, error) {
	defer t.FinalizeAll()
	v, err := tensors.CopyFlatData[float32](t)
	if err != nil || len(v) != 1 {
		return 0, fmt.Errorf("train: read scalar: %w", err)
	}
	return float64(v[0]), nil
}
