// Package bedrock is the adapter for Amazon Bedrock's Converse and ConverseStream APIs. Chat
// takes an OpenAI chat-completions request and returns an OpenAI-format answer, translating both
// ways, so every model Bedrock serves through Converse (Claude, Nova, Llama, Mistral, ...) is
// reachable with OpenAI clients.
//
// Requests are signed with SigV4 (the AWS SDK's signer) using the AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN variables, or carry a Bedrock API key as a bearer
// token when one is configured (api_key, or AWS_BEARER_TOKEN_BEDROCK).
//
// Translation is lossy where the formats differ. The choices:
//
//   - OpenAI fields with no Converse counterpart are dropped: reasoning_effort, user, seed,
//     logprobs, top_logprobs, presence_penalty, frequency_penalty, logit_bias,
//     parallel_tool_calls, modalities, audio, prediction, service_tier, store, metadata and
//     web_search_options. Model-specific features such as extended thinking need Converse's
//     additionalModelRequestFields, which OpenAI's format cannot express. n > 1 is refused with
//     a 400, since dropping it would change the answer's shape.
//   - System and developer messages, wherever they appear, join the top-level system prompt in
//     order. Consecutive turns of one role are merged (Converse requires alternation); tool
//     messages become toolResult blocks in a user turn. reasoning_content sent back in the
//     history is dropped: Bedrock only accepts reasoning with its signature.
//   - Images must be data: URLs: Converse takes image bytes inline (or S3 locations, which an
//     OpenAI request cannot name), so an http(s) image URL is refused with a 400 rather than
//     fetched by the gateway. File parts with file_data become document blocks.
//   - max_completion_tokens, else max_tokens, becomes inferenceConfig.maxTokens; temperature and
//     top_p pass unchanged, as their valid ranges depend on the model.
//   - tool_choice auto, required and a named function become auto, any and tool; "none" leaves
//     the tools out, since Converse cannot offer tools and forbid them. Tool call ids are made to
//     fit Bedrock's ^[a-zA-Z0-9_-]+$ by replacing other characters with "_".
//   - response_format json_object/json_schema becomes a system instruction asking for JSON;
//     the answer is not validated.
//   - cache_control on a content part (a common extension) adds a Converse cachePoint after it,
//     so prompt caching works from OpenAI clients.
//   - Converse answers have no id: each response gets a fresh "chatcmpl-" id; model is the
//     requested model id.
//   - Usage: Bedrock's inputTokens excludes input read from or written to the prompt cache, so
//     prompt_tokens is inputTokens + cacheReadInputTokens + cacheWriteInputTokens;
//     prompt_tokens_details.cached_tokens is the cache reads and the non-standard
//     prompt_tokens_details.cache_creation_tokens the cache writes, which bill differently.
//   - Reasoning text in the answer comes back as reasoning_content, the field OpenAI-format
//     clients such as DeepSeek's already read.
//   - A stream that ends before messageStop ends the OpenAI stream with io.ErrUnexpectedEOF and
//     no [DONE]; an exception frame becomes an OpenAI error event, also without [DONE].
package bedrock

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"opentracy/backend/config"
	"opentracy/backend/providers"
)

const (
	// Type is the provider type in the config.
	Type = "bedrock"
	// BearerTokenEnv holds a Bedrock API key, used instead of SigV4 credentials when set.
	BearerTokenEnv = "AWS_BEARER_TOKEN_BEDROCK"

	baseURLEnv       = "BEDROCK_BASE_URL"
	accessKeyEnv     = "AWS_ACCESS_KEY_ID"
	secretKeyEnv     = "AWS_SECRET_ACCESS_KEY"
	sessionTokenEnv  = "AWS_SESSION_TOKEN"
	regionEnv        = "AWS_REGION"
	defaultRegionEnv = "AWS_DEFAULT_REGION"
	signingService   = "bedrock"
	maxMessageBody   = 64 << 20
)

// DefaultBaseURL is Bedrock's runtime endpoint in region.
func DefaultBaseURL(region string) string {
	return "https://bedrock-runtime." + region + ".amazonaws.com"
}

// Provider is one configured Bedrock upstream.
type Provider struct {
	name    string
	base    string
	region  string
	bearer  string
	creds   aws.Credentials
	signer  *v4.Signer
	headers map[string]string
	client  *http.Client
	now     func() time.Time
	newID   func() string
}

var _ providers.Provider = (*Provider)(nil)

