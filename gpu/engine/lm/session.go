package lm

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/core/tensors"
	gmodel "github.com/gomlx/gomlx/ml/model"
)

// ErrSessionFull is returned by Session.Step once the session's token budget is used up.
var ErrSessionFull = errors.New("lm: session reached its maximum length")

// Session is the KV-cache state of one batch of sequences being decoded together.
//
// Layout: prompts are left-padded to a common bucketed length P, so every row's next token is
// written to the same cache slot and one scalar slot index serves the whole batch. A host-side
// mask [batch, capacity] marks which slots hold real tokens (padding and not-yet-written slots
// are 0); it is both the padding mask and, since future slots are 0, the causal mask. Position
// ids are tracked per row (real tokens so far), so a left-padded row sees positions 0, 1, 2, ...
// exactly as if it were alone. The batch is padded to a power of two with dummy rows, and the
// cache capacity is a Bucket size that doubles when full, so few shapes get compiled.
//
// A Session is not safe for concurrent use.
type Session struct {
	m         *Model
	rows      int // real rows
	batch     int // rows padded to BatchBucket
	promptLen int // P, bucketed
	capacity  int // cache slots
	slot      int // next slot to write
	limit     int // slot bound: P + max new tokens
	lengths   []int32
	mask      []int32 // [batch, capacity]
	caches    []*tensors.Tensor
}

// NewSession prefills a batch of prompts (token ids; lengths may differ) and returns the session
// and each prompt's next-token logits [rows][V]. maxNewTokens bounds the tokens Step will accept;
// it is lowered so that no row exceeds max_position_embeddings (see MaxNewTokens).
func (m *Model) NewSession(ctx context.Context, prompts [][]int, maxNewTokens int) (*Session, [][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if len(prompts) == 0 {
		return nil, nil, errors.New("lm: no prompts")
	}
	longest := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, nil, fmt.Errorf("lm: prompt %d is empty", i)
		}
		for _, id := range p {
			if id < 0 || id >= m.Config.VocabSize {
				return nil, nil, fmt.Errorf("lm: prompt %d: token id %d out of range [0,%d)", i, id, m.Config.VocabSize)
			}
		}
		longest = max(longest, len(p))
	}
	if longest > m.Config.MaxPositionEmbeddings {
		return nil, nil, fmt.Errorf("lm: prompt of %d tokens exceeds the model's %d positions", longest, m.Config.MaxPositionEmbeddings)
	}
	maxNewTokens = max(0, min(maxNewTokens, m.Config.MaxPositionEmbeddings-longest))

	s := &Session{m: m, rows: len(prompts), batch: BatchBucket(len(prompts)), promptLen: Bucket(longest)}
	s.limit = s.promptLen + maxNewTokens
	s.capacity = Bucket(s.promptLen + min(maxNewTokens, m.decodeRoom))
	s.slot = s.promptLen
	s.lengths = make([]int32, s.batch)
	s.mask = make([]int32, s.batch*s.capacity)
	ids := make([]int32, s.batch*s.promptLen)
	for r := 0; r < s.batch; r++ {
		if r >= s.rows { // dummy row: one token so its attention is well defined
			s.mask[r*s.capacity+s.promptLen-1] = 1
			s.lengths[r] = 1
			continue
		}
		p := prompts[r]
		pad := s.promptLen - len(p)
		for i, id := range p {
			ids[r*s.promptLen+pad+i] = int32(id)
			s.mask[r*s.capacity+pad+i] = 1
		}
		s.lengths[r] = int32(len(p))
	}
	e, err := m.getExec(func(x *execs) **gmodel.Exec { return &x.prefill }, func() (*gmodel.Exec, error) {
		return gmodel.NewExec(m.backend, m.store, m.prefillGraph)
	})
	if err != nil {
		return nil, nil, err
	}
	out, err := e.Call(int32Tensor(ids, s.batch, s.promptLen), int32Tensor(s.mask, s.batch, s.capacity))
	if err != nil {
		return nil, nil, fmt.Errorf("lm: prefill: %w", err)
	}
	s.caches = out[1:]
	logits, err := s.readLogits(out[0])
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, logits, nil
}

// Rows returns the number of sequences.
func (s *Session) Rows() int { return s.rows }

