// Package bench measures what the gateway adds to a request. It starts a fake OpenAI upstream on
// loopback and runs every scenario twice in the same run, straight to the fake and through the
// gateway, so the difference is the gateway's: latency at one client, a concurrency sweep against
// a slow upstream, streaming (time to first token, per-chunk delay, no buffering) and the gateway
// process's memory. It can measure another gateway by URL the same way, for comparisons.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Config says what to measure; zero fields take the defaults noted.
type Config struct {
	// Target is the base URL (".../v1") of a gateway to measure; empty starts OpenTracy.
	Target string
	// TargetKey is sent as "Authorization: Bearer" to Target.
	TargetKey string
	// TargetPID, with Target, is the gateway's process id, so its RSS can be read too.
	TargetPID int
	// WaitForTarget polls Target's /models for up to 30 s before measuring, which leaves time to
	// point the gateway under test at the fake upstream printed first.
	WaitForTarget bool
	// Model is requested in every call (default "gpt-4o-mini").
	Model string
	// Upstream is the base URL of a fake started elsewhere (this package's, see StartUpstream);
	// empty starts one (see UpstreamBinary), listening on UpstreamAddr (default "127.0.0.1:0"; a
	// fixed port lets a gateway under comparison be configured before the run).
	Upstream     string
	UpstreamAddr string
	// UpstreamBinary is the opentracy executable the fake runs in, as `UpstreamBinary bench
	// -serve-upstream UpstreamAddr`: a process of its own, as every real upstream is. Empty
	// serves the fake inside this process, where its socket's two ends share the load
	// generator's Go runtime and the direct round trip is shorter than any real upstream's.
	UpstreamBinary string
	// ProxyBinary is the opentracy executable a MinimalProxy runs in, as `ProxyBinary bench
	// -serve-minimal-proxy 127.0.0.1:0 -upstream URL`, on the gateway's CPUs with its GOMAXPROCS:
	// measured in the gateway's place at one client, it shows what any proxy adds on this
	// machine. Empty runs it inside this process.
	ProxyBinary string
	// Binary is the opentracy executable, started as `Binary serve` in a child process so that
	// its RSS is the gateway's alone; empty runs the gateway in this process (no RSS then).
	Binary string
	// GatewayProcs is GOMAXPROCS for the child gateway (default 2, the cores of the throughput
	// target).
	GatewayProcs int
	// CPUs pins the processes (Linux): "auto" (default) gives a child gateway GatewayProcs CPUs of
	// its own and the harness the others, when there are at least GatewayProcs+2; "off" pins
	// nothing; "G/H" names the gateway's and the harness's CPU lists ("0-1/2-7").
	CPUs string
	// Duration is measured per target and sweep step, after a warm-up (default 3 s).
	Duration time.Duration
	// Concurrency lists the sweep's client counts (default 1, 4, 16, 64, 128, 256).
	Concurrency []int
	// LatencyRequests is the number of sequential requests per target at one client (default 2000).
	LatencyRequests int
	// PausedRequests are measured the same way but each after Pause of quiet (defaults 300 and
	// 10 ms; a negative count skips them), as an app's requests seconds apart arrive: a machine
	// left idle answers its next request slower than one kept busy by back-to-back requests.
	PausedRequests int
	Pause          time.Duration
	// UpstreamDelay is the fake's processing time during the sweep (default 20 ms).
	UpstreamDelay time.Duration
	// StreamChunks is the length of a streamed answer (default 50), ChunkDelay the fake's pause
	// between chunks (default 2 ms) and StreamRequests the streams per target (default 20).
	StreamChunks   int
	ChunkDelay     time.Duration
	StreamRequests int
}

// withDefaults fills the zero fields.
func (cfg Config) withDefaults() Config {
	if cfg.Model == "" {
		cfg.Model = "gpt-4o-mini"
	}
	if cfg.UpstreamAddr == "" {
		cfg.UpstreamAddr = "127.0.0.1:0"
	}
	if cfg.GatewayProcs <= 0 {
		cfg.GatewayProcs = 2
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 3 * time.Second
	}
	if len(cfg.Concurrency) == 0 {
		cfg.Concurrency = []int{1, 4, 16, 64, 128, 256}
	}
	if cfg.LatencyRequests <= 0 {
		cfg.LatencyRequests = 2000
	}
	if cfg.PausedRequests == 0 {
		cfg.PausedRequests = 300
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 10 * time.Millisecond
	}
	if cfg.UpstreamDelay <= 0 {
		cfg.UpstreamDelay = 20 * time.Millisecond
	}
	if cfg.StreamChunks <= 0 {
		cfg.StreamChunks = 50
	}
	if cfg.ChunkDelay <= 0 {
		cfg.ChunkDelay = 2 * time.Millisecond
	}
	if cfg.StreamRequests <= 0 {
		cfg.StreamRequests = 20
	}
	return cfg
}

