package local

import (
	"context"
	"time"

	"opentracy/gpu/worker"
)

// unloadTimeout bounds an unload: it runs while the pool decides what stays loaded, and a
// worker that does not answer in time is restarted by its client anyway.
const unloadTimeout = 5 * time.Second

// engine is a model loaded in the engine (in this process or in the worker).
type engine struct {
	runner *runner
	// id names the model to the runner: unique per load, so that a model replaced on disk can
	// load beside the old one while the old one finishes its requests.
	id   string
	info worker.ModelInfo
}

func (e *engine) close() {
	ctx, cancel := context.WithTimeout(context.Background(), unloadTimeout)
	defer cancel()
	_ = e.runner.Unload(ctx, e.id)
	e.runner.unloaded()
}
