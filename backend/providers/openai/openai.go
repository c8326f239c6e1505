// Package openai is the adapter for every upstream that speaks the OpenAI wire format: OpenAI,
// Azure OpenAI, Gemini's and Cohere's compatibility endpoints, Groq, Mistral, DeepSeek, Together,
// Fireworks, Cerebras, SambaNova, Perplexity, OpenRouter, xAI and local servers (Ollama, vLLM, LM
// Studio, llama.cpp). Bodies pass through; only "model" and a few per-upstream quirks are rewritten.
package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"opentracy/backend/config"
	"opentracy/backend/providers"
)

// Type is the provider type for OpenAI itself; see Presets for the others.
const Type = "openai"

// Provider is one OpenAI-format upstream.
type Provider struct {
	name        string
	preset      Preset
	baseURL     string
	key         string
	apiVersion  string
	deployments map[string]string
	headers     map[string]string
	client      *http.Client
}

var (
	_ providers.Provider    = (*Provider)(nil)
	_ providers.Embedder    = (*Provider)(nil)
	_ providers.Passthrough = (*Provider)(nil)
	_ providers.Checker     = (*Provider)(nil)
	_ providers.ModelLister = (*Provider)(nil)
)

// New builds the adapter for cfg.Type, which must be one of Presets.
func New(cfg config.Provider, client *http.Client, env config.Environment) (*Provider, error) {
	preset, ok := Presets()[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("provider %q: type %q is not an OpenAI-format type", cfg.Name, cfg.Type)
	}
	name := cfg.Name
	if name == "" {
		name = cfg.Type
	}
	base := cfg.BaseURL
	if base == "" && preset.BaseURLEnv != "" {
		base, _ = env(preset.BaseURLEnv)
	}
	if base == "" {
		base = preset.BaseURL
	}
	if base == "" {
		hint := "base_url"
		if preset.BaseURLEnv != "" {
			hint += " or " + preset.BaseURLEnv
		}
		return nil, fmt.Errorf("provider %q: set %s", name, hint)
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider %q: base URL %q is not an http(s) URL", name, base)
	}
	key := cfg.APIKey.Reveal()
	keyEnv := cfg.APIKeyEnv
	if keyEnv == "" {
		keyEnv = preset.KeyEnv
	}
	if key == "" && keyEnv != "" {
		key, _ = env(keyEnv)
	}
	if key == "" && !preset.KeyOptional {
		return nil, fmt.Errorf("provider %q: no API key: set %s or api_key_env/api_key in the config", name, keyEnv)
	}
	apiVersion := cfg.APIVersion
	if preset.Azure && apiVersion == "" {
		apiVersion = "2024-10-21"
	}
	return &Provider{
		name: name, preset: preset, baseURL: strings.TrimRight(base, "/"), key: key,
		apiVersion: apiVersion, deployments: cfg.Deployments, headers: cfg.Headers, client: client,
	}, nil
}

// Name is the configured provider name.
func (p *Provider) Name() string { return p.name }

// BaseURL is the API root requests go to.
func (p *Provider) BaseURL() string { return p.baseURL }

// Check lists the upstream's models: it proves the base URL and key work and costs nothing.
func (p *Provider) Check(ctx context.Context) error {
	_, err := p.ListModels(ctx)
	return err
}

// ListModels returns the model ids the upstream's GET /models lists.
func (p *Provider) ListModels(ctx context.Context) ([]string, error) {
	target := p.baseURL + "/models"
	if p.preset.Azure {
		target = p.baseURL + "/openai/models?api-version=" + url.QueryEscape(p.apiVersion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	p.authorize(req)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, providers.MaxErrorBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &providers.Error{Provider: p.name, Status: resp.StatusCode, Body: errorBody(resp.StatusCode, data)}
	}
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("read model list: %w", err)}
	}
	var ids []string
	gjson.GetBytes(data, "data.#.id").ForEach(func(_, id gjson.Result) bool {
		ids = append(ids, id.String())
		return true
	})
	return ids, nil
}

