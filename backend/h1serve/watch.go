package h1serve

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"
)

// watch notices a client hanging up while its request runs, and cancels the request's context.
// It blocks a goroutine on the socket, so it starts only when a request has run for WatchAfter
// (Server.scanWatches looks) and its body has been read (after that the client sends nothing,
// unless it pipelines).
type watch struct {
	c       *conn
	cancel  context.CancelFunc
	started time.Time

	mu       sync.Mutex
	phase    watchPhase
	bodyDone bool
	gone     bool
	done     chan struct{}
}

type watchPhase int

const (
	watchWaiting watchPhase = iota // WatchAfter has not passed
	watchArmed                     // it has, and the watch starts once the body is read
	watchRunning                   // a goroutine reads the socket
	watchStopped                   // the handler returned
)

// aLongTimeAgo is a read deadline that ends a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

func newWatch(c *conn, cancel context.CancelFunc, bodyDone bool) *watch {
	return &watch{c: c, cancel: cancel, bodyDone: bodyDone, started: time.Now()}
}

// due runs when the request has taken WatchAfter (on the server's scanning goroutine).
func (w *watch) due() {
	w.mu.Lock()
	if w.phase != watchWaiting {
		w.mu.Unlock()
		return
	}
	if !w.bodyDone {
		w.phase = watchArmed
		w.mu.Unlock()
		return
	}
	w.start()
	w.mu.Unlock()
}

// waiting says whether WatchAfter has yet to pass: the server's scanner still has to look at it.
func (w *watch) waiting() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.phase == watchWaiting
}

// bodyRead is called when the handler has read the whole body.
func (w *watch) bodyRead() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bodyDone = true
	if w.phase == watchArmed {
		w.start()
	}
}

// start runs the read; w.mu is held.
func (w *watch) start() {
	w.phase = watchRunning
	w.done = make(chan struct{})
	go w.run()
}

func (w *watch) run() {
	defer close(w.done)
	cr := &w.c.cr
	var b [1]byte
	n, err := w.c.nc.Read(b[:])
	if n > 0 { // the next request, pipelined: keep its first byte for the connection loop
		cr.mu.Lock()
		cr.stash, cr.stashed = b, true
		cr.mu.Unlock()
		return
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		w.mu.Lock()
		w.gone = true
		w.mu.Unlock()
		w.cancel()
	}
}

// stop ends the watch when the handler returns, and waits for its read to let go of the socket.
func (w *watch) stop() {
	w.mu.Lock()
	running := w.phase == watchRunning
	w.phase = watchStopped
	w.mu.Unlock()
	if !running {
		return
	}
	w.c.nc.SetReadDeadline(aLongTimeAgo)
	<-w.done
	w.c.nc.SetReadDeadline(time.Time{})
}

// hungUp says whether the client closed its connection while the request ran.
func (w *watch) hungUp() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone
}
