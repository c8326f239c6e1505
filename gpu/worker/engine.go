package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"
	// The CPU backend always, XLA (GPU) unless built with the noxla tag.
	_ "github.com/gomlx/gomlx/backends/default"

	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/generate"
	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/tokenizer"
)

// DefaultBackend is GoMLX's pure-Go backend: without a configuration GoMLX would pick XLA and
// try to download its plugin.
const DefaultBackend = "go"

// Runner is what serving needs from the engine, wherever it runs: an *Engine in this process,
// or a *Client talking to a worker (a child process, or a Server on pipes).
type Runner interface {
	// Hello starts the backend (or the worker) if needed and reports it.
	Hello(ctx context.Context) (Hello, error)
	Load(ctx context.Context, req LoadRequest) (ModelInfo, error)
	// Generate runs one completion; onDelta, when not nil, receives each token as it comes
	// (an error from it stops the generation and is returned).
	Generate(ctx context.Context, req GenerateRequest, onDelta func(Delta) error) (Done, error)
	Unload(ctx context.Context, model string) error
	// Train trains a LoRA adapter; onProgress, when not nil, receives each step's progress.
	// When ctx ends, training stops at a step boundary, writes a checkpoint and returns ctx's
	// error (a TrainRequest with Resume continues from there).
	Train(ctx context.Context, req TrainRequest, onProgress func(TrainProgress)) (TrainResult, error)
	Close() error
}

var (
	_ Runner = (*Engine)(nil)
	_ Runner = (*Client)(nil)
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	// Backend is a GoMLX backend configuration ("go", "xla:/abs/path/xla_cuda_plugin.so");
	// empty means DefaultBackend.
	Backend string
	Logger  *slog.Logger
}

// Engine runs models on one GoMLX backend, started on first use. It is the worker's side of the
// protocol, and serves in-process where no isolation is needed (the CPU backend). Safe for
// concurrent use.
type Engine struct {
	spec string
	log  *slog.Logger

	backendOnce sync.Once
	backend     compute.Backend
	backendErr  error

	mu      sync.Mutex
	models  map[string]*model
	loading map[string]bool
	closed  bool
}

// model is a loaded model and what serving it needs.
type model struct {
	req  LoadRequest
	lm   *lm.Model
	tok  *tokenizer.Tokenizer
	tmpl chat.Template
	info ModelInfo
	// Under Engine.mu: generations running on it, and whether it was unloaded (it closes when
	// the last one ends).
	refs int
	gone bool
}

