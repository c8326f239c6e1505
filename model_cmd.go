package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/gomlx/backends/default" // the pure-Go backend and XLA (PJRT plugins)

	"opentracy/backend/config"
	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/generate"
	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/lora"
	"opentracy/gpu/engine/safetensors"
	"opentracy/gpu/engine/tokenizer"
	"opentracy/gpu/hub"
	"opentracy/gpu/train"
	"opentracy/gpu/train/tinytok"
	"opentracy/gpu/worker"
)

const modelUsage = `Usage: opentracy model COMMAND [flags]

Local models: download them, train LoRA adapters on chat data, generate text.

Commands:
  download REPO [--revision REV]     download a Hugging Face model (safetensors) into DATA_DIR/models
  list [--json]                      list the downloaded models
  rm NAME                            delete a downloaded model (its name or owner/name)
  info --model M [--adapter DIR]     describe a model (shape, parameters, tokenizer, chat template) and an adapter
  init-tiny --family F --out DIR     write a tiny random model (qwen3 or llama) for tests and smoke runs
  train --model M --data F.jsonl --out DIR
                                     train a LoRA adapter on OpenAI chat fine-tuning JSONL
  generate --model M --prompt TEXT   generate text, streamed to stdout (--chat: as a user turn)
  logits --model M --ids 1,2,3 --out FILE
                                     write one sequence's float32 logits (.npy, or raw + FILE.json)
  bench --model M --mode train|decode
                                     measure LoRA training or decoding speed (prints one JSON line)

M is a model folder or the name of a downloaded model (owner/name).
Backend: GOMLX_BACKEND selects it; unset means "go" (pure Go, CPU). For an NVIDIA GPU set
GOMLX_BACKEND=xla:/abs/path/xla_cuda_plugin.so, GOMLX_NO_AUTO_INSTALL=1,
XLA_FLAGS=--xla_gpu_cuda_data_dir=DIR and LD_LIBRARY_PATH to the NVIDIA libraries.
Run "opentracy model COMMAND -h" for a command's flags.
`

// errFlagHelp and errFlagUsage end a command after its flags were printed: exit 0 and 2.
var (
	errFlagHelp  = errors.New("help shown")
	errFlagUsage = errors.New("bad usage")
)

// modelCLI runs one `opentracy model` command.
type modelCLI struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

// runModel runs `opentracy model ...` and returns the exit status.
func runModel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, modelUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c := &modelCLI{stdout: stdout, stderr: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	cmds := map[string]func(context.Context, []string) error{
		"download": c.download, "list": c.list, "rm": c.rm, "init-tiny": c.initTiny, "train": c.train,
		"generate": c.generate, "logits": c.logits, "bench": c.bench, "info": c.info,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "opentracy model: unknown command %q\n\n%s", args[0], modelUsage)
		return 2
	}
	err := cmd(ctx, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFlagHelp):
		return 0
	case errors.Is(err, errFlagUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "opentracy model %s: %v\n", args[0], err)
		return 1
	}
}

// flags returns a FlagSet for a command, printing its usage on stderr.
func (c *modelCLI) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("opentracy model "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: opentracy model %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before or after the positional arguments, and checks that
// there are exactly nPos of those and that the required string flags are set.
func (c *modelCLI) parse(fs *flag.FlagSet, args []string, nPos int, required ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errFlagHelp
			}
			return nil, errFlagUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != nPos {
		if len(pos) > nPos {
			fmt.Fprintf(c.stderr, "%s: unexpected argument %q\n", fs.Name(), pos[nPos])
		} else {
			fmt.Fprintf(c.stderr, "%s: missing argument\n", fs.Name())
		}
		fs.Usage()
		return nil, errFlagUsage
	}
	for _, n := range required {
		if fs.Lookup(n).Value.String() == "" {
			fmt.Fprintf(c.stderr, "%s: --%s is required\n", fs.Name(), n)
			fs.Usage()
			return nil, errFlagUsage
		}
	}
	return pos, nil
}

// dataDirFlag adds --data-dir and returns a function giving the models folder.
func dataDirFlag(fs *flag.FlagSet) func() (string, error) {
	dir := fs.String("data-dir", "", "data directory whose models/ folder holds downloaded models (default as for serve; env "+config.EnvDataDir+")")
	return func() (string, error) {
		cfg, err := config.Load(config.Flags{DataDir: *dir}, os.LookupEnv)
		if err != nil {
			return "", err
		}
		return filepath.Join(cfg.DataDir, "models"), nil
	}
}

// modelFlag registers --model, the model a command loads, and --data-dir, where downloaded models
// are found; the returned function gives the model's folder once the flags are parsed.
func modelFlag(fs *flag.FlagSet, usage string) func() (string, error) {
	ref := fs.String("model", "", usage)
	modelsDir := dataDirFlag(fs)
	return func() (string, error) { return resolveModel(*ref, modelsDir) }
}

// resolveModel turns a model argument into a folder: a folder with config.json, else a
// downloaded model's name (owner/name or owner--name).
func resolveModel(ref string, modelsDir func() (string, error)) (string, error) {
	if _, err := os.Stat(filepath.Join(ref, "config.json")); err == nil {
		return ref, nil
	}
	dir, err := modelsDir()
	if err != nil {
		return "", err
	}
	name := ref
	if hub.ValidateRepo(ref) == nil {
		name = hub.DirName(ref)
	}
	m, err := hub.Get(dir, name)
	if err != nil {
		return "", fmt.Errorf("%q is neither a model folder nor a downloaded model in %s: %w", ref, dir, err)
	}
	if !m.Complete {
		return "", fmt.Errorf("model %s is not completely downloaded: %s", m.Name, m.Problem)
	}
	return m.Path, nil
}

