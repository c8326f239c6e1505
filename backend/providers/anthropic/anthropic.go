// Package anthropic is the adapter for Anthropic's Messages API. Chat takes an OpenAI
// chat-completions request and returns an OpenAI-format answer, translating both ways; Messages
// forwards an Anthropic-format request untouched for the gateway's Anthropic ingress; and
// ChatRequestFromMessages, MessagesResponseFromChat, MessagesStreamFromChat and ErrorFromOpenAI
// translate the other way, so that ingress can reach OpenAI-format upstreams too.
//
// Translation is lossy where the formats differ. The choices:
//
//   - OpenAI fields with no Anthropic counterpart (logprobs, seed, presence_penalty,
//     frequency_penalty, logit_bias, modalities, audio, service_tier, store, ...) are dropped.
//     n > 1 is refused with a 400, since dropping it would change the answer's shape.
//   - System and developer messages, wherever they appear, are joined in order into the
//     top-level system prompt. Consecutive turns of one role are merged (Anthropic requires
//     alternation); tool messages become tool_result blocks in a user turn.
//   - max_completion_tokens, else max_tokens, becomes max_tokens; 4096 when neither is set,
//     because Anthropic requires it.
//   - temperature is clamped to [0, 1]: OpenAI allows up to 2, Anthropic up to 1.
//   - reasoning_effort turns on extended thinking with budget_tokens minimal/low 1024, medium
//     4096, high 16384 ("none" leaves it off). max_tokens is raised by the budget when it does
//     not exceed it, and temperature/top_p values Anthropic rejects with thinking are dropped.
//     Thinking comes back as the message's (or delta's) reasoning_content, a field OpenAI-format
//     clients such as DeepSeek's already read. reasoning_content sent back in the history is
//     dropped: Anthropic only accepts thinking blocks with their signature, which OpenAI's format
//     cannot carry.
//   - response_format json_object/json_schema has no Anthropic equivalent: an instruction asking
//     for JSON (with the schema) is appended to the system prompt; the answer is not validated.
//   - tool_choice is sent only with tools (Anthropic refuses it alone); parallel_tool_calls:
//     false becomes disable_parallel_tool_use. Tool call ids are made to fit Anthropic's
//     ^[a-zA-Z0-9_-]+$ by replacing other characters with "_".
//   - cache_control on OpenAI content parts (a common extension) is passed through, so prompt
//     caching works from OpenAI clients.
//   - Usage: prompt_tokens counts cache reads and writes (Anthropic's input_tokens excludes
//     both); prompt_tokens_details.cached_tokens is the cache reads and the non-standard
//     prompt_tokens_details.cache_creation_tokens the cache writes, which bill differently.
//   - A stream that ends before message_stop ends the OpenAI stream with io.ErrUnexpectedEOF
//     and no [DONE], so a truncated answer is never passed off as complete.
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/sjson"

	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
)

const (
	// Type is the provider type in the config.
	Type = "anthropic"
	// DefaultBaseURL is Anthropic's API, used when neither the config nor ANTHROPIC_BASE_URL set one.
	DefaultBaseURL = "https://api.anthropic.com"
	// Version is the anthropic-version header; 2023-06-01 is the current Messages API version.
	Version = "2023-06-01"

	defaultKeyEnv  = "ANTHROPIC_API_KEY"
	baseURLEnv     = "ANTHROPIC_BASE_URL"
	maxMessageBody = 64 << 20
)

// Provider is one configured Anthropic upstream.
type Provider struct {
	name     string
	endpoint string
	key      string
	headers  map[string]string
	client   *http.Client
	now      func() time.Time
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Checker  = (*Provider)(nil)
)

// New builds the adapter. The key comes from cfg.APIKey, else the variable cfg.APIKeyEnv
// (default ANTHROPIC_API_KEY); the base URL from cfg.BaseURL, else ANTHROPIC_BASE_URL, else
// DefaultBaseURL. A base URL ending in /v1 is accepted too.
func New(cfg config.Provider, client *http.Client, env config.Environment) (*Provider, error) {
	name := cfg.Name
	if name == "" {
		name = Type
	}
	base := cfg.BaseURL
	if base == "" {
		base, _ = env(baseURLEnv)
	}
	if base == "" {
		base = DefaultBaseURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider %q: base URL %q is not an http(s) URL", name, base)
	}
	// Anthropic's SDKs take the base without /v1, OpenAI habits add it: accept both.
	base = strings.TrimSuffix(strings.TrimRight(base, "/"), "/v1")

	key := cfg.APIKey.Reveal()
	keyEnv := cfg.APIKeyEnv
	if keyEnv == "" {
		keyEnv = defaultKeyEnv
	}
	if key == "" {
		key, _ = env(keyEnv)
	}
	if key == "" {
		return nil, fmt.Errorf("provider %q: no API key: set %s, or api_key_env/api_key in the config", name, keyEnv)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &Provider{name: name, endpoint: base + "/v1/messages", key: key, headers: cfg.Headers, client: client, now: time.Now}, nil
}

// Name is the configured provider name.
func (p *Provider) Name() string { return p.name }

// Chat sends an OpenAI chat-completions request to Anthropic and answers in OpenAI format: a
// chat.completion body, or with stream a chat.completion.chunk SSE stream ending in [DONE].
// Upstream errors come back as *providers.Error with an OpenAI-shaped body.
func (p *Provider) Chat(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	wreq, opts, err := toWireRequest(req.Body, req.Model)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Status: http.StatusBadRequest,
			Body: providers.ErrorBody(err.Error(), "invalid_request_error", "")}
	}
	if req.Stream && !wreq.Stream {
		wreq.Stream, opts.stream = true, true
	}
	body, err := providers.Marshal(wreq)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("encode anthropic request: %w", err)}
	}
	resp, err := p.send(ctx, body, opts.stream, req.Header, openAIErrorBody)
	if err != nil {
		return nil, err
	}
	header := providers.KeepHeaders(resp.Header, keptHeader)
	if opts.stream {
		return &providers.Response{Status: resp.StatusCode, Header: header,
			Body: newChatStream(resp.Body, opts.includeUsage, p.now())}, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMessageBody))
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("read anthropic response: %w", err)}
	}
	out, err := fromWireResponse(data, p.now())
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Status: http.StatusBadGateway,
			Body: providers.ErrorBody("anthropic returned an unreadable message: "+err.Error(), "server_error", ""),
			Err:  err}
	}
	return &providers.Response{Status: resp.StatusCode, Header: header, Body: io.NopCloser(bytes.NewReader(out))}, nil
}

