package lm

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive
	gmodel "github.com/gomlx/gomlx/ml/model"

	"opentracy/gpu/engine/lora"
)

// NewAdapter creates a fresh LoRA adapter (B = 0, so outputs are unchanged until trained) on the
// model's linear layers matching cfg and attaches it, replacing any previous adapter.
// cfg.BaseModel defaults to the model folder.
func (m *Model) NewAdapter(cfg lora.Config) (*lora.Adapter, error) {
	if cfg.BaseModel == "" {
		cfg.BaseModel = m.Dir
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.detachLocked(); err != nil {
		return nil, err
	}
	ad, err := lora.New(m.store, cfg, m.LinearModules())
	if err != nil {
		return nil, err
	}
	m.adapter = ad
	m.resetExecsLocked() // compiled graphs were built without this adapter
	return ad, nil
}

// LoadAdapter reads a PEFT LoRA folder (ours or one trained with PEFT) and attaches it,
// replacing any previous adapter.
func (m *Model) LoadAdapter(dir string) (*lora.Adapter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.detachLocked(); err != nil {
		return nil, err
	}
	ad, err := lora.Load(m.store, dir, m.LinearModules())
	if err != nil {
		return nil, err
	}
	m.adapter = ad
	m.resetExecsLocked() // compiled graphs were built without this adapter
	return ad, nil
}

// Adapter returns the attached adapter, or nil.
func (m *Model) Adapter() *lora.Adapter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.adapter
}

// DetachAdapter removes the adapter and its variables. A merged adapter cannot be detached
// (its update is already inside the base weights): reload the model instead.
func (m *Model) DetachAdapter() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.detachLocked()
}

func (m *Model) detachLocked() error {
	if m.adapter == nil {
		return nil
	}
	if m.adapter.Merged() {
		return errors.New("lm: the adapter is merged into the base weights; reload the model to remove it")
	}
	if err := m.store.DeleteVariablesInScope(lora.StorePrefix); err != nil {
		return fmt.Errorf("lm: detach adapter: %w", err)
	}
	m.adapter = nil
	m.resetExecsLocked()
	return nil
}

// MergeAdapter folds the attached adapter into the base weights (W += scale·B·A, computed in
// float32 and rounded once to the model dtype), so inference runs at base-model speed. The
// adapter stays attached, marked merged: Apply adds nothing, Save still writes it.
func (m *Model) MergeAdapter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ad := m.adapter
	if ad == nil {
		return errors.New("lm: no adapter attached")
	}
	if ad.Merged() {
		return nil
	}
	e, err := gmodel.NewExec(m.backend, m.store, func(_ *gmodel.Scope, g *Graph) {
		for _, module := range ad.Modules() {
			v := m.store.GetVariable(BaseScope + module + ".weight")
			w := v.NodeValue(g)
			merged := Add(ConvertDType(w, dtypes.Float32), ad.Delta(g, module))
			v.SetNodeValue(ConvertDType(merged, w.DType()))
		}
	})
	if err != nil {
		return fmt.Errorf("lm: merge adapter: %w", err)
	}
	defer e.Finalize()
	if _, err := e.Call(); err != nil {
		return fmt.Errorf("lm: merge adapter: %w", err)
	}
	ad.SetMerged(true)
	m.resetExecsLocked()
	return nil
}

// TrainableVariables returns the variables a training step should update: the adapter's A and B
// matrices. Base weights are never trainable.
func (m *Model) TrainableVariables() []*gmodel.Variable {
	ad := m.Adapter()
	if ad == nil {
		return nil
	}
	return ad.Variables()
}