// Percentiles of a latency distribution.
type Percentiles struct {
	P50, P90, P99, Max time.Duration
}

// minus is p − q, per percentile.
func (p Percentiles) minus(q Percentiles) Percentiles {
	return Percentiles{P50: p.P50 - q.P50, P90: p.P90 - q.P90, P99: p.P99 - q.P99, Max: p.Max - q.Max}
}

// LatencyResult is scenario 1: sequential requests at one client, upstream delay 0.
type LatencyResult struct {
	Requests                    int           // per target
	Pause                       time.Duration // of quiet before each request; 0: back to back
	Direct, Gateway             Percentiles
	Added                       Percentiles // Gateway − Direct, per percentile
	DirectErrors, GatewayErrors int
	// Proxy is a MinimalProxy's round trip in the gateway's place, ProxyAdded its cost over
	// Direct: what any proxy adds on this machine (zero when not measured).
	Proxy, ProxyAdded Percentiles
	ProxyErrors       int
	FirstError        string
	// ProxyCPU is the minimal proxy's CPU time per request, when it ran in a process of its own.
	ProxyCPU time.Duration
	// GatewayCPU is the gateway process's CPU time per request (all its threads, trace capture
	// included); 0 when its process is unknown.
	GatewayCPU time.Duration
}

// LoadResult is one target at one sweep step.
type LoadResult struct {
	Requests, Errors int
	FirstError       string
	RPS              float64 // successful requests per second
	P50, P99         time.Duration
	// CPUPerRequest and CPUCores are the gateway process's CPU time per request and the cores it
	// kept busy on average (gateway target only, when its process is known).
	CPUPerRequest time.Duration
	CPUCores      float64
}

// SweepStep is scenario 2 at one concurrency.
type SweepStep struct {
	Concurrency     int
	Direct, Gateway LoadResult
	AddedP99        time.Duration
	// Ideal is the throughput closed-loop clients reach when every request takes exactly the
	// upstream delay; the direct path falling well short of it means the harness itself (load
	// generator and fake upstream) is saturated at this step.
	Ideal float64
}

// harnessSaturated is the share of Ideal below which the direct path is taken to be limited by
// the harness rather than the upstream delay.
const harnessSaturated = 0.9

// HarnessLimited reports whether the direct path fell short of the ideal throughput.
func (s SweepStep) HarnessLimited() bool {
	return s.Ideal > 0 && s.Direct.RPS < harnessSaturated*s.Ideal
}

// StreamResult is one target's streams.
type StreamResult struct {
	Streams, Errors int
	FirstError      string
	TTFT            Percentiles
	MeanGap         time.Duration // mean time between chunks
}

// StreamReport is scenario 3.
type StreamReport struct {
	Chunks     int
	ChunkDelay time.Duration
	// UpstreamTime is how long the fake takes to send a whole answer.
	UpstreamTime    time.Duration
	Direct, Gateway StreamResult
	// AddedTTFT compares medians; AddedGap compares mean gaps (the per-chunk delay).
	AddedTTFT, AddedGap time.Duration
	// Proxy is the minimal proxy's side and ProxyAddedTTFT its median TTFT over Direct's (zero
	// when not measured).
	Proxy          StreamResult
	ProxyAddedTTFT time.Duration
	// NoBuffering: through the gateway, the median first chunk arrived before half of UpstreamTime.
	NoBuffering bool
}

// MemoryReport is scenario 4: the gateway process's resident memory, and what it costs at rest.
type MemoryReport struct {
	Measured bool
	// Reason says why memory was not measured.
	Reason string
	// Idle is VmRSS after warm-up, before load, and IdleAnon its anonymous part (the rest are
	// pages of the executable, shared, and as many as the page cache holds of it); PeakSampled
	// the highest VmRSS seen while the scenarios ran; HighWater the kernel's VmHWM at the end
	// (bytes).
	Idle, IdleAnon, PeakSampled, HighWater uint64
	// IdleCPU is the CPU time per second and IdleWakeups the context switches per second of the
	// gateway at rest after the warm-up, its kept-alive connections (the harness's and its own
	// to the fake) open, measured over IdleWindow: a desktop app should cost nothing while
	// nobody calls it.
	IdleCPU     time.Duration
	IdleWakeups float64
	IdleWindow  time.Duration
}

