package worker

import (
	"encoding/json"
	"errors"
	"fmt"

	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/generate"
)

// ProtocolVersion is what Hello.Protocol carries; the parent refuses a worker speaking another
// (a stale binary left running across an upgrade).
const ProtocolVersion = 2 // 2: train

// Message types. The parent sends health, load, generate, train, cancel and unload; the worker
// answers each request by its ID: health with hello, load with loaded, generate with delta
// messages (streaming only) then done, train with train_progress messages then train_done,
// unload with ok, and any of them with error instead. Cancel has no
// answer of its own: the request it names ends with an error of code CodeCanceled (or its normal
// answer, if it finished first). The worker also sends one hello with ID 0 as soon as it is ready.
const (
	TypeHealth   = "health"
	TypeHello    = "hello"
	TypeLoad     = "load"
	TypeLoaded   = "loaded"
	TypeGenerate = "generate"
	TypeDelta    = "delta"
	TypeDone     = "done"
	TypeCancel   = "cancel"
	TypeUnload   = "unload"
	// TypeTrain trains a LoRA adapter; a cancel stops it at a step boundary with a checkpoint.
	TypeTrain         = "train"
	TypeTrainProgress = "train_progress"
	TypeTrainDone     = "train_done"
	TypeOK            = "ok"
	TypeError         = "error"
)

// Message is one line of the protocol: a JSON object followed by a newline, in both directions.
// Exactly the payload field its Type names is set (none for health, cancel and ok).
type Message struct {
	// ID ties answers to their request; the parent picks it (non-zero, unique per worker).
	ID   uint64 `json:"id"`
	Type string `json:"type"`

	Hello    *Hello           `json:"hello,omitempty"`
	Load     *LoadRequest     `json:"load,omitempty"`
	Loaded   *ModelInfo       `json:"loaded,omitempty"`
	Generate *GenerateRequest `json:"generate,omitempty"`
	Delta    *Delta           `json:"delta,omitempty"`
	Done     *Done            `json:"done,omitempty"`
	Unload   *UnloadRequest   `json:"unload,omitempty"`

	Train         *TrainRequest  `json:"train,omitempty"`
	TrainProgress *TrainProgress `json:"train_progress,omitempty"`
	TrainDone     *TrainResult   `json:"train_done,omitempty"`
	Error         *Error         `json:"error,omitempty"`
}

// Hello is the worker's handshake and health report.
type Hello struct {
	Protocol int `json:"protocol"`
	PID      int `json:"pid"`
	// Backend is the GoMLX backend's name ("go", "xla") and Device what it runs on ("CPU",
	// "NVIDIA H100 80GB HBM3").
	Backend string `json:"backend"`
	Device  string `json:"device"`
	// Error says why the backend could not start; the worker serves nothing then.
	Error string `json:"error,omitempty"`
	// Models are the ids of the loaded models.
	Models []string `json:"models,omitempty"`
}

// LoadRequest loads a model folder under an id the parent chooses.
type LoadRequest struct {
	// Model is the id later requests use.
	Model string `json:"model"`
	// Name is what logs and errors call it (the local model's name).
	Name string `json:"name,omitempty"`
	// Dir is a Hugging Face model folder (config.json, safetensors, tokenizer.json).
	Dir string `json:"dir"`
	// AdapterDir is a PEFT LoRA adapter to merge into the weights (a student); empty for none.
	AdapterDir string `json:"adapter_dir,omitempty"`
}

// ModelInfo describes a loaded model: what the parent needs to plan requests for it.
type ModelInfo struct {
	Model  string `json:"model"`
	Family string `json:"family"`
	// Template is the chat template's name (chat.Template.Name); TemplateExact says it matched
	// the reference rendering character for character.
	Template      string `json:"template"`
	TemplateExact bool   `json:"template_exact,omitempty"`
	// ContextLength is the most tokens a prompt and its completion can hold.
	ContextLength int    `json:"context_length"`
	VocabSize     int    `json:"vocab_size"`
	DType         string `json:"dtype"`
	Params        int64  `json:"params"`
	EOS           []int  `json:"eos,omitempty"`
	// Generation holds generation_config.json's sampling defaults.
	Generation Defaults `json:"generation"`
	LoadMillis int64    `json:"load_ms"`
}

