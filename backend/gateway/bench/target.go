package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"opentracy/backend/config"
	"opentracy/backend/gateway"
	"opentracy/backend/h1serve"
	"opentracy/backend/providers"
	"opentracy/backend/providers/catalog"
	"opentracy/backend/providers/h1"
	"opentracy/backend/providers/openai"
	"opentracy/backend/traces"
)

// upstreamKey is the API key the gateway under test sends to the fake (which ignores it).
const upstreamKey = "sk-bench"

// Modes of the gateway under test.
const (
	ModeInProcess = "in-process"
	ModeChild     = "child process"
	ModeExternal  = "external"
)

// gatewayUnderTest is where scenario traffic goes, and how to stop it.
type gatewayUnderTest struct {
	url, key string
	mode     string
	pid      int // 0 when the process is unknown (RSS is then not measured)
	note     string
	stop     func() error
}

// newTransport reuses up to conns loopback connections per host; no proxy, no compression and no
// HTTP/2, so direct and gateway traffic pay the same client costs. Plain-HTTP requests go through
// the lean transport, whose request and answer stay on the calling goroutine: the client's own
// thread hand-offs are noise in both paths' round trips, and it has fewer of them.
func newTransport(conns int) http.RoundTripper {
	fallback := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return h1.New(h1.Options{Fallback: fallback, MaxIdlePerHost: conns, DialTimeout: 5 * time.Second})
}

// startInProcess serves gateway.New on addr in this process, with one provider named "openai"
// pointing at upstream (through the server's upstream client) and traces captured in memory;
// clients must send key.
func startInProcess(addr, upstream, model, key string) (*gatewayUnderTest, error) {
	noEnv := func(string) (string, bool) { return "", false }
	prov, err := openai.New(config.Provider{Name: "openai", Type: "openai-compatible", BaseURL: upstream, APIKey: config.Secret(upstreamKey)},
		catalog.NewHTTPClient(), noEnv)
	if err != nil {
		return nil, fmt.Errorf("in-process gateway: %w", err)
	}
	g := gateway.New(gateway.Options{
		Providers: []providers.Provider{prov},
		Models:    map[string][]string{model: {"openai"}},
		Sink:      traces.NewMemorySink(0),
	})
	// Like serve, clients must present the gateway key.
	want := []byte("Bearer " + key)
	h := g.Handler()
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write(providers.ErrorBody("invalid gateway key", "invalid_request_error", "invalid_api_key"))
			return
		}
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("in-process gateway: listen: %w", err)
	}
	srv := &h1serve.Server{Handler: auth} // the app's server, as serve runs it
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return &gatewayUnderTest{
		url: "http://" + ln.Addr().String() + "/v1", key: key, mode: ModeInProcess,
		note: "gateway.New in this process, traces in memory; it shares CPUs with the harness and the fake",
		stop: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := srv.Shutdown(ctx)
			if serveErr := <-done; serveErr != nil && !errors.Is(serveErr, h1serve.ErrServerClosed) {
				err = errors.Join(err, serveErr)
			}
			return err
		},
	}, nil
}

// cpu reads the gateway process's CPU time so far; ok is false when it cannot be read.
func (g *gatewayUnderTest) cpu() (d time.Duration, ok bool) { return processCPU(g.pid) }

// processCPU reads a process's CPU time so far; ok is false when it cannot be read or pid is 0
// (unknown).
func processCPU(pid int) (d time.Duration, ok bool) {
	if pid == 0 {
		return 0, false
	}
	d, err := procCPU(pid)
	return d, err == nil
}

// startChild runs `binary serve` on a free loopback port with a throw-away data directory and an
// environment that configures only the "openai" provider, pointed at upstream; with cpus, the
// child runs on those CPUs only.
func startChild(ctx context.Context, binary, upstream string, procs int, cpus []int) (*gatewayUnderTest, error) {
	dir, err := os.MkdirTemp("", "opentracy-bench-*")
	if err != nil {
		return nil, fmt.Errorf("gateway child: %w", err)
	}
	key, err := randomKey()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--gateway-key", key)
	cmd.Env = childEnv(dir, upstream, procs)
	c, err := startProcess(ctx, "gateway child", cmd, cpus, "Gateway URL:", func() { _ = os.RemoveAll(dir) })
	if err != nil {
		return nil, err
	}
	return &gatewayUnderTest{url: c.url, key: key, mode: ModeChild, pid: c.pid,
		note: fmt.Sprintf("%s serve, GOMAXPROCS=%d, pid %d", filepath.Base(binary), procs, c.pid), stop: c.stop}, nil
}

