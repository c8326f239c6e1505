package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"opentracy/backend/providers"
	"opentracy/backend/traces"
)

// maxResponseBytes bounds a non-streamed upstream answer held in memory.
const maxResponseBytes = 256 << 20

// call is one client request on its way upstream.
type call struct {
	body       []byte // what is sent upstream (the client's body, perhaps with include_usage added)
	stream     bool
	stripUsage bool // the client did not ask for the usage chunk the gateway requested
	header     http.Header
	send       func(ctx context.Context, p providers.Provider, req *providers.Request) (*providers.Response, error)
	// observe reads each streamed event (or the whole body) into the trace; see observer.
	newObserver func() observer
	// wire is the client's wire format (OpenAI's unless set).
	wire wireFormat
}

// serve tries the plan's deployments in order (with retries, backoff and cooldowns) and relays the
// first success. It fills tr with every attempt and the outcome.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, p plan, c *call, tr *traces.Trace) {
	ctx := r.Context()
	var last *providers.Error
	for _, dep := range g.usable(p.deployments) {
		prov := p.routes.providers[dep.provider]
		tr.Provider, tr.Model = dep.provider, dep.model
		for try := 0; ; try++ {
			started := g.now()
			res, perr := g.attempt(ctx, prov, dep, c)
			g.recordAttempt(tr, dep, started, perr)
			if perr == nil {
				g.deliver(w, res, c, dep, tr)
				return
			}
			last = perr
			if ctx.Err() != nil {
				tr.Status, tr.Error = 499, "client closed the request"
				return
			}
			wait, again := g.retryDelay(try, perr)
			if !again {
				break
			}
			g.log.Debug("retrying", "deployment", dep.String(), "try", try+1, "wait", wait, "err", perr)
			if !g.sleep(wait, ctx.Done()) {
				tr.Status, tr.Error = 499, "client closed the request"
				return
			}
		}
		if last.Retryable() {
			g.coolDown(dep, last.RetryAfter)
		}
		if !last.Fallbackable() {
			break
		}
	}
	if last == nil { // every deployment was cooling down and none remained: cannot happen with usable()
		last = &providers.Error{Status: http.StatusServiceUnavailable,
			Body: providers.ErrorBody("no upstream is available", "server_error", "no_available_upstream")}
	}
	g.writeUpstreamError(w, c, last, tr)
}

// result is a successful upstream answer, ready to relay.
type result struct {
	resp  *providers.Response
	first []byte // streaming: the first event, already read
	body  []byte // non-streaming: the whole body
	idle  *idleReader
	done  context.CancelFunc
}

// attempt makes one upstream call. For a stream it reads the first event before returning, so a
// failure before the first byte reaches the client can still be retried or fall back.
func (g *Gateway) attempt(ctx context.Context, prov providers.Provider, dep deployment, c *call) (*result, *providers.Error) {
	to := g.timeouts(dep.provider)
	req := &providers.Request{Body: c.body, Model: dep.model, Stream: c.stream, Header: c.header}
	if !c.stream {
		ctx, cancel := context.WithTimeout(ctx, to.Request)
		defer cancel()
		resp, err := c.send(ctx, prov, req)
		if err != nil {
			return nil, g.asProviderError(dep, err, to)
		}
		defer resp.Body.Close()
		body, err := readAllSized(io.LimitReader(resp.Body, maxResponseBytes), resp.Length, maxResponseBytes)
		if err != nil {
			return nil, g.asProviderError(dep, fmt.Errorf("read response: %w", err), to)
		}
		if !gjson.ValidBytes(body) {
			return nil, &providers.Error{Provider: dep.provider, Status: http.StatusBadGateway,
				Body: providers.ErrorBody(fmt.Sprintf("upstream %s returned malformed JSON (%d bytes)", dep, len(body)), "server_error", "bad_upstream_response")}
		}
		return &result{resp: resp, body: body}, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	idle := newIdleReader(to.StreamIdle, cancel)
	resp, err := c.send(ctx, prov, req)
	if err != nil {
		idle.stop()
		cancel()
		return nil, g.asProviderError(dep, err, to)
	}
	idle.attach(resp.Body)
	first, err := readEvent(idle.reader(), nil)
	if err == nil && len(first) == 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		idle.close()
		cancel()
		if idle.expired() {
			err = fmt.Errorf("no data within %s: %w", to.StreamIdle, context.DeadlineExceeded)
		}
		return nil, g.asProviderError(dep, fmt.Errorf("stream ended before its first event: %w", err), to)
	}
	if msg := gjson.GetBytes(eventData(first), "error"); msg.Exists() {
		idle.close()
		cancel()
		return nil, &providers.Error{Provider: dep.provider, Status: http.StatusBadGateway,
			Body: providers.ErrorBody("upstream "+dep.String()+" failed at the start of the stream: "+msg.Get("message").String(), "server_error", "upstream_stream_error")}
	}
	return &result{resp: resp, first: first, idle: idle, done: cancel}, nil
}

