package pricing

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustTable(t testing.TB, overrides map[string]Price) *Table {
	t.Helper()
	table, err := NewTable(overrides)
	if err != nil {
		t.Fatalf("NewTable: %v", err)
	}
	return table
}

// uniqueTable gives every listed model its own price, so a test can tell which entry a lookup
// found even where two models share list prices (claude-opus-4 and claude-opus-4-1).
func uniqueTable(t *testing.T) *Table {
	t.Helper()
	base := mustTable(t, nil)
	overrides := make(map[string]Price)
	for i, key := range base.Models() {
		_, model, _ := strings.Cut(key, "/")
		if _, dup := overrides[model]; dup {
			t.Fatalf("model id %q is listed by two families; pick another way to tell them apart", model)
		}
		overrides[model] = Price{Input: float64(i + 1), Output: float64(i + 1)}
	}
	return mustTable(t, overrides)
}

// free marks a lookup that must find a free (zero) price.
const free = "free"

func TestLookup(t *testing.T) {
	table := uniqueTable(t)
	tests := []struct {
		name            string
		provider, model string
		want            string // "family/model" whose price must come back, free, or "" for none
	}{
		// 1. Exact.
		{"exact", "openai", "gpt-4o", "openai/gpt-4o"},
		{"exact id with slashes", "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"},
		{"exact fireworks id", "fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", "fireworks/accounts/fireworks/models/llama-v3p1-8b-instruct"},
		{"exact -latest name kept", "mistral", "mistral-small-latest", "mistral/mistral-small-latest"},
		{"exact dotted name kept", "openai", "gpt-4.1", "openai/gpt-4.1"},

		// 2. Free providers.
		{"local", "local", "qwen3-8b", free},
		{"ollama", "ollama", "llama3.2:3b", free},
		{"vllm", "vllm", "meta-llama/Llama-3.1-8B-Instruct", free},
		{"lmstudio", "lmstudio", "gpt-4o", free},
		{"llamacpp", "llamacpp", "anything", free},
		{"free provider any case", "Ollama", "llama3", free},
		{"local/ model prefix", "", "local/qwen3-8b", free},
		{"ollama/ model prefix", "openai-compatible", "ollama/llama3", free},

		// 3. Aliases.
		{"azure bills openai", "azure", "gpt-4o", "openai/gpt-4o"},
		{"azure with date", "azure", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"},
		{"bedrock bills anthropic", "bedrock", "claude-sonnet-4", "anthropic/claude-sonnet-4"},
		{"vertex bills gemini", "vertex", "gemini-2.5-flash", "gemini/gemini-2.5-flash"},

		// 4. Bare model across families.
		{"custom provider name", "work-openai", "gpt-4o-mini", "openai/gpt-4o-mini"},
		{"no provider", "", "claude-haiku-4-5", "anthropic/claude-haiku-4-5"},
		{"bare id with slash", "", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "together/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"},
		{"wrong family still finds bare", "groq", "gpt-5", "openai/gpt-5"},

		// 5. "family/model" ids (OpenRouter).
		{"openrouter anthropic dotted", "openrouter", "anthropic/claude-sonnet-4.5", "anthropic/claude-sonnet-4-5"},
		{"openrouter claude-3.7", "openrouter", "anthropic/claude-3.7-sonnet", "anthropic/claude-3-7-sonnet"},
		{"openrouter openai", "openrouter", "openai/gpt-4o-mini", "openai/gpt-4o-mini"},
		{"openrouter google", "openrouter", "google/gemini-2.5-pro", "gemini/gemini-2.5-pro"},
		{"openrouter x-ai", "openrouter", "x-ai/grok-4", "xai/grok-4"},
		{"openrouter mistralai", "openrouter", "mistralai/mistral-large", "mistral/mistral-large-latest"},
		{"openrouter deepseek", "openrouter", "deepseek/deepseek-chat", "deepseek/deepseek-chat"},
		{"family prefix under its own provider", "openai", "openai/gpt-4o", "openai/gpt-4o"},

		// 6. Normalisation.
		{"openai date", "openai", "gpt-4o-2024-08-06", "openai/gpt-4o"},
		{"openai date on mini", "openai", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"},
		{"openai date on o-series", "openai", "o1-2024-12-17", "openai/o1"},
		{"gpt-4.1 date", "openai", "gpt-4.1-mini-2025-04-14", "openai/gpt-4.1-mini"},
		{"gpt-5 date", "openai", "gpt-5-nano-2025-08-07", "openai/gpt-5-nano"},
		{"anthropic date", "anthropic", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"},
		{"anthropic date on opus 4.1", "anthropic", "claude-opus-4-1-20250805", "anthropic/claude-opus-4-1"},
		{"anthropic -latest", "anthropic", "claude-3-7-sonnet-latest", "anthropic/claude-3-7-sonnet"},
		{"anthropic -0 alias", "anthropic", "claude-opus-4-0", "anthropic/claude-opus-4"},
		{"anthropic dotted", "", "claude-3.5-haiku", "anthropic/claude-3-5-haiku"},
		{"bedrock id", "bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic/claude-3-5-haiku"},
		{"bedrock id without provider", "", "anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic/claude-3-5-haiku"},
		{"bedrock cross-region id", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic/claude-sonnet-4-5"},
		{"bedrock global id", "bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic/claude-haiku-4-5"},
		{"vertex claude id", "vertex", "claude-3-5-haiku@20241022", "anthropic/claude-3-5-haiku"},
		{"gemini resource name", "gemini", "models/gemini-2.5-flash", "gemini/gemini-2.5-flash"},
		{"gemini version", "vertex", "gemini-2.0-flash-001", "gemini/gemini-2.0-flash"},
		{"mistral version", "mistral", "mistral-large-2411", "mistral/mistral-large-latest"},
		{"xai version", "xai", "grok-4-0709", "xai/grok-4"},
		{"case folded model", "openai", "GPT-4o", "openai/gpt-4o"},
		{"case folded provider", "OpenAI", "gpt-4o", "openai/gpt-4o"},
		{"case folded id with slashes", "together", "meta-llama/llama-3.3-70b-instruct-turbo", "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"},

		// Prefix traps: a longer name never falls back to a shorter one.
		{"gpt-4o-mini is not gpt-4o", "openai", "gpt-4o-mini", "openai/gpt-4o-mini"},
		{"o3-mini is not o3", "openai", "o3-mini", "openai/o3-mini"},
		{"dated o3-mini is not o3", "openai", "o3-mini-2025-01-31", "openai/o3-mini"},
		{"gpt-5-mini is not gpt-5", "", "gpt-5-mini", "openai/gpt-5-mini"},
		{"flash-lite is not flash", "gemini", "gemini-2.5-flash-lite", "gemini/gemini-2.5-flash-lite"},
		{"opus 4.1 is not opus 4", "anthropic", "claude-opus-4-1", "anthropic/claude-opus-4-1"},
		{"o3-pro is not o3", "openai", "o3-pro", ""},
		{"o3-mini-high is not o3-mini", "openrouter", "openai/o3-mini-high", ""},
		{"gpt-4o-audio-preview is not gpt-4o", "openai", "gpt-4o-audio-preview", ""},
		{"gpt-4o-mini-tts is not gpt-4o-mini", "openai", "gpt-4o-mini-tts", ""},

		// Unknown.
		{"unknown model", "openai", "gpt-3.5-turbo-0125", ""},
		{"unknown everything", "acme", "mystery", ""},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := table.Lookup(tt.provider, tt.model)
			switch tt.want {
			case "":
				if ok {
					t.Errorf("Lookup(%q, %q) = %+v, want not found", tt.provider, tt.model, got)
				}
				return
			case free:
				if !ok || got != (Price{}) {
					t.Errorf("Lookup(%q, %q) = %+v, %v; want zero price, true", tt.provider, tt.model, got, ok)
				}
				return
			}
			family, model, _ := strings.Cut(tt.want, "/")
			want, listed := table.exact[family][model]
			if !listed {
				t.Fatalf("bad test: %q is not in the table", tt.want)
			}
			if !ok {
				t.Fatalf("Lookup(%q, %q): not found, want %s", tt.provider, tt.model, tt.want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Lookup(%q, %q) is not %s (-want +got):\n%s", tt.provider, tt.model, tt.want, diff)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		model string
		want  []string
	}{
		{"gpt-4o", []string{"gpt-4o", "gpt-4o-latest"}},
		{"gpt-4o-2024-08-06", []string{"gpt-4o-2024-08-06", "gpt-4o", "gpt-4o-latest"}},
		{"claude-sonnet-4-5-20250929", []string{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "claude-sonnet-4-5-latest"}},
		{"anthropic.claude-3-5-haiku-20241022-v1:0", []string{
			"anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku-20241022", "claude-3-5-haiku", "claude-3-5-haiku-latest",
		}},
		{"models/gemini-2.5-flash", []string{"models/gemini-2.5-flash", "gemini-2.5-flash", "gemini-2-5-flash", "gemini-2.5-flash-latest"}},
		{"claude-3-7-sonnet-latest", []string{"claude-3-7-sonnet-latest", "claude-3-7-sonnet"}},
		{"claude-opus-4-0", []string{"claude-opus-4-0", "claude-opus-4-0-latest", "claude-opus-4"}},
		{"Mistral-Large-2411", []string{"mistral-large-2411", "mistral-large", "mistral-large-latest"}},
		{"gpt-4.1", []string{"gpt-4.1", "gpt-4-1", "gpt-4.1-latest"}},
		{"llama-v3p3-70b-instruct", []string{"llama-v3p3-70b-instruct", "llama-v3p3-70b-instruct-latest"}},
		{"", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, candidates(tt.model)); diff != "" {
				t.Errorf("candidates(%q) mismatch (-want +got):\n%s", tt.model, diff)
			}
		})
	}
}

func TestEmbeddedTable(t *testing.T) {
	table := mustTable(t, nil)
	models := table.Models()
	if len(models) < 35 {
		t.Errorf("only %d models listed", len(models))
	}
	if !slices.IsSorted(models) {
		t.Error("Models() is not sorted")
	}
	for _, key := range models {
		family, model, ok := strings.Cut(key, "/")
		if !ok {
			t.Errorf("%q: want provider/model", key)
			continue
		}
		p, ok := table.Lookup(family, model)
		if !ok || p != table.exact[family][model] {
			t.Errorf("Lookup(%q, %q) = %+v, %v; want its own entry", family, model, p, ok)
		}
		// Embedding models produce no output tokens, so they list no output price.
		if p.Input <= 0 || (p.Output <= 0 && !strings.Contains(model, "embedding")) {
			t.Errorf("%s: input %v, output %v; want both > 0", key, p.Input, p.Output)
		}
		if p.CachedInput > p.Input {
			t.Errorf("%s: cache reads (%v) cost more than input (%v)", key, p.CachedInput, p.Input)
		}
	}
	for _, family := range []string{"openai", "anthropic", "gemini", "groq", "mistral", "deepseek", "xai", "together", "fireworks"} {
		if len(table.exact[family]) == 0 {
			t.Errorf("family %q is missing", family)
		}
	}
	// Anthropic cache rates are fixed multiples of input.
	for model, p := range table.exact["anthropic"] {
		if math.Abs(p.CacheWrite-1.25*p.Input) > 1e-9 || math.Abs(p.CachedInput-0.1*p.Input) > 1e-9 {
			t.Errorf("anthropic/%s: cache write %v, read %v; want 1.25× and 0.1× input %v", model, p.CacheWrite, p.CachedInput, p.Input)
		}
	}
	for _, provider := range []string{"local", "ollama", "vllm", "lmstudio", "llamacpp"} {
		if _, ok := table.free[provider]; !ok {
			t.Errorf("%q is not a free provider", provider)
		}
	}
}

func TestModelsIsACopy(t *testing.T) {
	table := mustTable(t, nil)
	m := table.Models()
	m[0] = "changed"
	if table.Models()[0] == "changed" {
		t.Error("Models() exposes the table's slice")
	}
}

func TestOverrides(t *testing.T) {
	list := mustTable(t, nil)
	listed := func(provider, model string) Price {
		p, ok := list.Lookup(provider, model)
		if !ok {
			t.Fatalf("list has no %s/%s", provider, model)
		}
		return p
	}
	cheap := Price{Input: 0.01, Output: 0.02}
	dear := Price{Input: 100, Output: 200}
	type lookup struct {
		provider, model string
		want            Price
		ok              bool
	}
	tests := []struct {
		name      string
		overrides map[string]Price
		lookups   []lookup
		addsModel string // a Models() entry the override must add
	}{
		{
			name:      "bare key replaces the model in its family",
			overrides: map[string]Price{"gpt-4o": cheap},
			lookups: []lookup{
				{"openai", "gpt-4o", cheap, true},
				{"azure", "gpt-4o", cheap, true},
				{"custom", "gpt-4o", cheap, true},
				{"openai", "gpt-4o-2024-08-06", cheap, true},
				{"openai", "gpt-4o-mini", listed("openai", "gpt-4o-mini"), true},
			},
		},
		{
			name:      "an override replaces the whole price",
			overrides: map[string]Price{"anthropic/claude-sonnet-4-5": {Input: 1, Output: 2}},
			lookups: []lookup{
				{"anthropic", "claude-sonnet-4-5", Price{Input: 1, Output: 2}, true},
			},
		},
		{
			name:      "provider key wins over bare key",
			overrides: map[string]Price{"openai/gpt-4o": dear, "gpt-4o": cheap},
			lookups: []lookup{
				{"openai", "gpt-4o", dear, true},
				{"custom", "gpt-4o", cheap, true},
			},
		},
		{
			name:      "reseller-specific price",
			overrides: map[string]Price{"azure/gpt-4o": dear},
			lookups: []lookup{
				{"azure", "gpt-4o", dear, true},
				{"openai", "gpt-4o", listed("openai", "gpt-4o"), true},
			},
			addsModel: "azure/gpt-4o",
		},
		{
			name:      "new bare model",
			overrides: map[string]Price{"my-finetune": cheap},
			lookups: []lookup{
				{"anything", "my-finetune", cheap, true},
				{"", "my-finetune", cheap, true},
			},
			addsModel: "my-finetune",
		},
		{
			name:      "new provider",
			overrides: map[string]Price{"MyProxy/llama-9": cheap},
			lookups: []lookup{
				{"myproxy", "llama-9", cheap, true},
				{"MyProxy", "llama-9", cheap, true},
				{"other", "llama-9", Price{}, false},
			},
			addsModel: "myproxy/llama-9",
		},
		{
			name:      "model id with slashes is a bare key",
			overrides: map[string]Price{"meta-llama/Llama-3.3-70B-Instruct-Turbo": cheap},
			lookups: []lookup{
				{"together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", cheap, true},
			},
		},
		{
			name:      "dated id is exact, not normalised",
			overrides: map[string]Price{"gpt-4o-2024-05-13": dear},
			lookups: []lookup{
				{"openai", "gpt-4o-2024-05-13", dear, true},
				{"openai", "gpt-4o-2024-08-06", listed("openai", "gpt-4o"), true},
			},
		},
		{
			name:      "a priced model on a free provider",
			overrides: map[string]Price{"ollama/llama3": cheap},
			lookups: []lookup{
				{"ollama", "llama3", cheap, true},
				{"ollama", "qwen3", Price{}, true},
			},
		},
		{
			name:      "zero price makes a model free",
			overrides: map[string]Price{"gpt-5": {}},
			lookups: []lookup{
				{"openai", "gpt-5", Price{}, true},
			},
		},
		{
			name:      "no overrides",
			overrides: nil,
			lookups: []lookup{
				{"openai", "gpt-4o", listed("openai", "gpt-4o"), true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := mustTable(t, tt.overrides)
			for _, l := range tt.lookups {
				got, ok := table.Lookup(l.provider, l.model)
				if ok != l.ok {
					t.Errorf("Lookup(%q, %q) found = %v, want %v", l.provider, l.model, ok, l.ok)
				}
				if diff := cmp.Diff(l.want, got); diff != "" {
					t.Errorf("Lookup(%q, %q) mismatch (-want +got):\n%s", l.provider, l.model, diff)
				}
			}
			if tt.addsModel != "" && !slices.Contains(table.Models(), tt.addsModel) {
				t.Errorf("Models() lacks %q", tt.addsModel)
			}
			if diff := cmp.Diff(list.Models(), mustTable(t, nil).Models()); diff != "" {
				t.Errorf("an override leaked into another table:\n%s", diff)
			}
		})
	}
}

func TestBadOverrides(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]Price
		wantIn    string // the error must name the entry
		wantIs    error
	}{
		{"negative input", map[string]Price{"gpt-4o": {Input: -1, Output: 10}}, `"gpt-4o"`, ErrInvalidPrice},
		{"negative cache write", map[string]Price{"anthropic/claude-sonnet-4": {Input: 3, Output: 15, CacheWrite: -0.5}}, "cache_write", ErrInvalidPrice},
		{"NaN output", map[string]Price{"x": {Input: 1, Output: math.NaN()}}, `"x"`, ErrInvalidPrice},
		{"infinite reasoning", map[string]Price{"x": {Reasoning: math.Inf(1)}}, "reasoning", ErrInvalidPrice},
		{"empty key", map[string]Price{" ": {Input: 1}}, "empty", nil},
		{"empty provider", map[string]Price{"/gpt-4o": {Input: 1}}, `"/gpt-4o"`, nil},
		{"empty model", map[string]Price{"openai/": {Input: 1}}, `"openai/"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTable(tt.overrides)
			if err == nil {
				t.Fatal("NewTable succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not mention %s", err, tt.wantIn)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
		})
	}
}

func TestBadPriceFile(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		wantIn string
	}{
		{"negative price names the entry", "families:\n  - name: acme\n    models:\n      rocket: {input: -1, output: 2}\n", "acme/rocket"},
		{"misspelt field", "families:\n  - name: acme\n    models:\n      rocket: {inptu: 1, output: 2}\n", "inptu"},
		{"not yaml", "families: [", "parse"},
		{"duplicate model", "families:\n  - name: acme\n    models:\n      rocket: {input: 1}\n      rocket: {input: 2}\n", "rocket"},
		{"duplicate family", "families:\n  - name: acme\n  - name: acme\n", `"acme"`},
		{"unnamed family", "families:\n  - models: {}\n", "no name"},
		{"alias to nowhere", "aliases: {azure: openai}\nfamilies:\n  - name: acme\n", `"azure"`},
		{"alias shadows family", "aliases: {acme: acme}\nfamilies:\n  - name: acme\n", `"acme"`},
		{"free provider is a family", "free_providers: [acme]\nfamilies:\n  - name: acme\n", `"acme"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTable(tt.data, nil)
			if err == nil {
				t.Fatal("newTable succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not mention %s", err, tt.wantIn)
			}
		})
	}
}

func TestLookupHitDoesNotAllocate(t *testing.T) {
	table := mustTable(t, nil)
	hits := []struct{ provider, model string }{
		{"openai", "gpt-4o-mini"},                                       // exact
		{"together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"},         // exact, long id
		{"azure", "gpt-4o"},                                             // alias
		{"my-gateway", "claude-sonnet-4-5"},                             // bare
		{"ollama", "llama3.2:3b"},                                       // free
		{"a-rather-long-custom-provider-name", "gemini-2.5-flash-lite"}, // bare, long key
	}
	for _, h := range hits {
		allocs := testing.AllocsPerRun(100, func() {
			if _, ok := table.Lookup(h.provider, h.model); !ok {
				t.Fatalf("Lookup(%q, %q): not found", h.provider, h.model)
			}
		})
		if allocs != 0 {
			t.Errorf("Lookup(%q, %q) allocates %v times per call, want 0", h.provider, h.model, allocs)
		}
	}
}

func TestConcurrentLookup(t *testing.T) {
	table := mustTable(t, map[string]Price{"gpt-4o": {Input: 1, Output: 1}})
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				table.Lookup("openai", "gpt-4o-2024-08-06")
				table.Lookup("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
				table.Models()
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func BenchmarkLookup(b *testing.B) {
	table := mustTable(b, nil)
	cases := []struct{ name, provider, model string }{
		{"exact", "openai", "gpt-4o-mini"},
		{"alias", "azure", "gpt-4o"},
		{"bare", "my-gateway", "claude-sonnet-4-5"},
		{"normalised_date", "openai", "gpt-4o-2024-08-06"},
		{"normalised_bedrock", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{"miss", "acme", "mystery-model"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				table.Lookup(c.provider, c.model)
			}
		})
	}
}