// MaxNewTokens returns how many Step calls the session accepts in total.
func (s *Session) MaxNewTokens() int { return s.limit - s.promptLen }

// Generated returns how many Step calls were made.
func (s *Session) Generated() int { return s.slot - s.promptLen }

// Capacity returns the current KV cache size in slots (for tests and metrics).
func (s *Session) Capacity() int { return s.capacity }

// Step appends one token per row and returns the next-token logits [rows][V]. Rows that have
// finished may be fed any valid id; their outputs are simply ignored by the caller.
func (s *Session) Step(ctx context.Context, tokens []int) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.caches == nil {
		return nil, errors.New("lm: session is closed")
	}
	if len(tokens) != s.rows {
		return nil, fmt.Errorf("lm: step got %d tokens for %d rows", len(tokens), s.rows)
	}
	if s.slot >= s.limit {
		return nil, ErrSessionFull
	}
	if s.slot == s.capacity {
		if err := s.grow(); err != nil {
			return nil, err
		}
	}
	tok := make([]int32, s.batch)
	for r, id := range tokens {
		if id < 0 || id >= s.m.Config.VocabSize {
			return nil, fmt.Errorf("lm: token id %d out of range [0,%d)", id, s.m.Config.VocabSize)
		}
		tok[r] = int32(id)
	}
	pos := make([]int32, s.batch)
	copy(pos, s.lengths)
	for r := 0; r < s.batch; r++ {
		s.mask[r*s.capacity+s.slot] = 1
	}
	e, err := s.m.getExec(func(x *execs) **gmodel.Exec { return &x.decode }, func() (*gmodel.Exec, error) {
		return gmodel.NewExec(s.m.backend, s.m.store, s.m.decodeGraph)
	})
	if err != nil {
		return nil, err
	}
	args := []any{int32Tensor(tok, s.batch, 1), int32Tensor(pos, s.batch, 1), tensors.FromScalar(int32(s.slot)),
		int32Tensor(s.mask, s.batch, s.capacity)}
	args, err = s.appendDonatedCaches(args)
	if err != nil {
		return nil, err
	}
	out, err := e.Call(args...)
	if err != nil {
		s.Close() // the donated caches are gone; the session cannot continue
		return nil, fmt.Errorf("lm: decode: %w", err)
	}
	s.caches = out[1:]
	s.slot++
	for r := range s.lengths {
		s.lengths[r]++
	}
	return s.readLogits(out[0])
}

// appendDonatedCaches hands the cache buffers to the next call, so the backend can update them
// in place instead of holding two copies.
func (s *Session) appendDonatedCaches(args []any) ([]any, error) {
	for _, c := range s.caches {
		d, err := DonateTensorBuffer(c, s.m.backend, 0)
		if err != nil {
			return nil, fmt.Errorf("lm: donate cache: %w", err)
		}
		args = append(args, d)
	}
	s.caches = nil
	return args, nil
}

// grow moves the caches into the next capacity bucket.
func (s *Session) grow() error {
	newCap := Bucket(min(2*s.capacity, s.limit))
	mask := make([]int32, s.batch*newCap)
	for r := 0; r < s.batch; r++ {
		copy(mask[r*newCap:], s.mask[r*s.capacity:(r+1)*s.capacity])
	}
	e, err := s.m.getExec(func(x *execs) **gmodel.Exec { return &x.grow }, func() (*gmodel.Exec, error) {
		return gmodel.NewExec(s.m.backend, s.m.store, growGraph)
	})
	if err != nil {
		return err
	}
	args, err := s.appendDonatedCaches([]any{int32Tensor(mask, s.batch, newCap)})
	if err != nil {
		return err
	}
	out, err := e.Call(args...)
	if err != nil {
		return fmt.Errorf("lm: grow cache: %w", err)
	}
	s.m.log.Debug("kv cache grown", "from", s.capacity, "to", newCap, "batch", s.batch)
	s.caches, s.mask, s.capacity = out, mask, newCap
	return nil
}

func (s *Session) readLogits(t *tensors.Tensor) ([][]float32, error) {
	defer t.FinalizeAll()
	flat, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, fmt.Errorf("lm: read logits: %w", err)
	}
	v := s.m.Config.VocabSize
	out := make([][]float32, s.rows)
	for r := range out {
		out[r] = flat[r*v : (r+1)*v : (r+1)*v]
	}
	return out, nil
}

