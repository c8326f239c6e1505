package local

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errClosed is returned once the provider is closed.
var errClosed = errors.New("local provider is closed")

// pool keeps up to max engines loaded, least recently used out first. Loads run on their own
// context (the pool's), not a request's: a load the first client gave up on still completes for
// the next one. Failures are remembered for retryAfter, per version on disk.
type pool struct {
	max        int
	retryAfter time.Duration
	open       func(ctx context.Context, m Model) (*engine, error)
	stamp      func(m Model) string
	// Seams for tests.
	now         func() time.Time
	closeEngine func(*engine)

	ctx    context.Context // cancelled by close: stops loads
	cancel context.CancelFunc
	loads  sync.WaitGroup

	mu      sync.Mutex
	entries map[string]*entry
	failed  map[string]failure
	tick    uint64 // LRU clock
	closed  bool
}

type failure struct {
	stamp string
	err   error
	at    time.Time
}

// entry is one loaded (or loading) model.
type entry struct {
	model Model
	ready chan struct{} // closed when the load ended; eng and err are set then

	eng *engine
	err error

	// Under pool.mu:
	refs   int    // requests holding the entry
	used   uint64 // LRU tick of the last acquire
	loaded bool   // the load ended (ready is closed)
	gone   bool   // evicted: the engine closes when refs drops to 0

	// turn is held by the generation in progress: requests to one model run one at a time.
	turn chan struct{}

	loadedAt         time.Time
	requests, tokens atomic.Int64
	promptTokens     atomic.Int64
}

func newPool(max int, retryAfter time.Duration, open func(context.Context, Model) (*engine, error), stamp func(Model) string) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{max: max, retryAfter: retryAfter, open: open, stamp: stamp, now: time.Now, closeEngine: (*engine).close,
		ctx: ctx, cancel: cancel, entries: map[string]*entry{}, failed: map[string]failure{}}
}

// acquire returns the loaded engine for name, loading it (with resolve's answer) when it is not
// loaded or what is on disk changed. The caller must release the entry.
func (p *pool) acquire(ctx context.Context, name string, resolve func() (Model, error)) (*entry, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	e := p.entries[name]
	if e != nil {
		if p.stamp(e.model) != e.model.stamp {
			p.dropLocked(e) // deleted or replaced on disk: resolve again
			e = nil
		}
	}
	if e == nil {
		// Resolving reads folders: done without the lock, then the map is checked again.
		p.mu.Unlock()
		m, err := resolve()
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errClosed
		}
		if e = p.entries[name]; e == nil || e.model.stamp != m.stamp {
			if e != nil {
				p.dropLocked(e)
			}
			if f, ok := p.failed[name]; ok && f.stamp == m.stamp && p.now().Sub(f.at) < p.retryAfter {
				p.mu.Unlock()
				return nil, f.err
			}
			e = p.startLoadLocked(name, m)
		}
	}
	e.refs++
	p.tick++
	e.used = p.tick
	p.mu.Unlock()

	select {
	case <-e.ready:
	case <-ctx.Done():
		p.release(e)
		return nil, ctx.Err()
	}
	if e.err != nil {
		p.release(e)
		return nil, e.err
	}
	return e, nil
}

func (p *pool) startLoadLocked(name string, m Model) *entry {
	e := &entry{model: m, ready: make(chan struct{}), turn: make(chan struct{}, 1)}
	p.entries[name] = e
	p.evictLocked(e)
	p.loads.Add(1)
	go func() {
		defer p.loads.Done()
		eng, err := p.open(p.ctx, m)
		p.mu.Lock()
		e.eng, e.err, e.loaded, e.loadedAt = eng, err, true, p.now()
		if err != nil {
			if p.entries[name] == e {
				delete(p.entries, name)
			}
			p.failed[name] = failure{stamp: m.stamp, err: err, at: p.now()}
		} else {
			delete(p.failed, name)
		}
		closeNow := err == nil && e.gone && e.refs == 0
		p.mu.Unlock()
		close(e.ready)
		if closeNow {
			p.closeEngine(eng)
		}
	}()
	return e
}

// evictLocked drops the least recently used entries other than keep until at most max remain.
func (p *pool) evictLocked(keep *entry) {
	for len(p.entries) > p.max {
		var lru *entry
		for _, e := range p.entries {
			if e != keep && (lru == nil || e.used < lru.used) {
				lru = e
			}
		}
		if lru == nil {
			return
		}
		p.dropLocked(lru)
	}
}

// dropLocked removes e from the pool; its engine closes now if unused, else on its last release
// (requests in flight finish on it, so memory briefly holds both models).
func (p *pool) dropLocked(e *entry) {
	if p.entries[e.model.Name] == e {
		delete(p.entries, e.model.Name)
	}
	if e.gone {
		return
	}
	e.gone = true
	if e.refs == 0 && e.loaded && e.eng != nil {
		p.closeEngine(e.eng)
	}
}

func (p *pool) release(e *entry) {
	p.mu.Lock()
	e.refs--
	closeNow := e.refs == 0 && e.gone && e.loaded && e.eng != nil
	p.mu.Unlock()
	if closeNow {
		p.closeEngine(e.eng)
	}
}

// unload drops name from the pool.
func (p *pool) unload(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.failed, name)
	if e := p.entries[name]; e != nil {
		p.dropLocked(e)
	}
}

// unloadAll drops every model (and forgets failed loads); engines close as their requests end.
func (p *pool) unloadAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.failed)
	for _, e := range p.entries {
		p.dropLocked(e)
	}
}

// lock waits for the model's turn; unlock ends it.
func (e *entry) lock(ctx context.Context) error {
	select {
	case e.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *entry) unlock() { <-e.turn }

// LoadedModel is a model in memory.
type LoadedModel struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Loading is true until the load ends.
	Loading bool `json:"loading"`
	// Busy is true while a request generates.
	Busy     bool      `json:"busy"`
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// Requests, PromptTokens and CompletionTokens count what the model served since it loaded;
	// CompletionTokens grows token by token while a stream runs.
	Requests         int64 `json:"requests"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

func (p *pool) status() []LoadedModel {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]LoadedModel, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, LoadedModel{
			Name: e.model.Name, Kind: e.model.Kind, Loading: !e.loaded, Busy: len(e.turn) > 0, LoadedAt: e.loadedAt,
			Requests: e.requests.Load(), PromptTokens: e.promptTokens.Load(), CompletionTokens: e.tokens.Load(),
		})
	}
	slices.SortFunc(out, func(a, b LoadedModel) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// close unloads everything, stops loads and waits for them. Requests still running finish on
// their engines, which close on release.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.cancel()
	for _, e := range p.entries {
		p.dropLocked(e)
	}
	p.mu.Unlock()
	p.loads.Wait()
}
