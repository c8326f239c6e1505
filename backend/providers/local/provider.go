package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"
	// The CPU backend always, XLA (GPU) unless built with the noxla tag; see the package doc.
	_ "github.com/gomlx/gomlx/backends/default"

	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
	"opentracy/gpu/engine/generate"
)

const (
	// Type is the provider type, and the name of the built-in provider.
	Type = "local"
	// EnvMaxLoaded sets Options.MaxLoaded.
	EnvMaxLoaded = "OPENTRACY_LOCAL_MAX_LOADED"
	// DefaultMaxLoaded is how many models stay loaded by default: one model's weights and KV cache
	// are what a workstation GPU (or RAM for the CPU backend) can spare beside everything else.
	DefaultMaxLoaded = 1
	// loadRetryAfter is how long a failed load is answered from memory instead of tried again.
	loadRetryAfter = 30 * time.Second
	// defaultBackend is GoMLX's pure-Go backend: without GOMLX_BACKEND, GoMLX would pick XLA and
	// try to download its plugin.
	defaultBackend = "go"
)

// Options build a Provider.
type Options struct {
	// Name is the provider name, the prefix in "name/model" (default "local").
	Name string
	// DataDir holds the models and students folders.
	DataDir string
	// MaxLoaded is how many models stay loaded (default $OPENTRACY_LOCAL_MAX_LOADED, else
	// DefaultMaxLoaded).
	MaxLoaded int
	// Env supplies GOMLX_BACKEND and OPENTRACY_LOCAL_MAX_LOADED; nil reads nothing.
	Env    config.Environment
	Logger *slog.Logger
}

// Provider serves the local models; see the package doc.
type Provider struct {
	name string
	reg  *Registry
	log  *slog.Logger
	pool *pool
	now  func() time.Time

	backendSpec string
	backendOnce sync.Once
	backend     compute.Backend
	backendErr  error
}

var (
	_ providers.Provider    = (*Provider)(nil)
	_ providers.ModelLister = (*Provider)(nil)
	_ providers.Checker     = (*Provider)(nil)
)

// New builds the provider. Nothing is loaded until a request asks for a model.
func New(opts Options) (*Provider, error) {
	if opts.DataDir == "" {
		return nil, errors.New("local provider: no data dir")
	}
	if opts.Name == "" {
		opts.Name = Type
	}
	env := opts.Env
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	if opts.MaxLoaded <= 0 {
		opts.MaxLoaded = DefaultMaxLoaded
		if v, ok := env(EnvMaxLoaded); ok && strings.TrimSpace(v) != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return nil, fmt.Errorf("local provider: %s=%q: want a number of models, at least 1", EnvMaxLoaded, v)
			}
			opts.MaxLoaded = n
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	spec, _ := env(compute.ConfigEnvVar)
	if spec = strings.TrimSpace(spec); spec == "" {
		spec = defaultBackend
	}
	p := &Provider{
		name:        opts.Name,
		reg:         NewRegistry(opts.DataDir),
		log:         opts.Logger.With("provider", opts.Name),
		now:         time.Now,
		backendSpec: spec,
	}
	p.pool = newPool(opts.MaxLoaded, loadRetryAfter, p.open, p.reg.stampOf)
	return p, nil
}

// Name is the configured provider name.
func (p *Provider) Name() string { return p.name }

// Registry lists the local models and publishes students.
func (p *Provider) Registry() *Registry { return p.reg }

// Loaded lists the models in memory.
func (p *Provider) Loaded() []LoadedModel { return p.pool.status() }

// Unload frees a model's memory now (requests running on it finish first).
func (p *Provider) Unload(name string) { p.pool.unload(canonicalName(name)) }

// RemoveStudent unloads and deletes a published student.
func (p *Provider) RemoveStudent(name string) error {
	p.Unload(name)
	return p.reg.RemoveStudent(name)
}

// Close unloads every model and releases the backend. Call it once requests have ended.
func (p *Provider) Close() {
	p.pool.close()
	p.backendOnce.Do(func() { p.backendErr = errClosed }) // no backend after Close
	if p.backend != nil {
		p.backend.Finalize()
	}
}

// ListModels lists the models that can be served, by name (without the provider prefix).
func (p *Provider) ListModels(context.Context) ([]string, error) {
	models, err := p.reg.List()
	if err != nil {
		return nil, &providers.Error{Provider: p.name, Err: err}
	}
	var out []string
	for _, m := range models {
		if m.Ready() {
			out = append(out, m.Name)
		}
	}
	return out, nil
}

// Check reads the model folders and makes sure the backend can start.
func (p *Provider) Check(context.Context) error {
	if _, err := p.reg.List(); err != nil {
		return &providers.Error{Provider: p.name, Err: err}
	}
	if _, err := p.getBackend(); err != nil {
		return &providers.Error{Provider: p.name, Status: http.StatusServiceUnavailable,
			Body: providers.ErrorBody(err.Error(), "server_error", "backend_unavailable")}
	}
	return nil
}

