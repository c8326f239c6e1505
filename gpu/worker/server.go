package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
)

// Server serves the protocol for an Engine on a reader and a writer: the worker process's stdin
// and stdout, or pipes in tests. Requests run concurrently (loads and generations in goroutines
// of their own, so that a health check or a cancel is answered at once); unloads run in arrival
// order, so that an unload sent before a load frees its memory first.
type Server struct {
	engine *Engine
	log    *slog.Logger
}

// NewServer returns a server for engine; the caller closes the engine after Serve returns.
func NewServer(engine *Engine, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{engine: engine, log: log}
}

// Serve sends the hello (once the backend has started, or failed to), then answers requests
// until r ends (the parent closed the pipe, or died) or ctx is done. It then cancels what is
// running, waits for it and returns; nil when r ended.
func (s *Server) Serve(ctx context.Context, r io.Reader, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &msgWriter{w: bufio.NewWriter(w)}
	hello, _ := s.engine.Hello(ctx)
	if err := out.send(Message{Type: TypeHello, Hello: &hello}); err != nil {
		return fmt.Errorf("engine worker: send hello: %w", err)
	}

	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()

	var wg sync.WaitGroup
	var mu sync.Mutex
	running := map[uint64]context.CancelFunc{}
	defer func() {
		cancel()
		wg.Wait()
	}()
	// spawn runs a request in its own goroutine, cancellable by its id.
	spawn := func(id uint64, fn func(ctx context.Context) Message) {
		mu.Lock()
		if _, dup := running[id]; dup {
			mu.Unlock()
			s.reply(out, id, errorf(CodeInvalidRequest, "request id %d is already running", id))
			return
		}
		rctx, rcancel := context.WithCancel(ctx)
		running[id] = rcancel
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(running, id)
				mu.Unlock()
				rcancel()
			}()
			msg := s.safely(id, func() Message { return fn(rctx) })
			msg.ID = id
			if err := out.send(msg); err != nil {
				s.log.Debug("cannot answer", "id", id, "err", err)
			}
		})
	}

	for {
		var line []byte
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("engine worker: read requests: %w", err)
		case line = <-lines:
		}
		var msg Message
		if err := json.Unmarshal(line, &msg); err != nil {
			s.log.Error("unreadable request", "err", err, "line", truncate(string(line), 200))
			continue
		}
		switch {
		case msg.Type == TypeHealth:
			h, _ := s.engine.Hello(ctx)
			_ = out.send(Message{ID: msg.ID, Type: TypeHello, Hello: &h})
		case msg.Type == TypeCancel:
			mu.Lock()
			if c := running[msg.ID]; c != nil {
				c()
			}
			mu.Unlock()
		case msg.Type == TypeLoad && msg.Load != nil:
			req := *msg.Load
			spawn(msg.ID, func(ctx context.Context) Message {
				info, err := s.engine.Load(ctx, req)
				if err != nil {
					return errorMessage(err)
				}
				return Message{Type: TypeLoaded, Loaded: &info}
			})
		case msg.Type == TypeGenerate && msg.Generate != nil:
			req := *msg.Generate
			id := msg.ID
			spawn(id, func(ctx context.Context) Message {
				var onDelta func(Delta) error
				if req.Stream {
					onDelta = func(d Delta) error { return out.send(Message{ID: id, Type: TypeDelta, Delta: &d}) }
				}
				done, err := s.engine.Generate(ctx, req, onDelta)
				if err != nil {
					return errorMessage(err)
				}
				return Message{Type: TypeDone, Done: &done}
			})
		case msg.Type == TypeTrain && msg.Train != nil:
			req := *msg.Train
			id := msg.ID
			spawn(id, func(ctx context.Context) Message {
				res, err := s.engine.Train(ctx, req, func(p TrainProgress) {
					if err := out.send(Message{ID: id, Type: TypeTrainProgress, TrainProgress: &p}); err != nil {
						s.log.Debug("cannot send training progress", "id", id, "err", err)
					}
				})
				if err != nil {
					return errorMessage(err)
				}
				return Message{Type: TypeTrainDone, TrainDone: &res}
			})
		case msg.Type == TypeUnload && msg.Unload != nil:
			if err := s.engine.Unload(ctx, msg.Unload.Model); err != nil {
				s.reply(out, msg.ID, err)
			} else {
				_ = out.send(Message{ID: msg.ID, Type: TypeOK})
			}
		default:
			s.reply(out, msg.ID, errorf(CodeInvalidRequest, "unknown request %q (or its payload is missing)", msg.Type))
		}
	}
}

func (s *Server) reply(out *msgWriter, id uint64, err error) {
	m := errorMessage(err)
	m.ID = id
	_ = out.send(m)
}

// safely turns a panic of the engine into an error answer: the request fails, the worker and
// the other requests go on.
func (s *Server) safely(id uint64, fn func() Message) (msg Message) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("request panicked", "id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			msg = errorMessage(errorf(CodeInternal, "engine panic: %v", p))
		}
	}()
	return fn()
}

// errorMessage puts an error in the protocol's terms.
func errorMessage(err error) Message {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e = &Error{Code: CodeCanceled, Message: err.Error()}
	default:
		e = &Error{Code: CodeInternal, Message: err.Error()}
	}
	return Message{Type: TypeError, Error: &Error{Code: e.Code, Message: e.Message}}
}

// msgWriter writes whole messages, one at a time, each flushed at once.
type msgWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func (m *msgWriter) send(msg Message) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", msg.Type, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if _, err := m.w.Write(append(data, '\n')); err != nil {
		m.err = err
		return err
	}
	if err := m.w.Flush(); err != nil {
		m.err = err
		return err
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
