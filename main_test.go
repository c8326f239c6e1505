package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"opentracy/gpu/worker"
)

// envMainChild makes the test binary run the command line in the variable, as the real binary
// would: TestEngineWorkerCommand starts `opentracy engine-worker` that way.
const envMainChild = "OPENTRACY_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(envMainChild); args != "" {
		os.Exit(run(context.Background(), strings.Fields(args), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runCommand(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCommand(t, "version")
	if code != 0 || !strings.HasPrefix(out, "opentracy ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"launch"}, 2, `unknown command "launch"`},
		{[]string{"serve", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"serve", "--config", "/nonexistent.yaml"}, 1, "read config"},
		{[]string{"serve", "--addr", "127.0.0.1"}, 1, "want host:port"},
		{[]string{"-h"}, 0, "opentracy serve [flags]"},
		{[]string{"help"}, 0, "-data-dir string"},
	} {
		code, _, errOut := runCommand(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// TestNoDisplayFallsBackToServe runs the default (desktop) command where no window can open (a
// test binary has no desktop build tag; app's tests cover the display check): it must say so,
// serve headless, print the URLs and key, and stop cleanly when its context ends.
func TestNoDisplayFallsBackToServe(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("OPENTRACY_GATEWAY_KEY", "")
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"--addr", "127.0.0.1:0", "--data-dir", dataDir}, pw, io.Discard)
		pw.Close()
		done <- code
	}()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var printed strings.Builder
	timeout := time.After(10 * time.Second)
	for !strings.Contains(printed.String(), "Data dir:") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("exited early; printed:\n%s", printed.String())
			}
			printed.WriteString(l + "\n")
		case <-timeout:
			t.Fatalf("no banner; printed:\n%s", printed.String())
		}
	}
	go func() {
		for range lines { // keep draining so run never blocks on stdout
		}
	}()

	out := printed.String()
	if !strings.Contains(out, "falling back to `opentracy serve`") || !strings.Contains(out, "serving (headless)") {
		t.Errorf("no fallback notice:\n%s", out)
	}
	gateway := regexp.MustCompile(`Gateway URL:\s+(http://127\.0\.0\.1:\d+)/v1`).FindStringSubmatch(out)
	key := regexp.MustCompile(`Gateway key:\s+(ot-\S+)`).FindStringSubmatch(out)
	if gateway == nil || key == nil || !regexp.MustCompile(`UI:\s+http://127\.0\.0\.1:\d+/\?token=\S+`).MatchString(out) {
		t.Fatalf("banner lacks the UI link, gateway URL or key:\n%s", out)
	}

	req, _ := http.NewRequestWithContext(t.Context(), "GET", gateway[1]+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+key[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/v1/models with the printed key: %d", resp.StatusCode)
	}

	st, err := os.Stat(filepath.Join(dataDir, "secrets.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("secrets file: %v %v, want mode 0600", st, err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after the context ended", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after the context ended")
	}
}

// TestEngineWorkerCommand starts `opentracy engine-worker` as the app does and checks its
// handshake; the worker itself is tested in gpu/worker.
func TestEngineWorkerCommand(t *testing.T) {
	c := worker.NewClient(worker.ClientOptions{
		Command: []string{os.Args[0], "-test.run=^$"},
		Env:     append(os.Environ(), envMainChild+"="+worker.Command+" --log-level warn", "GOMLX_BACKEND=go"),
	})
	defer c.Close()
	h, err := c.Hello(t.Context())
	if err != nil || h.Backend != "go" || h.PID == os.Getpid() || h.Protocol != worker.ProtocolVersion {
		t.Fatalf("hello %+v %v", h, err)
	}
	if code, _, errOut := runCommand(t, worker.Command, "-h"); code != 0 || !strings.Contains(errOut, "not for people") {
		t.Errorf("engine-worker -h: %d %q", code, errOut)
	}
	if code, _, _ := runCommand(t, worker.Command, "--log-level", "loud"); code != 2 {
		t.Errorf("bad log level: exit %d", code)
	}
}
