package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomlx/compute"

	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
	"opentracy/gpu/engine/generate"
	"opentracy/gpu/runtime"
	"opentracy/gpu/worker"
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
	// RuntimeDirName is the folder of the data dir the GPU runtime is installed in.
	RuntimeDirName = "gpu-runtime"
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
	Env config.Environment
	// Engine chooses the backend (the config's engine section) when GOMLX_BACKEND is not set.
	Engine runtime.Config
	// RuntimeDir is where the GPU runtime is installed (default DATA_DIR/gpu-runtime).
	RuntimeDir string
	// Isolate runs the models in an engine-worker child process even on the CPU backend (GPU
	// backends always run there).
	Isolate bool
	// WorkerCommand is the engine worker's command line (default: this executable's
	// engine-worker subcommand); tests run their own binary.
	WorkerCommand []string
	// DetectGPU finds the GPU (default runtime.DetectSystem); tests replace it.
	DetectGPU func(*slog.Logger) runtime.Info
	Logger    *slog.Logger
}

// Provider serves the local models; see the package doc.
type Provider struct {
	name string
	reg  *Registry
	log  *slog.Logger
	pool *pool
	now  func() time.Time
	ids  atomic.Uint64

	// envBackend is $GOMLX_BACKEND, which wins over the engine configuration.
	envBackend    string
	engineCfg     runtime.Config
	runtimeDir    string
	isolate       bool
	workerCommand []string
	detect        func(*slog.Logger) runtime.Info

	runners runners
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
	if opts.RuntimeDir == "" {
		opts.RuntimeDir = filepath.Join(opts.DataDir, RuntimeDirName)
	}
	if opts.DetectGPU == nil {
		opts.DetectGPU = runtime.DetectSystem
	}
	spec, _ := env(compute.ConfigEnvVar)
	p := &Provider{
		name:          opts.Name,
		reg:           NewRegistry(opts.DataDir),
		log:           opts.Logger.With("provider", opts.Name),
		now:           time.Now,
		envBackend:    strings.TrimSpace(spec),
		engineCfg:     opts.Engine,
		runtimeDir:    opts.RuntimeDir,
		isolate:       opts.Isolate,
		workerCommand: opts.WorkerCommand,
		detect:        opts.DetectGPU,
	}
	p.runners.start = p.startRunner
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

// Close unloads every model and releases the backend (and stops the engine worker). Call it
// once requests have ended.
func (p *Provider) Close() {
	p.pool.close()
	p.runners.close() // no engine after Close; the current one stops once its models are unloaded
}

// ResetEngine decides again where models run, as on first use: after the GPU runtime was
// installed or removed. Loaded models are unloaded (requests running on them finish first); the
// next request loads its model on the new choice.
func (p *Provider) ResetEngine() {
	p.runners.reset()
	p.pool.unloadAll()
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

// Check reads the model folders and makes sure the backend can start (in the engine worker,
// when models run there).
func (p *Provider) Check(ctx context.Context) error {
	if _, err := p.reg.List(); err != nil {
		return &providers.Error{Provider: p.name, Err: err}
	}
	r, err := p.runners.get()
	if err == nil {
		_, err = r.Hello(ctx)
	}
	if err != nil {
		return &providers.Error{Provider: p.name, Status: http.StatusServiceUnavailable,
			Body: providers.ErrorBody(err.Error(), "server_error", "backend_unavailable")}
	}
	return nil
}

// Engine reports where the models run: the backend and device (starting them if needed), and
// whether in this process or in the engine worker.
func (p *Provider) Engine(ctx context.Context) (worker.Hello, string, error) {
	r, err := p.runners.get()
	if err != nil {
		return worker.Hello{}, "", err
	}
	h, err := r.Hello(ctx)
	return h, r.mode, err
}

// startRunner decides where models run: GOMLX_BACKEND when set, else the engine configuration
// resolved against the GPU and the installed GPU runtime. The CPU backend runs in this process
// (nothing to isolate, and no per-token messages); a GPU backend, or any with Isolate, runs in
// an engine-worker child process started with the environment it needs.
func (p *Provider) startRunner() (*runner, error) {
	spec, env, err := p.backendChoice()
	if err != nil {
		p.log.Error("local models cannot run", "err", err)
		return nil, err
	}
	r := &runner{mode: "worker"}
	if name, _, _ := strings.Cut(spec, ":"); name == runtime.BackendGo && !p.isolate {
		r.Runner, r.mode = worker.NewEngine(worker.EngineOptions{Backend: spec, Logger: p.log}), "in-process"
	} else {
		r.Runner = worker.NewClient(worker.ClientOptions{Command: p.workerCommand, Env: env, Logger: p.log})
	}
	p.log.Info("local models engine", "backend", spec, "runs", r.mode)
	return r, nil
}

// backendChoice returns the GoMLX backend configuration models run on ("go" for the CPU) and
// the environment an engine worker needs for it.
func (p *Provider) backendChoice() (spec string, env []string, err error) {
	if p.envBackend != "" {
		name, _, _ := strings.Cut(p.envBackend, ":")
		if !slices.Contains(compute.List(), name) {
			return "", nil, fmt.Errorf("%s=%q names backend %q, which this build does not include (it has %s)",
				compute.ConfigEnvVar, p.envBackend, name, strings.Join(compute.List(), ", "))
		}
		env = append(os.Environ(), compute.ConfigEnvVar+"="+p.envBackend)
		return p.envBackend, env, nil
	}
	var gpu runtime.Info
	var installed *runtime.Installation
	if strings.TrimSpace(p.engineCfg.Backend) != runtime.BackendGo {
		gpu = p.detect(p.log)
		if m, err := runtime.DefaultManifest(); err != nil {
			p.log.Warn("GPU runtime manifest", "err", err)
		} else if installed, err = runtime.Installed(p.runtimeDir, m.Version); err != nil {
			p.log.Warn("installed GPU runtime unreadable: using the CPU", "err", err)
			installed = nil
		}
	}
	plan, err := runtime.Resolve(p.engineCfg, gpu, installed)
	if err != nil {
		return "", nil, err
	}
	p.log.Info("local models backend chosen", "backend", plan.Backend, "status", plan.Status, "why", plan.Message)
	for _, w := range plan.Warnings {
		p.log.Warn("GPU runtime", "warning", w)
	}
	env = plan.Environ(os.Environ())
	if plan.Backend == runtime.BackendCUDA {
		return "xla:" + plan.PluginPath, env, nil
	}
	return runtime.BackendGo, env, nil
}

func (p *Provider) open(ctx context.Context, m Model) (*engine, error) {
	r, err := p.runners.acquire()
	if err != nil {
		return nil, err
	}
	start := p.now()
	id := fmt.Sprintf("%s#%d", m.Name, p.ids.Add(1))
	info, err := r.Load(ctx, worker.LoadRequest{Model: id, Name: m.Name, Dir: m.Dir, AdapterDir: m.AdapterDir})
	if err != nil {
		r.unloaded()
		p.log.Error("cannot load a local model", "model", m.Name, "err", err)
		return nil, err
	}
	p.log.Info("local model loaded", "model", m.Name, "kind", m.Kind, "template", info.Template, "runs", r.mode,
		"took", p.now().Sub(start).Round(time.Millisecond))
	return &engine{runner: r, id: id, info: info}, nil
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
	c := completion{id: newID("chatcmpl-"), model: req.Model, created: p.now().Unix()}
	if stream {
		return p.stream(ctx, e, pl, c)
	}
	defer p.pool.release(e)
	if err := e.lock(ctx); err != nil {
		return nil, p.error(err)
	}
	done, err := e.eng.runner.Generate(ctx, pl.req, nil)
	e.unlock()
	if err != nil {
		return nil, p.error(err)
	}
	e.promptTokens.Add(int64(done.PromptTokens))
	e.tokens.Add(int64(done.CompletionTokens))
	body, err := c.whole(done.Result(), pl)
	if err != nil {
		return nil, p.error(err)
	}
	return &providers.Response{Status: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}, nil
}

// error turns a failure into the *providers.Error the gateway relays, in OpenAI's shape.
func (p *Provider) error(err error) error {
	var ae *apiError
	var we *worker.Error
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
	case errors.Is(err, errClosed), errors.Is(err, worker.ErrClosed):
		ae = &apiError{status: http.StatusServiceUnavailable, errType: "server_error", code: "provider_closed", msg: err.Error()}
	case errors.Is(err, worker.ErrDied):
		// The worker restarts with the next request: a retry by the gateway is worth it.
		ae = &apiError{status: http.StatusServiceUnavailable, errType: "server_error", code: "engine_worker_died", msg: "local model: " + err.Error()}
	case errors.As(err, &we) && we.Code == worker.CodeInvalidRequest:
		ae = badRequest("%s", we.Message)
	case errors.As(err, &we) && we.Code == worker.CodeContextLength:
		ae = &apiError{status: http.StatusBadRequest, errType: "invalid_request_error", code: "context_length_exceeded", msg: we.Message}
	case errors.As(err, &we) && we.Code == worker.CodeBackend:
		ae = &apiError{status: http.StatusServiceUnavailable, errType: "server_error", code: "backend_unavailable", msg: "local models: " + we.Message}
	case errors.As(err, &we) && we.Code == worker.CodeInternal:
		ae = &apiError{status: http.StatusServiceUnavailable, errType: "server_error", code: "generation_failed", msg: "local model: " + we.Message}
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
