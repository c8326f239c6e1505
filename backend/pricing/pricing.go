// Package pricing owns the model price table and the cost of a request, kept in one place so the
// gateway, the trace store and the UI agree on every number. Prices come from the embedded
// prices.yaml and may be overridden from the config (see NewTable).
//
// Cost is a pure function of the final usage: a streamed and a non-streamed call that report the
// same usage cost the same.
package pricing

// Price is a model's list price in USD per 1M tokens.
type Price struct {
	// Input bills uncached prompt tokens.
	Input float64 `yaml:"input" json:"input"`
	// Output bills completion tokens (and reasoning tokens when Reasoning is zero).
	Output float64 `yaml:"output" json:"output"`
	// CachedInput bills prompt tokens read from a cache; zero means they bill at Input.
	CachedInput float64 `yaml:"cached_input" json:"cached_input"`
	// CacheWrite bills prompt tokens written to a cache (e.g. Anthropic's 5-minute cache write);
	// zero means they bill at Input.
	CacheWrite float64 `yaml:"cache_write" json:"cache_write"`
	// Reasoning bills reasoning ("thinking") tokens; zero means they bill at Output, which is how
	// every major provider bills them today.
	Reasoning float64 `yaml:"reasoning" json:"reasoning"`
}

// Usage is a request's token counts with OpenAI's semantics: the detail counts are parts of the
// totals, not additions to them. An adapter for a provider that reports the parts separately
// (Anthropic's input_tokens excludes cache reads and writes) must sum them into PromptTokens.
type Usage struct {
	// PromptTokens is the whole input, including CachedTokens and CacheWriteTokens.
	PromptTokens int `yaml:"prompt_tokens" json:"prompt_tokens"`
	// CompletionTokens is the whole output, including ReasoningTokens.
	CompletionTokens int `yaml:"completion_tokens" json:"completion_tokens"`
	// CachedTokens is the part of PromptTokens read from a cache
	// (OpenAI prompt_tokens_details.cached_tokens, Anthropic cache_read_input_tokens).
	CachedTokens int `yaml:"cached_tokens" json:"cached_tokens"`
	// CacheWriteTokens is the part of PromptTokens written to a cache
	// (Anthropic cache_creation_input_tokens).
	CacheWriteTokens int `yaml:"cache_write_tokens" json:"cache_write_tokens"`
	// ReasoningTokens is the part of CompletionTokens spent reasoning
	// (OpenAI completion_tokens_details.reasoning_tokens).
	ReasoningTokens int `yaml:"reasoning_tokens" json:"reasoning_tokens"`
}

// Cost is a request's cost in USD, split the way the UI shows it. Total is the sum of the parts.
type Cost struct {
	Input       float64 `yaml:"input" json:"input"`
	CachedInput float64 `yaml:"cached_input" json:"cached_input"`
	CacheWrite  float64 `yaml:"cache_write" json:"cache_write"`
	Output      float64 `yaml:"output" json:"output"`
	Reasoning   float64 `yaml:"reasoning" json:"reasoning"`
	Total       float64 `yaml:"total" json:"total"`
}

// Cost returns the USD cost of u at price p; it is Breakdown(u).Total.
func (p Price) Cost(u Usage) float64 {
	return p.Breakdown(u).Total
}

// Breakdown returns the USD cost of u at price p, part by part. With every count first clamped
// at zero:
//
//	cached     = min(CachedTokens, PromptTokens)
//	cacheWrite = min(CacheWriteTokens, PromptTokens - cached)
//	uncached   = PromptTokens - cached - cacheWrite
//	reasoning  = min(ReasoningTokens, CompletionTokens)
//	output     = CompletionTokens - reasoning
//
//	Input       = uncached   × p.Input                         / 1e6
//	CachedInput = cached     × (p.CachedInput, or p.Input if 0) / 1e6
//	CacheWrite  = cacheWrite × (p.CacheWrite, or p.Input if 0)  / 1e6
//	Output      = output     × p.Output                        / 1e6
//	Reasoning   = reasoning  × (p.Reasoning, or p.Output if 0)  / 1e6
//	Total       = Input + CachedInput + CacheWrite + Output + Reasoning
//
// The clamps mean inconsistent provider numbers (cache reads larger than the prompt) never bill
// more tokens than the prompt and completion totals hold.
func (p Price) Breakdown(u Usage) Cost {
	prompt := max(u.PromptTokens, 0)
	cached := min(max(u.CachedTokens, 0), prompt)
	cacheWrite := min(max(u.CacheWriteTokens, 0), prompt-cached)
	uncached := prompt - cached - cacheWrite
	completion := max(u.CompletionTokens, 0)
	reasoning := min(max(u.ReasoningTokens, 0), completion)
	output := completion - reasoning

	c := Cost{
		Input:       usd(uncached, p.Input),
		CachedInput: usd(cached, orElse(p.CachedInput, p.Input)),
		CacheWrite:  usd(cacheWrite, orElse(p.CacheWrite, p.Input)),
		Output:      usd(output, p.Output),
		Reasoning:   usd(reasoning, orElse(p.Reasoning, p.Output)),
	}
	c.Total = c.Input + c.CachedInput + c.CacheWrite + c.Output + c.Reasoning
	return c
}

// usd prices tokens at perMillion USD per 1M tokens.
func usd(tokens int, perMillion float64) float64 {
	return float64(tokens) * perMillion / 1e6
}

func orElse(rate, fallback float64) float64 {
	if rate == 0 {
		return fallback
	}
	return rate
}
