package generate

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Sampler picks the next token from a row of logits: greedy when Temperature <= 0, otherwise
// temperature, then top-k, then top-p (nucleus) filtering — the order transformers applies
// them — and a draw from its own seeded RNG, so a seed reproduces a completion exactly.
type Sampler struct {
	Temperature float64
	TopK        int
	TopP        float64
	rng         *rand.Rand
	idx         []int
	prob        []float64
}

// NewSampler returns a sampler whose draws are determined by (seed, stream); Generate uses the
// prompt's index as the stream so batched rows do not share random numbers.
func NewSampler(p Params, seed, stream uint64) *Sampler {
	return &Sampler{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, rng: rand.New(rand.NewPCG(seed, stream))}
}

// Sample returns the chosen token id.
func (s *Sampler) Sample(logits []float32) int {
	if s.Temperature <= 0 || s.TopK == 1 {
		return argmax(logits)
	}
	v := len(logits)
	s.idx = s.idx[:0]
	if s.TopK > 0 && s.TopK < v {
		s.idx = topK(logits, s.TopK, s.idx)
	} else {
		for i := range logits {
			s.idx = append(s.idx, i)
		}
	}
	// Softmax over the candidates at the given temperature.
	peak := math.Inf(-1)
	for _, i := range s.idx {
		peak = math.Max(peak, float64(logits[i]))
	}
	s.prob = s.prob[:0]
	z := 0.0
	for _, i := range s.idx {
		p := math.Exp((float64(logits[i]) - peak) / s.Temperature)
		s.prob = append(s.prob, p)
		z += p
	}
	for k := range s.prob {
		s.prob[k] /= z
	}
	if s.TopP > 0 && s.TopP < 1 {
		s.nucleus()
	}
	u := s.rng.Float64()
	total := 0.0
	for _, p := range s.prob {
		total += p
	}
	u *= total
	for k, p := range s.prob {
		u -= p
		if u < 0 {
			return s.idx[k]
		}
	}
	return s.idx[len(s.idx)-1]
}

// nucleus keeps the smallest set of most likely candidates whose mass reaches TopP (the token
// that crosses TopP included). Rather than sorting the whole vocabulary it first drops every
// candidate below (1-TopP)/n: together those weigh less than 1-TopP, so the nucleus is
// entirely among the survivors, and only those few are sorted.
func (s *Sampler) nucleus() {
	floor := (1 - s.TopP) / float64(len(s.prob))
	keep := 0
	for k, p := range s.prob {
		if p >= floor {
			s.idx[keep], s.prob[keep] = s.idx[k], p
			keep++
		}
	}
	s.idx, s.prob = s.idx[:keep], s.prob[:keep]
	sort.Sort(byProb{s})
	cum := 0.0
	for k, p := range s.prob {
		cum += p
		if cum >= s.TopP {
			s.idx, s.prob = s.idx[:k+1], s.prob[:k+1]
			return
		}
	}
}

type byProb struct{ s *Sampler }

func (b byProb) Len() int { return len(b.s.prob) }
func (b byProb) Less(i, j int) bool {
	if b.s.prob[i] != b.s.prob[j] {
		return b.s.prob[i] > b.s.prob[j]
	}
	return b.s.idx[i] < b.s.idx[j]
}
func (b byProb) Swap(i, j int) {
	b.s.prob[i], b.s.prob[j] = b.s.prob[j], b.s.prob[i]
	b.s.idx[i], b.s.idx[j] = b.s.idx[j], b.s.idx[i]
}

// argmax returns the index of the largest logit (the lowest index on ties).
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// topK fills dst (reset first) with the indices of the k largest logits (ties broken by lower index), in no
// particular order, using quickselect: O(V) instead of sorting the vocabulary.
func topK(logits []float32, k int, dst []int) []int {
	dst = dst[:0]
	for i := range logits {
		dst = append(dst, i)
	}
	less := func(a, b int) bool { // "a ranks before b"
		if logits[a] != logits[b] {
			return logits[a] > logits[b]
		}
		return a < b
	}
	lo, hi := 0, len(dst)-1
	for lo < hi {
		// median of three as pivot keeps sorted inputs linear
		mid := lo + (hi-lo)/2
		if less(dst[mid], dst[lo]) {
			dst[mid], dst[lo] = dst[lo], dst[mid]
		}
		if less(dst[hi], dst[lo]) {
			dst[hi], dst[lo] = dst[lo], dst[hi]
		}
		if less(dst[hi], dst[mid]) {
			dst[hi], dst[mid] = dst[mid], dst[hi]
		}
		pivot := dst[mid]
		i, j := lo, hi
		for i <= j {
			for less(dst[i], pivot) {
				i++
			}
			for less(pivot, dst[j]) {
				j--
			}
			if i <= j {
				dst[i], dst[j] = dst[j], dst[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return dst[:k]
		}
	}
	return dst[:k]
}
