package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for `opentracy serve`, `opentracy bench
// -serve-upstream` and `-serve-minimal-proxy`: re-executed with "serve" as its first argument,
// it serves the in-process gateway the way serve will; with "bench -serve-upstream ADDR", the
// fake upstream; with "bench -serve-minimal-proxy ADDR -upstream URL", the minimal proxy. So the
// child processes are tested without building the real binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(fakeServe(os.Args[2:]))
	}
	if len(os.Args) == 4 && os.Args[1] == "bench" && os.Args[2] == "-serve-upstream" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		if err := ServeUpstream(ctx, os.Args[3], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) == 6 && os.Args[1] == "bench" && os.Args[2] == "-serve-minimal-proxy" && os.Args[4] == "-upstream" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		if err := ServeMinimalProxy(ctx, os.Args[3], os.Args[5], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fakeServe(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "", "")
	_ = fs.String("data-dir", "", "")
	key := fs.String("gateway-key", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	gw, err := startInProcess(*addr, os.Getenv("OPENAI_BASE_URL"), "gpt-4o-mini", *key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("OpenTracy test serving (headless)\n  Gateway URL:  %s\n", gw.url)
	<-ctx.Done()
	if err := gw.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// tiny is a configuration that runs every scenario in about a second.
func tiny() Config {
	return Config{
		Duration:        200 * time.Millisecond,
		Concurrency:     []int{1, 4},
		LatencyRequests: 50,
		PausedRequests:  10,
		Pause:           2 * time.Millisecond,
		StreamChunks:    5,
		ChunkDelay:      20 * time.Millisecond, // TTFT must stay under half of 80 ms on a busy machine
		StreamRequests:  5,
	}
}

// checkReport asserts that every scenario produced numbers without errors. Speed targets are not
// asserted: they are for the printed benchmark on a quiet machine.
func checkReport(t *testing.T, cfg Config, rep Report, printed string) {
	t.Helper()
	l := rep.Latency
	if l.DirectErrors+l.GatewayErrors != 0 {
		t.Errorf("latency errors: direct %d, gateway %d (%s)", l.DirectErrors, l.GatewayErrors, l.FirstError)
	}
	if l.Direct.P50 <= 0 || l.Gateway.P50 <= 0 || l.Gateway.P99 < l.Gateway.P50 || l.Proxy.P50 <= 0 || l.ProxyErrors != 0 {
		t.Errorf("latency percentiles missing: %+v", l)
	}
	if l.Added.P50 != l.Gateway.P50-l.Direct.P50 || l.ProxyAdded.P50 != l.Proxy.P50-l.Direct.P50 {
		t.Errorf("added latencies are not the differences: %+v", l)
	}
	if pl := rep.PausedLatency; pl.Pause != cfg.Pause || pl.Requests != cfg.PausedRequests || pl.Direct.P50 <= 0 || pl.Gateway.P50 <= 0 ||
		pl.Proxy.P50 <= 0 || pl.DirectErrors+pl.GatewayErrors+pl.ProxyErrors != 0 {
		t.Errorf("latency after pauses: %+v", pl)
	}
	if len(rep.Sweep) != len(cfg.Concurrency) {
		t.Fatalf("sweep has %d steps, want %d", len(rep.Sweep), len(cfg.Concurrency))
	}
	for _, s := range rep.Sweep {
		for name, r := range map[string]LoadResult{"direct": s.Direct, "gateway": s.Gateway} {
			if r.Errors != 0 || r.Requests == 0 || r.RPS <= 0 || r.P50 < 20*time.Millisecond {
				t.Errorf("sweep at %d clients, %s: %+v", s.Concurrency, name, r)
			}
		}
	}
	st := rep.Stream
	for name, r := range map[string]StreamResult{"direct": st.Direct, "gateway": st.Gateway, "minimal proxy": st.Proxy} {
		if r.Errors != 0 || r.Streams != cfg.StreamRequests || r.TTFT.P50 <= 0 || r.MeanGap < cfg.ChunkDelay {
			t.Errorf("stream %s: %+v", name, r)
		}
	}
	if !st.NoBuffering {
		t.Errorf("no-buffering check failed: gateway TTFT p50 %s, upstream stream time %s", st.Gateway.TTFT.P50, st.UpstreamTime)
	}
	if len(rep.Targets) != 7 {
		t.Errorf("targets: %+v", rep.Targets)
	}
	for _, section := range []string{"OpenTracy gateway benchmark", "Latency at 1 client", "Streaming (", "Concurrency sweep",
		"Memory (", "Targets", "added p50 at 1 client", "of quiet", "minimal proxy", "proxy added", "min. proxy", "no buffering", "idle RSS"} {
		if !strings.Contains(printed, section) {
			t.Errorf("output lacks %q:\n%s", section, printed)
		}
	}
	if t.Failed() {
		t.Log("\n" + printed)
	}
}

func TestRunInProcess(t *testing.T) {
	t.Parallel()
	cfg := tiny()
	var out strings.Builder
	rep, err := Run(t.Context(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	checkReport(t, cfg, rep, out.String())
	if rep.Mode != ModeInProcess || rep.Memory.Measured || !strings.Contains(out.String(), "not measured") {
		t.Errorf("in-process run must say RSS is not measured: mode %q, memory %+v", rep.Mode, rep.Memory)
	}
}

// TestRunChildProcess runs the gateway and the fake upstream as processes of their own, as
// `opentracy bench` does.
func TestRunChildProcess(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Skip("no path to the test binary:", err)
	}
	cfg := tiny()
	cfg.Binary, cfg.UpstreamBinary, cfg.ProxyBinary = self, self, self
	cfg.Duration, cfg.Concurrency = 100*time.Millisecond, []int{2}
	var out strings.Builder
	rep, err := Run(t.Context(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	checkReport(t, cfg, rep, out.String())
	if rep.Mode != ModeChild {
		t.Errorf("mode %q", rep.Mode)
	}
	// The fake's pid is printed; the process is gone once Run returns.
	var pid int
	if _, err := fmt.Sscanf(rep.UpstreamNote, "fake OpenAI on loopback, a process of its own: pid %d", &pid); err != nil || pid == os.Getpid() {
		t.Fatalf("upstream %q (%v): want a child's pid", rep.UpstreamNote, err)
	}
	if !strings.Contains(out.String(), rep.UpstreamNote) {
		t.Errorf("the header does not say where the fake ran:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "a minimal proxy, for scale at 1 client: a process of its own") {
		t.Errorf("the minimal proxy did not run as a child:\n%s", out.String())
	}
	if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
		t.Errorf("the fake upstream (pid %d) is still running after Run", pid)
	}
	if runtime.GOOS == "linux" {
		if rep.Latency.ProxyCPU <= 0 {
			t.Errorf("the minimal proxy's CPU per request was not measured: %+v", rep.Latency)
		}
		m := rep.Memory
		if !m.Measured || m.Idle == 0 || m.IdleAnon == 0 || m.IdleAnon > m.Idle || m.PeakSampled < m.Idle || m.HighWater < m.Idle {
			t.Errorf("memory: %+v", m)
		}
		// At rest the gateway is not busy: well under a tenth of a core, even on a loaded machine.
		if m.IdleWindow < idleWindow || m.IdleCPU < 0 || m.IdleWakeups < 0 || m.IdleCPU > 100*time.Millisecond {
			t.Errorf("CPU at rest: %+v", m)
		}
		if !strings.Contains(out.String(), "CPU at rest") {
			t.Errorf("CPU at rest not printed:\n%s", out.String())
		}
	}
}

// TestRunExternalTarget measures a gateway by URL, with the fake upstream served apart (driven
// through its state endpoint), as for a comparison with another gateway.
func TestRunExternalTarget(t *testing.T) {
	t.Parallel()
	up, err := StartUpstream("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	gw, err := startInProcess("127.0.0.1:0", up.BaseURL(), "gpt-4o-mini", "ot-test-key-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.stop()

	cfg := tiny()
	cfg.Target, cfg.TargetKey, cfg.Upstream, cfg.WaitForTarget = gw.url, gw.key, up.BaseURL(), true
	cfg.Duration, cfg.Concurrency = 100*time.Millisecond, []int{2}
	var out strings.Builder
	rep, err := Run(t.Context(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	checkReport(t, cfg, rep, out.String())
	if rep.Mode != ModeExternal || !strings.Contains(out.String(), "point the gateway under test at it") {
		t.Errorf("mode %q; output:\n%s", rep.Mode, out.String())
	}
	if got := up.State().Requests; got < 100 {
		t.Errorf("the external fake saw %d requests", got)
	}
}

// TestRunRejectsTargetNotUsingTheFake: numbers from a gateway that answers without the fake would
// mean nothing, so the warm-up stops the run.
func TestRunRejectsTargetNotUsingTheFake(t *testing.T) {
	t.Parallel()
	elsewhere, err := StartUpstream("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Close()
	cfg := tiny()
	cfg.Target = elsewhere.BaseURL()
	_, err = Run(t.Context(), cfg, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "not forwarding") {
		t.Fatalf("err = %v, want a not-forwarding error", err)
	}
}

func TestRunRejectsBadConcurrency(t *testing.T) {
	cfg := tiny()
	cfg.Concurrency = []int{4, 0}
	if _, err := Run(t.Context(), cfg, &strings.Builder{}); err == nil {
		t.Fatal("want an error for concurrency 0")
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(101-i))
	}
	p := percentiles(s)
	if p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 {
		t.Errorf("percentiles = %+v", p)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := percentile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("one sample: %v", got)
	}
}

func TestParseConcurrency(t *testing.T) {
	got, err := ParseConcurrency("1, 4,16")
	if err != nil || fmt.Sprint(got) != "[1 4 16]" {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,,2", "0", "-3", "x"} {
		if _, err := ParseConcurrency(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestLineWatcher(t *testing.T) {
	l := newLineWatcher("Gateway URL:")
	for _, part := range []string{"OpenTracy serving\n  Gateway", " URL:  http://127.0.0.1:9/v1\r\n", "  Gateway URL:  http://other\n", "tail"} {
		if _, err := l.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case u := <-l.found:
		if u != "http://127.0.0.1:9/v1" {
			t.Errorf("url %q", u)
		}
	default:
		t.Fatal("no URL found")
	}
	if tail := l.tail(); !strings.HasPrefix(tail, "OpenTracy serving\n") || !strings.HasSuffix(tail, "\ntail") {
		t.Errorf("tail %q", tail)
	}
}

func TestDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		42500 * time.Nanosecond:  "42.5µs",
		-1500 * time.Nanosecond:  "-1.50µs",
		20130 * time.Microsecond: "20.1ms",
		537300 * time.Nanosecond: "537µs",
		3 * time.Second:          "3.00s",
	} {
		if got := dur(d); got != want {
			t.Errorf("dur(%d) = %q, want %q", d, got, want)
		}
	}
}

// TestFull runs the benchmark with its defaults and prints the numbers; it runs only when
// OPENTRACY_BENCH_FULL=1. OPENTRACY_BENCH_BINARY names an opentracy executable to measure as a
// child process (with RSS); without it the gateway runs in process.
func TestFull(t *testing.T) {
	if os.Getenv("OPENTRACY_BENCH_FULL") != "1" {
		t.Skip("set OPENTRACY_BENCH_FULL=1 to run the full gateway benchmark")
	}
	cfg := Config{Binary: os.Getenv("OPENTRACY_BENCH_BINARY")}
	rep, err := Run(t.Context(), cfg, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Failed() {
		t.Logf("target missed: %s: want %s, got %s", f.Name, f.Want, f.Got)
	}
}

func TestRegisterFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	err := fs.Parse([]string{"-target", "http://127.0.0.1:4000/v1", "-target-key", "sk-1", "-wait",
		"-concurrency", "8,32", "-duration", "2s", "-upstream-delay", "10ms", "-binary", "opentracy"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Target != "http://127.0.0.1:4000/v1" || cfg.TargetKey != "sk-1" || !cfg.WaitForTarget || fmt.Sprint(cfg.Concurrency) != "[8 32]" ||
		cfg.Duration != 2*time.Second || cfg.UpstreamDelay != 10*time.Millisecond || cfg.Binary != "opentracy" {
		t.Errorf("cfg = %+v", cfg)
	}
	if err := fs.Parse([]string{"-concurrency", "8,x"}); err == nil {
		t.Error("want an error for a bad concurrency list")
	}
}

func TestCPULists(t *testing.T) {
	got, err := parseCPUs("0-1, 4,6-7")
	if err != nil || fmt.Sprint(got) != "[0 1 4 6 7]" {
		t.Fatalf("parseCPUs = %v, %v", got, err)
	}
	if s := formatCPUs(got); s != "0-1,4,6-7" {
		t.Errorf("formatCPUs = %q", s)
	}
	for _, bad := range []string{"", "x", "3-1", "-1", "1,,2"} {
		if _, err := parseCPUs(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestPlanCPUs(t *testing.T) {
	allowed, err := allowedCPUs()
	if err != nil {
		t.Skip(err)
	}
	cfg := Config{GatewayProcs: 2}.withDefaults()
	p, err := planCPUs(cfg, ModeChild)
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) >= 4 {
		if !p.dedicated || fmt.Sprint(p.gateway) != fmt.Sprint(allowed[:2]) || fmt.Sprint(p.harness) != fmt.Sprint(allowed[2:]) {
			t.Errorf("auto with %d CPUs: %+v", len(allowed), p)
		}
	} else if p.dedicated || p.gateway != nil || !strings.Contains(p.note, "too few") {
		t.Errorf("auto with %d CPUs: %+v", len(allowed), p)
	}
	for _, mode := range []string{ModeInProcess, ModeExternal} {
		if p, err := planCPUs(cfg, mode); err != nil || p.dedicated || p.gateway != nil || p.harness != nil {
			t.Errorf("auto, %s: %+v, %v", mode, p, err)
		}
	}
	cfg.CPUs = "off"
	if p, err := planCPUs(cfg, ModeChild); err != nil || p.gateway != nil || p.harness != nil {
		t.Errorf("off: %+v, %v", p, err)
	}
	cfg.CPUs = "0/0"
	if p, err := planCPUs(cfg, ModeChild); err != nil || p.dedicated || !strings.Contains(p.note, "overlapping") {
		t.Errorf("0/0: %+v, %v", p, err)
	}
	for _, bad := range []string{"0-1", "x/1", "0/y"} {
		cfg.CPUs = bad
		if _, err := planCPUs(cfg, ModeChild); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestProcCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	c0, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); { // burn CPU
	}
	c1, err := procCPU(os.Getpid())
	if err != nil || c1 <= c0 {
		t.Errorf("CPU time %v then %v, %v", c0, c1, err)
	}
}