// startUpstreamChild runs the fake upstream as `binary bench -serve-upstream addr`, a process of
// its own like a real upstream's; it runs on the harness's CPUs, whose pinning it inherits.
func startUpstreamChild(ctx context.Context, binary, addr string) (child, error) {
	cmd := exec.Command(binary, "bench", "-serve-upstream", addr)
	cmd.Env = baseEnv()
	return startProcess(ctx, "fake upstream", cmd, nil, upstreamMarker, nil)
}

// proxyUnderTest is the MinimalProxy of a run, in a child process or in this one.
type proxyUnderTest struct {
	url, note string
	cpu       cpuProbe // nil in this process
	stop      func() error
}

// startProxy starts the MinimalProxy in front of upstream: as a child on the gateway's CPUs
// (cpus) with its GOMAXPROCS when cfg.ProxyBinary is set, else in this process.
func startProxy(ctx context.Context, cfg Config, upstream string, cpus []int) (proxyUnderTest, error) {
	if cfg.ProxyBinary == "" {
		mp, err := StartMinimalProxy("127.0.0.1:0", upstream)
		if err != nil {
			return proxyUnderTest{}, err
		}
		return proxyUnderTest{url: mp.BaseURL(), note: "in the harness's process", stop: mp.Close}, nil
	}
	cmd := exec.Command(cfg.ProxyBinary, "bench", "-serve-minimal-proxy", "127.0.0.1:0", "-upstream", upstream)
	cmd.Env = append(baseEnv(), "GOMAXPROCS="+strconv.Itoa(cfg.GatewayProcs))
	c, err := startProcess(ctx, "minimal proxy", cmd, cpus, proxyMarker, nil)
	if err != nil {
		return proxyUnderTest{}, err
	}
	note := fmt.Sprintf("a process of its own, GOMAXPROCS=%d, pid %d", cfg.GatewayProcs, c.pid)
	if len(cpus) > 0 {
		note += ", on the gateway's CPUs"
	}
	cpu := func() (time.Duration, bool) { return processCPU(c.pid) }
	return proxyUnderTest{url: c.url, note: note, cpu: cpu, stop: c.stop}, nil
}

// child is a process the harness started: the gateway, the fake upstream or the minimal proxy.
type child struct {
	url  string // what the process printed after its marker
	pid  int
	stop func() error
}

// startProcess starts cmd (on cpus, when given) and waits up to 30 s for it to print marker,
// returning the value after it. stop interrupts the process (each of ours shuts down cleanly on
// an interrupt), kills it if it is still there 10 s later, and then runs cleanup.
func startProcess(ctx context.Context, what string, cmd *exec.Cmd, cpus []int, marker string, cleanup func()) (child, error) {
	if cleanup == nil {
		cleanup = func() {}
	}
	out := newLineWatcher(marker)
	cmd.Stdout = out
	cmd.Stderr = out
	start := cmd.Start
	if len(cpus) > 0 {
		start = func() error { return startPinned(cpus, cmd.Start) }
	}
	if err := start(); err != nil {
		if cmd.Process != nil { // started, but its pinning failed
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		cleanup()
		return child{}, fmt.Errorf("%s: start %s: %w", what, cmd.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		defer cleanup()
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			return exitErr(err)
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not stop within 10 s of an interrupt: killed", what)
		}
	}

	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case u := <-out.found:
		return child{url: u, pid: cmd.Process.Pid, stop: stop}, nil
	case err := <-exited:
		cleanup()
		return child{}, fmt.Errorf("%s exited before printing %q (%w); its output:\n%s", what, marker, err, out.tail())
	case <-timer.C:
		_ = stop()
		return child{}, fmt.Errorf("%s printed no %q within 30 s; its output:\n%s", what, marker, out.tail())
	case <-ctx.Done():
		_ = stop()
		return child{}, fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// exitErr drops the exit status an interrupted serve may report.
func exitErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && !ee.Exited() {
		return nil // ended by the signal we sent
	}
	return err
}

// childEnv isolates the child from the user's configuration: its own home and XDG directories,
// and no provider keys but the fake's.
func childEnv(dir, upstream string, procs int) []string {
	return append(baseEnv(),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "share"),
		"OPENAI_API_KEY="+upstreamKey,
		"OPENAI_BASE_URL="+upstream,
		"GOMAXPROCS="+strconv.Itoa(procs),
	)
}

// baseEnv is what every child keeps of the harness's environment.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "TMPDIR", "SYSTEMROOT"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func randomKey() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("gateway key: %w", err)
	}
	return "ot-bench-" + hex.EncodeToString(b), nil
}

