package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of ClientOptions.
const (
	DefaultStartTimeout = 2 * time.Minute
	DefaultCancelWait   = 10 * time.Second
	// closeWait is how long Close lets the worker exit on its own before it is killed.
	closeWait = 5 * time.Second
	// Restart backoff: a worker that dies within stableAfter of its start makes the next start
	// wait, doubling from minBackoff up to maxBackoff, so that a worker dying at once (a broken
	// GPU runtime) is not restarted in a tight loop.
	minBackoff  = 250 * time.Millisecond
	maxBackoff  = 10 * time.Second
	stableAfter = 10 * time.Second
)

// ErrDied matches (errors.Is) the error of a request whose worker died under it.
var ErrDied = errors.New("engine worker died")

// ErrClosed is returned once the Client is closed.
var ErrClosed = errors.New("engine worker client is closed")

// DeadError is the error of the requests in flight when a worker died.
type DeadError struct {
	// Cause is how the worker ended ("signal: killed", "exit status 2") or why it was stopped.
	Cause string
	// Hint guesses what the cause means ("out of memory?").
	Hint string
	// Output are the last lines the worker wrote on stderr (its logs, a panic, a CUDA abort).
	Output []string
}

func (e *DeadError) Error() string {
	var b strings.Builder
	b.WriteString("engine worker died: ")
	b.WriteString(e.Cause)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	if len(e.Output) > 0 {
		b.WriteString("; last output: ")
		b.WriteString(truncate(strings.Join(e.Output, " | "), 1500))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrDied) true.
func (e *DeadError) Is(target error) bool { return target == ErrDied }

// ClientOptions configure a Client that runs the worker as a child process.
type ClientOptions struct {
	// Command is the worker's command line: program and arguments (default: this executable
	// with "engine-worker").
	Command []string
	// Env is the worker's environment, e.g. runtime.Plan.Environ(os.Environ()): the dynamic
	// loader reads LD_LIBRARY_PATH only when a process starts. Nil means this process's.
	Env []string
	// Logger receives the client's logs and the worker's, relayed.
	Logger *slog.Logger
	// StartTimeout bounds a start, up to the worker's hello (default DefaultStartTimeout).
	StartTimeout time.Duration
	// CancelWait is how long a cancelled request waits for the worker to stop it; a worker that
	// does not is stuck, and is killed and restarted (default DefaultCancelWait).
	CancelWait time.Duration
}

// Client talks to a worker: a child process it starts on first use and restarts when it dies,
// or a Server in this process on pipes. A request in flight when the worker dies fails with a
// *DeadError naming the cause; the next request starts a new worker, and the models loaded
// through the Client are loaded again in it on first use. Safe for concurrent use.
type Client struct {
	log          *slog.Logger
	dial         func(ctx context.Context) (*link, error)
	startTimeout time.Duration
	cancelWait   time.Duration
	onClose      func() // releases what the dialer owns (the pipe client's engine)

	nextID atomic.Uint64
	ctx    context.Context // cancelled by Close: stops a start in progress
	cancel context.CancelFunc

	mu        sync.Mutex
	cur       *conn
	starting  *attempt
	epoch     uint64
	backoff   time.Duration
	notBefore time.Time
	models    map[string]*modelState
	closed    bool
}

// attempt is a start in progress; err is set when done is closed.
type attempt struct {
	done chan struct{}
	err  error
}

// modelState is a model loaded through the client, to load again after a restart.
type modelState struct {
	req  LoadRequest
	sem  chan struct{} // held while (re)loading or unloading
	gone bool          // unloaded: no more reloads

	epoch uint64 // the worker it is loaded in (conn.epoch); 0 none
	info  ModelInfo
}

// NewClient returns a client for a child worker process; it starts on first use.
func NewClient(opts ClientOptions) *Client {
	c := newClient(opts.Logger, opts.StartTimeout, opts.CancelWait)
	command, env, log := opts.Command, opts.Env, c.log
	c.dial = func(ctx context.Context) (*link, error) { return spawn(ctx, command, env, log) }
	return c
}

// NewPipeClient returns a client for a Server running engine in this process, over pipes: the
// protocol without a process (tests, and a check of the protocol on the CPU). Closing the
// client closes the engine.
func NewPipeClient(engine *Engine, log *slog.Logger) *Client {
	c := newClient(log, 0, 0)
	c.dial = func(context.Context) (*link, error) { return pipeLink(engine, c.log), nil }
	c.onClose = func() { _ = engine.Close() }
	return c
}

func newClient(log *slog.Logger, startTimeout, cancelWait time.Duration) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if startTimeout <= 0 {
		startTimeout = DefaultStartTimeout
	}
	if cancelWait <= 0 {
		cancelWait = DefaultCancelWait
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{log: log, startTimeout: startTimeout, cancelWait: cancelWait, ctx: ctx, cancel: cancel,
		models: map[string]*modelState{}}
}

// PID is the running worker's process id (0 when none runs, or in-process).
func (c *Client) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.isDead() {
		return 0
	}
	return c.cur.link.pid
}