// Status of a target.
const (
	Pass = "PASS"
	Fail = "FAIL"
	Skip = "SKIP"
)

// TargetResult is one target of the requirement with its measured value.
type TargetResult struct {
	Name, Want, Got, Status string
}

// Report holds every number the run printed.
type Report struct {
	Mode                              string // ModeInProcess, ModeChild or ModeExternal
	GatewayURL, UpstreamURL, ProxyURL string
	// UpstreamNote says where the fake upstream ran.
	UpstreamNote string
	// CPUs says where the processes ran; Dedicated that the gateway had its CPUs to itself.
	CPUs      string
	Dedicated bool
	Latency   LatencyResult
	// PausedLatency is scenario 1 with a pause before each request (zero when skipped).
	PausedLatency LatencyResult
	Sweep         []SweepStep
	Stream        StreamReport
	Memory        MemoryReport
	Targets       []TargetResult
}

// Failed lists the targets that were measured and missed.
func (r Report) Failed() []TargetResult {
	var out []TargetResult
	for _, t := range r.Targets {
		if t.Status == Fail {
			out = append(out, t)
		}
	}
	return out
}

// Run measures the scenarios, printing each section to out as it completes.
func Run(ctx context.Context, cfg Config, out io.Writer) (rep Report, err error) {
	cfg = cfg.withDefaults()
	if slices.ContainsFunc(cfg.Concurrency, func(c int) bool { return c <= 0 }) {
		return Report{}, fmt.Errorf("concurrency %v: every value must be positive", cfg.Concurrency)
	}
	conns := slices.Max(cfg.Concurrency) + 8
	p := &printer{w: out}

	mode := ModeInProcess
	switch {
	case cfg.Target != "":
		mode = ModeExternal
	case cfg.Binary != "":
		mode = ModeChild
	}
	plan, err := planCPUs(cfg, mode)
	if err != nil {
		return rep, err
	}
	rep.CPUs, rep.Dedicated = plan.note, plan.dedicated
	if len(plan.harness) > 0 {
		restore, err := pinHarness(plan.harness)
		if err != nil {
			return rep, err
		}
		defer restore()
	}

	// The fake upstream.
	var up upstreamControl
	rep.UpstreamURL, rep.UpstreamNote = cfg.Upstream, "fake OpenAI served by another harness"
	switch {
	case cfg.Upstream == "" && cfg.UpstreamBinary == "":
		u, err := StartUpstream(cfg.UpstreamAddr)
		if err != nil {
			return rep, err
		}
		defer func() { err = errors.Join(err, u.Close()) }()
		up, rep.UpstreamURL, rep.UpstreamNote = localUpstream{u}, u.BaseURL(), "fake OpenAI on loopback, in the harness's process"
	default:
		if cfg.Upstream == "" {
			c, err := startUpstreamChild(ctx, cfg.UpstreamBinary, cfg.UpstreamAddr)
			if err != nil {
				return rep, err
			}
			defer func() { err = errors.Join(err, c.stop()) }()
			rep.UpstreamURL = c.url
			rep.UpstreamNote = fmt.Sprintf("fake OpenAI on loopback, a process of its own: pid %d", c.pid)
		}
		r, err := newRemoteUpstream(rep.UpstreamURL, newClient(rep.UpstreamURL, "", 4).hc)
		if err != nil {
			return rep, err
		}
		up = r
	}
	if err := up.set(ctx, 0, cfg.StreamChunks, cfg.ChunkDelay); err != nil {
		return rep, err
	}

	// The gateway under test.
	var gw *gatewayUnderTest
	switch {
	case cfg.Target != "":
		gw = &gatewayUnderTest{url: cfg.Target, key: cfg.TargetKey, mode: ModeExternal, pid: cfg.TargetPID, note: "measured by URL"}
		p.line("fake upstream listening at %s; point the gateway under test at it (model %q)", rep.UpstreamURL, cfg.Model)
		if cfg.WaitForTarget {
			p.line("waiting up to 30 s for %s/models to answer 200…", cfg.Target)
			if err := waitReady(ctx, newClient(cfg.Target, "", 1).hc, cfg.Target, cfg.TargetKey, 30*time.Second); err != nil {
				return rep, err
			}
		}
	case cfg.Binary != "":
		if gw, err = startChild(ctx, cfg.Binary, rep.UpstreamURL, cfg.GatewayProcs, plan.gateway); err != nil {
			return rep, err
		}
	default:
		key, err := randomKey()
		if err != nil {
			return rep, err
		}
		if gw, err = startInProcess("127.0.0.1:0", rep.UpstreamURL, cfg.Model, key); err != nil {
			return rep, err
		}
	}
	if gw.stop != nil {
		defer func() { err = errors.Join(err, gw.stop()) }()
	}
	rep.Mode, rep.GatewayURL = gw.mode, gw.url

	proxy, err := startProxy(ctx, cfg, rep.UpstreamURL, plan.gateway)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, proxy.stop()) }()
	rep.ProxyURL = proxy.url
	p.header(cfg, rep, gw, proxy.note)

	direct := newClient(rep.UpstreamURL, upstreamKey, conns)
	through := newClient(gw.url, gw.key, conns)
	minimal := newClient(proxy.url, upstreamKey, 1) // at one client only: latency and streams
	defer direct.close()
	defer through.close()
	defer minimal.close()
	body, streamBody := requestBodies(cfg.Model)

	if err := warmUp(ctx, up, direct, through, body); err != nil {
		return rep, err
	}

	// Memory: idle now, then sampled until the end.
	sampler := startMemorySampler(ctx, gw, &rep.Memory)
	defer sampler.stop()

	// 1. Latency at one client.
	targets := []latencyTarget{{c: direct}, {through, gw.cpu}, {minimal, proxy.cpu}}
	if rep.Latency, err = measureLatency(ctx, targets, body, cfg.LatencyRequests, 0); err != nil {
		return rep, fmt.Errorf("latency scenario: %w", err)
	}
	p.latency(rep.Latency)
	if cfg.PausedRequests > 0 {
		if rep.PausedLatency, err = measureLatency(ctx, targets, body, cfg.PausedRequests, cfg.Pause); err != nil {
			return rep, fmt.Errorf("latency scenario after pauses: %w", err)
		}
		p.latency(rep.PausedLatency)
	}

	// 3. Streaming (before the sweep leaves thousands of connections to settle).
	if rep.Stream, err = runStream(ctx, cfg, up, direct, through, minimal, streamBody); err != nil {
		return rep, err
	}
	p.stream(rep.Stream)

	// 2. Concurrency sweep.
	if err := up.set(ctx, cfg.UpstreamDelay, cfg.StreamChunks, cfg.ChunkDelay); err != nil {
		return rep, err
	}
	warm := min(max(cfg.Duration/5, 100*time.Millisecond), time.Second)
	p.sweepHeader(cfg, warm)
	for _, c := range cfg.Concurrency {
		s := SweepStep{Concurrency: c, Ideal: float64(c) / cfg.UpstreamDelay.Seconds()}
		if s.Direct, err = measureLoad(ctx, direct, body, c, warm, cfg.Duration, cfg.UpstreamDelay, nil); err != nil {
			return rep, fmt.Errorf("sweep at %d clients, direct: %w", c, err)
		}
		if s.Gateway, err = measureLoad(ctx, through, body, c, warm, cfg.Duration, cfg.UpstreamDelay, gw.cpu); err != nil {
			return rep, fmt.Errorf("sweep at %d clients, gateway: %w", c, err)
		}
		s.AddedP99 = s.Gateway.P99 - s.Direct.P99
		rep.Sweep = append(rep.Sweep, s)
		p.sweepRow(s)
	}
	p.sweepNotes(cfg, rep.Sweep)

	// 4. Memory.
	sampler.stop()
	p.memory(rep.Memory)

	rep.Targets = evaluate(cfg, rep)
	p.targets(rep)
	return rep, nil
}

