package lm

import (
	"context"
	"fmt"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
)

// maxCompiledShapes bounds how many input shapes each executor keeps compiled; bucketing keeps
// the real number far lower.
const maxCompiledShapes = 64

// execs holds the compiled executors of one model configuration (they are rebuilt when an
// adapter is attached or merged, because the graphs change).
type execs struct {
	logits, prefill, decode, grow *gmodel.Exec
}

func (e *execs) finalize() {
	for _, x := range []*gmodel.Exec{e.logits, e.prefill, e.decode, e.grow} {
		if x != nil {
			x.Finalize()
		}
	}
}

// resetExecsLocked drops compiled graphs; m.mu must be held.
func (m *Model) resetExecsLocked() {
	m.execs.finalize()
	m.execs = &execs{}
}

// getExec returns (creating on first use) one of the executors.
func (m *Model) getExec(pick func(*execs) **gmodel.Exec, build func() (*gmodel.Exec, error)) (*gmodel.Exec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	slot := pick(m.execs)
	if *slot == nil {
		e, err := build()
		if err != nil {
			return nil, fmt.Errorf("lm: build executor: %w", err)
		}
		e.SetMaxCache(maxCompiledShapes)
		*slot = e
	}
	return *slot, nil
}

func (m *Model) logitsExec() (*gmodel.Exec, error) {
	return m.getExec(func(e *execs) **gmodel.Exec { return &e.logits }, func() (*gmodel.Exec, error) {
		return gmodel.NewExec(m.backend, m.store, func(_ *gmodel.Scope, ids, mask *Node) *Node {
			return m.Logits(ids, mask)
		})
	})
}

// ForwardLogits runs the full-sequence forward pass on a rectangular batch and returns float32
// logits [B][T][V]. mask is 1 for real tokens and 0 for padding (nil: all real). It compiles one
// graph per distinct [B, T]; pad with Bucket to keep that number small.
func (m *Model) ForwardLogits(ctx context.Context, ids, mask [][]int) ([][][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := len(ids)
	if b == 0 || len(ids[0]) == 0 {
		return nil, fmt.Errorf("lm: empty batch")
	}
	t := len(ids[0])
	idsFlat := make([]int32, 0, b*t)
	maskFlat := make([]int32, 0, b*t)
	for r := range ids {
		if len(ids[r]) != t || (mask != nil && len(mask[r]) != t) {
			return nil, fmt.Errorf("lm: row %d is not %d tokens long", r, t)
		}
		for i, id := range ids[r] {
			if id < 0 || id >= m.Config.VocabSize {
				return nil, fmt.Errorf("lm: token id %d out of range [0,%d)", id, m.Config.VocabSize)
			}
			idsFlat = append(idsFlat, int32(id))
			if mask == nil || mask[r][i] != 0 {
				maskFlat = append(maskFlat, 1)
			} else {
				maskFlat = append(maskFlat, 0)
			}
		}
	}
	e, err := m.logitsExec()
	if err != nil {
		return nil, err
	}
	out, err := e.Call(tensors.FromFlatDataAndDimensions(idsFlat, b, t), tensors.FromFlatDataAndDimensions(maskFlat, b, t))
	if err != nil {
		return nil, fmt.Errorf("lm: forward: %w", err)
	}
	defer out[0].FinalizeAll()
	flat, err := tensors.CopyFlatData[float32](out[0])
	if err != nil {
		return nil, fmt.Errorf("lm: read logits: %w", err)
	}
	v := m.Config.VocabSize
	res := make([][][]float32, b)
	for r := range res {
		res[r] = make([][]float32, t)
		for i := range res[r] {
			off := (r*t + i) * v
			res[r][i] = flat[off : off+v : off+v]
		}
	}
	return res, nil
}

// int32Tensor builds a host tensor from int32 values.
func int32Tensor(vals []int32, dims ...int) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(vals, dims...)
}
