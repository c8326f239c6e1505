package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/tokenizer"
)

// ResumeAuto as Job.Resume continues from the latest checkpoint in Job.CheckpointDir, if any.
const ResumeAuto = "auto"

// Job is a whole training run from files: read and tokenize the data, set up the trainer
// (fresh, continuing an adapter, or resuming a checkpoint), train and save the adapter. It is
// what `opentracy model train` and the engine worker's train request both run, so that they
// train the same way.
type Job struct {
	// Data is an OpenAI chat fine-tuning JSONL file.
	Data string
	// Examples, when set, are Data already read (ReadJobData): callers read it before loading
	// a model, so that bad data fails in a moment rather than after the weights load.
	Examples []Example
	// Out receives the adapter (PEFT format) when training ends; "" saves none.
	Out string
	// CheckpointDir receives checkpoints (default Out/checkpoints).
	CheckpointDir string
	// Resume is a checkpoint folder to continue from, or ResumeAuto.
	Resume string
	// Adapter is a PEFT adapter to train further instead of a fresh one (ignored when a
	// checkpoint is resumed: it holds the adapter).
	Adapter string
	// MaxLen truncates sequences (0: the model's context).
	MaxLen int
	// Config is the trainer's; its CheckpointDir and Resume are set from the fields above.
	Config Config
}

// JobStart is what a job reports once its data is read and its trainer is ready.
type JobStart struct {
	Stats     TokenizeStats
	Sequences int
	// ResumedFrom is the checkpoint resumed ("" for none) and Step the step it holds.
	ResumedFrom string
	Step, Steps int
}

// JobResult is what a job did.
type JobResult struct {
	Result
	JobStart
	// Adapter is the folder the adapter was saved to ("" when the run did not finish).
	Adapter string
}

// ErrData marks a job that failed on its training data (missing or unreadable file, a malformed
// line, no example left after tokenizing): the request, not the engine, is at fault.
var ErrData = errors.New("training data")

// ReadJobData reads a job's JSONL data; its errors are ErrData.
func ReadJobData(path string) ([]Example, error) {
	examples, err := ReadJSONLFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	return examples, nil
}

// RunJob runs job on m (its adapter is replaced) with tok, m's tokenizer. onStart and
// onProgress may be nil. When ctx ends, training stops at a step boundary with a checkpoint;
// the result then says where (Checkpoint, State) and the error wraps ctx's.
func RunJob(ctx context.Context, m *lm.Model, tok *tokenizer.Tokenizer, job Job, onStart func(JobStart), onProgress func(Progress)) (JobResult, error) {
	var res JobResult
	log := job.Config.Logger
	if log == nil {
		log = slog.Default()
	}
	examples := job.Examples
	if examples == nil {
		var err error
		if examples, err = ReadJobData(job.Data); err != nil {
			return res, err
		}
	}
	tmpl, err := ChatTemplate(tok.ChatTemplate(), m.Config.ModelType, log)
	if err != nil {
		return res, err
	}
	maxLen := m.Config.MaxPositionEmbeddings
	if job.MaxLen > 0 {
		maxLen = min(job.MaxLen, maxLen)
	}
	seqs, st, err := Tokenize(examples, tok, tmpl, TokenizeOptions{MaxLen: maxLen, EOS: m.EOSTokenIDs()})
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrData, err)
	}
	res.Stats, res.Sequences = st, len(seqs)

	ckptDir := job.CheckpointDir
	if ckptDir == "" && job.Out != "" {
		ckptDir = filepath.Join(job.Out, "checkpoints")
	}
	from := job.Resume
	if from == ResumeAuto {
		from, err = LatestCheckpoint(ckptDir)
		if errors.Is(err, ErrNoCheckpoint) {
			from = ""
		} else if err != nil {
			return res, err
		}
	}
	cfg := job.Config
	cfg.CheckpointDir, cfg.Resume = ckptDir, from
	if from == "" && job.Adapter != "" {
		if _, err := m.LoadAdapter(job.Adapter); err != nil {
			return res, fmt.Errorf("train: adapter to continue: %w", err)
		}
		cfg.keepAdapter = true
	}
	tr, err := New(m, seqs, cfg)
	if err != nil {
		return res, err
	}
	defer tr.Close()
	res.ResumedFrom, res.Step, res.Steps = from, tr.State().Step, tr.TotalSteps()
	if onStart != nil {
		onStart(res.JobStart)
	}
	res.Result, err = tr.Run(ctx, onProgress)
	if err != nil {
		return res, err
	}
	if job.Out != "" {
		if err := tr.SaveAdapter(job.Out); err != nil {
			return res, err
		}
		res.Adapter = job.Out
	}
	return res, nil
}