// requestBodies are the small chat requests sent in every scenario, without and with streaming.
func requestBodies(model string) (body, stream []byte) {
	m, _ := json.Marshal(model) // a string always encodes
	body = []byte(`{"model":` + string(m) + `,"messages":[{"role":"user","content":"Say hello."}]}`)
	stream = []byte(`{"model":` + string(m) + `,"stream":true,"messages":[{"role":"user","content":"Say hello."}]}`)
	return body, stream
}

// warmUp opens connections on both paths and checks that gateway traffic reaches the fake (a
// gateway that answers from elsewhere, or caches, would make the numbers meaningless).
func warmUp(ctx context.Context, up upstreamControl, direct, through *client, body []byte) error {
	const n = 50
	for range n {
		if _, err := direct.do(ctx, body); err != nil {
			return fmt.Errorf("warm-up straight to the fake upstream failed: %w", err)
		}
	}
	before, err := up.requests(ctx)
	if err != nil {
		return err
	}
	for range n {
		if _, err := through.do(ctx, body); err != nil {
			return fmt.Errorf("warm-up through the gateway failed (is it forwarding the model to the fake upstream?): %w", err)
		}
	}
	after, err := up.requests(ctx)
	if err != nil {
		return err
	}
	if after-before < n {
		return fmt.Errorf("the fake upstream saw %d of %d requests sent through the gateway: it is not forwarding every request to the fake", after-before, n)
	}
	return nil
}

