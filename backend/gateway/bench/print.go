package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

// Targets of the requirement.
const (
	targetAddedP50     = 100 * time.Microsecond
	targetAddedP99     = 500 * time.Microsecond
	targetRPS          = 2000
	targetLoadAddedP99 = 5 * time.Millisecond
	targetIdleRSS      = 50_000_000 // bytes
)

// printer writes aligned sections; write errors are ignored (the Report holds every number).
type printer struct{ w io.Writer }

func (p *printer) line(format string, a ...any) { _, _ = fmt.Fprintf(p.w, format+"\n", a...) }

// row writes cells padded to widths (counted in runes, so "µs" aligns).
func (p *printer) row(widths []int, cells ...string) {
	var b strings.Builder
	b.WriteString("  ")
	for i, c := range cells {
		b.WriteString(c)
		if i < len(cells)-1 && i < len(widths) {
			b.WriteString(strings.Repeat(" ", max(widths[i]-utf8.RuneCountInString(c), 1)))
		}
	}
	p.line("%s", strings.TrimRight(b.String(), " "))
}

func (p *printer) header(cfg Config, rep Report, gw *gatewayUnderTest, proxyNote string) {
	p.line("OpenTracy gateway benchmark")
	w := []int{10}
	p.row(w, "gateway", fmt.Sprintf("%s (%s: %s)", rep.GatewayURL, rep.Mode, gw.note))
	p.row(w, "upstream", fmt.Sprintf("%s (%s)", rep.UpstreamURL, rep.UpstreamNote))
	p.row(w, "proxy", fmt.Sprintf("%s (a minimal proxy, for scale at 1 client: %s)", rep.ProxyURL, proxyNote))
	p.row(w, "model", cfg.Model)
	p.row(w, "harness", fmt.Sprintf("%s/%s, %d CPUs, GOMAXPROCS %d, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version()))
	p.row(w, "cpus", rep.CPUs)
}

// pctWidths are the columns of the percentile tables.
func pctWidths() []int { return []int{14, 11, 11, 11, 11} }

func (p *printer) latency(r LatencyResult) {
	p.line("")
	if r.Pause > 0 {
		p.line("Latency at 1 client, each request after %s of quiet (upstream delay 0; %d requests per target, interleaved)", dur(r.Pause), r.Requests)
	} else {
		p.line("Latency at 1 client (upstream delay 0; %d sequential requests per target, interleaved)", r.Requests)
	}
	p.row(pctWidths(), "", "p50", "p90", "p99", "max")
	for _, s := range []struct {
		name string
		v    Percentiles
	}{{"direct", r.Direct}, {"gateway", r.Gateway}, {"added", r.Added}, {"minimal proxy", r.Proxy}, {"proxy added", r.ProxyAdded}} {
		p.row(pctWidths(), s.name, dur(s.v.P50), dur(s.v.P90), dur(s.v.P99), dur(s.v.Max))
	}
	p.row(pctWidths(), "", "(proxy added: what any proxy costs on this machine, two more loopback hops and one more process's wake-ups)")
	if r.GatewayCPU > 0 {
		p.row(pctWidths(), "gateway CPU", dur(r.GatewayCPU)+" per request (all its threads, trace capture included)")
	}
	if r.ProxyCPU > 0 {
		p.row(pctWidths(), "proxy CPU", dur(r.ProxyCPU)+" per request")
	}
	p.errors(r.DirectErrors, r.GatewayErrors, r.ProxyErrors, r.FirstError)
}

func (p *printer) errors(direct, gateway, proxy int, first string) {
	p.row(pctWidths(), "errors", fmt.Sprintf("direct %d, gateway %d, minimal proxy %d", direct, gateway, proxy))
	if first != "" {
		p.row(pctWidths(), "", "first: "+first)
	}
}

func (p *printer) stream(r StreamReport) {
	p.line("")
	p.line("Streaming (%d chunks %s apart = %s upstream; %d streams per target, interleaved)",
		r.Chunks, dur(r.ChunkDelay), dur(r.UpstreamTime), max(r.Direct.Streams+r.Direct.Errors, r.Gateway.Streams+r.Gateway.Errors))
	p.row(pctWidths(), "", "TTFT p50", "TTFT p99", "chunk gap")
	p.row(pctWidths(), "direct", dur(r.Direct.TTFT.P50), dur(r.Direct.TTFT.P99), dur(r.Direct.MeanGap))
	p.row(pctWidths(), "gateway", dur(r.Gateway.TTFT.P50), dur(r.Gateway.TTFT.P99), dur(r.Gateway.MeanGap))
	p.row(pctWidths(), "added", dur(r.AddedTTFT), dur(r.Gateway.TTFT.P99-r.Direct.TTFT.P99), dur(r.AddedGap))
	if r.Proxy.Streams > 0 {
		p.row(pctWidths(), "minimal proxy", dur(r.Proxy.TTFT.P50), dur(r.Proxy.TTFT.P99), dur(r.Proxy.MeanGap))
		p.row(pctWidths(), "proxy added", dur(r.ProxyAddedTTFT), dur(r.Proxy.TTFT.P99-r.Direct.TTFT.P99), dur(r.Proxy.MeanGap-r.Direct.MeanGap))
	}
	p.row(pctWidths(), "no buffering", fmt.Sprintf("%s: gateway TTFT p50 %s vs half the upstream's stream time %s",
		passFail(r.NoBuffering), dur(r.Gateway.TTFT.P50), dur(r.UpstreamTime/2)))
	p.errors(r.Direct.Errors, r.Gateway.Errors, r.Proxy.Errors, firstOf(r.Direct.FirstError, r.Gateway.FirstError, r.Proxy.FirstError))
}

// sweepWidths are the columns of the sweep table.
func sweepWidths() []int { return []int{9, 9, 10, 10, 6, 9, 10, 10, 6, 11, 12} }

func (p *printer) sweepHeader(cfg Config, warm time.Duration) {
	p.line("")
	p.line("Concurrency sweep (upstream delay %s; closed-loop clients; %s per step and target after %s warm-up)",
		dur(cfg.UpstreamDelay), dur(cfg.Duration), dur(warm))
	p.row(sweepWidths(), "", "direct", "", "", "", "gateway")
	p.row(sweepWidths(), "clients", "req/s", "p50", "p99", "err", "req/s", "p50", "p99", "err", "added p99", "gw CPU/req", "gw cores")
}

func (p *printer) sweepRow(s SweepStep) {
	cpu, cores := "", ""
	if s.Gateway.CPUPerRequest > 0 {
		cpu, cores = dur(s.Gateway.CPUPerRequest), fmt.Sprintf("%.2f", s.Gateway.CPUCores)
	}
	mark := ""
	if s.HarnessLimited() {
		mark = " *"
	}
	p.row(sweepWidths(), fmt.Sprint(s.Concurrency),
		rps(s.Direct.RPS)+mark, dur(s.Direct.P50), dur(s.Direct.P99), fmt.Sprint(s.Direct.Errors),
		rps(s.Gateway.RPS), dur(s.Gateway.P50), dur(s.Gateway.P99), fmt.Sprint(s.Gateway.Errors),
		dur(s.AddedP99), cpu, cores)
}

// sweepNotes explains the table: first errors, steps where the harness itself ran out of
// capacity, and the throughput the gateway's CPU cost per request allows.
func (p *printer) sweepNotes(cfg Config, steps []SweepStep) {
	for _, s := range steps {
		if e := firstOf(s.Direct.FirstError, s.Gateway.FirstError); e != "" {
			p.line("  first error at %d clients: %s", s.Concurrency, e)
		}
	}
	for _, s := range steps {
		if s.HarnessLimited() {
			p.line("  * direct reached %.0f%% of the %s req/s that %d clients allow at %s: the load generator and fake upstream are saturated there, and the gateway competes with them for CPU unless pinned apart",
				100*s.Direct.RPS/s.Ideal, rps(s.Ideal), s.Concurrency, dur(cfg.UpstreamDelay))
		}
	}
	var busiest SweepStep
	for _, s := range steps {
		if s.Gateway.RPS > busiest.Gateway.RPS && s.Gateway.CPUPerRequest > 0 {
			busiest = s
		}
	}
	if c := busiest.Gateway.CPUPerRequest; c > 0 {
		p.line("  gateway CPU %s per request at %d clients (%s req/s): at that cost %d cores of its own would serve ≈%s req/s before CPU runs out",
			dur(c), busiest.Concurrency, rps(busiest.Gateway.RPS), cfg.GatewayProcs, rps(float64(cfg.GatewayProcs)*float64(time.Second)/float64(c)))
	}
}

func (p *printer) memory(m MemoryReport) {
	p.line("")
	p.line("Memory (resident set of the gateway process) and CPU at rest")
	w := []int{22}
	if !m.Measured {
		p.row(w, "not measured", m.Reason)
		return
	}
	p.row(w, "idle after warm-up", fmt.Sprintf("%s, %s of it anonymous (the rest: pages of the executable in the page cache, shared)", mb(m.Idle), mb(m.IdleAnon)))
	p.row(w, "peak under load", fmt.Sprintf("%s sampled every 50ms, %s VmHWM", mb(m.PeakSampled), mb(m.HighWater)))
	if m.IdleWindow > 0 {
		p.row(w, "CPU at rest", fmt.Sprintf("%s per second, %.1f context switches per second (over %s after the warm-up, kept-alive connections open)",
			dur(m.IdleCPU), m.IdleWakeups, dur(m.IdleWindow)))
	}
}

func (p *printer) targets(rep Report) {
	p.line("")
	switch rep.Mode {
	case ModeInProcess:
		p.line("Targets (traces captured in memory)")
	case ModeChild:
		p.line("Targets (traces captured as serve captures them)")
	default:
		p.line("Targets (the external gateway as configured)")
	}
	w := []int{54, 16, 34}
	p.row(w, "target", "want", "got", "result")
	met, measured := 0, 0
	for _, t := range rep.Targets {
		p.row(w, t.Name, t.Want, t.Got, t.Status)
		if t.Status != Skip {
			measured++
		}
		if t.Status == Pass {
			met++
		}
	}
	p.line("  %d of %d measured targets met", met, measured)
	if !rep.Dedicated && rep.Mode != ModeExternal {
		p.line("  CPUs %s; the throughput and tail-latency targets assume a gateway with cores of its own.", rep.CPUs)
	}
}

// evaluate checks the measured numbers against the requirement's targets.
func evaluate(cfg Config, rep Report) []TargetResult {
	var out []TargetResult
	l := rep.Latency
	latencyOK := l.GatewayErrors == 0 && l.DirectErrors == 0
	errNote := ""
	if !latencyOK {
		errNote = fmt.Sprintf(" (%d errors)", l.DirectErrors+l.GatewayErrors)
	}
	out = append(out,
		TargetResult{"added p50 at 1 client", "≤ " + dur(targetAddedP50), dur(l.Added.P50) + errNote + proxyNote(l.ProxyAdded.P50), passFail(latencyOK && l.Added.P50 <= targetAddedP50)},
		TargetResult{"added p99 at 1 client", "≤ " + dur(targetAddedP99), dur(l.Added.P99) + errNote + proxyNote(l.ProxyAdded.P99), passFail(latencyOK && l.Added.P99 <= targetAddedP99)},
	)

	// Throughput: among the error-free steps that reach the target rate, the one adding least to
	// p99 (more clients than needed for the rate only add queueing); else the busiest step.
	cores := fmt.Sprintf("%d procs, own CPUs", cfg.GatewayProcs)
	switch {
	case rep.Mode == ModeInProcess:
		cores = "in process, shared CPUs"
	case rep.Mode == ModeExternal:
		cores = "external"
	case !rep.Dedicated:
		cores = fmt.Sprintf("%d procs, shared CPUs", cfg.GatewayProcs)
	}
	if len(rep.Sweep) > 0 {
		best, found := rep.Sweep[0], false
		for _, s := range rep.Sweep {
			ok := s.Gateway.RPS >= targetRPS && s.Gateway.Errors == 0
			if ok && (!found || s.AddedP99 < best.AddedP99) {
				best, found = s, true
			}
			if !found && s.Gateway.RPS > best.Gateway.RPS {
				best = s
			}
		}
		at := fmt.Sprintf(" at %d clients", best.Concurrency)
		out = append(out,
			TargetResult{fmt.Sprintf("throughput at %s upstream (%s)", dur(cfg.UpstreamDelay), cores), fmt.Sprintf("≥ %d req/s", targetRPS),
				rps(best.Gateway.RPS) + " req/s" + at, passFail(best.Gateway.RPS >= targetRPS)},
			TargetResult{"added p99 at that load", "< " + dur(targetLoadAddedP99), dur(best.AddedP99) + at, passFail(best.AddedP99 < targetLoadAddedP99)},
			TargetResult{"errors at that load", "0", fmt.Sprint(best.Gateway.Errors) + at, passFail(best.Gateway.Errors == 0)},
		)
	}

	s := rep.Stream
	out = append(out, TargetResult{"streaming not buffered", "TTFT < " + dur(s.UpstreamTime/2),
		fmt.Sprintf("TTFT p50 %s", dur(s.Gateway.TTFT.P50)), passFail(s.NoBuffering && s.Gateway.Errors == 0)})

	if rep.Memory.Measured {
		out = append(out, TargetResult{"idle RSS", "< " + mb(targetIdleRSS), mb(rep.Memory.Idle), passFail(rep.Memory.Idle < targetIdleRSS)})
	} else {
		out = append(out, TargetResult{"idle RSS", "< " + mb(targetIdleRSS), "not measured", Skip})
	}
	return out
}

// proxyNote puts the minimal proxy's figure beside the gateway's.
func proxyNote(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return " (min. proxy " + dur(d) + ")"
}

func passFail(ok bool) string {
	if ok {
		return Pass
	}
	return Fail
}

// dur formats a duration with three significant digits in µs, ms or s.
func dur(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	v, unit := float64(d)/1e3, "µs"
	switch {
	case d >= time.Second:
		v, unit = d.Seconds(), "s"
	case d >= time.Millisecond:
		v, unit = float64(d)/1e6, "ms"
	}
	switch {
	case v < 10:
		return fmt.Sprintf("%s%.2f%s", sign, v, unit)
	case v < 100:
		return fmt.Sprintf("%s%.1f%s", sign, v, unit)
	default:
		return fmt.Sprintf("%s%.0f%s", sign, v, unit)
	}
}

func rps(v float64) string { return fmt.Sprintf("%.0f", v) }

func mb(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
