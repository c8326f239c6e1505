package train

import (
	"math/rand/v2"
	"sort"

	"github.com/gomlx/gomlx/core/tensors"

	"opentracy/gpu/engine/lm"
)

// groupWindow is how many micro-batches' worth of shuffled examples are sorted by length
// together: sequences of similar length share a micro-batch (little padding, few compiled
// shapes) while the order stays random at the scale of the epoch.
const groupWindow = 16

// epochBatches returns the micro-batches (indices into the data) of one epoch. The order is a
// function of (seed, epoch) only, so a resumed run replays exactly the batches an uninterrupted
// one would see: shuffle, sort windows of groupWindow micro-batches by length, cut, shuffle
// the micro-batches.
func epochBatches(lengths []int, batch int, seed uint64, epoch int) [][]int {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)+1))
	perm := rng.Perm(len(lengths))
	window := batch * groupWindow
	var out [][]int
	for start := 0; start < len(perm); start += window {
		chunk := perm[start:min(start+window, len(perm))]
		sort.SliceStable(chunk, func(i, j int) bool { return lengths[chunk[i]] > lengths[chunk[j]] })
		for b := 0; b < len(chunk); b += batch {
			out = append(out, chunk[b:min(b+batch, len(chunk))])
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// microBatch is one padded batch ready for the graph.
type microBatch struct {
	ids, mask, lossMask *tensors.Tensor
	// lossTokens counts the predicted (completion) tokens, tokens the real ones.
	lossTokens, tokens int
}

// makeBatch right-pads the sequences to a Bucket length and the batch to a BatchBucket size
// (dummy rows are all padding and carry no loss), so few graph shapes get compiled.
func makeBatch(seqs []Sequence, idx []int) microBatch {
	longest := 0
	for _, i := range idx {
		longest = max(longest, len(seqs[i].IDs))
	}
	t := lm.Bucket(longest)
	b := lm.BatchBucket(len(idx))
	ids := make([]int32, b*t)
	mask := make([]int32, b*t)
	loss := make([]int32, b*t)
	var mb microBatch
	for r, i := range idx {
		s := seqs[i]
		for k, id := range s.IDs {
			ids[r*t+k] = int32(id)
			mask[r*t+k] = 1
			if k >= s.PromptLen && k > 0 {
				loss[r*t+k] = 1
				mb.lossTokens++
			}
		}
		mb.tokens += len(s.IDs)
	}
	mb.ids = tensors.FromFlatDataAndDimensions(ids, b, t)
	mb.mask = tensors.FromFlatDataAndDimensions(mask, b, t)
	mb.lossMask = tensors.FromFlatDataAndDimensions(loss, b, t)
	return mb
}

// finalize frees the batch's tensors (on the device too) without waiting for the GC.
func (mb microBatch) finalize() {
	for _, t := range []*tensors.Tensor{mb.ids, mb.mask, mb.lossMask} {
		t.FinalizeAll()
	}
}
