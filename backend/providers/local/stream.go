package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"opentracy/backend/providers"
	"opentracy/backend/providers/chatwire"
	"opentracy/gpu/engine/generate"
	"opentracy/gpu/worker"
)

// stream runs the generation in a goroutine that writes chunks into a pipe as tokens come: the
// engine pushes tokens through a callback, the gateway pulls bytes, and the pipe's blocking
// writes carry back-pressure from the client to the sampler. Chat returns once the first token
// is out (the role chunk goes with it), so a failure to start (the prompt fails to prefill) is
// still an HTTP error the gateway can retry or fall back from, not a broken stream. The stream
// owns e until the goroutine ends.
func (p *Provider) stream(ctx context.Context, e *entry, pl *plan, c completion) (*providers.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	body := &streamBody{pr: pr, cancel: cancel, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		defer close(body.done)
		defer p.pool.release(e)
		err := p.generateStream(ctx, e, pl, c, pw, started)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.Close()
	}()
	if err := <-started; err != nil {
		body.Close()
		return nil, p.error(err)
	}
	return &providers.Response{Status: http.StatusOK, Header: http.Header{}, Body: body}, nil
}

// generateStream waits for the model's turn, generates and writes the chunk stream to w. It
// sends on started once, before the first write: nil when the first token is out, else the error.
func (p *Provider) generateStream(ctx context.Context, e *entry, pl *plan, c completion, w io.Writer, started chan<- error) error {
	startedOnce := false
	start := func(err error) {
		if !startedOnce {
			startedOnce = true
			started <- err
		}
	}
	if err := e.lock(ctx); err != nil {
		start(err)
		return err
	}
	defer e.unlock()

	em := chatwire.Emitter{ID: c.id, Model: c.model, Created: c.created}
	parser := newOutputParser(pl.output)
	var out bytes.Buffer
	onDelta := func(d worker.Delta) error {
		if d.PromptTokens > 0 {
			e.promptTokens.Add(int64(d.PromptTokens))
		}
		if d.Token >= 0 || d.FinishReason == string(generate.FinishStop) { // -1 with stop: the EOS token
			e.tokens.Add(1)
		}
		start(nil)
		out.Reset()
		reasoning, content := parser.feed(d.Text)
		if err := em.Start(&out); err != nil {
			return err
		}
		if err := em.Reasoning(&out, reasoning); err != nil {
			return err
		}
		if err := em.Content(&out, content); err != nil {
			return err
		}
		_, err := w.Write(out.Bytes())
		return err
	}
	done, err := e.eng.runner.Generate(ctx, pl.req, onDelta)
	if !startedOnce {
		start(err)
		return err
	}
	out.Reset()
	switch {
	case err != nil && ctx.Err() != nil:
		return err // the client left or the stream was closed: nobody to tell
	case err != nil && errors.Is(err, io.ErrClosedPipe):
		return err
	case err != nil:
		// The stream already answered 200: the failure travels in-band, and no [DONE] follows.
		p.log.Error("local generation failed", "model", e.model.Name, "err", err)
		if ferr := em.Fail(&out, "local model "+e.model.Name+" failed: "+err.Error(), "server_error", ""); ferr != nil {
			return ferr
		}
		_, werr := w.Write(out.Bytes())
		return werr
	}
	if err := writeEnd(&em, &out, parser, done.Result(), pl.includeUsage); err != nil {
		return err
	}
	_, err = w.Write(out.Bytes())
	return err
}

// writeEnd writes what the parser held back, the tool calls, the finish_reason chunk, the usage
// chunk when asked for, and [DONE].
func writeEnd(em *chatwire.Emitter, out *bytes.Buffer, parser *outputParser, r generate.Result, includeUsage bool) error {
	reasoning, content, calls := parser.finish()
	if err := em.Reasoning(out, reasoning); err != nil {
		return err
	}
	if err := em.Content(out, content); err != nil {
		return err
	}
	for i, call := range calls {
		if err := em.ToolCallStart(out, i, call.ID, call.Function.Name); err != nil {
			return err
		}
		if err := em.ToolCallArgs(out, i, call.Function.Arguments); err != nil {
			return err
		}
		if err := em.ToolCallEnd(out, i); err != nil {
			return err
		}
	}
	finish := string(r.FinishReason)
	if len(calls) > 0 {
		finish = "tool_calls"
	}
	if err := em.Finish(out, finish); err != nil {
		return err
	}
	if includeUsage {
		if err := em.Usage(out, usageOf(r)); err != nil {
			return err
		}
	}
	em.Done(out)
	return nil
}

// streamBody is the stream's reading end. Close stops the generation and waits for it, so that
// when Close returns the model is free for the next request.
type streamBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (b *streamBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

func (b *streamBody) Close() error {
	b.once.Do(func() {
		b.cancel()
		b.pr.Close() // unblocks a write in progress
		<-b.done
	})
	return nil
}
