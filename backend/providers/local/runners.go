package local

import (
	"sync"

	"opentracy/gpu/worker"
)

// runners holds where models run now, and lets that change while the app runs (the GPU runtime
// installed or removed): the next load starts a new runner, and a replaced one is closed once
// the last model loaded on it is unloaded.
type runners struct {
	start func() (*runner, error)

	mu      sync.Mutex
	current *runner
	err     error // the last start's error, until reset
	closed  bool
}

// runner is a worker.Runner and the models loaded on it.
type runner struct {
	worker.Runner
	mode string // "in-process" or "worker"

	mu      sync.Mutex
	models  int
	retired bool
}

// get returns the current runner, starting one on first use or after Reset.
func (rs *runners) get() (*runner, error) { return rs.take(false) }

// acquire is get for a load: the runner counts the model from now on (release it with
// unloaded), so that a Reset meanwhile cannot close it under the load.
func (rs *runners) acquire() (*runner, error) { return rs.take(true) }

func (rs *runners) take(load bool) (*runner, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return nil, errClosed
	}
	if rs.current == nil && rs.err == nil {
		rs.current, rs.err = rs.start()
	}
	if rs.err != nil {
		return nil, rs.err
	}
	if load {
		rs.current.loaded()
	}
	return rs.current, nil
}

// reset forgets the current runner (and a failed start): the next get decides again.
func (rs *runners) reset() { rs.retire(false) }

// close stops the current runner; later gets fail.
func (rs *runners) close() { rs.retire(true) }

func (rs *runners) retire(closing bool) {
	rs.mu.Lock()
	old := rs.current
	rs.current, rs.err = nil, nil
	rs.closed = rs.closed || closing
	rs.mu.Unlock()
	if old != nil {
		old.retire()
	}
}

// loaded counts a model loaded on r; unloaded its end.
func (r *runner) loaded() {
	r.mu.Lock()
	r.models++
	r.mu.Unlock()
}

func (r *runner) unloaded() {
	r.mu.Lock()
	r.models--
	closeNow := r.retired && r.models == 0
	r.mu.Unlock()
	if closeNow {
		_ = r.Close()
	}
}

// retire closes r now if no model is loaded on it, else after the last one is unloaded.
func (r *runner) retire() {
	r.mu.Lock()
	if r.retired {
		r.mu.Unlock()
		return
	}
	r.retired = true
	closeNow := r.models == 0
	r.mu.Unlock()
	if closeNow {
		_ = r.Close()
	}
}
