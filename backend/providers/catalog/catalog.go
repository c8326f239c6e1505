// Package catalog is the one list of provider types: it builds a providers.Provider from its
// configuration, and finds the providers a user has keys for in the environment.
package catalog

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/anthropic"
	"opentracy/backend/providers/bedrock"
	"opentracy/backend/providers/h1"
	"opentracy/backend/providers/local"
	"opentracy/backend/providers/openai"
)

// Types lists every provider type, sorted.
func Types() []string {
	types := []string{anthropic.Type, bedrock.Type}
	for t := range openai.Presets() {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// New builds the adapter for cfg.Type.
func New(cfg config.Provider, client *http.Client, env config.Environment) (providers.Provider, error) {
	switch cfg.Type {
	case anthropic.Type:
		return anthropic.New(cfg, client, env)
	case bedrock.Type:
		return bedrock.New(cfg, client, env)
	case local.Type:
		// The server builds it from the data dir; nothing in a provider entry configures it.
		return nil, fmt.Errorf("provider %q: the local provider is built in: local/<model> serves the models and students in the data dir without configuration", cfg.Name)
	}
	if _, ok := openai.Presets()[cfg.Type]; ok {
		return openai.New(cfg, client, env)
	}
	return nil, fmt.Errorf("provider %q: unknown type %q (known: %v)", cfg.Name, cfg.Type, Types())
}

// Describe lists every type with its defaults, for forms.
func Describe() []Info {
	var out []Info
	for _, t := range Types() {
		info := Info{Type: t, KeyEnv: KeyEnv(t), KeyRequired: true}
		switch t {
		case anthropic.Type:
			info.DefaultBaseURL = anthropic.DefaultBaseURL
		case bedrock.Type:
			info.DefaultBaseURL = bedrock.DefaultBaseURL("<region>")
		default:
			p := openai.Presets()[t]
			info.DefaultBaseURL, info.KeyRequired = p.BaseURL, !p.KeyOptional
		}
		out = append(out, info)
	}
	return out
}

// Info describes a provider type.
type Info struct {
	Type, DefaultBaseURL, KeyEnv string
	KeyRequired                  bool
}

// KeyEnv is the environment variable that usually holds a type's key ("" for local servers).
func KeyEnv(typ string) string {
	switch typ {
	case anthropic.Type:
		return "ANTHROPIC_API_KEY"
	case bedrock.Type:
		return bedrock.BearerTokenEnv // or SigV4 with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
	}
	return openai.Presets()[typ].KeyEnv
}

// FromEnvironment returns a default configuration for every cloud provider whose usual key
// variable is set, e.g. openai for OPENAI_API_KEY (its base URL may come from OPENAI_BASE_URL).
// Azure is left out: it needs deployments, which only the config file can give; Bedrock is found
// by its API key (AWS_BEARER_TOKEN_BEDROCK), not by AWS credentials that may be there for other uses.
func FromEnvironment(env config.Environment) []config.Provider {
	var out []config.Provider
	for _, t := range Types() {
		name := KeyEnv(t)
		if name == "" || t == "azure" {
			continue
		}
		if v, ok := env(name); ok && v != "" {
			out = append(out, config.Provider{Type: t})
		}
	}
	return out
}

// NewHTTPClient is the client shared by all adapters: generous connection reuse for a busy
// gateway; no overall timeout, since the gateway bounds each call with its own deadlines.
// Plain-HTTP upstreams (local servers) go through the lean HTTP/1.1 transport, the rest through
// net/http's (HTTP/2 to cloud providers).
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: h1.New(h1.Options{Fallback: t, MaxIdlePerHost: t.MaxIdleConnsPerHost, IdleTimeout: t.IdleConnTimeout})}
}