// Close frees the session's caches. It is safe to call more than once.
func (s *Session) Close() {
	for _, c := range s.caches {
		if c != nil {
			_ = c.FinalizeAll()
		}
	}
	s.caches = nil
}

// prefillGraph: inputs ids [B,P] and the key mask [B,C]; outputs the last position's logits
// [B,V] then, per layer, K and V caches [B,C,nKV,D] (the prompt's keys, zero-padded to C).
func (m *Model) prefillGraph(_ *gmodel.Scope, in []*Node) []*Node {
	ids, keyMask := in[0], in[1]
	dims := ids.Shape().Dimensions
	b, p := dims[0], dims[1]
	capacity := keyMask.Shape().Dimensions[1]
	valid := NotEqual(SliceAxis(keyMask, 1, AxisRange(0, p)), ZerosLike(SliceAxis(keyMask, 1, AxisRange(0, p))))
	positions := positionsFromMask(valid)
	allowed := causalAllowed(valid)
	caches := make([]*Node, 2*m.Config.NumHiddenLayers)
	hidden := m.decoder(ids, positions, func(l int, q, k, v *Node) *Node {
		caches[2*l] = padSeq(k, capacity)
		caches[2*l+1] = padSeq(v, capacity)
		return m.attention(q, k, v, allowed)
	})
	last := SliceAxis(hidden, 1, AxisElem(p-1))
	logits := Reshape(m.lmHead(last), b, m.Config.VocabSize)
	return append([]*Node{logits}, caches...)
}

// decodeGraph: inputs token [B,1], position [B,1], slot (scalar), key mask [B,C] and the 2L
// caches; outputs logits [B,V] and the caches with this token's K/V written at slot.
func (m *Model) decodeGraph(_ *gmodel.Scope, in []*Node) []*Node {
	tok, pos, slot, keyMask := in[0], in[1], in[2], in[3]
	b := tok.Shape().Dimensions[0]
	capacity := keyMask.Shape().Dimensions[1]
	allowed := Reshape(NotEqual(keyMask, ZerosLike(keyMask)), b, 1, capacity)
	caches := make([]*Node, 2*m.Config.NumHiddenLayers)
	hidden := m.decoder(tok, pos, func(l int, q, k, v *Node) *Node {
		kc := m.writeSlot(in[4+2*l], k, slot)
		vc := m.writeSlot(in[4+2*l+1], v, slot)
		caches[2*l], caches[2*l+1] = kc, vc
		return m.attention(q, kc, vc, allowed)
	})
	logits := Reshape(m.lmHead(hidden), b, m.Config.VocabSize)
	return append([]*Node{logits}, caches...)
}

// writeSlot stores x [B,1,nKV,D] at position slot of cache [B,C,nKV,D]. Backends with
// DynamicUpdateSlice (XLA) update in place; the pure-Go backend lacks it, so there a one-hot
// select over the slot axis does the same write.
func (m *Model) writeSlot(cache, x, slot *Node) *Node {
	g := cache.Graph()
	if m.useDUS {
		zero := ScalarZero(g, dtypes.Int32)
		return DynamicUpdateSlice(cache, x, []*Node{zero, slot, zero, zero})
	}
	dims := cache.Shape().Dimensions
	hit := Equal(Iota(g, shapes.Make(dtypes.Int32, dims[1]), 0), slot)
	hit = BroadcastToDims(Reshape(hit, 1, dims[1], 1, 1), dims...)
	return Where(hit, BroadcastToDims(x, dims...), cache)
}

// padSeq zero-pads x [B,S,...] along axis 1 to length n.
func padSeq(x *Node, n int) *Node {
	dims := x.Shape().Clone().Dimensions
	if dims[1] >= n {
		return x
	}
	dims[1] = n - dims[1]
	return Concatenate([]*Node{x, Zeros(x.Graph(), shapes.Make(x.DType(), dims...))}, 1)
}

// growGraph: inputs the new key mask [B,C'] (it only carries C') and the caches; outputs the
// caches zero-padded to C'.
func growGraph(_ *gmodel.Scope, in []*Node) []*Node {
	n := in[0].Shape().Dimensions[1]
	out := make([]*Node, len(in)-1)
	for i, c := range in[1:] {
		out[i] = padSeq(c, n)
	}
	return out
}