// authorize adds the configured headers and the key, as this upstream expects it.
func (p *Provider) authorize(req *http.Request) {
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	switch {
	case p.key == "":
	case p.preset.Azure:
		req.Header.Set("Api-Key", p.key)
	default:
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
}

// Chat forwards a chat-completions request.
func (p *Provider) Chat(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	return p.Forward(ctx, "/chat/completions", req)
}

// Embed forwards an embeddings request.
func (p *Provider) Embed(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	return p.Forward(ctx, "/embeddings", req)
}

// Forward sends req.Body to path (relative to the API root, e.g. "/responses") with the model
// replaced and this upstream's quirks applied; everything else in the body passes unchanged.
func (p *Provider) Forward(ctx context.Context, path string, req *providers.Request) (*providers.Response, error) {
	body, err := p.prepareBody(req)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Status: http.StatusBadRequest,
			Body: providers.ErrorBody(err.Error(), "invalid_request_error", "")}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint(path, req.Model), bytes.NewReader(body))
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("build request: %w", err)}
	}
	hreq.Header.Set("Content-Type", "application/json")
	if req.Stream {
		hreq.Header.Set("Accept", "text/event-stream")
	} else {
		hreq.Header.Set("Accept", "application/json")
	}
	p.authorize(hreq)
	// Client headers that mean something to OpenAI-format upstreams.
	for _, k := range [...]string{"OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta", "Idempotency-Key"} {
		if v := req.Header.Get(k); v != "" {
			hreq.Header.Set(k, v)
		}
	}

	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, err := providers.ReadErrorBody(p.name, resp)
		if err != nil {
			return nil, err
		}
		return nil, &providers.Error{
			Provider: p.name, Status: resp.StatusCode,
			Body:       errorBody(resp.StatusCode, data),
			RetryAfter: providers.ParseRetryAfter(resp.Header, time.Now()),
		}
	}
	return &providers.Response{Status: resp.StatusCode, Header: providers.KeepHeaders(resp.Header, keptHeader), Body: resp.Body,
		Length: max(resp.ContentLength, 0)}, nil
}

func (p *Provider) endpoint(path, model string) string {
	if !p.preset.Azure {
		return p.baseURL + path
	}
	deployment := model
	if d, ok := p.deployments[model]; ok {
		deployment = d
	}
	return p.baseURL + "/openai/deployments/" + url.PathEscape(deployment) + path + "?api-version=" + url.QueryEscape(p.apiVersion)
}

// prepareBody rewrites only what must change, leaving every other byte of the client's body as is.
func (p *Provider) prepareBody(req *providers.Request) ([]byte, error) {
	body := req.Body
	if !gjson.ValidBytes(body) {
		return nil, errors.New("request body is not valid JSON")
	}
	var err error
	if req.Model != "" && gjson.GetBytes(body, "model").String() != req.Model {
		if body, err = sjson.SetBytes(body, "model", req.Model); err != nil {
			return nil, fmt.Errorf("set model: %w", err)
		}
	}
	if p.preset.NoStreamOptions && gjson.GetBytes(body, "stream_options").Exists() {
		if body, err = sjson.DeleteBytes(body, "stream_options"); err != nil {
			return nil, fmt.Errorf("drop stream_options: %w", err)
		}
	}
	if p.preset.MaxTokensOnly {
		if v := gjson.GetBytes(body, "max_completion_tokens"); v.Exists() && !gjson.GetBytes(body, "max_tokens").Exists() {
			if body, err = sjson.SetRawBytes(body, "max_tokens", []byte(v.Raw)); err != nil {
				return nil, fmt.Errorf("map max_completion_tokens: %w", err)
			}
			if body, err = sjson.DeleteBytes(body, "max_completion_tokens"); err != nil {
				return nil, fmt.Errorf("map max_completion_tokens: %w", err)
			}
		}
	}
	return body, nil
}

// errorBody keeps an upstream's OpenAI-shaped error as is and wraps anything else (an HTML page
// from a proxy, plain text) into that shape.
func errorBody(status int, data []byte) []byte {
	if gjson.ValidBytes(data) && gjson.GetBytes(data, "error.message").Exists() {
		return data
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	errType := "server_error"
	if status < 500 {
		errType = "invalid_request_error"
	}
	return providers.ErrorBody(fmt.Sprintf("upstream returned %d: %s", status, msg), errType, "")
}

// keptHeader: the request id, processing time and rate-limit headers reach the client.
func keptHeader(name string) bool {
	return name == "x-request-id" || name == "openai-processing-ms" || strings.HasPrefix(name, "x-ratelimit-")
}