// asProviderError turns any adapter error into a *providers.Error.
func (g *Gateway) asProviderError(dep deployment, err error, to Timeouts) *providers.Error {
	var perr *providers.Error
	if errors.As(err, &perr) {
		if perr.Status == 0 && errors.Is(perr.Err, context.DeadlineExceeded) {
			perr.Err = fmt.Errorf("upstream timed out (timeout %s, stream idle timeout %s; raise them in the provider's config): %w", to.Request, to.StreamIdle, perr.Err)
		}
		return perr
	}
	return &providers.Error{Provider: dep.provider, Err: err}
}

// retryDelay says whether to retry after failure number try, and after how long.
func (g *Gateway) retryDelay(try int, perr *providers.Error) (time.Duration, bool) {
	rp := g.opts.Retry
	if !perr.Retryable() || try >= rp.MaxRetries {
		return 0, false
	}
	if perr.RetryAfter > 0 {
		if perr.RetryAfter > rp.MaxRetryAfter {
			return 0, false // too long to hold the client: fall back, or tell the client to wait
		}
		return perr.RetryAfter, true
	}
	backoff := float64(rp.BaseDelay) * math.Pow(2, float64(try))
	backoff = math.Min(backoff, float64(rp.MaxDelay))
	return time.Duration(g.jitter() * backoff), true // full jitter spreads retries of many clients
}

// usable drops deployments in cooldown, keeping at least the last candidate. The result may be
// deps itself: callers only read it.
func (g *Gateway) usable(deps []deployment) []deployment {
	g.cooldownMu.Lock()
	defer g.cooldownMu.Unlock()
	if len(g.cooldowns) == 0 {
		return deps // the usual case: nothing to drop, nothing to copy
	}
	now := g.now()
	out := make([]deployment, 0, len(deps))
	for _, d := range deps {
		if until, ok := g.cooldowns[d]; ok {
			if now.Before(until) {
				continue
			}
			delete(g.cooldowns, d) // over: forget it, so the map empties again
		}
		out = append(out, d)
	}
	if len(out) == 0 && len(deps) > 0 {
		return deps[len(deps)-1:]
	}
	return out
}

func (g *Gateway) coolDown(d deployment, retryAfter time.Duration) {
	wait := max(g.opts.Retry.Cooldown, retryAfter)
	g.cooldownMu.Lock()
	g.cooldowns[d] = g.now().Add(wait)
	g.cooldownMu.Unlock()
	g.log.Info("deployment cooling down", "deployment", d.String(), "for", wait)
}

func (g *Gateway) recordAttempt(tr *traces.Trace, dep deployment, started time.Time, perr *providers.Error) {
	a := traces.Attempt{Provider: dep.provider, Model: dep.model, StartedAt: started.UTC(),
		LatencyMillis: millis(g.now().Sub(started)), Status: http.StatusOK}
	if perr != nil {
		a.Status = perr.Status
		a.Error = errorMessage(perr)
	}
	tr.Attempts = append(tr.Attempts, a)
	g.stats.observe(dep.provider, a.Status, a.LatencyMillis)
}

// writeUpstreamError sends the last upstream failure with its status (a 429 stays a 429 with
// Retry-After); transport failures become 502, or 504 for timeouts.
func (g *Gateway) writeUpstreamError(w http.ResponseWriter, c *call, perr *providers.Error, tr *traces.Trace) {
	status, body := perr.Status, perr.Body
	if status == 0 {
		status = http.StatusBadGateway
		code := "upstream_unreachable"
		if errors.Is(perr.Err, context.DeadlineExceeded) {
			status, code = http.StatusGatewayTimeout, "upstream_timeout"
		}
		body = providers.ErrorBody(fmt.Sprintf("upstream %s failed: %v", perr.Provider, perr.Err), "server_error", code)
	}
	if perr.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(perr.RetryAfter.Seconds()))))
	}
	g.setRouteHeaders(w, tr)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(c.wire.errorBody(status, body))
	tr.Status, tr.Error = status, errorMessage(perr)
}

func (g *Gateway) setRouteHeaders(w http.ResponseWriter, tr *traces.Trace) {
	h := w.Header()
	h.Set(HeaderTraceID, tr.ID)
	if tr.Model != "" {
		h.Set(HeaderModel, tr.Model)
		h.Set(HeaderProvider, tr.Provider)
	}
}

func errorMessage(perr *providers.Error) string {
	if perr.Status == 0 {
		return perr.Err.Error()
	}
	if m := gjson.GetBytes(perr.Body, "error.message"); m.Exists() {
		return m.String()
	}
	return string(perr.Body)
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
