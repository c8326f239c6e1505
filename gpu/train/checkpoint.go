package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"

	"opentracy/gpu/engine/safetensors"
)

// Files of a checkpoint folder, besides the PEFT adapter files.
const (
	// StateFile is the run's position and settings (JSON).
	StateFile = "trainer_state.json"
	// OptimizerFile holds AdamW's moments per LoRA matrix (float32 safetensors, keys
	// "<Store path>.exp_avg" and ".exp_avg_sq").
	OptimizerFile    = "optimizer.safetensors"
	checkpointPrefix = "step-"
	stateFormat      = 1
)

// ErrNoCheckpoint is returned by LatestCheckpoint when the folder holds none.
var ErrNoCheckpoint = errors.New("train: no checkpoint")

// checkpointState is trainer_state.json.
type checkpointState struct {
	Format int `json:"format"`
	State
	// RNG is the dropout random generator's state.
	RNG []uint64 `json:"rng_state"`
	// What the data order depends on: resuming with other values could not replay it.
	Seed        uint64 `json:"seed"`
	BatchSize   int    `json:"batch_size"`
	GradAccum   int    `json:"grad_accum"`
	Data        string `json:"data_fingerprint"`
	Sequences   int    `json:"sequences"`
	TotalSteps  int    `json:"total_steps"`
	WarmupSteps int    `json:"warmup_steps"`
	// Optimizer settings, for the record.
	LearningRate    float64 `json:"learning_rate"`
	MinLearningRate float64 `json:"min_learning_rate"`
	WeightDecay     float64 `json:"weight_decay"`
	Beta1           float64 `json:"beta1"`
	Beta2           float64 `json:"beta2"`
	Epsilon         float64 `json:"epsilon"`
	MaxGradNorm     float64 `json:"max_grad_norm"`
}

// savedMoments are AdamW's moments read from a checkpoint, by LoRA variable path.
type savedMoments struct {
	m, v map[string][]float32
}

// get returns the moments of a variable (nil, nil when starting fresh).
func (s *savedMoments) get(path string) (m, v []float32) {
	if s == nil {
		return nil, nil
	}
	return s.m[path], s.v[path]
}

func rngVariable(store *gmodel.Store) *gmodel.Variable {
	return store.GetVariable("/" + gmodel.RNGStateVariableName)
}