// NewEngine returns an engine; nothing starts until it is used.
func NewEngine(opts EngineOptions) *Engine {
	if opts.Backend == "" {
		opts.Backend = DefaultBackend
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{spec: opts.Backend, log: opts.Logger, models: map[string]*model{}, loading: map[string]bool{}}
}

// OpenBackend starts the GoMLX backend a configuration names, refusing names this build does
// not include (GoMLX panics on them).
func OpenBackend(spec string) (compute.Backend, error) {
	name, _, _ := strings.Cut(spec, ":")
	if !slices.Contains(compute.List(), name) {
		return nil, fmt.Errorf("%s=%q names backend %q, which this build does not include (it has %s)",
			compute.ConfigEnvVar, spec, name, strings.Join(compute.List(), ", "))
	}
	b, err := compute.NewWithConfig(spec)
	if err != nil {
		return nil, fmt.Errorf("start the %q backend: %w", spec, err)
	}
	return b, nil
}

func (e *Engine) getBackend() (compute.Backend, error) {
	e.backendOnce.Do(func() {
		e.mu.Lock()
		closed := e.closed
		e.mu.Unlock()
		if closed {
			e.backendErr = errClosed
			return
		}
		start := time.Now()
		e.backend, e.backendErr = OpenBackend(e.spec)
		if e.backendErr == nil {
			e.log.Info("engine backend started", "backend", e.backend.String(), "device", device(e.backend),
				"took", time.Since(start).Round(time.Millisecond).String()) // a string: the worker logs JSON
		}
	})
	return e.backend, e.backendErr
}

// device describes the backend's first device.
func device(b compute.Backend) string {
	if b.String() == DefaultBackend {
		// The pure-Go backend calls its device "device#0".
		return fmt.Sprintf("CPU (%d cores)", goruntime.NumCPU())
	}
	if b.NumDevices() > 0 {
		if d := strings.TrimSpace(b.DeviceDescription(0)); d != "" {
			return d
		}
	}
	return b.Description()
}

var errClosed = errors.New("engine is closed")

// Hello starts the backend and reports it.
func (e *Engine) Hello(context.Context) (Hello, error) {
	h := Hello{Protocol: ProtocolVersion, PID: os.Getpid()}
	b, err := e.getBackend()
	if err != nil {
		h.Error = err.Error()
		return h, &Error{Code: CodeBackend, Message: err.Error(), cause: err}
	}
	h.Backend, h.Device = b.String(), device(b)
	e.mu.Lock()
	for id := range e.models {
		h.Models = append(h.Models, id)
	}
	e.mu.Unlock()
	slices.Sort(h.Models)
	return h, nil
}

// Load loads a model under req.Model: the weights, an adapter merged into them (one model to
// run, at the base model's speed), the tokenizer and the chat template. Loading an id again with
// the same folders answers what is loaded.
func (e *Engine) Load(ctx context.Context, req LoadRequest) (ModelInfo, error) {
	if req.Model == "" || req.Dir == "" {
		return ModelInfo{}, errorf(CodeInvalidRequest, "load: a model id and folder are required")
	}
	if req.Name == "" {
		req.Name = req.Model
	}
	e.mu.Lock()
	switch m := e.models[req.Model]; {
	case e.closed:
		e.mu.Unlock()
		return ModelInfo{}, errorf(CodeLoadFailed, "load %s: %w", req.Name, errClosed)
	case m != nil && m.req == req:
		e.mu.Unlock()
		return m.info, nil
	case m != nil, e.loading[req.Model]:
		e.mu.Unlock()
		return ModelInfo{}, errorf(CodeInvalidRequest, "load %s: model id %q is already in use", req.Name, req.Model)
	}
	e.loading[req.Model] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.loading, req.Model)
		e.mu.Unlock()
	}()

	b, err := e.getBackend()
	if err != nil {
		return ModelInfo{}, &Error{Code: CodeBackend, Message: err.Error(), cause: err}
	}
	start := time.Now()
	m, err := e.open(ctx, b, req)
	if err != nil {
		if ctx.Err() != nil {
			return ModelInfo{}, errorf(CodeCanceled, "load %s: %w", req.Name, ctx.Err())
		}
		e.log.Error("cannot load a model", "model", req.Name, "err", err)
		return ModelInfo{}, errorf(CodeLoadFailed, "%w", err)
	}
	m.info.LoadMillis = time.Since(start).Milliseconds()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		m.lm.Close()
		return ModelInfo{}, errorf(CodeLoadFailed, "load %s: %w", req.Name, errClosed)
	}
	e.models[req.Model] = m
	e.mu.Unlock()
	e.log.Info("model loaded", "model", req.Name, "id", req.Model, "template", m.info.Template,
		"params", m.info.Params, "took", time.Since(start).Round(time.Millisecond).String())
	return m.info, nil
}

func (e *Engine) open(ctx context.Context, b compute.Backend, req LoadRequest) (*model, error) {
	lmModel, err := lm.Load(ctx, b, req.Dir, lm.Options{Logger: e.log})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lmModel.Close()
		}
	}()
	params := int64(lmModel.Store().NumParameters())
	if req.AdapterDir != "" {
		if _, err := lmModel.LoadAdapter(req.AdapterDir); err != nil {
			return nil, fmt.Errorf("student %s: %w", req.Name, err)
		}
		if err := lmModel.MergeAdapter(ctx); err != nil {
			return nil, fmt.Errorf("student %s: %w", req.Name, err)
		}
	}
	tok, err := tokenizer.Load(req.Dir)
	if err != nil {
		return nil, err
	}
	tmpl, exact, err := chat.Detect(tok.ChatTemplate())
	switch {
	case errors.Is(err, chat.ErrUnsupported):
		// Base (non-instruct) checkpoints often ship no template: use the family's, which their
		// tokenizer's special tokens support, and say so.
		tmpl = FamilyTemplate(lmModel.Config.ModelType)
		e.log.Warn("no chat template the engine knows: using the family's", "model", req.Name, "template", tmpl.Name())
	case err != nil:
		return nil, err
	case !exact:
		e.log.Info("chat template differs from the reference one in details", "model", req.Name, "template", tmpl.Name())
	}
	cfg, gen := lmModel.Config, lmModel.Generation
	ok = true
	return &model{req: req, lm: lmModel, tok: tok, tmpl: tmpl, info: ModelInfo{
		Model: req.Model, Family: string(cfg.ModelType), Template: tmpl.Name(), TemplateExact: exact,
		ContextLength: cfg.MaxPositionEmbeddings, VocabSize: cfg.VocabSize, DType: lmModel.DType().String(),
		Params: params, EOS: lmModel.EOSTokenIDs(),
		Generation: Defaults{Temperature: gen.Temperature, TopP: gen.TopP, TopK: gen.TopK, DoSample: gen.DoSample},
	}}, nil
}

// FamilyTemplate is the chat template a family's models use when their tokenizer names none
// the engine knows.
func FamilyTemplate(f lm.Family) chat.Template {
	if f == lm.Llama {
		return chat.Llama31()
	}
	return chat.Qwen3()
}