// Messages forwards an Anthropic Messages request (req.Body) with its model set to req.Model,
// for the gateway's Anthropic-format ingress. Unlike Chat it keeps Anthropic's wire format both
// ways: the response body (JSON or event stream) is the upstream's, untouched, and an error's
// Body is Anthropic's {"type":"error","error":{...}}.
func (p *Provider) Messages(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	body := req.Body
	if !json.Valid(body) || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return nil, &providers.Error{Provider: p.name, Status: http.StatusBadRequest,
			Body: anthropicError("invalid_request_error", "request body is not a JSON object")}
	}
	if req.Model != "" {
		var err error
		if body, err = sjson.SetBytes(body, "model", req.Model); err != nil {
			return nil, &providers.Error{Provider: p.name, Status: http.StatusBadRequest,
				Body: anthropicError("invalid_request_error", "cannot set model: "+err.Error())}
		}
	}
	resp, err := p.send(ctx, body, req.Stream, req.Header, anthropicErrorBody)
	if err != nil {
		return nil, err
	}
	return &providers.Response{Status: resp.StatusCode, Header: providers.KeepHeaders(resp.Header, keptHeader), Body: resp.Body,
		Length: max(resp.ContentLength, 0)}, nil
}

// BaseURL is the API root requests go to (without /v1).
func (p *Provider) BaseURL() string { return strings.TrimSuffix(p.endpoint, "/v1/messages") }

// Check lists the models (GET /v1/models): it proves the base URL and key work and costs nothing.
func (p *Provider) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL()+"/v1/models", nil)
	if err != nil {
		return &providers.Error{Provider: p.name, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("X-Api-Key", p.key)
	req.Header.Set("Anthropic-Version", Version)
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return &providers.Error{Provider: p.name, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, err := providers.ReadErrorBody(p.name, resp)
		if err != nil {
			return err
		}
		return &providers.Error{Provider: p.name, Status: resp.StatusCode, Body: openAIErrorBody(resp.StatusCode, data)}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// post sends body to the Messages endpoint. A transport failure is returned as a
// *providers.Error with Status 0; any HTTP answer is returned for the caller to judge.
// send posts body and turns a non-2xx answer into a *providers.Error whose body errorBody renders
// (in OpenAI's shape for Chat, Anthropic's for Messages).
func (p *Provider) send(ctx context.Context, body []byte, stream bool, clientHeader http.Header, errorBody func(int, []byte) []byte) (*http.Response, error) {
	resp, err := p.post(ctx, body, stream, clientHeader)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, err := providers.ReadErrorBody(p.name, resp)
		if err != nil {
			return nil, err
		}
		return nil, &providers.Error{Provider: p.name, Status: resp.StatusCode, Body: errorBody(resp.StatusCode, data),
			RetryAfter: providers.ParseRetryAfter(resp.Header, p.now())}
	}
	return resp, nil
}

func (p *Provider) post(ctx context.Context, body []byte, stream bool, clientHeader http.Header) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("build request: %w", err)}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("X-Api-Key", p.key)
	hreq.Header.Set("Anthropic-Version", Version)
	if stream {
		hreq.Header.Set("Accept", "text/event-stream")
	} else {
		hreq.Header.Set("Accept", "application/json")
	}
	// A client's beta opt-ins are the one client header that means something to Anthropic.
	if v := clientHeader.Get("Anthropic-Beta"); v != "" {
		hreq.Header.Set("Anthropic-Beta", v)
	}
	for k, v := range p.headers {
		hreq.Header.Set(k, v)
	}
	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: err}
	}
	return resp, nil
}

// keptHeader: the request id, Retry-After and Anthropic's rate-limit headers reach the client.
func keptHeader(name string) bool {
	return name == "request-id" || name == "x-request-id" || name == "retry-after" || strings.HasPrefix(name, "anthropic-ratelimit-")
}

// anthropicErrorBody keeps an upstream error in Anthropic's shape, wrapping anything else (a
// proxy's HTML page) into it.
func anthropicErrorBody(status int, data []byte) []byte {
	var e wireErrorBody
	if err := json.Unmarshal(data, &e); err == nil && e.Type == "error" && e.Error.Message != "" {
		return data
	}
	return anthropicError(anthropicErrorType(status, ""), chatwire.UpstreamText(status, data))
}

// anthropicError builds {"type":"error","error":{"type","message"}}.
func anthropicError(errType, message string) []byte {
	data, err := providers.Marshal(wireErrorBody{Type: "error", Error: wireError{Type: errType, Message: message}})
	if err != nil {
		// Two strings always encode; this keeps the signature simple.
		return []byte(`{"type":"error","error":{"type":"api_error","message":"internal error"}}`)
	}
	return data
}
