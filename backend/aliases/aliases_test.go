package aliases

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		a    Alias
		want string
	}{
		{Alias{Name: "smart", Targets: []Target{{Model: "openai/gpt-4o"}}}, ""},
		{Alias{Name: "bad/name", Targets: []Target{{Model: "x"}}}, "no '/'"},
		{Alias{Name: "smart"}, "at least one target"},
		{Alias{Name: "smart", Strategy: "random", Targets: []Target{{Model: "x"}}}, "strategy"},
		{Alias{Name: "smart", Targets: []Target{{Model: "smart"}}}, "the alias itself"},
		{Alias{Name: "smart", Strategy: Weighted, Targets: []Target{{Model: "a"}, {Model: "b"}}}, "positive weight"},
		{Alias{Name: "smart", Targets: []Target{{Model: "a", Weight: -1}}}, "negative"},
	} {
		err := tc.a.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err %v, want %q", tc.a, err, tc.want)
		}
	}
}

func TestOrder(t *testing.T) {
	chain := Alias{Name: "s", Strategy: Fallback, Targets: []Target{{Model: "a"}, {Model: "b"}, {Model: "c"}}}
	if got := chain.Order(nil); !cmp.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("fallback order %v", got)
	}
	canary := Alias{Name: "s", Strategy: Weighted, Targets: []Target{{Model: "teacher", Weight: 90}, {Model: "student", Weight: 10}, {Model: "off"}}}
	for _, tc := range []struct {
		pick float64
		want []string
	}{
		{0, []string{"teacher", "student", "off"}},
		{0.899, []string{"teacher", "student", "off"}},
		{0.9, []string{"student", "teacher", "off"}},
		{0.99999, []string{"student", "teacher", "off"}},
	} {
		if got := canary.Order(func() float64 { return tc.pick }); !cmp.Equal(got, tc.want) {
			t.Errorf("pick %v: %v, want %v", tc.pick, got, tc.want)
		}
	}
	// The split follows the weights.
	counts := map[string]int{}
	for i := range 1000 {
		counts[canary.Order(func() float64 { return float64(i) / 1000 })[0]]++
	}
	if counts["teacher"] != 900 || counts["student"] != 100 || counts["off"] != 0 {
		t.Errorf("split %v", counts)
	}
}

func TestRegistryPersistsHistoryAndRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aliases.json")
	seed := []Alias{{Name: "smart", Targets: []Target{{Model: "openai/gpt-4o"}}}}
	r, err := Open(path, seed)
	if err != nil {
		t.Fatal(err)
	}
	if models, ok := r.Resolve("smart"); !ok || !cmp.Equal(models, []string{"openai/gpt-4o"}) {
		t.Fatalf("seeded alias resolves to %v %v", models, ok)
	}
	if _, ok := r.Resolve("gpt-4o"); ok {
		t.Error("a model name is not an alias")
	}
	if _, err := r.Set(Alias{Name: "smart", Targets: []Target{{Model: "local/student"}, {Model: "openai/gpt-4o"}}}, "ui"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delete("smart", "ui"); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get("smart"); ok {
		t.Fatal("deleted alias still resolves")
	}
	if _, err := r.Delete("smart", "ui"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	c, err := r.Rollback("smart", 2, "ui")
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 4 || c.From != 2 || c.Action != "rollback" {
		t.Errorf("rollback change %+v", c)
	}

	// A restart sees the same aliases and history; the config seed does not undo run-time edits.
	r2, err := Open(path, seed)
	if err != nil {
		t.Fatal(err)
	}
	if models, _ := r2.Resolve("smart"); !cmp.Equal(models, []string{"local/student", "openai/gpt-4o"}) {
		t.Errorf("after restart smart = %v", models)
	}
	var got []string
	for _, c := range r2.History("smart") {
		got = append(got, c.Action+"/"+c.By)
	}
	if want := []string{"rollback/ui", "delete/ui", "set/ui", "set/config"}; !cmp.Equal(got, want) {
		t.Errorf("history %v, want %v", got, want)
	}
	if _, err := r2.Rollback("smart", 99, "ui"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rollback to a missing version: %v", err)
	}
	if _, err := r2.Set(Alias{Name: "x"}, "ui"); err == nil {
		t.Error("invalid alias accepted")
	}
	if len(r2.History("")) != 4 {
		t.Errorf("an invalid change was recorded")
	}
}

func TestOpenRejectsBadFileAndSeed(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "a.json"), []Alias{{Name: "s"}}); err == nil {
		t.Error("invalid seed accepted")
	}
}

func BenchmarkResolve(b *testing.B) {
	r, _ := Open("", []Alias{{Name: "smart", Strategy: Weighted, Targets: []Target{{Model: "openai/gpt-4o", Weight: 90}, {Model: "local/student", Weight: 10}}}})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Resolve("smart"); !ok {
			b.Fatal("no alias")
		}
	}
}