// writeCheckpoint writes CheckpointDir/step-NNNNNN atomically (a .tmp folder renamed into
// place) and removes the checkpoints beyond KeepCheckpoints.
func (t *Trainer) writeCheckpoint() (string, error) {
	root := t.cfg.CheckpointDir
	dir := filepath.Join(root, fmt.Sprintf("%s%06d", checkpointPrefix, t.state.Step))
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := t.saveCheckpoint(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	t.log.Info("checkpoint written", "dir", dir, "step", t.state.Step)
	steps, err := checkpointSteps(root)
	if err == nil && len(steps) > t.cfg.KeepCheckpoints {
		for _, s := range steps[:len(steps)-t.cfg.KeepCheckpoints] {
			old := filepath.Join(root, fmt.Sprintf("%s%06d", checkpointPrefix, s))
			if err := os.RemoveAll(old); err != nil {
				t.log.Warn("remove old checkpoint", "dir", old, "err", err)
			}
		}
	}
	return dir, nil
}

// saveCheckpoint writes the adapter, the optimizer moments and the state into dir.
func (t *Trainer) saveCheckpoint(dir string) error {
	if err := t.SaveAdapter(dir); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	var ts []safetensors.Tensor
	for i, p := range t.params {
		for _, part := range []struct {
			v      *gmodel.Variable
			suffix string
		}{{t.expAvg[i], ".exp_avg"}, {t.expAvgSq[i], ".exp_avg_sq"}} {
			vals, err := variableData[float32](part.v)
			if err != nil {
				return err
			}
			st, err := safetensors.FromFloat32(p.Path()+part.suffix, p.Shape().Dimensions, vals, safetensors.F32)
			if err != nil {
				return fmt.Errorf("train: checkpoint: %w", err)
			}
			ts = append(ts, st)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, OptimizerFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	c := t.cfg
	cs := checkpointState{
		Format: stateFormat, State: t.state, Seed: c.Seed, BatchSize: c.BatchSize, GradAccum: c.GradAccum,
		Data: t.fingerprint, Sequences: len(t.data), TotalSteps: t.total, WarmupSteps: t.warmup,
		LearningRate: c.LearningRate, MinLearningRate: c.MinLearningRate, WeightDecay: c.WeightDecay,
		Beta1: c.Beta1, Beta2: c.Beta2, Epsilon: c.Epsilon, MaxGradNorm: c.MaxGradNorm,
	}
	if v := rngVariable(t.m.Store()); v != nil {
		rng, err := variableData[uint64](v)
		if err != nil {
			return err
		}
		cs.RNG = rng
	}
	js, err := json.MarshalIndent(cs, "", "  ")
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	return nil
}

// loadCheckpoint attaches the checkpoint's adapter, restores the dropout RNG and returns the
// state and the optimizer moments. It refuses a checkpoint of other data or batching, which
// could not be continued exactly.
func (t *Trainer) loadCheckpoint(dir string) (State, *savedMoments, error) {
	raw, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return State{}, nil, fmt.Errorf("train: resume: %w", err)
	}
	var cs checkpointState
	if err := json.Unmarshal(raw, &cs); err != nil {
		return State{}, nil, fmt.Errorf("train: resume: %s: %w", StateFile, err)
	}
	if cs.Format != stateFormat {
		return State{}, nil, fmt.Errorf("train: resume: %s has format %d, want %d", StateFile, cs.Format, stateFormat)
	}
	c := t.cfg
	switch {
	case cs.Data != t.fingerprint:
		return State{}, nil, fmt.Errorf("train: resume: the checkpoint was trained on other data (%d sequences, fingerprint %.12s…; now %d, %.12s…)",
			cs.Sequences, cs.Data, len(t.data), t.fingerprint)
	case cs.Seed != c.Seed || cs.BatchSize != c.BatchSize || cs.GradAccum != c.GradAccum:
		return State{}, nil, fmt.Errorf("train: resume: the checkpoint used seed %d, batch %d, accumulation %d; now %d, %d, %d",
			cs.Seed, cs.BatchSize, cs.GradAccum, c.Seed, c.BatchSize, c.GradAccum)
	}
	if cs.TotalSteps != t.total || cs.WarmupSteps != t.warmup {
		t.log.Warn("resuming with another schedule", "steps_before", cs.TotalSteps, "steps_now", t.total,
			"warmup_before", cs.WarmupSteps, "warmup_now", t.warmup)
	}
	if cs.Step > t.total {
		return State{}, nil, fmt.Errorf("train: resume: the checkpoint is at step %d, past the run's %d steps", cs.Step, t.total)
	}
	if _, err := t.m.LoadAdapter(dir); err != nil {
		return State{}, nil, fmt.Errorf("train: resume: %w", err)
	}
	store := t.m.Store()
	if err := store.SetRNGStateFromSeed(int64(c.Seed)); err != nil {
		return State{}, nil, fmt.Errorf("train: resume: %w", err)
	}
	if len(cs.RNG) > 0 {
		v := rngVariable(store)
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(cs.RNG, v.Shape().Dimensions...)); err != nil {
			return State{}, nil, fmt.Errorf("train: resume: RNG state: %w", err)
		}
	}
	f, err := safetensors.Open(filepath.Join(dir, OptimizerFile))
	if err != nil {
		return State{}, nil, fmt.Errorf("train: resume: %w", err)
	}
	defer f.Close()
	mom := &savedMoments{m: map[string][]float32{}, v: map[string][]float32{}}
	for _, p := range t.m.TrainableVariables() {
		for _, part := range []struct {
			dst    map[string][]float32
			suffix string
		}{{mom.m, ".exp_avg"}, {mom.v, ".exp_avg_sq"}} {
			st, err := f.Tensor(p.Path() + part.suffix)
			if err != nil {
				return State{}, nil, fmt.Errorf("train: resume: %w", err)
			}
			vals, err := safetensors.ToFloat32(st)
			if err != nil {
				return State{}, nil, fmt.Errorf("train: resume: %w", err)
			}
			if len(vals) != p.Shape().Size() {
				return State{}, nil, fmt.Errorf("train: resume: %s%s has %d values, want %d", p.Path(), part.suffix, len(vals), p.Shape().Size())
			}
			part.dst[p.Path()] = vals
		}
	}
	t.log.Info("resuming", "checkpoint", dir, "step", cs.Step, "epoch", cs.Epoch)
	return cs.State, mom, nil
}

// LatestCheckpoint returns the newest complete checkpoint folder under dir, or ErrNoCheckpoint.
func LatestCheckpoint(dir string) (string, error) {
	steps, err := checkpointSteps(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("train: %w", err)
	}
	if len(steps) == 0 {
		return "", fmt.Errorf("%w in %s", ErrNoCheckpoint, dir)
	}
	return filepath.Join(dir, fmt.Sprintf("%s%06d", checkpointPrefix, steps[len(steps)-1])), nil
}

// checkpointSteps lists the steps of the complete checkpoints under root, ascending.
func checkpointSteps(root string) ([]int, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), checkpointPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			continue // e.g. a .tmp folder of a write that did not finish
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), StateFile)); err == nil {
			steps = append(steps, n)
		}
	}
	sort.Ints(steps)
	return steps, nil
}

// variableData copies a variable's value to the host.
func variableData[T float32 | uint64](v *gmodel.Variable) ([]T, error) {
	val, err := v.Value()
	if err != nil {
		return nil, fmt.Errorf("train: read %s: %w", v.Path(), err)
	}
	out, err := tensors.CopyFlatData[T](val)
	if err != nil {
		return nil, fmt.Errorf("train: read %s: %w", v.Path(), err)
	}
	return out, nil
}
