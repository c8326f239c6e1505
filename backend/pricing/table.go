package pricing

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// pricesYAML is the built-in price list; a string so nothing can modify it.
//
//go:embed prices.yaml
var pricesYAML string

// ErrInvalidPrice is wrapped by errors for a negative, NaN or infinite price.
var ErrInvalidPrice = errors.New("invalid price")

// Table maps provider and model ids to prices. It is immutable once built and safe for
// concurrent use.
type Table struct {
	// exact holds provider (family, or an override's provider) → model id → price.
	exact map[string]map[string]Price
	// bare holds model id → price across families; the first family in the file wins.
	bare map[string]Price
	// aliases maps a provider that bills at a family's prices to that family (azure → openai).
	aliases map[string]string
	// free holds the providers whose models cost nothing (local servers).
	free map[string]struct{}
	// foldExact and foldBare are lower-cased copies of exact and bare for the normalised
	// (miss) path; the exact spelling always wins over them.
	foldExact map[string]map[string]Price
	foldBare  map[string]Price
	// models is Models' answer, computed once.
	models []string
}

// priceFile is prices.yaml's schema.
type priceFile struct {
	FreeProviders []string          `yaml:"free_providers"`
	Aliases       map[string]string `yaml:"aliases"`
	Families      []struct {
		Name   string           `yaml:"name"`
		Models map[string]Price `yaml:"models"`
	} `yaml:"families"`
}

// NewTable builds the table from the embedded price list and applies overrides (the config's
// pricing section). An override key is written as for Lookup and replaces the whole Price:
//
//   - a model id some family lists ("gpt-4o", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
//     replaces that model in every family that lists it;
//   - any other key without "/" ("my-finetune") adds a bare model, found under any provider;
//   - any other "provider/model" key ("openai/gpt-4o", "azure/gpt-4o", "myproxy/x") sets the
//     price for that provider only, ahead of family and bare prices.
//
// Bare keys apply before "provider/model" keys, so the more specific key wins when both name
// the same model. Negative, NaN or infinite prices are an error wrapping ErrInvalidPrice.
func NewTable(overrides map[string]Price) (*Table, error) {
	return newTable(pricesYAML, overrides)
}

func newTable(data string, overrides map[string]Price) (*Table, error) {
	var f priceFile
	dec := yaml.NewDecoder(strings.NewReader(data))
	dec.KnownFields(true) // a misspelt field would otherwise silently price at 0
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("pricing: parse price list: %w", err)
	}

	t := &Table{
		exact:   make(map[string]map[string]Price),
		bare:    make(map[string]Price),
		aliases: make(map[string]string),
		free:    make(map[string]struct{}),
	}
	for i, fam := range f.Families {
		name := strings.ToLower(strings.TrimSpace(fam.Name))
		if name == "" {
			return nil, fmt.Errorf("pricing: family #%d has no name", i+1)
		}
		if _, dup := t.exact[name]; dup {
			return nil, fmt.Errorf("pricing: family %q is listed twice", name)
		}
		models := make(map[string]Price, len(fam.Models))
		for id, p := range fam.Models {
			if strings.TrimSpace(id) == "" {
				return nil, fmt.Errorf("pricing: family %q has an empty model id", name)
			}
			if err := p.validate(); err != nil {
				return nil, fmt.Errorf("pricing: %s/%s: %w", name, id, err)
			}
			models[id] = p
			if _, taken := t.bare[id]; !taken {
				t.bare[id] = p
			}
		}
		t.exact[name] = models
	}
	for alias, fam := range f.Aliases {
		alias = strings.ToLower(strings.TrimSpace(alias))
		if _, ok := t.exact[fam]; !ok {
			return nil, fmt.Errorf("pricing: alias %q names unknown family %q", alias, fam)
		}
		if _, ok := t.exact[alias]; ok {
			return nil, fmt.Errorf("pricing: alias %q is also a family", alias)
		}
		t.aliases[alias] = fam
	}
	for _, p := range f.FreeProviders {
		p = strings.ToLower(strings.TrimSpace(p))
		if _, ok := t.exact[p]; ok {
			return nil, fmt.Errorf("pricing: free provider %q is also a family", p)
		}
		if _, ok := t.aliases[p]; ok {
			return nil, fmt.Errorf("pricing: free provider %q is also an alias", p)
		}
		t.free[p] = struct{}{}
	}

	if err := t.applyOverrides(overrides); err != nil {
		return nil, err
	}
	t.index()
	return t, nil
}

