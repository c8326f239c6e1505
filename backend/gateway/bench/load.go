package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// client sends chat completions to one target (the fake directly, or the gateway).
type client struct {
	chatURL string
	auth    string // Authorization header value, built once
	hc      *http.Client
}

func newClient(base, key string, conns int) *client {
	c := &client{chatURL: strings.TrimRight(base, "/") + "/chat/completions", hc: &http.Client{Transport: newTransport(conns), Timeout: time.Minute}}
	if key != "" {
		c.auth = "Bearer " + key
	}
	return c
}

func (c *client) close() { c.hc.CloseIdleConnections() }

func (c *client) newRequest(ctx context.Context, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.chatURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	return req, nil
}

// do sends one non-streaming request and reads the answer fully; the time covers only the
// round trip (request building is left out on both sides).
func (c *client) do(ctx context.Context, body []byte) (time.Duration, error) {
	req, err := c.newRequest(ctx, body)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, statusError(resp)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	return d, nil
}

// statusError reads the start of a failed answer into the error and closes it.
func statusError(resp *http.Response) error {
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

// streamSample is one streamed answer: time to the first chunk and mean gap between chunks.
type streamSample struct {
	ttft, gap time.Duration
}

// stream sends one streaming request and times its chunks ("data:" events with a delta; the
// usage-only chunk and [DONE] are not chunks of the answer). It expects want chunks.
func (c *client) stream(ctx context.Context, body []byte, want int) (streamSample, error) {
	req, err := c.newRequest(ctx, body)
	if err != nil {
		return streamSample{}, err
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return streamSample{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return streamSample{}, statusError(resp)
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var first, last time.Time
	n, done := 0, false
	for !done {
		line, err := br.ReadSlice('\n')
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = bytes.TrimSpace(data)
			switch {
			case bytes.Equal(data, []byte("[DONE]")):
				done = true
			case bytes.Contains(data, []byte(`"delta"`)):
				last = time.Now()
				if n == 0 {
					first = last
				}
				n++
			case bytes.Contains(data, []byte(`"error"`)):
				return streamSample{}, fmt.Errorf("error event in the stream: %s", data)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && done {
				break
			}
			if errors.Is(err, io.EOF) {
				return streamSample{}, fmt.Errorf("stream ended without [DONE] after %d chunks", n)
			}
			return streamSample{}, fmt.Errorf("read stream: %w", err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if n != want {
		return streamSample{}, fmt.Errorf("got %d chunks, want %d", n, want)
	}
	s := streamSample{ttft: first.Sub(start)}
	if n > 1 {
		s.gap = last.Sub(first) / time.Duration(n-1)
	}
	return s, nil
}

// errCount counts failures and keeps the first message.
type errCount struct {
	n     int
	first string
}

func (e *errCount) add(err error) {
	if e.n == 0 {
		e.first = err.Error()
	}
	e.n++
}

func (e *errCount) merge(o errCount) {
	if e.n == 0 {
		e.first = o.first
	}
	e.n += o.n
}

// percentile returns the nearest-rank p-quantile (0 < p ≤ 1) of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func percentiles(samples []time.Duration) Percentiles {
	slices.Sort(samples)
	return Percentiles{P50: percentile(samples, 0.50), P90: percentile(samples, 0.90), P99: percentile(samples, 0.99), Max: percentile(samples, 1)}
}

// cpuProbe reads the gateway process's CPU time; ok is false when it cannot.
type cpuProbe func() (d time.Duration, ok bool)

// cpuPer divides the CPU time used between two probes by n requests; 0 when unknown.
func cpuPer(c0, c1 time.Duration, ok0, ok1 bool, n int) time.Duration {
	if !ok0 || !ok1 || n == 0 {
		return 0
	}
	return (c1 - c0) / time.Duration(n)
}

// latencyTarget is a target of the latency scenario and, when its process is known, a reader
// of its CPU time (nil otherwise).
type latencyTarget struct {
	c   *client
	cpu cpuProbe
}

// measureLatency sends n sequential requests to each target (direct, gateway and, when its
// client is set, the minimal proxy), rotating which goes first so that drift in the machine's
// state affects all alike; with pause, each request follows that much quiet. A target's process
// is idle while the others run, so all the CPU time it uses in the loop is charged to its own
// requests.
func measureLatency(ctx context.Context, targets []latencyTarget, body []byte, n int, pause time.Duration) (LatencyResult, error) {
	type side struct {
		latencyTarget
		samples []time.Duration
		errs    errCount
		cpu0    time.Duration
		cpuOK   bool
	}
	var sides []*side
	for _, t := range targets {
		if t.c != nil {
			sides = append(sides, &side{latencyTarget: t})
		}
	}
	warm := max(n/10, 20)
	for range warm {
		for _, s := range sides {
			_, _ = s.c.do(ctx, body)
		}
	}
	for _, s := range sides {
		s.samples = make([]time.Duration, 0, n)
		if s.cpu != nil {
			s.cpu0, s.cpuOK = s.cpu()
		}
	}
	for i := range n {
		if ctx.Err() != nil {
			return LatencyResult{}, ctx.Err()
		}
		for j := range sides {
			s := sides[(i+j)%len(sides)]
			if pause > 0 && !sleepCtx(ctx, pause) {
				return LatencyResult{}, ctx.Err()
			}
			d, err := s.c.do(ctx, body)
			if err != nil {
				s.errs.add(err)
				continue
			}
			s.samples = append(s.samples, d)
		}
	}
	cpuPerRequest := func(s *side) time.Duration {
		if s.cpu == nil {
			return 0
		}
		c1, ok := s.cpu()
		return cpuPer(s.cpu0, c1, s.cpuOK, ok, len(s.samples)+s.errs.n)
	}
	d, g := sides[0], sides[1]
	r := LatencyResult{
		Requests: n, Pause: pause,
		Direct: percentiles(d.samples), Gateway: percentiles(g.samples),
		DirectErrors: d.errs.n, GatewayErrors: g.errs.n, FirstError: firstOf(d.errs.first, g.errs.first),
		GatewayCPU: cpuPerRequest(g),
	}
	r.Added = r.Gateway.minus(r.Direct)
	if len(sides) > 2 {
		pr := sides[2]
		r.Proxy, r.ProxyErrors, r.ProxyCPU = percentiles(pr.samples), pr.errs.n, cpuPerRequest(pr)
		r.ProxyAdded = r.Proxy.minus(r.Direct)
		r.FirstError = firstOf(r.FirstError, pr.errs.first)
	}
	return r, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// measureLoad runs conc closed-loop clients against c: warm-up first (connections opened, nothing
// recorded), then dur of recorded requests. Each client keeps its own samples, merged at the end.
// cpu, if not nil, is read when recording starts and ends.
func measureLoad(ctx context.Context, c *client, body []byte, conc int, warm, dur, upstreamDelay time.Duration, cpu cpuProbe) (LoadResult, error) {
	start := time.Now()
	warmEnd := start.Add(warm)
	end := warmEnd.Add(dur)
	var c0, c1 time.Duration
	var ok0, ok1 bool
	var probes sync.WaitGroup
	if cpu != nil {
		probes.Go(func() {
			if sleepCtx(ctx, time.Until(warmEnd)) {
				c0, ok0 = cpu()
			}
			if sleepCtx(ctx, time.Until(end)) {
				c1, ok1 = cpu()
			}
		})
	}
	// Enough room for a client's requests at the upstream's pace, so appends do not reallocate.
	capacity := 64
	if upstreamDelay > 0 {
		capacity += int(dur / upstreamDelay)
	} else {
		capacity = 4096
	}
	samples := make([][]time.Duration, conc)
	errs := make([]errCount, conc)
	var wg sync.WaitGroup
	for w := range conc {
		samples[w] = make([]time.Duration, 0, capacity)
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				d, err := c.do(ctx, body)
				if t0.Before(warmEnd) {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						errs[w].add(err)
					}
					continue
				}
				samples[w] = append(samples[w], d)
			}
		})
	}
	wg.Wait()
	probes.Wait()
	if err := ctx.Err(); err != nil {
		return LoadResult{}, err
	}
	var all []time.Duration
	var ec errCount
	for w := range conc {
		all = append(all, samples[w]...)
		ec.merge(errs[w])
	}
	p := percentiles(all)
	r := LoadResult{
		Requests: len(all), Errors: ec.n, FirstError: ec.first,
		RPS: float64(len(all)) / dur.Seconds(), P50: p.P50, P99: p.P99,
		CPUPerRequest: cpuPer(c0, c1, ok0, ok1, len(all)+ec.n),
	}
	if ok0 && ok1 {
		r.CPUCores = (c1 - c0).Seconds() / dur.Seconds()
	}
	return r, nil
}

// measureStream sends n streaming requests to each target, alternating.
// measureStream sends n streams to each target in turn (direct, gateway and, when set, the
// minimal proxy), rotating which goes first, as measureLatency does. It returns one side per
// target measured, in that order.
func measureStream(ctx context.Context, targets []*client, body []byte, n, chunks int) ([]streamSide, error) {
	var clients []*client
	for _, c := range targets {
		if c != nil {
			clients = append(clients, c)
		}
	}
	for range 2 { // warm-up
		for _, c := range clients {
			_, _ = c.stream(ctx, body, chunks)
		}
	}
	sides := make([]streamSide, len(clients))
	for i := range sides {
		sides[i] = newStreamSide(n)
	}
	for i := range n {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for j := range clients {
			k := (i + j) % len(clients)
			sides[k].one(ctx, clients[k], body, chunks)
		}
	}
	return sides, nil
}

// streamSide collects one target's stream samples.
type streamSide struct {
	ttft, gap []time.Duration
	errs      errCount
}

func newStreamSide(n int) streamSide {
	return streamSide{ttft: make([]time.Duration, 0, n), gap: make([]time.Duration, 0, n)}
}

func (s *streamSide) one(ctx context.Context, c *client, body []byte, chunks int) {
	r, err := c.stream(ctx, body, chunks)
	if err != nil {
		s.errs.add(err)
		return
	}
	s.ttft = append(s.ttft, r.ttft)
	s.gap = append(s.gap, r.gap)
}

func (s *streamSide) result() StreamResult {
	var sum time.Duration
	for _, g := range s.gap {
		sum += g
	}
	r := StreamResult{Streams: len(s.ttft), Errors: s.errs.n, FirstError: s.errs.first, TTFT: percentiles(s.ttft)}
	if len(s.gap) > 0 {
		r.MeanGap = sum / time.Duration(len(s.gap))
	}
	return r
}