// engineBackend opens the backend GOMLX_BACKEND names, "go" when unset (the library's own
// default, xla, would download a plugin).
func engineBackend() (compute.Backend, error) {
	cfg := os.Getenv(compute.ConfigEnvVar)
	if cfg == "" {
		cfg = "go"
	}
	b, err := compute.NewWithConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", cfg, err)
	}
	return b, nil
}

// engine is a loaded model on its backend.
type engine struct {
	backend compute.Backend
	model   *lm.Model
}

func (e *engine) Close() {
	e.model.Close()
	e.backend.Finalize()
}

// load opens the backend and loads the model in dir, with the adapter folder if not empty.
func (c *modelCLI) load(ctx context.Context, dir, adapter string) (*engine, error) {
	return c.loadAs(ctx, dir, adapter, dtypes.InvalidDType)
}

// loadAs loads with a compute dtype (InvalidDType: the backend's default, see lm.Options).
func (c *modelCLI) loadAs(ctx context.Context, dir, adapter string, dtype dtypes.DType) (*engine, error) {
	b, err := engineBackend()
	if err != nil {
		return nil, err
	}
	m, err := lm.Load(ctx, b, dir, lm.Options{Logger: c.log, DType: dtype})
	if err != nil {
		b.Finalize()
		return nil, err
	}
	e := &engine{backend: b, model: m}
	if adapter != "" {
		if _, err := m.LoadAdapter(adapter); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

func (c *modelCLI) hub(modelsDir func() (string, error)) (*hub.Hub, error) {
	dir, err := modelsDir()
	if err != nil {
		return nil, err
	}
	return hub.New(hub.Options{ModelsDir: dir, Endpoint: os.Getenv(hub.EnvEndpoint), Token: os.Getenv(hub.EnvToken), Log: c.log})
}

// ---- download, list, rm ---------------------------------------------------------------------

func (c *modelCLI) download(ctx context.Context, args []string) error {
	fs := c.flags("download", "REPO [--revision REV]")
	revision := fs.String("revision", "", "branch, tag or commit (default "+hub.DefaultRevision+")")
	modelsDir := dataDirFlag(fs)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	h, err := c.hub(modelsDir)
	if err != nil {
		return err
	}
	var last time.Time
	m, err := h.Download(ctx, pos[0], *revision, func(p hub.Progress) {
		// One line a second at most, and one per finished file.
		if !p.FileComplete && time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		state := fmt.Sprintf("%.1f MB/s", p.BytesPerSec/1e6)
		if p.FileComplete {
			state = "done"
		}
		fmt.Fprintf(c.stdout, "[%d/%d] %s  %s / %s (total %s / %s)  %s\n", p.Index+1, p.Count, p.File,
			mb(p.FileDone), mb(p.FileTotal), mb(p.Done), mb(p.Total), state)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "downloaded %s (%s, %s parameters, %s) to %s\n", m.Repo, m.Family, params(m.Params), mb(m.SizeBytes), m.Path)
	return nil
}

func (c *modelCLI) list(_ context.Context, args []string) error {
	fs := c.flags("list", "[--json]")
	asJSON := fs.Bool("json", false, "print the models as JSON")
	modelsDir := dataDirFlag(fs)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	dir, err := modelsDir()
	if err != nil {
		return err
	}
	models, err := hub.List(dir)
	if err != nil {
		return err
	}
	if *asJSON {
		if models == nil {
			models = []hub.Model{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(models)
	}
	if len(models) == 0 {
		fmt.Fprintf(c.stdout, "no models in %s (opentracy model download REPO)\n", dir)
		return nil
	}
	fmt.Fprintf(c.stdout, "%-40s %-7s %-8s %-10s %s\n", "NAME", "FAMILY", "PARAMS", "SIZE", "STATUS")
	for _, m := range models {
		status := "ready"
		switch {
		case !m.Complete:
			status = "incomplete: " + m.Problem
		case !m.Supported():
			status = "unsupported model type " + m.ModelType
		}
		family := m.Family
		if family == "" {
			family = "-"
		}
		fmt.Fprintf(c.stdout, "%-40s %-7s %-8s %-10s %s\n", m.Repo, family, params(m.Params), mb(m.SizeBytes), status)
	}
	return nil
}

func (c *modelCLI) rm(_ context.Context, args []string) error {
	fs := c.flags("rm", "NAME")
	modelsDir := dataDirFlag(fs)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	h, err := c.hub(modelsDir)
	if err != nil {
		return err
	}
	name := pos[0]
	if hub.ValidateRepo(name) == nil {
		name = hub.DirName(name)
	}
	if err := h.Delete(name); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted %s\n", hub.RepoOf(name))
	return nil
}

// ---- init-tiny -------------------------------------------------------------------------------

func (c *modelCLI) initTiny(_ context.Context, args []string) error {
	fs := c.flags("init-tiny", "--family qwen3|llama --out DIR [--tokenizer DIR]")
	family := fs.String("family", "qwen3", "model family: qwen3 or llama")
	out := fs.String("out", "", "folder to write the model into (required)")
	tokDir := fs.String("tokenizer", "", "folder with a tokenizer.json (and tokenizer_config.json) to use; default: a byte-level tokenizer with the family's chat tokens and template")
	dtype := fs.String("dtype", "float32", "weights dtype: float32 or bfloat16")
	seed := fs.Uint64("seed", 1, "random seed of the weights")
	if _, err := c.parse(fs, args, 0, "out"); err != nil {
		return err
	}
	fam := lm.Family(*family)
	if fam != lm.Qwen3 && fam != lm.Llama {
		return fmt.Errorf("unknown family %q (want qwen3 or llama)", *family)
	}
	if *dtype != "float32" && *dtype != "bfloat16" {
		return fmt.Errorf("unknown dtype %q (want float32 or bfloat16)", *dtype)
	}
	src := *tokDir
	if src == "" {
		tmp, err := os.MkdirTemp("", "opentracy-tinytok-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := tinytok.Write(tmp, fam); err != nil {
			return err
		}
		src = tmp
	}
	if err := lm.InitTinyWith(*out, lm.TinyOptions{Family: fam, TokenizerDir: src, DType: *dtype, Seed: *seed}); err != nil {
		return err
	}
	cfg, err := lm.LoadConfig(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote a tiny %s model to %s (vocabulary %d, hidden %d, %d layers, %s)\n",
		fam, *out, cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, *dtype)
	return nil
}

// ---- train -----------------------------------------------------------------------------------

func (c *modelCLI) train(ctx context.Context, args []string) error {
	fs := c.flags("train", "--model M --data train.jsonl --out ADAPTER_DIR [flags]")
	modelDir := modelFlag(fs, "base model: a folder or a downloaded model's name (required)")
	data := fs.String("data", "", "training data: OpenAI chat fine-tuning JSONL, {\"messages\": [...]} per line, the last message the assistant's answer (required)")
	out := fs.String("out", "", "folder for the adapter (PEFT format); checkpoints go to OUT/checkpoints (required)")
	rank := fs.Int("rank", 16, "LoRA rank r")
	alpha := fs.Float64("alpha", 0, "LoRA alpha (default 2×rank)")
	dropout := fs.Float64("dropout", 0.05, "LoRA dropout")
	lr := fs.Float64("lr", 2e-4, "peak learning rate (cosine decay after a linear warmup)")
	minLR := fs.Float64("min-lr", 0, "learning rate at the end of the cosine decay")
	warmup := fs.Int("warmup", 0, "warmup steps (default 3% of the steps)")
	steps := fs.Int("steps", 0, "optimizer steps (default: --epochs passes over the data)")
	epochs := fs.Float64("epochs", 1, "passes over the data, when --steps is not given")
	batch := fs.Int("batch", 4, "sequences per micro-batch")
	accum := fs.Int("accum", 1, "micro-batches per optimizer step (gradient accumulation)")
	seq := fs.Int("seq", 1024, "maximum sequence length in tokens (longer examples are truncated)")
	wd := fs.Float64("weight-decay", 0.01, "AdamW weight decay")
	clip := fs.Float64("max-grad-norm", 1, "clip the global gradient norm (0: no clipping)")
	seed := fs.Uint64("seed", 0, "seed of the data order, LoRA initialisation and dropout")
	saveEvery := fs.Int("save-every", 0, "write a checkpoint every N steps (always at the end and on interrupt)")
	resume := fs.String("resume", "", `continue from a checkpoint folder, or "auto": the latest in OUT/checkpoints if there is one`)
	if _, err := c.parse(fs, args, 0, "model", "data", "out"); err != nil {
		return err
	}
	dir, err := modelDir()
	if err != nil {
		return err
	}
	examples, err := train.ReadJobData(*data)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return err
	}
	e, err := c.load(ctx, dir, "")
	if err != nil {
		return err
	}
	defer e.Close()
	m := e.model
	maxNorm := *clip
	if maxNorm == 0 {
		maxNorm = -1 // the trainer's zero means its default
	}
	job := train.Job{Data: *data, Examples: examples, Out: *out, Resume: *resume, MaxLen: *seq, Config: train.Config{
		LoRA:         lora.Config{Rank: *rank, Alpha: *alpha, Dropout: *dropout},
		LearningRate: *lr, MinLearningRate: *minLR, WarmupSteps: *warmup, Steps: *steps, Epochs: *epochs,
		BatchSize: *batch, GradAccum: *accum, WeightDecay: *wd, MaxGradNorm: maxNorm, Seed: *seed,
		CheckpointEvery: *saveEvery, Logger: c.log,
	}}
	res, err := train.RunJob(ctx, m, tok, job, func(s train.JobStart) {
		st := s.Stats
		fmt.Fprintf(c.stdout, "data: %d examples → %d sequences, %d tokens (%d trained), %d truncated, %d dropped\n",
			st.Examples, s.Sequences, st.Tokens, st.CompletionTokens, st.Truncated, st.Dropped)
		if s.ResumedFrom != "" {
			fmt.Fprintf(c.stdout, "resuming from %s at step %d\n", s.ResumedFrom, s.Step)
		}
		fmt.Fprintf(c.stdout, "training %s (%s, %s) on %s for %d steps\n", dir, m.Config.ModelType, m.DType(), e.backend.String(), s.Steps)
	}, func(p train.Progress) {
		fmt.Fprintf(c.stdout, "step %d/%d  loss %.4f  lr %.3g  grad_norm %.3f  %.0f tok/s  epoch %.2f  elapsed %s  eta %s\n",
			p.Step, p.Steps, p.Loss, p.LearningRate, p.GradNorm, p.TokensPerSec, p.Epoch,
			p.Elapsed.Round(time.Second), p.ETA.Round(time.Second))
	})
	if err != nil {
		if ctx.Err() != nil && res.Checkpoint != "" {
			fmt.Fprintf(c.stdout, "stopped at step %d; checkpoint %s (continue with --resume auto)\n", res.State.Step, res.Checkpoint)
		}
		return err
	}
	fmt.Fprintf(c.stdout, "adapter saved to %s (final loss %.4f, %d tokens)\n", res.Adapter, res.State.Loss, res.State.Tokens)
	return nil
}

// ---- generate --------------------------------------------------------------------------------

func (c *modelCLI) generate(ctx context.Context, args []string) error {
	fs := c.flags("generate", "--model M --prompt TEXT [flags]")
	modelDir := modelFlag(fs, "model: a folder or a downloaded model's name (required)")
	adapter := fs.String("adapter", "", "LoRA adapter folder (PEFT format) to apply")
	prompt := fs.String("prompt", "", "prompt text (required)")
	asChat := fs.Bool("chat", false, "send the prompt as a user turn through the model's chat template")
	system := fs.String("system", "", "system message (with --chat)")
	think := fs.Bool("think", false, "let a Qwen3 model think before answering (with --chat)")
	maxTokens := fs.Int("max-tokens", 256, "maximum tokens to generate")
	temperature := fs.Float64("temperature", -1, "sampling temperature, 0 for greedy (default: generation_config.json's, greedy if it does not sample)")
	topP := fs.Float64("top-p", -1, "nucleus sampling mass (default: generation_config.json's)")
	topK := fs.Int("top-k", -1, "sample among the k most likely tokens (default: generation_config.json's)")
	seed := fs.Uint64("seed", 0, "sampling seed")
	if _, err := c.parse(fs, args, 0, "model", "prompt"); err != nil {
		return err
	}
	dir, err := modelDir()
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return err
	}
	e, err := c.load(ctx, dir, *adapter)
	if err != nil {
		return err
	}
	defer e.Close()
	m := e.model

	text := *prompt
	addSpecial := true
	if *asChat {
		tmpl, err := train.ChatTemplate(tok.ChatTemplate(), m.Config.ModelType, c.log)
		if err != nil {
			return err
		}
		var msgs []chat.Message
		if *system != "" {
			msgs = append(msgs, chat.Message{Role: "system", Content: *system})
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: *prompt})
		if text, err = tmpl.Render(msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: think}); err != nil {
			return err
		}
		addSpecial = false // the template wrote the special tokens
	}
	p := generate.Params{MaxTokens: *maxTokens, Seed: *seed, AddSpecialTokens: addSpecial}
	g := m.Generation
	if g.DoSample != nil && *g.DoSample {
		p.Temperature = 1 // transformers' default when sampling
		if g.Temperature != nil {
			p.Temperature = *g.Temperature
		}
	}
	if g.TopP != nil {
		p.TopP = *g.TopP
	}
	if g.TopK != nil {
		p.TopK = *g.TopK
	}
	if *temperature >= 0 {
		p.Temperature = *temperature
	}
	if *topP >= 0 {
		p.TopP = *topP
	}
	if *topK >= 0 {
		p.TopK = *topK
	}
	out := bufio.NewWriter(c.stdout)
	start := time.Now()
	res, err := generate.GenerateText(ctx, generate.FromModel(m), tok, []string{text}, p, func(ch generate.Chunk) error {
		if ch.Text == "" {
			return nil
		}
		if _, err := out.WriteString(ch.Text); err != nil {
			return err
		}
		return out.Flush() // stream each piece as it is decoded
	})
	fmt.Fprintln(out)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	r := res[0]
	secs := time.Since(start).Seconds()
	fmt.Fprintf(c.stderr, "[%d prompt tokens, %d generated in %.2fs (%.1f tok/s), finish: %s]\n",
		r.PromptTokens, r.CompletionTokens, secs, float64(r.CompletionTokens)/secs, r.FinishReason)
	return nil
}

// ---- info ------------------------------------------------------------------------------------

// modelInfo is what `model info` reports; it reads the folder's files without loading weights.
type modelInfo struct {
	Dir           string   `json:"dir"`
	Family        string   `json:"family"`
	Architectures []string `json:"architectures,omitempty"`
	Layers        int      `json:"layers"`
	HiddenSize    int      `json:"hidden_size"`
	Intermediate  int      `json:"intermediate_size"`
	Heads         int      `json:"heads"`
	KVHeads       int      `json:"kv_heads"`
	HeadDim       int      `json:"head_dim"`
	VocabSize     int      `json:"vocab_size"`
	ContextLength int      `json:"context_length"`
	// DType is the checkpoint's declared dtype; WeightDTypes what its tensors are stored as.
	DType        string           `json:"dtype"`
	WeightDTypes []string         `json:"weight_dtypes"`
	Params       int64            `json:"params"`
	WeightBytes  int64            `json:"weight_bytes"`
	TiedEmbed    bool             `json:"tie_word_embeddings"`
	RopeTheta    float64          `json:"rope_theta"`
	RopeScaling  string           `json:"rope_scaling"`
	EOS          []int            `json:"eos_token_ids"`
	Tokenizer    tokenizerInfo    `json:"tokenizer"`
	ChatTemplate chatTemplateInfo `json:"chat_template"`
	// Generation holds generation_config.json's sampling defaults (absent when it has none).
	Generation *lm.GenerationConfig `json:"generation,omitempty"`
	Adapter    *adapterInfo         `json:"adapter,omitempty"`
}

type tokenizerInfo struct {
	Found       bool   `json:"found"`
	Error       string `json:"error,omitempty"`
	VocabSize   int    `json:"vocab_size,omitempty"`
	AddedTokens int    `json:"added_tokens,omitempty"`
	BOS         string `json:"bos,omitempty"`
	EOS         string `json:"eos,omitempty"`
}

type chatTemplateInfo struct {
	// Name is the template the engine renders with; Source says where it comes from: the
	// tokenizer's template ("tokenizer"), or the family's when the tokenizer has none the engine
	// knows ("family default"). Exact: the tokenizer's is the reference template verbatim.
	Name   string `json:"name"`
	Source string `json:"source"`
	Exact  bool   `json:"exact"`
}

type adapterInfo struct {
	Dir           string   `json:"dir"`
	Rank          int      `json:"rank"`
	Alpha         float64  `json:"alpha"`
	Dropout       float64  `json:"dropout"`
	RSLoRA        bool     `json:"use_rslora,omitempty"`
	TargetModules []string `json:"target_modules,omitempty"`
	TargetRegex   string   `json:"target_regex,omitempty"`
	BaseModel     string   `json:"base_model,omitempty"`
	// Modules counts the adapted linear layers (all layers), Params the adapter's weights.
	Modules int   `json:"modules"`
	Params  int64 `json:"params"`
}

func (c *modelCLI) info(_ context.Context, args []string) error {
	fs := c.flags("info", "--model M [--adapter DIR] [--json]")
	modelDir := modelFlag(fs, "model: a folder or a downloaded model's name (required)")
	adapter := fs.String("adapter", "", "LoRA adapter folder (PEFT format) to describe with the model")
	asJSON := fs.Bool("json", false, "print the description as JSON")
	if _, err := c.parse(fs, args, 0, "model"); err != nil {
		return err
	}
	dir, err := modelDir()
	if err != nil {
		return err
	}
	info, err := describeModel(dir)
	if err != nil {
		return err
	}
	if *adapter != "" {
		if info.Adapter, err = describeAdapter(*adapter); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	printModelInfo(c.stdout, info)
	return nil
}

// describeModel reads config.json, the safetensors headers, generation_config.json and the
// tokenizer of a model folder.
func describeModel(dir string) (*modelInfo, error) {
	cfg, err := lm.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	info := &modelInfo{Dir: dir, Family: string(cfg.ModelType), Architectures: cfg.Architectures, Layers: cfg.NumHiddenLayers,
		HiddenSize: cfg.HiddenSize, Intermediate: cfg.IntermediateSize, Heads: cfg.NumAttentionHeads, KVHeads: cfg.NumKeyValueHeads,
		HeadDim: cfg.HeadDim, VocabSize: cfg.VocabSize, ContextLength: cfg.MaxPositionEmbeddings, DType: cfg.CheckpointDType(),
		TiedEmbed: cfg.TieWordEmbeddings, RopeTheta: cfg.RopeTheta, RopeScaling: cfg.RopeScaling.Kind(), EOS: cfg.EOSTokenIDs()}

	st, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	dtypes := map[string]bool{}
	for _, name := range st.Names() {
		t, err := st.Tensor(name)
		if err != nil {
			return nil, err
		}
		info.Params += int64(t.NumElements())
		info.WeightBytes += int64(len(t.Data)) // the header's size: the mapping is not read
		dtypes[string(t.DType)] = true
	}
	for d := range dtypes {
		info.WeightDTypes = append(info.WeightDTypes, d)
	}
	slices.Sort(info.WeightDTypes)

	switch raw, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); {
	case err == nil:
		var g lm.GenerationConfig
		if err := json.Unmarshal(raw, &g); err != nil {
			return nil, fmt.Errorf("generation_config.json: %w", err)
		}
		info.Generation = &g
		var gen struct {
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if json.Unmarshal(raw, &gen) == nil && len(gen.EOS) > 0 {
			var ids []int
			var one int
			if json.Unmarshal(gen.EOS, &ids) == nil {
				info.EOS = ids
			} else if json.Unmarshal(gen.EOS, &one) == nil {
				info.EOS = []int{one}
			}
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}

	family := chatTemplateInfo{Name: worker.FamilyTemplate(cfg.ModelType).Name(), Source: "family default"}
	info.ChatTemplate = family
	tok, err := tokenizer.Load(dir)
	if err != nil {
		info.Tokenizer = tokenizerInfo{Error: err.Error()}
		return info, nil
	}
	ti := tokenizerInfo{Found: true, VocabSize: tok.VocabSize(), AddedTokens: len(tok.AddedTokens())}
	if id, ok := tok.BOS(); ok {
		ti.BOS, _ = tok.Token(id)
	}
	if id, ok := tok.EOS(); ok {
		ti.EOS, _ = tok.Token(id)
	}
	info.Tokenizer = ti
	if tmpl, exact, err := chat.Detect(tok.ChatTemplate()); err == nil {
		info.ChatTemplate = chatTemplateInfo{Name: tmpl.Name(), Source: "tokenizer", Exact: exact}
	}
	return info, nil
}

// describeAdapter reads a PEFT adapter's config and weights header.
func describeAdapter(dir string) (*adapterInfo, error) {
	cfg, err := lora.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	a := &adapterInfo{Dir: dir, Rank: cfg.Rank, Alpha: cfg.Alpha, Dropout: cfg.Dropout, RSLoRA: cfg.UseRSLoRA,
		TargetModules: cfg.TargetModules, TargetRegex: cfg.TargetRegex, BaseModel: cfg.BaseModel}
	f, err := safetensors.Open(filepath.Join(dir, lora.WeightsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for _, name := range f.Names() {
		t, err := f.Tensor(name)
		if err != nil {
			return nil, err
		}
		a.Params += int64(t.NumElements())
		if strings.HasSuffix(name, ".lora_A.weight") {
			a.Modules++
		}
	}
	return a, nil
}

func printModelInfo(w io.Writer, m *modelInfo) {
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%-13s %s\n", k, fmt.Sprintf(format, args...)) }
	row("folder", "%s", m.Dir)
	family := m.Family
	if len(m.Architectures) > 0 {
		family += " (" + strings.Join(m.Architectures, ", ") + ")"
	}
	row("family", "%s", family)
	row("layers", "%d, hidden size %d, intermediate %d", m.Layers, m.HiddenSize, m.Intermediate)
	row("attention", "%d heads, %d key/value heads, head dim %d, RoPE θ %g (%s)", m.Heads, m.KVHeads, m.HeadDim, m.RopeTheta, m.RopeScaling)
	row("vocabulary", "%d", m.VocabSize)
	row("context", "%d tokens", m.ContextLength)
	row("dtype", "%s (stored as %s)", m.DType, strings.Join(m.WeightDTypes, ", "))
	row("parameters", "%s (%d; %s of weights)", params(m.Params), m.Params, mb(m.WeightBytes))
	switch t := m.Tokenizer; {
	case !t.Found:
		row("tokenizer", "none usable: %s", t.Error)
	default:
		bos := t.BOS
		if bos == "" {
			bos = "none"
		}
		row("tokenizer", "%d tokens (%d added), BOS %s, EOS %s", t.VocabSize, t.AddedTokens, bos, t.EOS)
	}
	ct := m.ChatTemplate
	switch {
	case ct.Source != "tokenizer":
		row("chat template", "%s (the tokenizer has none the engine knows: the family's)", ct.Name)
	case ct.Exact:
		row("chat template", "%s (the reference template, exactly)", ct.Name)
	default:
		row("chat template", "%s (detected; differs from the reference in details)", ct.Name)
	}
	row("end tokens", "%v", m.EOS)
	if g := m.Generation; g != nil {
		var parts []string
		if g.DoSample != nil {
			parts = append(parts, fmt.Sprintf("do_sample %v", *g.DoSample))
		}
		if g.Temperature != nil {
			parts = append(parts, fmt.Sprintf("temperature %g", *g.Temperature))
		}
		if g.TopP != nil {
			parts = append(parts, fmt.Sprintf("top_p %g", *g.TopP))
		}
		if g.TopK != nil {
			parts = append(parts, fmt.Sprintf("top_k %d", *g.TopK))
		}
		if len(parts) > 0 {
			row("sampling", "%s", strings.Join(parts, ", "))
		}
	}
	if a := m.Adapter; a != nil {
		targets := strings.Join(a.TargetModules, ", ")
		if a.TargetRegex != "" {
			targets = "regex " + a.TargetRegex
		}
		row("adapter", "%s", a.Dir)
		row("  LoRA", "rank %d, alpha %g, dropout %g, on %s", a.Rank, a.Alpha, a.Dropout, targets)
		row("  size", "%d modules, %s parameters (%d)", a.Modules, params(a.Params), a.Params)
		if a.BaseModel != "" {
			row("  trained on", "%s", a.BaseModel)
		}
	}
}

// ---- logits ----------------------------------------------------------------------------------

func (c *modelCLI) logits(ctx context.Context, args []string) error {
	fs := c.flags("logits", "--model M --ids 1,2,3 --out FILE")
	modelDir := modelFlag(fs, "model: a folder or a downloaded model's name (required)")
	adapter := fs.String("adapter", "", "LoRA adapter folder to apply")
	idsFlag := fs.String("ids", "", "comma-separated token ids of one sequence (required)")
	outPath := fs.String("out", "", "output: FILE.npy (NumPy float32 [1, T, V]) or any other name for raw little-endian float32 plus FILE.json with the shape (required)")
	dtypeName := fs.String("dtype", "", "compute dtype: float32, bfloat16 or float16 (default: the checkpoint's on XLA, float32 on the Go backend)")
	if _, err := c.parse(fs, args, 0, "model", "ids", "out"); err != nil {
		return err
	}
	dtype := dtypes.InvalidDType
	if *dtypeName != "" {
		var ok bool
		if dtype, ok = computeDType(*dtypeName); !ok {
			return fmt.Errorf("--dtype %q: want float32, bfloat16 or float16", *dtypeName)
		}
	}
	var ids []int
	for _, f := range strings.Split(*idsFlag, ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("--ids: %q is not an integer", f)
		}
		ids = append(ids, id)
	}
	dir, err := modelDir()
	if err != nil {
		return err
	}
	e, err := c.loadAs(ctx, dir, *adapter, dtype)
	if err != nil {
		return err
	}
	defer e.Close()
	start := time.Now()
	logits, err := e.model.ForwardLogits(ctx, [][]int{ids}, nil)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	shape := []int{1, len(ids), e.model.Config.VocabSize}
	if err := writeLogits(*outPath, logits[0], shape); err != nil {
		return err
	}
	argmax := make([]int, len(ids))
	for i, row := range logits[0] {
		argmax[i] = argmaxF32(row)
	}
	return json.NewEncoder(c.stdout).Encode(map[string]any{
		"out": *outPath, "shape": shape, "dtype": "float32", "argmax": argmax,
		"model_dtype": e.model.DType().String(), "backend": e.backend.String(), "seconds": elapsed.Seconds(),
	})
}

// computeDType names the dtypes lm.Options.DType accepts, as --dtype spells them.
func computeDType(name string) (dtypes.DType, bool) {
	switch name {
	case "float32":
		return dtypes.Float32, true
	case "bfloat16":
		return dtypes.BFloat16, true
	case "float16":
		return dtypes.Float16, true
	}
	return dtypes.InvalidDType, false
}

// writeLogits writes rows ([T][V]) as .npy (by extension) or raw float32 + a JSON sidecar.
func writeLogits(path string, rows [][]float32, shape []int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	npy := strings.HasSuffix(strings.ToLower(path), ".npy")
	if npy {
		dims := make([]string, len(shape))
		for i, d := range shape {
			dims[i] = strconv.Itoa(d)
		}
		header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", strings.Join(dims, ", "))
		// Magic (6) + version (2) + length (2) + header, padded with spaces and ended by a
		// newline to a multiple of 64 bytes, as NumPy writes it.
		pad := 64 - (10+len(header)+1)%64
		header += strings.Repeat(" ", pad%64) + "\n"
		w.WriteString("\x93NUMPY\x01\x00")
		binary.Write(w, binary.LittleEndian, uint16(len(header)))
		w.WriteString(header)
	}
	var buf [4]byte
	for _, row := range rows {
		for _, v := range row {
			binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
			w.Write(buf[:])
		}
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !npy {
		js, _ := json.Marshal(map[string]any{"shape": shape, "dtype": "float32", "byte_order": "little"})
		if err := os.WriteFile(path+".json", append(js, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func argmaxF32(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// ---- bench -----------------------------------------------------------------------------------

func (c *modelCLI) bench(ctx context.Context, args []string) error {
	fs := c.flags("bench", "--model M --mode train|decode [flags]")
	modelDir := modelFlag(fs, "model: a folder or a downloaded model's name (required)")
	mode := fs.String("mode", "", "train: LoRA training steps on random tokens; decode: greedy generation (required)")
	seq := fs.Int("seq", 1024, "train: sequence length")
	batch := fs.Int("batch", 0, "sequences per step (default 4 for train, 1 for decode)")
	steps := fs.Int("steps", 0, "timed train steps or decode runs (default 5 for train, 3 for decode)")
	warmup := fs.Int("warmup", 0, "untimed train steps or decode runs first, which compile the graphs (default 2 for train, 1 for decode)")
	rank := fs.Int("rank", 16, "train: LoRA rank (alpha 2×rank, all linear layers)")
	maxNew := fs.Int("max-new-tokens", 256, "decode: tokens generated per run")
	promptLen := fs.Int("prompt-len", 16, "decode: prompt tokens")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the timed runs to this file (go tool pprof)")
	if _, err := c.parse(fs, args, 0, "model", "mode"); err != nil {
		return err
	}
	if *mode != "train" && *mode != "decode" {
		return fmt.Errorf("--mode %q: want train or decode", *mode)
	}
	isTrain := *mode == "train"
	for _, d := range []struct {
		p             *int
		train, decode int
	}{{batch, 4, 1}, {steps, 5, 3}, {warmup, 2, 1}} {
		if *d.p <= 0 {
			*d.p = d.decode
			if isTrain {
				*d.p = d.train
			}
		}
	}
	dir, err := modelDir()
	if err != nil {
		return err
	}
	loadStart := time.Now()
	e, err := c.load(ctx, dir, "")
	if err != nil {
		return err
	}
	defer e.Close()
	prof := &timedProfile{path: *cpuProfile}
	defer prof.stop() //nolint:errcheck // stopped and checked below; this covers early returns
	report := map[string]any{
		"mode": *mode, "model": dir, "backend": e.backend.String(), "device": e.backend.DeviceDescription(0),
		"dtype": e.model.DType().String(), "batch": *batch, "load_s": time.Since(loadStart).Seconds(),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	randomIDs := func(n int) []int {
		ids := make([]int, n)
		for i := range ids {
			ids[i] = rng.IntN(e.model.Config.VocabSize)
		}
		return ids
	}
	if isTrain {
		err = c.benchTrain(ctx, e.model, report, randomIDs, *seq, *batch, *rank, *warmup, *steps, prof)
	} else {
		err = c.benchDecode(ctx, e.model, report, randomIDs, *promptLen, *maxNew, *batch, *warmup, *steps, prof)
	}
	if stopErr := prof.stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(c.stdout).Encode(report)
}

// benchTrain times LoRA training steps on random sequences of full length (loss on every
// token, as a causal-LM fine-tune with labels = inputs).
func (c *modelCLI) benchTrain(ctx context.Context, m *lm.Model, report map[string]any, randomIDs func(int) []int, seq, batch, rank, warmup, steps int, prof *timedProfile) error {
	if seq < 2 || seq > m.Config.MaxPositionEmbeddings {
		return fmt.Errorf("--seq %d: want 2..%d", seq, m.Config.MaxPositionEmbeddings)
	}
	data := make([]train.Sequence, batch)
	for i := range data {
		data[i] = train.Sequence{IDs: randomIDs(seq), PromptLen: 1}
	}
	tr, err := train.New(m, data, train.Config{
		LoRA: lora.Config{Rank: rank}, LearningRate: 1e-4, WarmupRatio: -1, Steps: warmup + steps,
		BatchSize: batch, Seed: 1, Logger: c.log,
	})
	if err != nil {
		return err
	}
	defer tr.Close()
	var times []time.Duration
	var losses []float64
	var profErr error
	if warmup == 0 {
		profErr = prof.start()
	}
	if _, err := tr.Run(ctx, func(p train.Progress) {
		times = append(times, p.StepTime)
		losses = append(losses, p.Loss)
		if len(times) == warmup && profErr == nil {
			profErr = prof.start()
		}
	}); err != nil {
		return err
	}
	if profErr != nil {
		return profErr
	}
	timed := times[warmup:]
	var total time.Duration
	for _, t := range timed {
		total += t
	}
	tokens := float64(batch * seq * len(timed))
	report["seq"], report["rank"], report["steps"], report["warmup_steps"] = seq, rank, len(timed), warmup
	report["tokens_per_s"] = tokens / total.Seconds()
	report["step_s"] = durationStats(timed)
	report["first_step_s"] = times[0].Seconds()
	report["loss_first"], report["loss_last"] = losses[0], losses[len(losses)-1]
	return nil
}

// benchDecode times greedy generation of exactly maxNew tokens per row (EOS ignored).
func (c *modelCLI) benchDecode(ctx context.Context, m *lm.Model, report map[string]any, randomIDs func(int) []int, promptLen, maxNew, batch, warmup, runs int, prof *timedProfile) error {
	prompts := make([][]int, batch)
	for i := range prompts {
		prompts[i] = randomIDs(promptLen)
	}
	params := generate.Params{MaxTokens: maxNew, Temperature: 0, EOS: []int{}}
	var totals, decodes []time.Duration
	var firstRun time.Duration
	var timed timedLM
	for r := 0; r < warmup+runs; r++ {
		if r == warmup {
			timed = timedLM{LM: generate.FromModel(m)}
			if err := prof.start(); err != nil {
				return err
			}
		}
		model := generate.FromModel(m)
		if r >= warmup {
			model = &timed
		}
		start := time.Now()
		var first time.Time
		res, err := generate.Generate(ctx, model, nil, prompts, params, func(ch generate.Chunk) error {
			if first.IsZero() {
				first = time.Now()
			}
			return nil
		})
		if err != nil {
			return err
		}
		end := time.Now()
		if n := len(res[0].Tokens); n != maxNew {
			return fmt.Errorf("generated %d tokens, want %d", n, maxNew)
		}
		if r == 0 {
			firstRun = end.Sub(start)
		}
		if r >= warmup {
			totals = append(totals, end.Sub(start))
			decodes = append(decodes, end.Sub(first))
		}
	}
	total, decode := median(totals), median(decodes)
	report["prompt_tokens"], report["new_tokens"], report["runs"], report["warmup_runs"] = promptLen, maxNew, runs, warmup
	// tokens_per_s counts the whole call (prefill included), as timing transformers' generate does.
	report["tokens_per_s"] = float64(batch*maxNew) / total.Seconds()
	report["decode_tokens_per_s"] = float64(batch*(maxNew-1)) / decode.Seconds()
	report["total_s"] = durationStats(totals)
	report["first_token_s"] = (total - decode).Seconds()
	report["first_run_s"] = firstRun.Seconds()
	// Where a timed run's time goes: prefill, decode steps (device call and logits readback),
	// and the host's share per token (sampling, streaming, bookkeeping).
	var sum time.Duration
	for _, t := range totals {
		sum += t
	}
	report["prefill_s"] = timed.prefill.Seconds() / float64(runs)
	if timed.steps > 0 {
		report["step_ms"] = float64(timed.stepTime.Microseconds()) / 1e3 / float64(timed.steps)
		report["host_ms_per_token"] = float64((sum - timed.prefill - timed.stepTime).Microseconds()) / 1e3 / float64(runs*maxNew)
	}
	return nil
}

// timedProfile is a Go CPU profile of a benchmark's timed part only (compilation left out).
type timedProfile struct {
	path string
	f    *os.File
}

func (p *timedProfile) start() error {
	if p.path == "" || p.f != nil {
		return nil
	}
	f, err := os.Create(p.path)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	p.f = f
	return nil
}

func (p *timedProfile) stop() error {
	if p.f == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := p.f.Close()
	p.f = nil
	return err
}

// timedLM adds up the time spent in prefill and in decode steps.
type timedLM struct {
	generate.LM
	prefill, stepTime time.Duration
	steps             int
}

func (t *timedLM) Start(ctx context.Context, prompts [][]int, maxNew int) (generate.Session, [][]float32, error) {
	start := time.Now()
	s, logits, err := t.LM.Start(ctx, prompts, maxNew)
	t.prefill += time.Since(start)
	if err != nil {
		return nil, nil, err
	}
	return timedSession{Session: s, lm: t}, logits, nil
}

type timedSession struct {
	generate.Session
	lm *timedLM
}

func (s timedSession) Step(ctx context.Context, tokens []int) ([][]float32, error) {
	start := time.Now()
	logits, err := s.Session.Step(ctx, tokens)
	s.lm.stepTime += time.Since(start)
	s.lm.steps++
	return logits, err
}

func durationStats(ds []time.Duration) map[string]float64 {
	if len(ds) == 0 {
		return nil
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return map[string]float64{
		"mean": (sum / time.Duration(len(ds))).Seconds(), "median": median(ds).Seconds(),
		"min": slices.Min(ds).Seconds(), "max": slices.Max(ds).Seconds(),
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func params(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}