// acquire returns a loaded model and holds it until release.
func (e *Engine) acquire(id string) (*model, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.models[id]
	if m == nil {
		return nil, errorf(CodeNotLoaded, "model %q is not loaded", id)
	}
	m.refs++
	return m, nil
}

func (e *Engine) release(m *model) {
	e.mu.Lock()
	m.refs--
	closeNow := m.refs == 0 && m.gone
	e.mu.Unlock()
	if closeNow {
		m.lm.Close()
	}
}

// Generate renders and encodes the prompt, then generates; see Runner.
func (e *Engine) Generate(ctx context.Context, req GenerateRequest, onDelta func(Delta) error) (Done, error) {
	m, err := e.acquire(req.Model)
	if err != nil {
		return Done{}, err
	}
	defer e.release(m)
	ids, err := m.prompt(req)
	if err != nil {
		return Done{}, err
	}
	if len(req.Sampling.Stop) > 0 && slices.Contains(req.Sampling.Stop, "") {
		return Done{}, errorf(CodeInvalidRequest, "a stop sequence is empty")
	}
	if req.Sampling.MaxTokens < 0 {
		return Done{}, errorf(CodeInvalidRequest, "max_tokens %d is negative", req.Sampling.MaxTokens)
	}
	var onChunk func(generate.Chunk) error
	if onDelta != nil {
		first := true
		onChunk = func(ch generate.Chunk) error {
			d := Delta{Token: ch.Token, Text: ch.Text, FinishReason: string(ch.FinishReason)}
			if first {
				d.PromptTokens, first = len(ids), false
			}
			if err := onDelta(d); err != nil {
				return receiverError{err}
			}
			return nil
		}
	}
	res, err := generate.Generate(ctx, generate.FromModel(m.lm), m.tok, [][]int{ids}, req.Sampling.Params(), onChunk)
	var re receiverError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return Done{}, fmt.Errorf("generate: %w", ctx.Err())
	case errors.As(err, &re):
		return Done{}, re.err // the receiver's own error, as it returned it
	default:
		// The model failed on the device: say so in the protocol's terms.
		e.log.Error("generation failed", "model", m.req.Name, "err", err)
		return Done{}, errorf(CodeInternal, "%w", err)
	}
	return doneOf(res[0]), nil
}

// prompt returns the request's prompt ids, checked against the model's context.
func (m *model) prompt(req GenerateRequest) ([]int, error) {
	ids := req.PromptIDs
	if len(req.Messages) > 0 {
		text, err := m.tmpl.Render(req.Messages, chat.Options{AddGenerationPrompt: true, Tools: req.Tools, EnableThinking: req.EnableThinking})
		if err != nil {
			return nil, errorf(CodeInvalidRequest, "%w", err)
		}
		ids = m.tok.Encode(text, false) // the template wrote the special tokens itself
		if len(ids) == 0 {
			return nil, errorf(CodeInvalidRequest, "the messages render to an empty prompt")
		}
	}
	if len(ids) == 0 {
		return nil, errorf(CodeInvalidRequest, "no prompt: send messages or prompt ids")
	}
	for _, id := range ids {
		if id < 0 || id >= m.info.VocabSize {
			return nil, errorf(CodeInvalidRequest, "prompt token id %d is outside the vocabulary (%d tokens)", id, m.info.VocabSize)
		}
	}
	if n := m.info.ContextLength; len(ids) >= n {
		return nil, errorf(CodeContextLength, "This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. Please reduce the length of the messages.", n, len(ids))
	}
	return ids, nil
}

// receiverError marks an error of the delta receiver, which Generate returns unchanged.
type receiverError struct{ err error }

func (r receiverError) Error() string { return r.err.Error() }
func (r receiverError) Unwrap() error { return r.err }

// Unload frees a model; generations running on it finish first.
func (e *Engine) Unload(_ context.Context, id string) error {
	e.mu.Lock()
	m := e.models[id]
	if m == nil {
		e.mu.Unlock()
		return nil
	}
	delete(e.models, id)
	m.gone = true
	closeNow := m.refs == 0
	e.mu.Unlock()
	if closeNow {
		m.lm.Close()
	}
	e.log.Info("model unloaded", "model", m.req.Name, "id", id)
	return nil
}

// Close unloads every model and releases the backend. Call it once requests have ended.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ids := make([]string, 0, len(e.models))
	for id := range e.models {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	for _, id := range ids {
		_ = e.Unload(context.Background(), id)
	}
	e.backendOnce.Do(func() { e.backendErr = errClosed }) // no backend after Close
	if e.backend != nil {
		e.backend.Finalize()
	}
	return nil
}