// Starts counts the workers started so far.
func (c *Client) Starts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.epoch)
}

// getConn returns the running worker, starting one if none runs.
func (c *Client) getConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if c.cur != nil && !c.cur.isDead() {
			cn := c.cur
			c.mu.Unlock()
			return cn, nil
		}
		st := c.starting
		if st == nil {
			st = &attempt{done: make(chan struct{})}
			c.starting = st
			wait := time.Until(c.notBefore)
			c.mu.Unlock()
			// The start runs on the client's context, not this request's: others may wait for it.
			go c.start(st, wait)
		} else {
			c.mu.Unlock()
		}
		select {
		case <-st.done:
			if st.err != nil {
				return nil, st.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// start starts a worker after wait and makes it current.
func (c *Client) start(st *attempt, wait time.Duration) {
	cn, err := c.startConn(wait)
	c.mu.Lock()
	c.starting = nil
	if err == nil && c.closed {
		err = ErrClosed
		defer cn.close(ErrClosed)
	}
	if err == nil {
		c.cur = cn
	} else if !errors.Is(err, ErrClosed) {
		c.bumpBackoffLocked(time.Time{})
		c.log.Error("engine worker did not start", "err", err, "next_try_after", c.backoff)
	}
	st.err = err
	close(st.done)
	c.mu.Unlock()
}

func (c *Client) startConn(wait time.Duration) (*conn, error) {
	if wait > 0 {
		c.log.Info("engine worker restarts after a pause", "pause", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.startTimeout)
	defer cancel()
	started := time.Now()
	l, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("start engine worker: %w", err)
	}
	c.mu.Lock()
	c.epoch++
	cn := newConn(c, l, c.epoch)
	c.mu.Unlock()
	// The worker speaks first: its hello, once its backend is up. Registered before reading,
	// so that an early hello is not dropped.
	hello := cn.register(0)
	go cn.readLoop()
	var h Hello
	err = c.await(ctx, cn, 0, hello, false, func(m Message) (bool, error) {
		if m.Type != TypeHello || m.Hello == nil {
			return true, fmt.Errorf("engine worker sent %q before its hello", m.Type)
		}
		h = *m.Hello
		return true, nil
	})
	cn.forget(0)
	switch {
	case err != nil && c.ctx.Err() != nil:
		err = ErrClosed
	case err != nil && ctx.Err() != nil:
		err = fmt.Errorf("no hello within %s", c.startTimeout)
	case err == nil && h.Protocol != ProtocolVersion:
		err = fmt.Errorf("the worker speaks protocol %d, this app %d (a different build of the binary?)", h.Protocol, ProtocolVersion)
	case err == nil && h.Error != "":
		err = &Error{Code: CodeBackend, Message: h.Error}
	}
	if err != nil {
		cn.close(err)
		return nil, fmt.Errorf("start engine worker: %w", err)
	}
	cn.hello = h
	c.log.Info("engine worker ready", "pid", h.PID, "backend", h.Backend, "device", h.Device,
		"took", time.Since(started).Round(time.Millisecond))
	return cn, nil
}

// died is called once by a conn's read loop when its worker has ended.
func (c *Client) died(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != cn {
		return
	}
	c.cur = nil
	if cn.expected.Load() {
		return
	}
	c.bumpBackoffLocked(cn.started)
	c.log.Error("engine worker died; the next request starts a new one", "pid", cn.link.pid, "err", cn.err,
		"pause", time.Until(c.notBefore).Round(time.Millisecond))
}

// bumpBackoffLocked sets the pause before the next start: none after a worker that ran a while
// (started), a doubling one after a quick death or a failed start (started zero).
func (c *Client) bumpBackoffLocked(started time.Time) {
	if !started.IsZero() && time.Since(started) >= stableAfter {
		c.backoff = 0
		c.notBefore = time.Time{}
		return
	}
	c.backoff = min(max(minBackoff, 2*c.backoff), maxBackoff)
	c.notBefore = time.Now().Add(c.backoff)
}

// Hello starts the worker if none runs and asks it for its health.
func (c *Client) Hello(ctx context.Context) (Hello, error) {
	cn, err := c.getConn(ctx)
	if err != nil {
		return Hello{}, err
	}
	var h Hello
	err = c.call(ctx, cn, Message{Type: TypeHealth}, func(m Message) (bool, error) {
		if m.Type != TypeHello || m.Hello == nil {
			return true, unexpected(m)
		}
		h = *m.Hello
		return true, nil
	})
	return h, err
}

// Load loads a model in the worker and remembers it, to load it again in a restarted worker.
func (c *Client) Load(ctx context.Context, req LoadRequest) (ModelInfo, error) {
	if req.Model == "" {
		return ModelInfo{}, errorf(CodeInvalidRequest, "load: a model id is required")
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ModelInfo{}, ErrClosed
	}
	ms := c.models[req.Model]
	if ms != nil && ms.req != req {
		c.mu.Unlock()
		return ModelInfo{}, errorf(CodeInvalidRequest, "load %s: model id %q is already in use", req.Name, req.Model)
	}
	fresh := ms == nil
	if fresh {
		ms = &modelState{req: req, sem: make(chan struct{}, 1)}
		c.models[req.Model] = ms
	}
	c.mu.Unlock()
	_, info, err := c.ensureLoaded(ctx, ms)
	if err != nil && fresh {
		c.mu.Lock()
		if c.models[req.Model] == ms && ms.epoch == 0 {
			delete(c.models, req.Model) // never loaded: a later Load tries afresh
		}
		c.mu.Unlock()
	}
	return info, err
}

// ensureLoaded returns the running worker with ms loaded in it, loading it if needed.
func (c *Client) ensureLoaded(ctx context.Context, ms *modelState) (*conn, ModelInfo, error) {
	select {
	case ms.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ModelInfo{}, ctx.Err()
	}
	defer func() { <-ms.sem }()
	if ms.gone {
		return nil, ModelInfo{}, errorf(CodeNotLoaded, "model %q was unloaded", ms.req.Model)
	}
	cn, err := c.getConn(ctx)
	if err != nil {
		return nil, ModelInfo{}, err
	}
	if ms.epoch == cn.epoch {
		return cn, ms.info, nil
	}
	if ms.epoch != 0 {
		c.log.Info("loading a model again in the new engine worker", "model", ms.req.Name)
	}
	req := ms.req
	var info ModelInfo
	err = c.call(ctx, cn, Message{Type: TypeLoad, Load: &req}, func(m Message) (bool, error) {
		switch {
		case m.Type == TypeLoaded && m.Loaded != nil:
			info = *m.Loaded
			return true, nil
		case m.Type == TypeError && m.Error != nil:
			return true, m.Error
		}
		return true, unexpected(m)
	})
	if err != nil {
		if ctx.Err() != nil {
			// The worker may have finished the load as the cancel reached it: free it, unanswered
			// (an unload of a model that is not there does nothing).
			_ = cn.send(Message{ID: c.nextID.Add(1), Type: TypeUnload, Unload: &UnloadRequest{Model: req.Model}})
		}
		return nil, ModelInfo{}, err
	}
	ms.epoch, ms.info = cn.epoch, info
	return cn, info, nil
}

// Generate runs a completion in the worker, loading its model there first if the worker was
// restarted since. Deltas go to onDelta as they arrive; the worker does not wait for them.
func (c *Client) Generate(ctx context.Context, req GenerateRequest, onDelta func(Delta) error) (Done, error) {
	c.mu.Lock()
	ms := c.models[req.Model]
	c.mu.Unlock()
	if ms == nil {
		return Done{}, errorf(CodeNotLoaded, "model %q is not loaded", req.Model)
	}
	cn, _, err := c.ensureLoaded(ctx, ms)
	if err != nil {
		return Done{}, err
	}
	req.Stream = onDelta != nil
	var done Done
	err = c.call(ctx, cn, Message{Type: TypeGenerate, Generate: &req}, func(m Message) (bool, error) {
		switch {
		case m.Type == TypeDelta && m.Delta != nil:
			if onDelta == nil {
				return false, nil
			}
			return false, onDelta(*m.Delta)
		case m.Type == TypeDone && m.Done != nil:
			done = *m.Done
			return true, nil
		case m.Type == TypeError && m.Error != nil:
			return true, m.Error
		}
		return true, unexpected(m)
	})
	return done, err
}

// Train trains an adapter in the worker. Progress goes to onProgress as it arrives. A worker
// that dies meanwhile ends it with a *DeadError; a Train with Resume then continues from the
// last checkpoint in a new worker.
func (c *Client) Train(ctx context.Context, req TrainRequest, onProgress func(TrainProgress)) (TrainResult, error) {
	cn, err := c.getConn(ctx)
	if err != nil {
		return TrainResult{}, err
	}
	var res TrainResult
	err = c.call(ctx, cn, Message{Type: TypeTrain, Train: &req}, func(m Message) (bool, error) {
		switch {
		case m.Type == TypeTrainProgress && m.TrainProgress != nil:
			if onProgress != nil {
				onProgress(*m.TrainProgress)
			}
			return false, nil
		case m.Type == TypeTrainDone && m.TrainDone != nil:
			res = *m.TrainDone
			return true, nil
		case m.Type == TypeError && m.Error != nil:
			return true, m.Error
		}
		return true, unexpected(m)
	})
	return res, err
}

// Unload frees a model in the worker and forgets it.
func (c *Client) Unload(ctx context.Context, model string) error {
	c.mu.Lock()
	ms := c.models[model]
	delete(c.models, model)
	c.mu.Unlock()
	if ms == nil {
		return nil
	}
	select {
	case ms.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-ms.sem }()
	ms.gone = true
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil || cn.isDead() || cn.epoch != ms.epoch {
		return nil // not loaded in a running worker
	}
	req := UnloadRequest{Model: model}
	return c.call(ctx, cn, Message{Type: TypeUnload, Unload: &req}, func(m Message) (bool, error) {
		switch {
		case m.Type == TypeOK:
			return true, nil
		case m.Type == TypeError && m.Error != nil:
			return true, m.Error
		}
		return true, unexpected(m)
	})
}

// Close stops the worker (it exits when its input closes; it is killed if it does not) and
// fails what is in flight. The Client cannot be used afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cancel()
	cn, st := c.cur, c.starting
	c.mu.Unlock()
	if st != nil {
		<-st.done // it closes what it started
	}
	if cn != nil {
		cn.close(ErrClosed)
	}
	if c.onClose != nil {
		c.onClose()
	}
	return nil
}

func unexpected(m Message) error {
	return fmt.Errorf("engine worker answered with an unexpected %q message", m.Type)
}

// call sends msg under a new id and hands each answer to each until it says the call is over.
func (c *Client) call(ctx context.Context, cn *conn, msg Message, each func(Message) (final bool, err error)) error {
	msg.ID = c.nextID.Add(1)
	cl := cn.register(msg.ID)
	defer cn.forget(msg.ID)
	if err := cn.send(msg); err != nil {
		return err
	}
	return c.await(ctx, cn, msg.ID, cl, true, each)
}

// await feeds a call's answers to each. When ctx ends, or each fails, it sends a cancel and waits
// (CancelWait at most, else the worker is stuck and is killed) for the worker to end the
// request, so that the model is free when it returns; it then returns that error. The worker's
// death ends it with the death's error.
func (c *Client) await(ctx context.Context, cn *conn, id uint64, cl *call, cancellable bool, each func(Message) (bool, error)) error {
	var stopErr error
	var stuck <-chan time.Time
	done := ctx.Done()
	stop := func(err error) {
		stopErr = err
		done = nil
		if !cancellable {
			return
		}
		_ = cn.send(Message{ID: id, Type: TypeCancel})
		stuck = time.After(c.cancelWait)
	}
	handle := func() (bool, error) {
		for _, m := range cl.pop() {
			if stopErr != nil {
				if m.Type == TypeDone || m.Type == TypeTrainDone || m.Type == TypeError || m.Type == TypeHello || m.Type == TypeLoaded || m.Type == TypeOK {
					return true, stopErr
				}
				continue // deltas or progress after the stop
			}
			final, err := each(m)
			if final {
				return true, err
			}
			if err != nil {
				stop(err)
				if !cancellable {
					return true, err
				}
			}
		}
		return false, nil
	}
	for {
		if final, err := handle(); final {
			return err
		}
		select {
		case <-cl.notify:
		case <-cn.dead:
			if final, err := handle(); final { // answers that came before the death
				return err
			}
			if stopErr != nil {
				return stopErr
			}
			return cn.err
		case <-done:
			stop(ctx.Err())
			if !cancellable {
				return stopErr
			}
		case <-stuck:
			c.log.Error("engine worker did not stop a cancelled request: killing it", "pid", cn.link.pid, "waited", c.cancelWait)
			cn.kill(&DeadError{Cause: fmt.Sprintf("stopped: it did not end a cancelled request within %s", c.cancelWait), Hint: "stuck"})
			return stopErr
		}
	}
}

// link is one running worker's pipes.
type link struct {
	r io.Reader      // the worker's messages
	w io.WriteCloser // its requests; closing it asks the worker to exit
	// wait blocks until the worker has ended, once r has ended, and says how.
	wait func() *DeadError
	// kill ends the worker now.
	kill func()
	pid  int
}

// conn is one worker, from its start to its death.
type conn struct {
	client  *Client
	link    *link
	epoch   uint64
	started time.Time
	hello   Hello

	wmu sync.Mutex
	w   *bufio.Writer

	mu    sync.Mutex
	calls map[uint64]*call

	dead     chan struct{} // closed once err is set
	err      error
	expected atomic.Bool // the client stopped it on purpose: no error logged
	whyMu    sync.Mutex
	why      error // why the client stopped or killed it
}

// setWhy records the first reason the client gave for ending the worker.
func (cn *conn) setWhy(err error) {
	cn.whyMu.Lock()
	if cn.why == nil {
		cn.why = err
	}
	cn.whyMu.Unlock()
}

func newConn(c *Client, l *link, epoch uint64) *conn {
	return &conn{client: c, link: l, epoch: epoch, started: time.Now(), w: bufio.NewWriter(l.w),
		calls: map[uint64]*call{}, dead: make(chan struct{})}
}

func (cn *conn) isDead() bool {
	select {
	case <-cn.dead:
		return true
	default:
		return false
	}
}

// call is one request's answers, queued by the read loop: the loop never waits for a slow
// receiver, so one stream cannot hold up the others.
type call struct {
	mu     sync.Mutex
	queue  []Message
	notify chan struct{}
}

func (cl *call) push(m Message) {
	cl.mu.Lock()
	cl.queue = append(cl.queue, m)
	cl.mu.Unlock()
	select {
	case cl.notify <- struct{}{}:
	default:
	}
}

func (cl *call) pop() []Message {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	q := cl.queue
	cl.queue = nil
	return q
}

func (cn *conn) register(id uint64) *call {
	cl := &call{notify: make(chan struct{}, 1)}
	cn.mu.Lock()
	cn.calls[id] = cl
	cn.mu.Unlock()
	return cl
}

func (cn *conn) forget(id uint64) {
	cn.mu.Lock()
	delete(cn.calls, id)
	cn.mu.Unlock()
}

// send writes one message. A write that fails because the worker is gone returns its death.
func (cn *conn) send(msg Message) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", msg.Type, err)
	}
	if cn.isDead() {
		return cn.err
	}
	cn.wmu.Lock()
	_, err = cn.w.Write(append(data, '\n'))
	if err == nil {
		err = cn.w.Flush()
	}
	cn.wmu.Unlock()
	if err == nil {
		return nil
	}
	// The read loop learns why the worker is gone; wait a moment for it.
	select {
	case <-cn.dead:
		return cn.err
	case <-time.After(2 * time.Second):
		return fmt.Errorf("write to the engine worker: %w", err)
	}
}

