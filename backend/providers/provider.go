// Package providers defines how the gateway talks to an upstream LLM API. The gateway speaks the
// OpenAI wire format end to end: every adapter takes an OpenAI chat-completions request body and
// returns an OpenAI-format response (JSON, or an SSE stream of chat.completion.chunk events).
// Adapters for OpenAI-compatible upstreams forward the body nearly untouched; the others
// (Anthropic, Bedrock) translate in both directions. Adapters only translate: routing, retries,
// fallbacks and tracing belong to backend/gateway.
package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Provider is one configured upstream (an API key, a base URL, a wire format).
type Provider interface {
	// Name is the configured name, the prefix in "name/model" (e.g. "openai", "groq", "local").
	Name() string
	// Chat sends an OpenAI chat-completions request. The returned body is in OpenAI format; the
	// caller closes it. A non-2xx upstream answer is returned as an *Error, never as a Response.
	Chat(ctx context.Context, req *Request) (*Response, error)
}

// Embedder is implemented by providers with an OpenAI-format embeddings endpoint.
type Embedder interface {
	Embed(ctx context.Context, req *Request) (*Response, error)
}

// Passthrough is implemented by OpenAI-format providers that can forward any /v1 endpoint the
// gateway does not interpret (legacy completions, responses), body unchanged but the model.
type Passthrough interface {
	Forward(ctx context.Context, path string, req *Request) (*Response, error)
}

// Checker is implemented by providers that can verify their base URL and key without a paid call.
type Checker interface {
	Check(ctx context.Context) error
}

// ModelLister is implemented by providers that can list the models their upstream serves.
type ModelLister interface {
	ListModels(ctx context.Context) ([]string, error)
}

// Request is one upstream call.
type Request struct {
	// Body is the client's OpenAI request body, raw: unknown fields must survive.
	Body []byte
	// Model is the upstream model id to call (what "model" becomes in the upstream request).
	Model string
	// Stream is the body's "stream" flag.
	Stream bool
	// Header carries client headers an adapter may forward (e.g. OpenAI-Organization). May be nil.
	Header http.Header
}

// Response is an upstream answer in OpenAI format.
type Response struct {
	// Status is the upstream HTTP status (2xx).
	Status int
	// Header holds upstream headers worth passing on (x-request-id, rate-limit headers).
	Header http.Header
	// Body is the JSON body, or the SSE stream when the request had stream: true.
	Body io.ReadCloser
	// Length is Body's length when the upstream announced it (Content-Length); 0 when unknown.
	Length int64
}

// Error is a failed upstream call: a non-2xx answer or a transport failure.
type Error struct {
	// Provider is the configured provider name.
	Provider string
	// Status is the upstream status; 0 for a transport error (connection refused, reset, timeout).
	Status int
	// Body is the error body in OpenAI's shape ({"error":{"message","type","code"}}); for
	// OpenAI-format upstreams it is the upstream body itself.
	Body []byte
	// RetryAfter is the wait the upstream asked for (Retry-After, retry-after-ms), or 0.
	RetryAfter time.Duration
	// Err is the transport error, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %v", e.Provider, e.Err)
	}
	return fmt.Sprintf("%s: upstream status %d: %s", e.Provider, e.Status, truncate(e.Body, 200))
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same call may succeed when tried again: rate limits, server
// errors, timeouts and dropped connections.
func (e *Error) Retryable() bool {
	switch {
	case e.Status == 0:
		return !errors.Is(e.Err, context.Canceled)
	case e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout, e.Status == 409:
		return true
	default:
		return e.Status >= 500
	}
}

// Fallbackable reports whether another provider or model may succeed where this one failed:
// everything retryable, plus auth and not-found errors that are specific to this upstream.
// A 400 (the request itself is wrong) does not fall back: another upstream would refuse it too.
func (e *Error) Fallbackable() bool {
	if e.Retryable() {
		return true
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusPaymentRequired:
		return true
	}
	return false
}

// ParseRetryAfter reads the wait an upstream asked for: OpenAI's retry-after-ms, then the
// standard Retry-After in seconds or as an HTTP date.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// ErrorBody builds an OpenAI-shaped error body.
func ErrorBody(message, errType, code string) []byte {
	type body struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	b := body{Message: message, Type: errType}
	if code != "" {
		b.Code = &code
	}
	data, _ := Marshal(struct {
		Error body `json:"error"`
	}{b})
	return data
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