// Defaults are a model's sampling defaults; nil when its generation_config.json says nothing.
type Defaults struct {
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	TopK        *int     `json:"top_k,omitempty"`
	DoSample    *bool    `json:"do_sample,omitempty"`
}

// GenerateRequest generates one completion: from chat messages, rendered with the model's chat
// template and a generation prompt, or from prompt token ids as they are.
type GenerateRequest struct {
	Model    string         `json:"model"`
	Messages []chat.Message `json:"messages,omitempty"`
	// Tools and EnableThinking go to the template with Messages.
	Tools          []json.RawMessage `json:"tools,omitempty"`
	EnableThinking *bool             `json:"enable_thinking,omitempty"`
	// PromptIDs is used when Messages is empty.
	PromptIDs []int    `json:"prompt_ids,omitempty"`
	Sampling  Sampling `json:"sampling"`
	// Stream asks for a delta message per token; without it only done comes back. The Client
	// sets it when Generate has a delta receiver.
	Stream bool `json:"stream,omitempty"`
}

// Sampling are the generation parameters (see generate.Params).
type Sampling struct {
	// MaxTokens bounds the completion; 0 runs to the end of the context.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Temperature 0 is greedy decoding.
	Temperature float64  `json:"temperature"`
	TopP        float64  `json:"top_p,omitempty"`
	TopK        int      `json:"top_k,omitempty"`
	Seed        uint64   `json:"seed,omitempty"`
	Stop        []string `json:"stop,omitempty"`
	// IgnoreEOS generates past the end-of-sequence token, to MaxTokens (benchmarks, tests).
	IgnoreEOS bool `json:"ignore_eos,omitempty"`
}

// Params converts to the engine's parameters.
func (s Sampling) Params() generate.Params {
	p := generate.Params{MaxTokens: s.MaxTokens, Temperature: s.Temperature, TopP: s.TopP, TopK: s.TopK,
		Seed: s.Seed, Stop: s.Stop}
	if s.IgnoreEOS {
		p.EOS = []int{} // non-nil: no end-of-sequence ids
	}
	return p
}

// Delta is one generated token and the text that became safe to show (generate.Chunk).
type Delta struct {
	// Token is -1 on a delta that adds no token (the end-of-sequence token that ended it).
	Token int    `json:"token"`
	Text  string `json:"text,omitempty"`
	// FinishReason is set on the last delta.
	FinishReason string `json:"finish_reason,omitempty"`
	// PromptTokens is set on the first delta only: the prompt's length in tokens.
	PromptTokens int `json:"prompt_tokens,omitempty"`
}