// lineWatcher takes a child's output, sends the first value after marker on found and keeps the
// last lines for error messages.
type lineWatcher struct {
	marker string
	found  chan string

	mu    sync.Mutex
	part  []byte
	lines []string
	seen  bool
}

func newLineWatcher(marker string) *lineWatcher {
	return &lineWatcher{marker: marker, found: make(chan string, 1)}
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(l.part[:i], "\r"))
		l.part = l.part[i+1:]
		if _, v, ok := strings.Cut(line, l.marker); ok && !l.seen {
			l.seen = true
			l.found <- strings.TrimSpace(v)
		}
		l.lines = append(l.lines, line)
		if len(l.lines) > 40 {
			l.lines = l.lines[len(l.lines)-40:]
		}
	}
	return len(p), nil
}

func (l *lineWatcher) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(append(l.lines, string(l.part)), "\n")
}

// waitReady polls base/models until it answers 200, for up to limit.
func waitReady(ctx context.Context, hc *http.Client, base, key string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/models", nil)
		if err != nil {
			return fmt.Errorf("readiness probe: %w", err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return fmt.Errorf("%s/models did not answer 200 within %s (last: %s): %w", base, limit, last, ctx.Err())
		}
	}
}

// upstreamControl drives the fake, in this process or (through StatePath) in another.
type upstreamControl interface {
	set(ctx context.Context, delay time.Duration, chunks int, chunkDelay time.Duration) error
	requests(ctx context.Context) (int64, error)
}

type localUpstream struct{ u *Upstream }

func (l localUpstream) set(_ context.Context, delay time.Duration, chunks int, chunkDelay time.Duration) error {
	l.u.Set(delay, chunks, chunkDelay)
	return nil
}

func (l localUpstream) requests(context.Context) (int64, error) { return l.u.requests.Load(), nil }

type remoteUpstream struct {
	stateURL string
	hc       *http.Client
}

func newRemoteUpstream(base string, hc *http.Client) (remoteUpstream, error) {
	u, err := url.Parse(base)
	if err != nil {
		return remoteUpstream{}, fmt.Errorf("upstream: %w", err)
	}
	if u.Host == "" {
		return remoteUpstream{}, fmt.Errorf("upstream %q is not an http(s) URL", base)
	}
	u.Path, u.RawQuery = StatePath, ""
	return remoteUpstream{stateURL: u.String(), hc: hc}, nil
}

func (r remoteUpstream) set(ctx context.Context, delay time.Duration, chunks int, chunkDelay time.Duration) error {
	body, err := json.Marshal(UpstreamState{DelayMicros: delay.Microseconds(), Chunks: chunks, ChunkDelayMicros: chunkDelay.Microseconds()})
	if err != nil {
		return fmt.Errorf("encode upstream state: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.stateURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("configure upstream: %w", err)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("configure upstream at %s (it must be this harness's fake): %w", r.stateURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("configure upstream at %s: %s (it must be this harness's fake)", r.stateURL, resp.Status)
	}
	return nil
}

func (r remoteUpstream) requests(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.stateURL, nil)
	if err != nil {
		return 0, fmt.Errorf("read upstream state: %w", err)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read upstream state: %w", err)
	}
	defer resp.Body.Close()
	var s UpstreamState
	if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&s); err != nil {
		return 0, fmt.Errorf("read upstream state: %w", err)
	}
	return s.Requests, nil
}

// procMem is a process's memory from /proc/<pid>/status, in bytes.
type procMem struct {
	// RSS is VmRSS; Anon its anonymous part (RssAnon: heap and stacks, what the process itself
	// allocated), the rest being pages of files it maps, chiefly its executable; HWM is VmHWM.
	RSS, Anon, HWM uint64
}

// procMemory reads a process's memory from /proc/<pid>/status; Linux only.
func procMemory(pid int) (procMem, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return procMem{}, fmt.Errorf("read process memory: %w", err)
	}
	var m procMem
	fields := map[string]*uint64{"VmRSS": &m.RSS, "RssAnon": &m.Anon, "VmHWM": &m.HWM}
	for line := range strings.Lines(string(data)) {
		name, rest, ok := strings.Cut(line, ":")
		dst := fields[name]
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			continue
		}
		kb, perr := strconv.ParseUint(f[0], 10, 64)
		if perr != nil {
			return procMem{}, fmt.Errorf("parse %s: %w", name, perr)
		}
		*dst = kb << 10
	}
	if m.RSS == 0 {
		return procMem{}, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}
