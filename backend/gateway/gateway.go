// Package gateway is the OpenAI-compatible proxy: it parses just enough of each request to route
// it (model, stream, metadata), resolves aliases, calls providers with retries, fallbacks and
// cooldowns, relays responses (streams chunk by chunk, never buffered) and hands a complete trace
// of every request to a traces.Sink. Bodies pass through untouched unless a field must change.
package gateway

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"opentracy/backend/aliases"
	"opentracy/backend/providers"
	"opentracy/backend/traces"
)

// Response headers set on every gateway answer.
const (
	HeaderTraceID  = "X-OpenTracy-Trace-Id"
	HeaderModel    = "X-OpenTracy-Model"
	HeaderProvider = "X-OpenTracy-Provider"
	// HeaderMetadata carries a JSON object of trace metadata from the client.
	HeaderMetadata = "X-OpenTracy-Metadata"
)

// RetryPolicy says how often and how patiently one deployment is retried before falling back.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt (default 2).
	MaxRetries int
	// BaseDelay and MaxDelay bound the exponential backoff with full jitter (defaults 200 ms, 8 s).
	BaseDelay, MaxDelay time.Duration
	// MaxRetryAfter is the longest upstream Retry-After the gateway waits out itself (default 10 s);
	// a longer one moves on to the next fallback, or is passed to the client.
	MaxRetryAfter time.Duration
	// Cooldown is how long a deployment that exhausted its retries is skipped (default 30 s) while
	// other candidates remain.
	Cooldown time.Duration
}

// Timeouts bound upstream calls.
type Timeouts struct {
	// Request bounds a whole non-streaming call (default 10 min).
	Request time.Duration
	// StreamIdle bounds the silence before the first byte and between chunks of a stream
	// (default 2 min); a stream that keeps sending is never cut.
	StreamIdle time.Duration
}

// CostFunc prices a usage for a provider and model, in USD.
type CostFunc func(provider, model string, u traces.Usage) float64

// Options build a Gateway.
type Options struct {
	Providers []providers.Provider
	// Models maps a bare model name to the providers that serve it, in preference order.
	Models  map[string][]string
	Aliases *aliases.Registry
	Sink    traces.Sink
	Cost    CostFunc
	Logger  *slog.Logger
	Retry   RetryPolicy
	// Timeouts per provider name; Default applies to the others.
	Timeouts        map[string]Timeouts
	DefaultTimeouts Timeouts
	// MaxBodyBytes bounds a request body (default 32 MiB: long contexts with images are large).
	MaxBodyBytes int64
}

// Gateway routes and relays requests.
type Gateway struct {
	opts   Options
	log    *slog.Logger
	routes atomic.Pointer[routes] // swapped whole when providers change; read lock-free

	cooldownMu sync.Mutex
	cooldowns  map[deployment]time.Time

	stats *providerStats

	modelsMu   sync.Mutex
	modelCache map[string]cachedModels

	// Seams for tests.
	now    func() time.Time
	sleep  func(d time.Duration, done <-chan struct{}) bool
	jitter func() float64
}

// New builds a gateway.
func New(opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Sink == nil {
		opts.Sink = traces.NewMemorySink(0)
	}
	if opts.Cost == nil {
		opts.Cost = func(string, string, traces.Usage) float64 { return 0 }
	}
	r := &opts.Retry
	if r.MaxRetries == 0 {
		r.MaxRetries = 2
	}
	if r.MaxRetries < 0 {
		r.MaxRetries = 0
	}
	r.BaseDelay = orDefault(r.BaseDelay, 200*time.Millisecond)
	r.MaxDelay = orDefault(r.MaxDelay, 8*time.Second)
	r.MaxRetryAfter = orDefault(r.MaxRetryAfter, 10*time.Second)
	r.Cooldown = orDefault(r.Cooldown, 30*time.Second)
	opts.DefaultTimeouts.Request = orDefault(opts.DefaultTimeouts.Request, 10*time.Minute)
	opts.DefaultTimeouts.StreamIdle = orDefault(opts.DefaultTimeouts.StreamIdle, 2*time.Minute)
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 32 << 20
	}
	g := &Gateway{
		opts:       opts,
		log:        opts.Logger.With("subsystem", "gateway"),
		cooldowns:  map[deployment]time.Time{},
		stats:      newProviderStats(),
		modelCache: map[string]cachedModels{},
		now:        time.Now,
		sleep:      sleepOrDone,
		jitter:     rand.Float64,
	}
	g.SetProviders(opts.Providers, opts.Models)
	return g
}

// routes are the providers and the model map requests are routed with.
type routes struct {
	providers map[string]providers.Provider
	order     []string // provider names in configuration order
	models    map[string][]string
	// deployments of each bare model name with a configured provider, built once rather than
	// on every request (shared: read only).
	deployments map[string][]deployment
}

// SetProviders replaces the providers and the bare-model map; requests in flight finish with
// the providers they started with.
func (g *Gateway) SetProviders(list []providers.Provider, models map[string][]string) {
	r := &routes{providers: make(map[string]providers.Provider, len(list)), models: models,
		deployments: make(map[string][]deployment, len(models))}
	for _, p := range list {
		r.providers[p.Name()] = p
		r.order = append(r.order, p.Name())
	}
	for model, names := range models {
		var deps []deployment
		for _, n := range names {
			if _, ok := r.providers[n]; ok {
				deps = append(deps, deployment{provider: n, model: model})
			}
		}
		if len(deps) > 0 {
			r.deployments[model] = deps
		}
	}
	g.routes.Store(r)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (g *Gateway) timeouts(provider string) Timeouts {
	t, ok := g.opts.Timeouts[provider]
	if !ok {
		return g.opts.DefaultTimeouts
	}
	t.Request = orDefault(t.Request, g.opts.DefaultTimeouts.Request)
	t.StreamIdle = orDefault(t.StreamIdle, g.opts.DefaultTimeouts.StreamIdle)
	return t
}

// Handler serves /v1/... (mount it behind the gateway key check).
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", g.chatCompletions)
	mux.HandleFunc("POST /v1/embeddings", g.embeddings)
	mux.HandleFunc("POST /v1/completions", g.passthrough("/completions", "completions", "prompt", "choices"))
	mux.HandleFunc("POST /v1/responses", g.passthrough("/responses", "responses", "input", "output"))
	mux.HandleFunc("GET /v1/models", g.listModels)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url",
			"Unrecognized request URL ("+r.Method+": "+r.URL.Path+"). OpenTracy serves the OpenAI API under /v1.")
	})
	return mux
}

func sleepOrDone(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