// Done ends a generation.
type Done struct {
	// Text is the whole completion, cut before a matched stop sequence; Tokens its ids (without
	// the end-of-sequence token).
	Text             string `json:"text"`
	Tokens           []int  `json:"tokens,omitempty"`
	FinishReason     string `json:"finish_reason"`
	StopSequence     string `json:"stop_sequence,omitempty"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
}

// Result converts to the engine's result.
func (d Done) Result() generate.Result {
	return generate.Result{Tokens: d.Tokens, Text: d.Text, FinishReason: generate.FinishReason(d.FinishReason),
		StopSequence: d.StopSequence, PromptTokens: d.PromptTokens, CompletionTokens: d.CompletionTokens}
}

func doneOf(r generate.Result) Done {
	return Done{Text: r.Text, Tokens: r.Tokens, FinishReason: string(r.FinishReason), StopSequence: r.StopSequence,
		PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens}
}

// UnloadRequest frees a model.
type UnloadRequest struct {
	Model string `json:"model"`
}

// TrainRequest trains a LoRA adapter on a base model, as `opentracy model train` does (the
// same steps: train.RunJob). The worker loads the base model for the run alone: training
// changes the model under it, so a model loaded for serving is never used. Zero
// hyperparameters take the trainer's defaults (see train.Config).
type TrainRequest struct {
	// BaseDir is the base model's Hugging Face folder.
	BaseDir string `json:"base_dir"`
	// AdapterDir is a PEFT adapter to train further; empty trains a fresh one.
	AdapterDir string `json:"adapter_dir,omitempty"`
	// Data is an OpenAI chat fine-tuning JSONL file.
	Data string `json:"data"`
	// OutDir receives the adapter (PEFT format) when training ends.
	OutDir string `json:"out_dir"`
	// CheckpointDir receives checkpoints (default OutDir/checkpoints).
	CheckpointDir string `json:"checkpoint_dir,omitempty"`
	// Resume continues from the latest checkpoint in CheckpointDir, if there is one: after a
	// cancel, or in a restarted worker after the last one died.
	Resume bool `json:"resume,omitempty"`

	Rank          int      `json:"rank,omitempty"`
	Alpha         float64  `json:"alpha,omitempty"`
	Dropout       float64  `json:"dropout,omitempty"`
	TargetModules []string `json:"target_modules,omitempty"`
	LearningRate  float64  `json:"learning_rate,omitempty"`
	MinLR         float64  `json:"min_learning_rate,omitempty"`
	// Steps of optimisation; when 0, Epochs passes over the data.
	Steps       int     `json:"steps,omitempty"`
	Epochs      float64 `json:"epochs,omitempty"`
	BatchSize   int     `json:"batch_size,omitempty"`
	GradAccum   int     `json:"grad_accum,omitempty"`
	MaxSeqLen   int     `json:"max_seq_len,omitempty"`
	WarmupSteps int     `json:"warmup_steps,omitempty"`
	WeightDecay float64 `json:"weight_decay,omitempty"`
	// MaxGradNorm clips the gradient norm (0: the default, negative: no clipping).
	MaxGradNorm float64 `json:"max_grad_norm,omitempty"`
	Seed        uint64  `json:"seed,omitempty"`
	// CheckpointEvery writes a checkpoint every that many steps (always at the end and on a
	// cancel); 0 only then.
	CheckpointEvery int `json:"checkpoint_every,omitempty"`
}

// TrainProgress is reported after every optimizer step.
type TrainProgress struct {
	Step         int     `json:"step"`
	Steps        int     `json:"steps"`
	Loss         float64 `json:"loss"`
	LearningRate float64 `json:"learning_rate"`
	GradNorm     float64 `json:"grad_norm"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	Epoch        float64 `json:"epoch"`
	ETASeconds   float64 `json:"eta_s"`
	// ElapsedSeconds is this run's time so far (in this worker: not counting a dead one's).
	ElapsedSeconds float64 `json:"elapsed_s"`
}

// TrainResult ends a training run.
type TrainResult struct {
	// Steps is the number of optimizer steps done, of the run's total; Loss the last one's.
	Steps  int     `json:"steps"`
	Loss   float64 `json:"loss"`
	Tokens int64   `json:"tokens"`
	// AdapterDir is where the adapter was saved; Checkpoint the last checkpoint written.
	AdapterDir string `json:"adapter_dir"`
	Checkpoint string `json:"checkpoint,omitempty"`
	// ResumedFrom is the checkpoint the run continued ("" for none) and ResumedStep its step.
	ResumedFrom string `json:"resumed_from,omitempty"`
	ResumedStep int    `json:"resumed_step,omitempty"`
}

// Error codes.
const (
	// CodeInvalidRequest: the request cannot be served as it is (a template that refuses the
	// messages, an empty prompt, bad parameters).
	CodeInvalidRequest = "invalid_request"
	// CodeContextLength: the prompt does not fit the model's context.
	CodeContextLength = "context_length_exceeded"
	// CodeNotLoaded: no model of that id.
	CodeNotLoaded = "not_loaded"
	// CodeLoadFailed: the model could not be loaded.
	CodeLoadFailed = "load_failed"
	// CodeCanceled: the request was cancelled.
	CodeCanceled = "canceled"
	// CodeBackend: the backend did not start.
	CodeBackend = "backend_unavailable"
	// CodeInternal: anything else (a generation that failed on the device).
	CodeInternal = "internal"
)

// Error is a request the worker could not serve.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// cause is the error behind it, in the process that made it (not sent).
	cause error
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.cause }

// errorf makes an Error whose message is formatted as fmt.Errorf does, keeping a %w cause.
func errorf(code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), cause: errors.Unwrap(err)}
}