// New builds the adapter. The region comes from cfg.Region, else AWS_REGION, else
// AWS_DEFAULT_REGION; the base URL from cfg.BaseURL, else BEDROCK_BASE_URL, else the region's
// runtime endpoint. A bearer key (cfg.APIKey, else the variable cfg.APIKeyEnv, default
// AWS_BEARER_TOKEN_BEDROCK) wins over SigV4 credentials, which come from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and the optional AWS_SESSION_TOKEN.
func New(cfg config.Provider, client *http.Client, env config.Environment) (*Provider, error) {
	name := cfg.Name
	if name == "" {
		name = Type
	}
	lookup := func(key string) string {
		v, _ := env(key)
		return strings.TrimSpace(v)
	}
	p := &Provider{name: name, signer: v4.NewSigner(), headers: cfg.Headers, client: client, now: time.Now, newID: newID}
	if p.client == nil {
		p.client = http.DefaultClient
	}

	keyEnv := cfg.APIKeyEnv
	if keyEnv == "" {
		keyEnv = BearerTokenEnv
	}
	p.bearer = cfg.APIKey.Reveal()
	if p.bearer == "" {
		p.bearer = lookup(keyEnv)
	}

	p.region = cfg.Region
	for _, key := range []string{regionEnv, defaultRegionEnv} {
		if p.region == "" {
			p.region = lookup(key)
		}
	}

	base := cfg.BaseURL
	if base == "" {
		base = lookup(baseURLEnv)
	}
	// SigV4 always needs the region (it is part of the signature); a bearer key only to find
	// the endpoint.
	if p.region == "" && (p.bearer == "" || base == "") {
		return nil, fmt.Errorf("provider %q: no AWS region: set region in the config, or %s or %s", name, regionEnv, defaultRegionEnv)
	}
	if base == "" {
		base = DefaultBaseURL(p.region)
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider %q: base URL %q is not an http(s) URL", name, base)
	}
	p.base = strings.TrimRight(base, "/")

	if p.bearer == "" {
		p.creds = aws.Credentials{AccessKeyID: lookup(accessKeyEnv), SecretAccessKey: lookup(secretKeyEnv),
			SessionToken: lookup(sessionTokenEnv), Source: "environment"}
		if p.creds.AccessKeyID == "" || p.creds.SecretAccessKey == "" {
			return nil, fmt.Errorf("provider %q: no AWS credentials: set %s and %s (and %s for temporary credentials), or a Bedrock API key in %s or api_key",
				name, accessKeyEnv, secretKeyEnv, sessionTokenEnv, keyEnv)
		}
	}
	return p, nil
}

// Name is the configured provider name.
func (p *Provider) Name() string { return p.name }

// Chat sends an OpenAI chat-completions request to Bedrock's Converse (or, with stream,
// ConverseStream) API and answers in OpenAI format: a chat.completion body, or a
// chat.completion.chunk SSE stream ending in [DONE]. Upstream errors come back as
// *providers.Error with an OpenAI-shaped body.
func (p *Provider) Chat(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	creq, opts, err := toConverse(req.Body)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Status: http.StatusBadRequest,
			Body: providers.ErrorBody(err.Error(), "invalid_request_error", "")}
	}
	if req.Model == "" {
		return nil, &providers.Error{Provider: p.name, Status: http.StatusBadRequest,
			Body: providers.ErrorBody("no model id to send to Bedrock", "invalid_request_error", "")}
	}
	stream := req.Stream || opts.stream
	body, err := providers.Marshal(creq)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("encode converse request: %w", err)}
	}
	resp, err := p.post(ctx, req.Model, stream, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, err := providers.ReadErrorBody(p.name, resp)
		if err != nil {
			return nil, err
		}
		return nil, &providers.Error{Provider: p.name, Status: resp.StatusCode, Body: openAIErrorBody(resp.StatusCode, resp.Header, data),
			RetryAfter: providers.ParseRetryAfter(resp.Header, p.now())}
	}
	header := providers.KeepHeaders(resp.Header, keptHeader)
	id, created := p.newID(), p.now().Unix()
	if stream {
		return &providers.Response{Status: resp.StatusCode, Header: header,
			Body: newChatStream(resp.Body, id, req.Model, created, opts.includeUsage)}, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMessageBody))
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("read bedrock response: %w", err)}
	}
	out, err := fromConverse(data, id, req.Model, created)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Status: http.StatusBadGateway,
			Body: providers.ErrorBody("bedrock returned an unreadable response: "+err.Error(), "server_error", ""),
			Err:  err}
	}
	return &providers.Response{Status: resp.StatusCode, Header: header, Body: io.NopCloser(bytes.NewReader(out))}, nil
}

// post sends body to the model's converse or converse-stream endpoint, signed. A transport
// failure is returned as a *providers.Error with Status 0; any HTTP answer is returned for the
// caller to judge.
func (p *Provider) post(ctx context.Context, model string, stream bool, body []byte) (*http.Response, error) {
	op, accept := "/converse", "application/json"
	if stream {
		op, accept = "/converse-stream", "application/vnd.amazon.eventstream"
	}
	endpoint := p.base + "/model/" + escapeModelID(model) + op
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("build request: %w", err)}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", accept)
	for k, v := range p.headers {
		hreq.Header.Set(k, v)
	}
	if p.bearer != "" {
		hreq.Header.Set("Authorization", "Bearer "+p.bearer)
	} else {
		// Signed last, so that every header above is covered by the signature.
		sum := sha256.Sum256(body)
		if err := p.signer.SignHTTP(ctx, p.creds, hreq, hex.EncodeToString(sum[:]), signingService, p.region, p.now()); err != nil {
			return nil, &providers.Error{Provider: p.name, Err: fmt.Errorf("sign request: %w", err)}
		}
	}
	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: err}
	}
	return resp, nil
}

// escapeModelID percent-encodes everything but RFC 3986's unreserved characters, as the AWS SDKs
// do: model ids hold ':' ("...-v1:0") and ARNs hold '/' too.
func escapeModelID(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// keptHeader: the request id and Retry-After reach the client.
func keptHeader(name string) bool { return name == "x-amzn-requestid" || name == "retry-after" }

// newID mints a chat completion id: Converse answers carry none.
func newID() string { return "chatcmpl-" + rand.Text() }