// getBackend creates the backend on first use.
func (p *Provider) getBackend() (compute.Backend, error) {
	p.backendOnce.Do(func() {
		name, _, _ := strings.Cut(p.backendSpec, ":")
		if !slices.Contains(compute.List(), name) {
			// compute.NewWithConfig panics on a backend it does not know.
			p.backendErr = fmt.Errorf("%s=%q names backend %q, which this build does not include (it has %s)",
				compute.ConfigEnvVar, p.backendSpec, name, strings.Join(compute.List(), ", "))
			return
		}
		b, err := compute.NewWithConfig(p.backendSpec)
		if err != nil {
			p.backendErr = fmt.Errorf("start the %q backend: %w", p.backendSpec, err)
			return
		}
		p.backend = b
		p.log.Info("local models backend started", "backend", b.Name())
	})
	return p.backend, p.backendErr
}

func (p *Provider) open(ctx context.Context, m Model) (*engine, error) {
	b, err := p.getBackend()
	if err != nil {
		return nil, err
	}
	start := p.now()
	e, err := openEngine(ctx, b, m, p.log)
	if err != nil {
		p.log.Error("cannot load a local model", "model", m.Name, "err", err)
		return nil, err
	}
	p.log.Info("local model loaded", "model", m.Name, "kind", m.Kind, "template", e.tmpl.Name(), "took", p.now().Sub(start).Round(time.Millisecond))
	return e, nil
}

// Chat generates an OpenAI chat completion, or with stream a chunk stream ending in [DONE].
func (p *Provider) Chat(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	r, err := parseRequest(req.Body)
	if err != nil {
		return nil, p.error(err)
	}
	stream := req.Stream || r.raw.Stream
	name := canonicalName(req.Model)
	e, err := p.pool.acquire(ctx, name, func() (Model, error) {
		m, err := p.reg.Get(name)
		if err == nil && !m.Ready() {
			err = fmt.Errorf("local model %s cannot be served: %s: %w", m.Name, m.Problem, m.notReady)
		}
		return m, err
	})
	if err != nil {
		return nil, p.error(err)
	}
	pl, err := e.eng.plan(r, stream)
	if err != nil {
		p.pool.release(e)
		return nil, p.error(err)
	}
	e.requests.Add(1)
	e.promptTokens.Add(int64(len(pl.prompt)))
	c := completion{id: newID("chatcmpl-"), model: req.Model, created: p.now().Unix()}
	if stream {
		return p.stream(ctx, e, pl, c)
	}
	defer p.pool.release(e)
	if err := e.lock(ctx); err != nil {
		return nil, p.error(err)
	}
	res, err := generate.Generate(ctx, generate.FromModel(e.eng.model), e.eng.tok, [][]int{pl.prompt}, pl.params, nil)
	e.unlock()
	if len(res) == 1 {
		e.tokens.Add(int64(res[0].CompletionTokens))
	}
	if err != nil {
		return nil, p.error(err)
	}
	body, err := c.whole(res[0], pl)
	if err != nil {
		return nil, p.error(err)
	}
	return &providers.Response{Status: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}, nil
}

// error turns a failure into the *providers.Error the gateway relays, in OpenAI's shape.
func (p *Provider) error(err error) error {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// Like a dropped connection: the gateway knows the client left or the time ran out.
		return &providers.Error{Provider: p.name, Err: err}
	case errors.Is(err, ErrNotFound):
		ae = &apiError{status: http.StatusNotFound, errType: "invalid_request_error", code: "model_not_found",
			msg: fmt.Sprintf("%v: the local models are the downloaded models and the published students (GET /v1/models lists them)", err)}
	case errors.Is(err, ErrUnsupported):
		ae = &apiError{status: http.StatusNotFound, errType: "invalid_request_error", code: "model_not_supported", msg: err.Error()}
	case errors.Is(err, ErrNotReady):
		ae = &apiError{status: http.StatusServiceUnavailable, errType: "server_error", code: "model_not_ready", msg: err.Error()}
	case errors.Is(err, errClosed):
		ae = &apiError{status: http.StatusServiceUnavailable, errType: "server_error", code: "provider_closed", msg: err.Error()}
	default:
		// Anything else failed while loading or running the model.
		ae = &apiError{status: http.StatusServiceUnavailable, errType: "server_error", code: "model_load_failed", msg: "local model: " + err.Error()}
	}
	return &providers.Error{Provider: p.name, Status: ae.status, Body: providers.ErrorBody(ae.msg, ae.errType, ae.code)}
}

// completion is one answer's identity.
type completion struct {
	id, model string
	created   int64
}

// whole builds the chat.completion body of a finished generation.
func (c completion) whole(res generate.Result, pl *plan) ([]byte, error) {
	parser := newOutputParser(pl.output)
	r1, c1 := parser.feed(res.Text)
	r2, c2, calls := parser.finish()
	content, reasoning := c1+c2, r1+r2
	finish := string(res.FinishReason)
	if len(calls) > 0 {
		finish = "tool_calls"
	}
	return providers.Marshal(chatwire.Completion{
		ID: c.id, Object: "chat.completion", Created: c.created, Model: c.model,
		Choices: []chatwire.Choice{{Index: 0, FinishReason: finish,
			Message: chatwire.AssistantMessage(content, content != "", reasoning, calls)}},
		Usage: usageOf(res),
	})
}

func usageOf(res generate.Result) *chatwire.Usage {
	return &chatwire.Usage{PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens,
		TotalTokens: res.PromptTokens + res.CompletionTokens}
}
