package train

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"

	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/tokenizer"
	"opentracy/gpu/train/tinytok"
)

func TestMain(m *testing.M) {
	// Tests always run on the pure-Go backend: the default (xla) would try to fetch a plugin.
	os.Setenv("GOMLX_BACKEND", "go")
	os.Exit(m.Run())
}

var testBackend = sync.OnceValues(func() (compute.Backend, error) { return compute.New() })

var quiet = slog.New(slog.DiscardHandler)

// tinyDir writes a tiny model of family with the byte-level test tokenizer once per test.
func tinyDir(t testing.TB, family lm.Family) string {
	t.Helper()
	tokDir := filepath.Join(t.TempDir(), "tok")
	if err := tinytok.Write(tokDir, family); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := lm.InitTinyWith(dir, lm.TinyOptions{Family: family, TokenizerDir: tokDir, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadModel(t testing.TB, dir string) *lm.Model {
	t.Helper()
	b, err := testBackend()
	if err != nil {
		t.Fatal(err)
	}
	m, err := lm.Load(context.Background(), b, dir, lm.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// echoExamples are chat examples whose answer repeats the user's short string: learnable by a
// tiny model (the answer's alphabet and format, then the copy itself).
func echoExamples(n int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	const letters = "abcdefgh"
	out := make([]Example, n)
	for i := range out {
		word := make([]byte, 3+rng.IntN(4))
		for k := range word {
			word[k] = letters[rng.IntN(len(letters))]
		}
		out[i] = Example{Messages: []chat.Message{
			{Role: "user", Content: string(word)},
			{Role: "assistant", Content: string(word)},
		}}
	}
	return out
}

// echoData tokenizes n echo examples for the model in dir.
func echoData(t testing.TB, dir string, m *lm.Model, n int) []Sequence {
	t.Helper()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ChatTemplate(tok.ChatTemplate(), m.Config.ModelType, quiet)
	if err != nil {
		t.Fatal(err)
	}
	seqs, _, err := Tokenize(echoExamples(n, 3), tok, tmpl, TokenizeOptions{EOS: m.EOSTokenIDs()})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// run trains to the end and returns the loss of every step.
func run(t testing.TB, tr *Trainer) []float64 {
	t.Helper()
	var losses []float64
	if _, err := tr.Run(context.Background(), func(p Progress) { losses = append(losses, p.Loss) }); err != nil {
		t.Fatal(err)
	}
	return losses
}

// values copies the current values of variables (host side).
func values(t testing.TB, m *lm.Model, prefix string) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range m.Store().IterVariables() {
		if len(v.Path()) < len(prefix) || v.Path()[:len(prefix)] != prefix {
			continue
		}
		vals, err := variableData[float32](v)
		if err != nil {
			t.Fatal(err)
		}
		out[v.Path()] = vals
	}
	if len(out) == 0 {
		t.Fatalf("no variables under %s", prefix)
	}
	return out
}

func maxAbsDiff(a, b map[string][]float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("%d vs %d variables", len(a), len(b))
	}
	d := 0.0
	for k, va := range a {
		vb, ok := b[k]
		if !ok || len(va) != len(vb) {
			return 0, fmt.Errorf("variable %s differs in shape", k)
		}
		for i := range va {
			d = max(d, float64(abs32(va[i]-vb[i])))
		}
	}
	return d, nil
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
