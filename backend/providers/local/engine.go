package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gomlx/compute"

	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/tokenizer"
)

// engine is a loaded model with what serving it needs.
type engine struct {
	model *lm.Model
	tok   *tokenizer.Tokenizer
	tmpl  chat.Template
}

// openEngine loads m on backend: the base weights, a student's adapter merged into them (one
// model to run, at the base model's speed), the tokenizer and the chat template.
func openEngine(ctx context.Context, backend compute.Backend, m Model, log *slog.Logger) (*engine, error) {
	model, err := lm.Load(ctx, backend, m.Dir, lm.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			model.Close()
		}
	}()
	if m.AdapterDir != "" {
		if _, err := model.LoadAdapter(m.AdapterDir); err != nil {
			return nil, fmt.Errorf("student %s: %w", m.Name, err)
		}
		if err := model.MergeAdapter(ctx); err != nil {
			return nil, fmt.Errorf("student %s: %w", m.Name, err)
		}
	}
	tok, err := tokenizer.Load(m.Dir)
	if err != nil {
		return nil, err
	}
	tmpl, exact, err := chat.Detect(tok.ChatTemplate())
	switch {
	case errors.Is(err, chat.ErrUnsupported):
		// Base (non-instruct) checkpoints often ship no template: use the family's, which their
		// tokenizer's special tokens support, and say so.
		tmpl = chat.Qwen3()
		if model.Config.ModelType == lm.Llama {
			tmpl = chat.Llama31()
		}
		log.Warn("no chat template the engine knows: using the family's", "model", m.Name, "template", tmpl.Name())
	case err != nil:
		return nil, err
	case !exact:
		log.Info("chat template differs from the reference one in details", "model", m.Name, "template", tmpl.Name())
	}
	ok = true
	return &engine{model: model, tok: tok, tmpl: tmpl}, nil
}

func (e *engine) close() { e.model.Close() }
