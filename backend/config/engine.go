package config

import (
	"fmt"
	"net/url"

	"opentracy/gpu/runtime"
)

// Environment variables for the engine and the Hugging Face Hub, read by Load. The Hub's are the
// ones its own tools read, so a machine set up for them works as it is.
const (
	EnvEngineBackend       = "OPENTRACY_ENGINE_BACKEND"
	EnvHuggingFaceEndpoint = "HF_ENDPOINT"
	EnvHuggingFaceToken    = "HF_TOKEN"
)

// Engine is the `engine:` section: which backend the student engine runs on and where the GPU
// runtime comes from.
type Engine struct {
	runtime.Config `yaml:",inline"`
	// WheelMirror is the base URL the GPU runtime manifest's wheel paths are fetched under (a
	// Python package index's file host or an internal mirror). The Install GPU runtime action
	// needs it; nothing is downloaded until the user asks.
	WheelMirror string `yaml:"wheel_mirror"`
}

// HuggingFace is the `huggingface:` section used to download models.
type HuggingFace struct {
	// Endpoint is the Hub's base URL (empty: the public Hub).
	Endpoint string `yaml:"endpoint"`
	// Token opens gated and private repositories.
	Token Secret `yaml:"token"`
}

// loadEngine applies the engine and Hub environment variables over the file and validates them.
func (c *Config) loadEngine(env Environment) error {
	if v, ok := env(EnvEngineBackend); ok && v != "" {
		c.Engine.Backend = v
	}
	if v, ok := env(EnvHuggingFaceEndpoint); ok && v != "" {
		c.HuggingFace.Endpoint = v
	}
	if v, ok := env(EnvHuggingFaceToken); ok && v != "" {
		c.HuggingFace.Token = Secret(v)
	}
	switch c.Engine.Backend {
	case "", runtime.BackendAuto, runtime.BackendGo, runtime.BackendCUDA:
	default:
		return fmt.Errorf("engine backend %q: want %s (the default), %s or %s",
			c.Engine.Backend, runtime.BackendAuto, runtime.BackendGo, runtime.BackendCUDA)
	}
	for key, raw := range map[string]string{"engine wheel_mirror": c.Engine.WheelMirror, "huggingface endpoint": c.HuggingFace.Endpoint} {
		if raw == "" {
			continue
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s %q: want an http(s) URL", key, raw)
		}
	}
	return nil
}
