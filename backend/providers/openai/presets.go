package openai

// Preset holds what differs between OpenAI-format upstreams.
type Preset struct {
	// BaseURL is the default API root, including its version path (requests append /chat/completions).
	BaseURL string
	// KeyEnv is the environment variable that usually holds the key; "" when none is needed.
	KeyEnv string
	// BaseURLEnv, when set, overrides BaseURL from the environment (e.g. OPENAI_BASE_URL).
	BaseURLEnv string
	// Local servers need no key.
	KeyOptional bool
	// NoStreamOptions: the upstream rejects stream_options, so it is removed.
	NoStreamOptions bool
	// MaxTokensOnly: the upstream knows max_tokens but not max_completion_tokens.
	MaxTokensOnly bool
	// Azure: deployment URLs and the api-key header.
	Azure bool
}

// Presets lists every OpenAI-format provider type. Gemini and Cohere are reached through their
// official OpenAI-compatible endpoints: they accept chat completions with streaming, tools and
// usage, so one well-tested code path serves them instead of two more translators.
func Presets() map[string]Preset {
	return map[string]Preset{
		"openai":     {BaseURL: "https://api.openai.com/v1", KeyEnv: "OPENAI_API_KEY", BaseURLEnv: "OPENAI_BASE_URL"},
		"azure":      {KeyEnv: "AZURE_OPENAI_API_KEY", BaseURLEnv: "AZURE_OPENAI_ENDPOINT", Azure: true},
		"gemini":     {BaseURL: "https://generativelanguage.googleapis.com/v1beta/openai", KeyEnv: "GEMINI_API_KEY", BaseURLEnv: "GEMINI_BASE_URL"},
		"cohere":     {BaseURL: "https://api.cohere.ai/compatibility/v1", KeyEnv: "COHERE_API_KEY", BaseURLEnv: "COHERE_BASE_URL"},
		"groq":       {BaseURL: "https://api.groq.com/openai/v1", KeyEnv: "GROQ_API_KEY", BaseURLEnv: "GROQ_BASE_URL"},
		"mistral":    {BaseURL: "https://api.mistral.ai/v1", KeyEnv: "MISTRAL_API_KEY", BaseURLEnv: "MISTRAL_BASE_URL", MaxTokensOnly: true},
		"deepseek":   {BaseURL: "https://api.deepseek.com/v1", KeyEnv: "DEEPSEEK_API_KEY", BaseURLEnv: "DEEPSEEK_BASE_URL", MaxTokensOnly: true},
		"together":   {BaseURL: "https://api.together.xyz/v1", KeyEnv: "TOGETHER_API_KEY", BaseURLEnv: "TOGETHER_BASE_URL"},
		"fireworks":  {BaseURL: "https://api.fireworks.ai/inference/v1", KeyEnv: "FIREWORKS_API_KEY", BaseURLEnv: "FIREWORKS_BASE_URL"},
		"cerebras":   {BaseURL: "https://api.cerebras.ai/v1", KeyEnv: "CEREBRAS_API_KEY", BaseURLEnv: "CEREBRAS_BASE_URL"},
		"sambanova":  {BaseURL: "https://api.sambanova.ai/v1", KeyEnv: "SAMBANOVA_API_KEY", BaseURLEnv: "SAMBANOVA_BASE_URL"},
		"perplexity": {BaseURL: "https://api.perplexity.ai", KeyEnv: "PERPLEXITY_API_KEY", BaseURLEnv: "PERPLEXITY_BASE_URL", NoStreamOptions: true},
		"openrouter": {BaseURL: "https://openrouter.ai/api/v1", KeyEnv: "OPENROUTER_API_KEY", BaseURLEnv: "OPENROUTER_BASE_URL"},
		"xai":        {BaseURL: "https://api.x.ai/v1", KeyEnv: "XAI_API_KEY", BaseURLEnv: "XAI_BASE_URL"},
		"ollama":     {BaseURL: "http://127.0.0.1:11434/v1", BaseURLEnv: "OLLAMA_BASE_URL", KeyOptional: true},
		"vllm":       {BaseURL: "http://127.0.0.1:8000/v1", BaseURLEnv: "VLLM_BASE_URL", KeyOptional: true},
		"lmstudio":   {BaseURL: "http://127.0.0.1:1234/v1", BaseURLEnv: "LMSTUDIO_BASE_URL", KeyOptional: true},
		"llamacpp":   {BaseURL: "http://127.0.0.1:8080/v1", BaseURLEnv: "LLAMACPP_BASE_URL", KeyOptional: true},
		// Any other OpenAI-format server: base_url is required, a key optional.
		"openai-compatible": {KeyOptional: true},
	}
}