func runStream(ctx context.Context, cfg Config, up upstreamControl, direct, through, proxy *client, body []byte) (StreamReport, error) {
	if err := up.set(ctx, 0, cfg.StreamChunks, cfg.ChunkDelay); err != nil {
		return StreamReport{}, err
	}
	sides, err := measureStream(ctx, []*client{direct, through, proxy}, body, cfg.StreamRequests, cfg.StreamChunks)
	if err != nil {
		return StreamReport{}, fmt.Errorf("streaming scenario: %w", err)
	}
	r := StreamReport{
		Chunks: cfg.StreamChunks, ChunkDelay: cfg.ChunkDelay,
		UpstreamTime: time.Duration(cfg.StreamChunks-1) * cfg.ChunkDelay,
		Direct:       sides[0].result(), Gateway: sides[1].result(),
	}
	r.AddedTTFT = r.Gateway.TTFT.P50 - r.Direct.TTFT.P50
	if len(sides) > 2 {
		r.Proxy = sides[2].result()
		r.ProxyAddedTTFT = r.Proxy.TTFT.P50 - r.Direct.TTFT.P50
	}
	r.AddedGap = r.Gateway.MeanGap - r.Direct.MeanGap
	r.NoBuffering = r.Gateway.Streams > 0 && r.Gateway.TTFT.P50 < r.UpstreamTime/2
	return r, nil
}

// idleWindow is how long the gateway is watched at rest.
const idleWindow = time.Second

// measureIdleCPU watches the gateway at rest for idleWindow; it leaves m's idle CPU fields zero
// when the process cannot be read.
func measureIdleCPU(ctx context.Context, pid int, m *MemoryReport) {
	sample := func() (cpu time.Duration, switches uint64, err error) {
		if cpu, err = procCPU(pid); err != nil {
			return 0, 0, err
		}
		switches, err = procSwitches(pid)
		return cpu, switches, err
	}
	cpu0, sw0, err := sample()
	if err != nil {
		return
	}
	start := time.Now()
	sleepCtx(ctx, idleWindow)
	cpu1, sw1, err := sample()
	if err != nil {
		return
	}
	m.IdleWindow = time.Since(start)
	perSecond := m.IdleWindow.Seconds()
	m.IdleCPU = time.Duration(float64(cpu1-cpu0) / perSecond)
	m.IdleWakeups = float64(sw1-sw0) / perSecond
}

// memorySampler records the gateway's idle RSS at start and its peak until stop (which may be
// called more than once).
type memorySampler struct {
	stop func()
}

func startMemorySampler(ctx context.Context, gw *gatewayUnderTest, m *MemoryReport) memorySampler {
	switch {
	case gw.mode == ModeInProcess:
		m.Reason = "gateway runs in the harness's process; set Binary (the opentracy executable) to measure it alone"
		return memorySampler{stop: func() {}}
	case gw.pid == 0:
		m.Reason = "process id of the gateway under test unknown; set TargetPID"
		return memorySampler{stop: func() {}}
	case runtime.GOOS != "linux":
		m.Reason = "memory is read from /proc, on Linux only"
		return memorySampler{stop: func() {}}
	}
	// Let the warm-up's garbage become collectable and its background work end (the last trace
	// batch and its fsync, the hang-up scanner's last second), as an idle gateway's would.
	sleepCtx(ctx, 2*time.Second)
	idle, err := procMemory(gw.pid)
	if err != nil {
		m.Reason = err.Error()
		return memorySampler{stop: func() {}}
	}
	rss := idle.RSS
	m.Measured, m.Idle, m.IdleAnon, m.PeakSampled = true, rss, idle.Anon, rss
	measureIdleCPU(ctx, gw.pid, m)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64 = rss
	wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if now, err := procMemory(gw.pid); err == nil {
					peak = max(peak, now.RSS)
				}
			}
		}
	})
	return memorySampler{stop: sync.OnceFunc(func() {
		close(done)
		wg.Wait()
		m.PeakSampled = max(m.PeakSampled, peak)
		if end, err := procMemory(gw.pid); err == nil {
			m.HighWater = end.HWM
		}
	})}
}
