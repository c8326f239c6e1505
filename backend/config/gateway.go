package config

import "time"

// Gateway tunes the proxy; zero values take the defaults shown.
type Gateway struct {
	// MaxRetries per deployment after the first attempt (default 2; -1 disables retries).
	MaxRetries int `yaml:"max_retries"`
	// RetryBaseDelay starts the exponential backoff (default 200ms); MaxRetryDelay caps it (8s).
	RetryBaseDelay time.Duration `yaml:"retry_base_delay"`
	MaxRetryDelay  time.Duration `yaml:"max_retry_delay"`
	// MaxRetryAfter is the longest upstream Retry-After waited out before falling back (10s).
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// Cooldown skips a deployment that exhausted its retries (30s).
	Cooldown time.Duration `yaml:"cooldown"`
	// Timeout bounds a non-streaming call (10m); StreamIdleTimeout the silence within a stream (2m).
	Timeout           time.Duration `yaml:"timeout"`
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout"`
	// MaxBodyBytes bounds a request body (32 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Alias is one entry under `aliases:`, keyed by the alias name.
type Alias struct {
	// Strategy is fallback (targets in order) or weighted (a canary split).
	Strategy string        `yaml:"strategy"`
	Targets  []AliasTarget `yaml:"targets"`
}

// AliasTarget is a model an alias points to.
type AliasTarget struct {
	Model  string `yaml:"model"`
	Weight int    `yaml:"weight"`
}
