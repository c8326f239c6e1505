package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/lora"
	"opentracy/gpu/engine/tokenizer"
	"opentracy/gpu/train"
)

// job converts the request to the trainer's terms, the CLI's flags' way.
func (req TrainRequest) job() train.Job {
	j := train.Job{Data: req.Data, Out: req.OutDir, CheckpointDir: req.CheckpointDir, Adapter: req.AdapterDir,
		MaxLen: req.MaxSeqLen, Config: train.Config{
			LoRA:         lora.Config{Rank: req.Rank, Alpha: req.Alpha, Dropout: req.Dropout, TargetModules: req.TargetModules},
			LearningRate: req.LearningRate, MinLearningRate: req.MinLR, WarmupSteps: req.WarmupSteps,
			Steps: req.Steps, Epochs: req.Epochs, BatchSize: req.BatchSize, GradAccum: req.GradAccum,
			WeightDecay: req.WeightDecay, MaxGradNorm: req.MaxGradNorm, Seed: req.Seed,
			CheckpointEvery: req.CheckpointEvery,
		}}
	if req.Resume {
		j.Resume = train.ResumeAuto
	}
	return j
}

func progressOf(p train.Progress) TrainProgress {
	return TrainProgress{Step: p.Step, Steps: p.Steps, Loss: p.Loss, LearningRate: p.LearningRate, GradNorm: p.GradNorm,
		TokensPerSec: p.TokensPerSec, Epoch: p.Epoch, ETASeconds: p.ETA.Seconds(), ElapsedSeconds: p.Elapsed.Seconds()}
}

// Train loads the base model for this run alone, trains and saves the adapter; see Runner.
func (e *Engine) Train(ctx context.Context, req TrainRequest, onProgress func(TrainProgress)) (TrainResult, error) {
	if req.BaseDir == "" || req.Data == "" || req.OutDir == "" {
		return TrainResult{}, errorf(CodeInvalidRequest, "train: a base model folder, a data file and an output folder are required")
	}
	examples, err := train.ReadJobData(req.Data)
	if err != nil {
		return TrainResult{}, errorf(CodeInvalidRequest, "%w", err)
	}
	b, err := e.getBackend()
	if err != nil {
		return TrainResult{}, &Error{Code: CodeBackend, Message: err.Error(), cause: err}
	}
	start := time.Now()
	m, err := lm.Load(ctx, b, req.BaseDir, lm.Options{Logger: e.log})
	if err != nil {
		if ctx.Err() != nil {
			return TrainResult{}, errorf(CodeCanceled, "train: %w", ctx.Err())
		}
		return TrainResult{}, errorf(CodeLoadFailed, "train: %w", err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(req.BaseDir)
	if err != nil {
		return TrainResult{}, errorf(CodeLoadFailed, "train: %w", err)
	}
	job := req.job()
	job.Examples = examples
	job.Config.Logger = e.log
	var cb func(train.Progress)
	if onProgress != nil {
		cb = func(p train.Progress) { onProgress(progressOf(p)) }
	}
	res, err := train.RunJob(ctx, m, tok, job, func(s train.JobStart) {
		e.log.Info("training", "model", req.BaseDir, "sequences", s.Sequences, "steps", s.Steps,
			"resumed_from", s.ResumedFrom, "step", s.Step, "load_took", time.Since(start).Round(time.Millisecond).String())
	}, cb)
	out := TrainResult{Steps: res.State.Step, Loss: res.State.Loss, Tokens: res.State.Tokens, AdapterDir: res.Adapter,
		Checkpoint: res.Checkpoint, ResumedFrom: res.ResumedFrom, ResumedStep: res.Step}
	switch {
	case err == nil:
		e.log.Info("training done", "adapter", res.Adapter, "steps", out.Steps, "loss", out.Loss)
		return out, nil
	case ctx.Err() != nil:
		e.log.Info("training stopped", "step", out.Steps, "checkpoint", out.Checkpoint)
		return out, fmt.Errorf("train: stopped at step %d (checkpoint %q): %w", out.Steps, out.Checkpoint, ctx.Err())
	default:
		var we *Error
		if errors.As(err, &we) {
			return out, err
		}
		if errors.Is(err, train.ErrData) {
			return out, errorf(CodeInvalidRequest, "%w", err)
		}
		e.log.Error("training failed", "err", err)
		return out, errorf(CodeInternal, "%w", err)
	}
}