// readLoop hands the worker's messages to their calls until its output ends, then records how
// the worker ended and wakes every call.
func (cn *conn) readLoop() {
	br := bufio.NewReaderSize(cn.link.r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			cn.dispatch(line)
		}
		if err != nil {
			break
		}
	}
	dead := cn.link.wait()
	var err error = dead
	cn.whyMu.Lock()
	why := cn.why
	cn.whyMu.Unlock()
	switch why := why.(type) {
	case *DeadError:
		why.Output = dead.Output
		err = why
	case error:
		err = why
	}
	cn.err = err
	close(cn.dead)
	cn.client.died(cn)
}

func (cn *conn) dispatch(line []byte) {
	var m Message
	if err := json.Unmarshal(line, &m); err != nil || m.Type == "" {
		// Something else wrote on the protocol's stream (a library printing to stdout).
		cn.client.log.Warn("engine worker wrote a line that is not a message", "pid", cn.link.pid, "line", truncate(strings.TrimSpace(string(line)), 300))
		return
	}
	cn.mu.Lock()
	cl := cn.calls[m.ID]
	cn.mu.Unlock()
	if cl == nil {
		return // an answer nobody waits for any more (a cancelled request's last deltas)
	}
	cl.push(m)
}

// close asks the worker to exit (its input ends) and kills it if it does not in time. why is
// what calls still in flight get.
func (cn *conn) close(why error) {
	cn.expected.Store(true)
	cn.setWhy(why)
	cn.wmu.Lock()
	_ = cn.link.w.Close()
	cn.wmu.Unlock()
	select {
	case <-cn.dead:
	case <-time.After(closeWait):
		cn.link.kill()
		<-cn.dead
	}
}

// kill ends a stuck worker; why becomes the error of the requests in flight.
func (cn *conn) kill(why *DeadError) {
	cn.setWhy(why)
	cn.link.kill()
}
