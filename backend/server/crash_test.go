package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"opentracy/backend/api"
	"opentracy/backend/config"
	"opentracy/backend/providers/openai/openaitest"
)

// Environment of the crash test's child process.
const (
	envCrashChild    = "OPENTRACY_TEST_CRASH_CHILD"
	envCrashDataDir  = "OPENTRACY_TEST_CRASH_DATA_DIR"
	envCrashUpstream = "OPENTRACY_TEST_CRASH_UPSTREAM"
)

// TestMain lets the crash test run this test binary as the server it kills.
func TestMain(m *testing.M) {
	if os.Getenv(envCrashChild) == "1" {
		runCrashChild()
		return
	}
	os.Exit(m.Run())
}

// runCrashChild serves with the durable default store until killed, printing its address.
func runCrashChild() {
	s, err := New(Options{
		Config:  config.Config{Addr: "127.0.0.1:0", DataDir: os.Getenv(envCrashDataDir)},
		Secrets: config.Secrets{GatewayKey: testKey, UIToken: testToken},
		UI:      testUI,
		Shell:   api.ShellServer,
		Version: "v-test",
		Env: envOf(map[string]string{
			"OPENAI_API_KEY": "sk-upstream", "OPENAI_BASE_URL": os.Getenv(envCrashUpstream),
		}),
	})
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", s.Addr())
	select {}
}

// startCrashChild starts the server in a child process on dataDir and returns its base URL.
func startCrashChild(t *testing.T, dataDir, upstream string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashDataDir+"="+dataDir, envCrashUpstream+"="+upstream)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		t.Fatalf("child server did not start: %q %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return cmd, "http://" + addr
}

// TestKillDuringLoadLosesNoAcknowledgedTrace: kill -9 of the server under load, then a restart
// on the same data dir. Every request whose response had fully arrived shortly before the kill
// has its trace stored exactly once (replayed from the journal when the database had not
// committed it yet), and nothing is stored that no client sent.
func TestKillDuringLoadLosesNoAcknowledgedTrace(t *testing.T) {
	fake := openaitest.New()
	defer fake.Close()
	dataDir := t.TempDir()
	child, base := startCrashChild(t, dataDir, fake.BaseURL())

	type done struct {
		id string
		at time.Time
	}
	var (
		mu        sync.Mutex
		completed []done
		wg        sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	stop := make(chan struct{})
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"load %d-%d"}]}`, w, i)
				req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testKey)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					return
				}
				mu.Lock()
				completed = append(completed, done{resp.Header.Get("X-OpenTracy-Trace-Id"), time.Now()})
				mu.Unlock()
			}
		}()
	}
	// Kill once a few hundred requests are through and have had time to reach the journal, while
	// the load goes on.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(completed)
		mu.Unlock()
		if n >= 400 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if err := child.Process.Kill(); err != nil { // SIGKILL: no shutdown, no drain
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = child.Wait()
	close(stop)
	wg.Wait()

	// A trace is journaled just after its response is flushed, by the same handler goroutine; on
	// a loaded machine that goroutine may wait its turn for a while, so allow half a second.
	acked := map[string]bool{}
	for _, d := range completed {
		if d.at.Before(killedAt.Add(-500 * time.Millisecond)) {
			acked[d.id] = true
		}
	}
	if len(acked) < 100 {
		t.Fatalf("only %d requests completed before the kill", len(acked))
	}
	sent := map[string]bool{}
	for _, d := range completed {
		sent[d.id] = true
	}

	_, base = startCrashChild(t, dataDir, fake.BaseURL())
	ts := &testServer{base: base}
	var stored map[string]bool
	var stats string
	for wait := time.Now().Add(60 * time.Second); ; {
		stats = readBody(t, ts.do(t, "GET", "/api/stats", TokenHeader, testToken))
		if gjson.Get(stats, "traces.spilled").Int() == 0 && gjson.Get(stats, "traces.queued").Int() == 0 {
			stored = listAll(t, ts)
			if len(stored) >= len(acked) || time.Now().After(wait) {
				break
			}
		}
		if time.Now().After(wait) {
			t.Fatalf("journal not replayed after 60s: %s", stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("trace %s was acknowledged before the kill but is not stored", id)
		}
	}
	// Requests in flight at the kill may be stored without their client having seen the end of
	// the answer: at most one per client.
	unanswered := 0
	for id := range stored {
		if !sent[id] {
			unanswered++
		}
	}
	if unanswered > 16 {
		t.Errorf("%d stored traces were never answered; at most 16 were in flight", unanswered)
	}
	if gjson.Get(stats, "traces.dropped").Int() != 0 {
		t.Errorf("traces dropped: %s", stats)
	}
	t.Logf("%d answered, %d before the kill, %d stored; after restart: %s", len(sent), len(acked), len(stored), stats)
}

// listAll returns every stored trace id, following cursors.
func listAll(t *testing.T, ts *testServer) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	cursor := ""
	for {
		p := ts.page(t, "limit=500&cursor="+url.QueryEscape(cursor))
		for _, s := range p.Traces {
			if out[s.ID] {
				t.Errorf("trace %s listed twice", s.ID)
			}
			out[s.ID] = true
		}
		if p.NextCursor == "" {
			return out
		}
		cursor = p.NextCursor
	}
}
