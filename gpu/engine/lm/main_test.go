package lm

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
)

func TestMain(m *testing.M) {
	// Tests always run on the pure-Go backend: the default (xla) would try to fetch a plugin.
	os.Setenv("GOMLX_BACKEND", "go")
	os.Exit(m.Run())
}

var testBackend = sync.OnceValues(func() (compute.Backend, error) { return compute.New() })

func backend(t testing.TB) compute.Backend {
	t.Helper()
	b, err := testBackend()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tinyModel writes a tiny model with the given options and loads it.
func tinyModel(t testing.TB, o TinyOptions, lo Options) *Model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := InitTinyWith(dir, o); err != nil {
		t.Fatal(err)
	}
	if lo.Logger == nil {
		lo.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := Load(context.Background(), backend(t), dir, lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
