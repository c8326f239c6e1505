package config

import "time"

// Provider configures one upstream under `providers:` in the YAML file.
type Provider struct {
	// Name is how requests address it ("name/model"); defaults to Type.
	Name string `yaml:"name"`
	// Type selects the wire format and defaults: openai, anthropic, azure, bedrock, gemini, cohere,
	// groq, mistral, deepseek, together, fireworks, cerebras, sambanova, perplexity, openrouter, xai,
	// ollama, vllm, lmstudio, llamacpp, or openai-compatible (any other OpenAI-format server).
	Type string `yaml:"type"`
	// BaseURL overrides the type's default (e.g. a proxy, or a local server's port).
	BaseURL string `yaml:"base_url"`
	// APIKey is the key itself; prefer APIKeyEnv so the file holds no secret.
	APIKey Secret `yaml:"api_key"`
	// APIKeyEnv names the environment variable holding the key (default: the type's usual one,
	// e.g. OPENAI_API_KEY).
	APIKeyEnv string `yaml:"api_key_env"`
	// Models are the bare model names this provider serves ("gpt-4o-mini" resolves to it).
	Models []string `yaml:"models"`
	// Headers are sent with every upstream request (e.g. OpenRouter's HTTP-Referer).
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds a whole non-streaming call (default 10 min).
	Timeout time.Duration `yaml:"timeout"`
	// StreamIdleTimeout bounds the silence between two chunks of a stream (default 2 min); a
	// stream itself may last as long as it keeps sending.
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout"`

	// Azure OpenAI: the API version (default 2024-10-21) and model name → deployment name.
	APIVersion  string            `yaml:"api_version"`
	Deployments map[string]string `yaml:"deployments"`

	// AWS Bedrock: region and credentials (default: the AWS_* environment variables).
	Region string `yaml:"region"`
}