func (t *Table) applyOverrides(overrides map[string]Price) error {
	// Sorted, bare keys first: map order must not decide which override wins.
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	isBare := func(k string) bool {
		_, listed := t.bare[k]
		return listed || !strings.Contains(k, "/")
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ba, bb := isBare(a), isBare(b); ba != bb {
			if ba {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})

	for _, key := range keys {
		p := overrides[key]
		if err := p.validate(); err != nil {
			return fmt.Errorf("pricing: override %q: %w", key, err)
		}
		k := strings.TrimSpace(key)
		if k == "" {
			return fmt.Errorf("pricing: override with an empty model id")
		}
		switch {
		case isBare(k):
			for _, models := range t.exact {
				if _, ok := models[k]; ok {
					models[k] = p
				}
			}
			t.bare[k] = p
		default:
			provider, model, _ := strings.Cut(k, "/")
			provider = strings.ToLower(provider)
			if provider == "" || model == "" {
				return fmt.Errorf("pricing: override %q: want \"provider/model\" or \"model\"", key)
			}
			if t.exact[provider] == nil {
				t.exact[provider] = make(map[string]Price)
			}
			t.exact[provider][model] = p
		}
	}
	return nil
}

// index builds the lower-cased maps and the sorted model list.
func (t *Table) index() {
	t.foldExact = make(map[string]map[string]Price, len(t.exact))
	inFamily := make(map[string]bool)
	// Sorted so that ids differing only in case fold deterministically.
	for _, provider := range slices.Sorted(maps.Keys(t.exact)) {
		models := t.exact[provider]
		fold := make(map[string]Price, len(models))
		for _, id := range slices.Sorted(maps.Keys(models)) {
			if _, ok := fold[strings.ToLower(id)]; !ok {
				fold[strings.ToLower(id)] = models[id]
			}
			t.models = append(t.models, provider+"/"+id)
			inFamily[id] = true
		}
		t.foldExact[provider] = fold
	}
	t.foldBare = make(map[string]Price, len(t.bare))
	for _, id := range slices.Sorted(maps.Keys(t.bare)) {
		if _, ok := t.foldBare[strings.ToLower(id)]; !ok {
			t.foldBare[strings.ToLower(id)] = t.bare[id]
		}
		if !inFamily[id] {
			t.models = append(t.models, id)
		}
	}
	slices.Sort(t.models)
}

// Models lists every priced model, sorted: "provider/model" for family and provider-specific
// entries, a bare id for a bare override. Free providers price every model at 0 and are not
// listed.
func (t *Table) Models() []string {
	return slices.Clone(t.models)
}

// Lookup returns the price of model served by provider (a provider type or configured name,
// e.g. "openai", "azure", "openrouter", "ollama"). The first rule that matches wins:
//
//  1. the exact "provider/model" entry (a family's list, or a provider-specific override);
//  2. a free provider (local, ollama, vllm, lmstudio, llamacpp): a zero Price;
//  3. an alias's family: azure bills at openai prices, bedrock at anthropic, vertex at gemini;
//  4. the bare model id in any family (first family in prices.yaml wins), so a custom provider
//     name serving "gpt-4o" still prices it;
//  5. a model id prefixed by a provider, "family/model" as OpenRouter writes them
//     ("anthropic/claude-sonnet-4.5", "x-ai/grok-4") or "local/<model>" (free): looked up
//     under that provider with these same rules;
//  6. normalised names, tried in turn under the provider, its alias and then bare, each only
//     when the previous one is absent: the id lower-cased; without a "models/" prefix
//     (Gemini); without leading "region." and "vendor." segments, an "@version" tail and a
//     "-v1:0" tail (Bedrock, Vertex); without date or version suffixes, one at a time
//     ("-2024-08-06", "-20250929", "-2411", "-001", "-latest"); with dots between digits as
//     dashes ("claude-3.5-haiku"); with "-latest" added ("mistral-large"); without a "-0"
//     minor version ("claude-opus-4-0").
//
// Normalisation only removes those suffixes and never matches by prefix: "gpt-4o-mini" is never
// priced as "gpt-4o", nor "o3-mini" as "o3". Rules 1 to 4 do not allocate.
func (t *Table) Lookup(provider, model string) (Price, bool) {
	if p, ok := t.exact[provider][model]; ok {
		return p, true
	}
	if _, ok := t.free[provider]; ok {
		return Price{}, true
	}
	if fam, ok := t.aliases[provider]; ok {
		if p, ok := t.exact[fam][model]; ok {
			return p, true
		}
	}
	if p, ok := t.bare[model]; ok {
		return p, true
	}
	return t.lookupSlow(provider, model)
}

// lookupSlow applies rules 5 and 6 of Lookup: the rare path, allowed to allocate.
func (t *Table) lookupSlow(provider, model string) (Price, bool) {
	fp := strings.ToLower(strings.TrimSpace(provider))
	if prefix, rest, ok := strings.Cut(model, "/"); ok && rest != "" {
		prefix = strings.ToLower(prefix)
		if _, free := t.free[prefix]; free {
			return Price{}, true
		}
		if t.knownProvider(prefix) {
			if p, ok := t.Lookup(prefix, rest); ok {
				return p, true
			}
		}
	}
	if _, ok := t.free[fp]; ok {
		return Price{}, true
	}
	fam := t.aliases[fp]
	for _, c := range candidates(model) {
		if p, ok := t.foldExact[fp][c]; ok {
			return p, true
		}
		if p, ok := t.foldExact[fam][c]; ok {
			return p, true
		}
		if p, ok := t.foldBare[c]; ok {
			return p, true
		}
	}
	return Price{}, false
}

func (t *Table) knownProvider(name string) bool {
	if _, ok := t.exact[name]; ok {
		return true
	}
	_, ok := t.aliases[name]
	return ok
}

func (p Price) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"input", p.Input},
		{"output", p.Output},
		{"cached_input", p.CachedInput},
		{"cache_write", p.CacheWrite},
		{"reasoning", p.Reasoning},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%s %v: %w: want a finite number ≥ 0", f.name, f.v, ErrInvalidPrice)
		}
	}
	return nil
}
