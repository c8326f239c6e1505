package generate

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"

	"opentracy/gpu/engine/lm"
)

func TestMain(m *testing.M) {
	os.Setenv("GOMLX_BACKEND", "go") // never the default xla backend in tests
	os.Exit(m.Run())
}

var testBackend = sync.OnceValues(func() (compute.Backend, error) { return compute.New() })

func tinyModel(t *testing.T) *lm.Model {
	t.Helper()
	b, err := testBackend()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	if err := lm.InitTiny(dir, lm.Qwen3); err != nil {
		t.Fatal(err)
	}
	m, err := lm.Load(context.Background(), b, dir, lm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestGreedyEqualsArgmaxOfFullForward(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	prompts := [][]int{{10, 20, 30, 40}, {5}}
	p := Params{MaxTokens: 12, EOS: []int{}} // no EOS: always the full budget
	res, err := Generate(ctx, FromModel(m), nil, prompts, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Generate(ctx, FromModel(m), nil, prompts, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, again) {
		t.Fatal("greedy generation is not deterministic")
	}
	for i, pr := range prompts {
		r := res[i]
		if len(r.Tokens) != 12 || r.FinishReason != FinishLength {
			t.Fatalf("row %d: %d tokens, finish %q", i, len(r.Tokens), r.FinishReason)
		}
		seq := append([]int(nil), pr...)
		for step, got := range r.Tokens {
			logits, err := m.ForwardLogits(ctx, [][]int{seq}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := argmax(logits[0][len(seq)-1]); got != want {
				t.Fatalf("row %d step %d: generated %d, argmax of full forward %d", i, step, got, want)
			}
			seq = append(seq, got)
		}
		single, err := Generate(ctx, FromModel(m), nil, [][]int{pr}, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(single[0].Tokens, r.Tokens) {
			t.Fatalf("row %d: batched %v, alone %v", i, r.Tokens, single[0].Tokens)
		}
	}
}

func TestSeededSamplingIsReproducible(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	p := Params{MaxTokens: 10, Temperature: 1.2, TopK: 50, TopP: 0.95, Seed: 42, EOS: []int{}}
	a, err := Generate(ctx, FromModel(m), nil, [][]int{{1, 2, 3}}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(ctx, FromModel(m), nil, [][]int{{1, 2, 3}}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different completions: %v vs %v", a[0].Tokens, b[0].Tokens)
	}
	p.Seed = 43
	c, err := Generate(ctx, FromModel(m), nil, [][]int{{1, 2, 3}}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a[0].Tokens, c[0].Tokens) {
		t.Fatalf("different seeds gave the same 10 sampled tokens %v", a[0].Tokens)
	}
}

// scripted is a fake LM whose row r emits script[r] in order (then token 0 forever).
type scripted struct {
	script [][]int
	vocab  int
	eos    []int
	limit  int
}

type scriptedSession struct {
	lm    *scripted
	step  int
	max   int
	steps int
}

func (s *scripted) logits(step int) [][]float32 {
	out := make([][]float32, len(s.script))
	for r, seq := range s.script {
		out[r] = make([]float32, s.vocab)
		tok := 0
		if step < len(seq) {
			tok = seq[step]
		}
		out[r][tok] = 10
	}
	return out
}

func (s *scripted) Start(_ context.Context, prompts [][]int, maxNew int) (Session, [][]float32, error) {
	if s.limit > 0 {
		maxNew = min(maxNew, s.limit)
	}
	return &scriptedSession{lm: s, max: maxNew}, s.logits(0), nil
}

func (s *scripted) EOSTokenIDs() []int { return s.eos }

func (ss *scriptedSession) Step(ctx context.Context, tokens []int) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ss.step++
	ss.steps++
	if ss.step > ss.max {
		return nil, errors.New("stepped past the budget")
	}
	return ss.lm.logits(ss.step), nil
}
func (ss *scriptedSession) MaxNewTokens() int { return ss.max }
func (ss *scriptedSession) Close()            {}

// pieces is a fake tokenizer: token id i decodes to pieces[i]; byte-level pieces that split a
// UTF-8 character decode to U+FFFD until completed, like byte-level BPE decoders.
type pieces []string

func (p pieces) Decode(ids []int, _ bool) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(p[id])
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

func (p pieces) Encode(string, bool) []int { return nil }

func collect(chunks *[]Chunk) func(Chunk) error {
	return func(c Chunk) error {
		*chunks = append(*chunks, c)
		return nil
	}
}

func streamed(chunks []Chunk, index int) string {
	var b strings.Builder
	for _, c := range chunks {
		if c.Index == index {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

func TestStopSequencesAndStreaming(t *testing.T) {
	tok := pieces{"<pad>", "Hel", "lo", " wo", "rld", "!", "<eos>", "\xc3", "\xa9", " x"}
	fake := &scripted{
		script: [][]int{
			{1, 2, 3, 4, 5, 5},    // "Hello world!!": stops at "world"
			{1, 7, 8, 9, 6},       // "Helé x" then EOS
			{3, 3, 3, 3, 3, 3, 3}, // " wo" forever: budget
		},
		vocab: len(tok), eos: []int{6},
	}
	var chunks []Chunk
	res, err := Generate(context.Background(), fake, tok, [][]int{{0}, {0}, {0}},
		Params{MaxTokens: 5, Stop: []string{"world", "wow"}}, collect(&chunks))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		text, stop string
		reason     FinishReason
		tokens     int
	}{
		{"Hello ", "world", FinishStop, 4},
		{"Helé x", "", FinishStop, 4},
		{" wo wo wo wo wo", "", FinishLength, 5},
	}
	for i, w := range want {
		r := res[i]
		if r.Text != w.text || r.StopSequence != w.stop || r.FinishReason != w.reason || len(r.Tokens) != w.tokens {
			t.Errorf("row %d: %+v, want %+v", i, r, w)
		}
		if got := streamed(chunks, i); got != r.Text {
			t.Errorf("row %d: streamed %q, final text %q", i, got, r.Text)
		}
		last := Chunk{}
		for _, c := range chunks {
			if c.Index == i {
				if strings.Contains(c.Text, "\uFFFD") {
					t.Errorf("row %d streamed an incomplete character: %q", i, c.Text)
				}
				last = c
			}
		}
		if last.FinishReason != w.reason {
			t.Errorf("row %d: last chunk %+v", i, last)
		}
	}
	// Row 0 must never have streamed "wo" before knowing whether "world" follows.
	for _, c := range chunks {
		if c.Index == 0 && strings.Contains(c.Text, "wo") {
			t.Errorf("row 0 streamed a stop-sequence prefix: %q", c.Text)
		}
	}
	if res[1].CompletionTokens != 5 {
		t.Errorf("row 1 usage counts %d tokens, want 5 (EOS included)", res[1].CompletionTokens)
	}
}

func TestContextLimitAndCancellation(t *testing.T) {
	fake := &scripted{script: [][]int{{1, 1, 1, 1, 1, 1, 1, 1}}, vocab: 3, limit: 3}
	res, err := Generate(context.Background(), fake, nil, [][]int{{0}}, Params{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Tokens) != 3 || res[0].FinishReason != FinishLength {
		t.Fatalf("context cap: %+v", res[0])
	}

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	fake.limit = 0
	res, err = Generate(ctx, fake, nil, [][]int{{0}}, Params{MaxTokens: 8}, func(Chunk) error {
		n++
		if n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(res[0].Tokens) != 2 || res[0].FinishReason != "" {
		t.Fatalf("partial result: %+v", res[0])
	}

	boom := errors.New("client went away")
	_, err = Generate(context.Background(), fake, nil, [][]int{{0}}, Params{MaxTokens: 8}, func(Chunk) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("callback error not returned: %v", err)
	}
	if _, err := Generate(context.Background(), fake, nil, [][]int{{0}}, Params{Stop: []string{"x"}}, nil); err == nil {
		t.Fatal("stop sequences without a tokenizer must be refused")
	}
}

func TestTopKSelectsLargest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		v := 1 + rng.IntN(300)
		logits := make([]float32, v)
		for i := range logits {
			logits[i] = float32(rng.IntN(20)) // many ties
		}
		k := 1 + rng.IntN(v)
		got := topK(logits, k, nil)
		order := make([]int, v)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return logits[order[a]] > logits[order[b]] })
		want := append([]int(nil), order[:k]...)
		sort.Ints(got)
		sort.Ints(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("v=%d k=%d: got %v want %v", v, k, got, want)
		}
	}
}

func TestNucleusMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 50; trial++ {
		v := 2 + rng.IntN(500)
		logits := make([]float32, v)
		for i := range logits {
			logits[i] = float32(rng.NormFloat64() * 3)
		}
		topP := 0.05 + 0.9*rng.Float64()
		s := &Sampler{Temperature: 0.7, TopP: topP}
		// brute force: full sort, keep until cumulative >= topP
		probs := make([]float64, v)
		z := 0.0
		for i, l := range logits {
			probs[i] = math.Exp(float64(l) / 0.7)
			z += probs[i]
		}
		order := make([]int, v)
		for i := range order {
			order[i] = i
			probs[i] /= z
		}
		sort.Slice(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
		var want []int
		cum := 0.0
		for _, i := range order {
			want = append(want, i)
			cum += probs[i]
			if cum >= topP {
				break
			}
		}
		s.idx = s.idx[:0]
		s.prob = s.prob[:0]
		for i := range logits {
			s.idx = append(s.idx, i)
			s.prob = append(s.prob, probs[i])
		}
		s.nucleus()
		got := append([]int(nil), s.idx...)
		sort.Ints(got)
		sort.Ints(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("top_p=%.3f: nucleus %v, brute force %v", topP, got, want)
		}
	}
}

func TestSamplingFrequencies(t *testing.T) {
	logits := []float32{0, float32(math.Log(2)), float32(math.Log(3)), -100} // p = 1/6, 2/6, 3/6, ~0
	s := NewSampler(Params{Temperature: 1}, 7, 0)
	counts := make([]int, 4)
	const n = 60000
	for i := 0; i < n; i++ {
		counts[s.Sample(logits)]++
	}
	for i, want := range []float64{1.0 / 6, 2.0 / 6, 3.0 / 6, 0} {
		if got := float64(counts[i]) / n; math.Abs(got-want) > 0.01 {
			t.Errorf("token %d drawn %.3f of the time, want %.3f", i, got, want)
		}
	}
	// top-k 2 and top-p 0.6 both leave only the two most likely tokens, renormalised.
	for _, p := range []Params{{Temperature: 1, TopK: 2}, {Temperature: 1, TopP: 0.6}} {
		s := NewSampler(p, 7, 0)
		counts := make([]int, 4)
		for i := 0; i < n; i++ {
			counts[s.Sample(logits)]++
		}
		if counts[0] != 0 || counts[3] != 0 || math.Abs(float64(counts[2])/n-0.6) > 0.01 {
			t.Errorf("%+v: counts %v", p, counts)
		}
	}
	if got := NewSampler(Params{Temperature: 0}, 1, 0).Sample(logits); got != 2 {
		t.Errorf("greedy picked %d", got)
	}
}

// byteTokenizer maps each byte to its value as a token id.
type byteTokenizer struct{}

func (byteTokenizer) Encode(s string, _ bool) []int {
	ids := make([]int, len(s))
	for i := range len(s) {
		ids[i] = int(s[i])
	}
	return ids
}

// Decode treats ids above 255 as special tokens, rendered as "<s>" unless skipped.
func (byteTokenizer) Decode(ids []int, skipSpecial bool) string {
	var b []byte
	for _, id := range ids {
		switch {
		case id <= 255:
			b = append(b, byte(id))
		case !skipSpecial:
			b = append(b, "<s>"...)
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func TestGenerateText(t *testing.T) {
	m := tinyModel(t)
	var chunks []Chunk
	res, err := GenerateText(context.Background(), FromModel(m), byteTokenizer{}, []string{"hello", "hi"},
		Params{MaxTokens: 6, EOS: []int{}}, collect(&chunks))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		want := byteTokenizer{}.Decode(r.Tokens, true)
		if r.Text != want || len(r.Tokens) != 6 || r.PromptTokens != len([]string{"hello", "hi"}[i]) {
			t.Errorf("row %d: %+v", i, r)
		}
		if got := streamed(chunks, i); got != r.Text {
			t.Errorf("row %d streamed %q, text %q", i, got, r.Text)
		}
	}
}
