package tokenizer

import (
	"fmt"
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// bpe is a byte-level BPE model. It works on raw bytes: every vocabulary entry is stored under the
// bytes it stands for, so that encoding never builds the byte-level text form of the input.
type bpe struct {
	byteIDs      [256]int32       // the id of each single byte
	vocab        map[string]int32 // raw bytes → id
	merges       map[uint64]merge // pair (left id, right id) → rank and merged id
	ignoreMerges bool             // a word that is itself in the vocabulary is one token (Llama 3)
	cache        wordCache
}

type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newBPE(m *modelJSON) (*bpe, error) {
	if m.Type != "BPE" {
		return nil, fmt.Errorf("model type %q: only BPE is supported", m.Type)
	}
	if m.ByteFallback {
		return nil, fmt.Errorf("BPE with byte_fallback (SentencePiece-style) is not supported")
	}
	if m.Dropout != nil && *m.Dropout > 0 {
		return nil, fmt.Errorf("BPE dropout %v is a training-time option and not supported", *m.Dropout)
	}
	if (m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "") ||
		(m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "") {
		return nil, fmt.Errorf("BPE with a subword prefix or suffix is not supported")
	}
	b := &bpe{
		vocab:        make(map[string]int32, len(m.Vocab)),
		ignoreMerges: m.IgnoreMerges,
	}
	b.cache.init()
	for i := range b.byteIDs {
		b.byteIDs[i] = -1
	}
	for tok, id := range m.Vocab {
		raw, ok := alphabet.decode(tok)
		if !ok {
			// Not reachable from bytes: it can only be produced as an added token.
			continue
		}
		if prev, dup := b.vocab[string(raw)]; dup && prev < int32(id) {
			continue
		}
		b.vocab[string(raw)] = int32(id)
		if len(raw) == 1 {
			b.byteIDs[raw[0]] = int32(id)
		}
	}
	for c, id := range b.byteIDs {
		if id < 0 {
			return nil, fmt.Errorf("the vocabulary has no token for byte 0x%02x: not a byte-level BPE", c)
		}
	}
	pairs, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	b.merges = make(map[uint64]merge, len(pairs))
	for rank, p := range pairs {
		left, lok := m.Vocab[p[0]]
		right, rok := m.Vocab[p[1]]
		merged, mok := m.Vocab[p[0]+p[1]]
		if !lok || !rok || !mok {
			return nil, fmt.Errorf("merge %d (%q %q): a part or the result is not in the vocabulary", rank, p[0], p[1])
		}
		k := pairKey(int32(left), int32(right))
		if _, dup := b.merges[k]; dup {
			continue // the first (lowest) rank wins, as in Hugging Face
		}
		b.merges[k] = merge{rank: int32(rank), id: int32(merged)}
	}
	return b, nil
}

// appendWord appends the ids of one pre-tokenized word.
func (b *bpe) appendWord(dst []int, word string) []int {
	if len(word) == 0 {
		return dst
	}
	if len(word) == 1 {
		return append(dst, int(b.byteIDs[word[0]]))
	}
	if b.ignoreMerges {
		if id, ok := b.vocab[word]; ok {
			return append(dst, int(id))
		}
	}
	if ids, ok := b.cache.get(word); ok {
		for _, id := range ids {
			dst = append(dst, int(id))
		}
		return dst
	}
	var syms []int32
	if len(word) <= linearMergeLimit {
		var buf [linearMergeLimit]int32
		syms = b.mergeLinear(word, buf[:0])
	} else {
		syms = b.mergeHeap(word)
	}
	b.cache.put(word, syms)
	for _, id := range syms {
		dst = append(dst, int(id))
	}
	return dst
}

// Words up to this many bytes merge with a quadratic scan, which beats a heap on the short words
// that make up nearly all text; longer ones (base64, minified code) use the heap.
const linearMergeLimit = 48

// mergeLinear applies merges lowest rank first, leftmost on ties, as Hugging Face does.
func (b *bpe) mergeLinear(word string, syms []int32) []int32 {
	for i := 0; i < len(word); i++ {
		syms = append(syms, b.byteIDs[word[i]])
	}
	var rankBuf [linearMergeLimit]int32
	ranks := rankBuf[:len(syms)-1] // ranks[i]: the pair syms[i], syms[i+1]; -1 when none
	for i := range ranks {
		ranks[i] = b.rank(syms[i], syms[i+1])
	}
	for {
		best := -1
		for i, r := range ranks {
			if r >= 0 && (best < 0 || r < ranks[best]) {
				best = i
			}
		}
		if best < 0 {
			return syms
		}
		syms[best] = b.merges[pairKey(syms[best], syms[best+1])].id
		syms = append(syms[:best+1], syms[best+2:]...)
		ranks = append(ranks[:best], ranks[best+1:]...)
		if best > 0 {
			ranks[best-1] = b.rank(syms[best-1], syms[best])
		}
		if best < len(ranks) {
			ranks[best] = b.rank(syms[best], syms[best+1])
		}
	}
}

func (b *bpe) rank(left, right int32) int32 {
	if m, ok := b.merges[pairKey(left, right)]; ok {
		return m.rank
	}
	return -1
}

// mergeHeap is the same algorithm in O(n log n): symbols in a linked list and candidate merges in
// a priority queue ordered by (rank, position), stale entries skipped when popped.
func (b *bpe) mergeHeap(word string) []int32 {
	n := len(word)
	ids := make([]int32, n)
	prev := make([]int32, n)
	next := make([]int32, n)
	for i := 0; i < n; i++ {
		ids[i] = b.byteIDs[word[i]]
		prev[i] = int32(i - 1)
		next[i] = int32(i + 1)
	}
	next[n-1] = -1
	q := make(mergeQueue, 0, n)
	push := func(pos int32) {
		nx := next[pos]
		if nx < 0 {
			return
		}
		if m, ok := b.merges[pairKey(ids[pos], ids[nx])]; ok {
			q.push(candidate{rank: m.rank, pos: pos, id: m.id})
		}
	}
	for i := 0; i < n-1; i++ {
		if m, ok := b.merges[pairKey(ids[i], ids[i+1])]; ok {
			q.push(candidate{rank: m.rank, pos: int32(i), id: m.id})
		}
	}
	for len(q) > 0 {
		c := q.pop()
		if ids[c.pos] < 0 {
			continue // merged into its left neighbour already
		}
		nx := next[c.pos]
		if nx < 0 {
			continue
		}
		if m, ok := b.merges[pairKey(ids[c.pos], ids[nx])]; !ok || m.id != c.id {
			continue // one side has changed since this candidate was queued
		}
		ids[c.pos] = c.id
		ids[nx] = -1
		next[c.pos] = next[nx]
		if next[nx] >= 0 {
			prev[next[nx]] = c.pos
		}
		if p := prev[c.pos]; p >= 0 {
			push(p)
		}
		push(c.pos)
	}
	out := make([]int32, 0, n/3+1)
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

type candidate struct {
	rank, pos, id int32
}

// mergeQueue is a binary min-heap ordered by (rank, pos); written out rather than through
// container/heap, whose interface boxes every pushed candidate.
type mergeQueue []candidate

func (c candidate) less(o candidate) bool {
	return c.rank < o.rank || (c.rank == o.rank && c.pos < o.pos)
}

func (q *mergeQueue) push(c candidate) {
	h := append(*q, c)
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].less(h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	*q = h
}

func (q *mergeQueue) pop() candidate {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].less(h[m]) {
			m = l
		}
		if r < len(h) && h[r].less(h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// wordCache remembers the merge result of recent words: a direct-mapped table indexed by a hash
// of the word, each slot an atomic pointer. Reads take no lock, a colliding word simply replaces
// the slot's entry, and memory stays bounded whatever the input.
type wordCache struct {
	seed  maphash.Seed
	slots [cacheSlots]atomic.Pointer[cacheEntry]
}

const (
	cacheSlots   = 1 << 16
	cacheMaxWord = 64 // longer words are rare and would evict common ones
)

type cacheEntry struct {
	word string
	ids  []int32
}

func (c *wordCache) init() { c.seed = maphash.MakeSeed() }

func (c *wordCache) slot(word string) *atomic.Pointer[cacheEntry] {
	return &c.slots[maphash.String(c.seed, word)&(cacheSlots-1)]
}

func (c *wordCache) get(word string) ([]int32, bool) {
	if len(word) > cacheMaxWord {
		return nil, false
	}
	if e := c.slot(word).Load(); e != nil && e.word == word {
		return e.ids, true
	}
	return nil, false
}

func (c *wordCache) put(word string, ids []int32) {
	if len(word) > cacheMaxWord {
		return
	}
	// The word is copied: it may point into a large input that the cache must not keep alive.
	c.slot(word).Store(&cacheEntry{word: strings.Clone(word), ids: append([]int32(nil), ids...)})
}
