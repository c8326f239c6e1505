package gateway

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"opentracy/backend/aliases"
	"opentracy/backend/providers/openai/openaitest"
)

func TestScanRequest(t *testing.T) {
	body := []byte(` {"messages":[{"role":"user","content":"{\"model\":\"no\"}"}],"metadata":{"model":"no"},` +
		`"model":"gpt-4o","model":"second","stream":true,"tools":[{"type":"function"}],"user":"u","stream_options":{"include_usage":true}}`)
	f := scanRequest(body, "messages")
	if f.model.String() != "gpt-4o" || !f.stream.Bool() || f.user.String() != "u" ||
		f.metadata.Get("model").String() != "no" || !f.streamOptions.Get("include_usage").Bool() {
		t.Errorf("fields: %+v", f)
	}
	in, tools := rawOf(body, f.input), rawOf(body, f.tools)
	if string(in) != `[{"role":"user","content":"{\"model\":\"no\"}"}]` || string(tools) != `[{"type":"function"}]` {
		t.Errorf("input %s, tools %s", in, tools)
	}
	if cap(in) != len(in) {
		t.Error("an appended input would overwrite the body")
	}
	if f := scanRequest([]byte(`{"input":"x"}`), "messages"); f.input.Exists() || rawOf(nil, f.input) != nil {
		t.Errorf("no messages: %+v", f)
	}
}

func TestReadAllSized(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10_000)
	for _, length := range []int64{-1, 0, 10, int64(len(data)), int64(len(data)) + 500, maxPresize * 4} {
		got, err := readAllSized(bytes.NewReader(data), length, 1<<30)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("length %d: %d bytes, %v", length, len(got), err)
		}
	}
	if got, _ := readAllSized(bytes.NewReader(data), int64(len(data)), 1<<30); cap(got) != len(data)+1 {
		t.Errorf("announced length: cap %d, want %d (no growth)", cap(got), len(data)+1)
	}
}

// TestCooldownEnds: once its cooldown is over a deployment is tried first again, and forgotten.
func TestCooldownEnds(t *testing.T) {
	h := newHarness(t, []string{"primary", "backup"}, withAliases(t, aliases.Alias{Name: "smart", Targets: []aliases.Target{{Model: "primary/gpt-4o"}, {Model: "backup/gpt-4o-mini"}}}))
	var mu sync.Mutex
	now := time.Now()
	h.gw.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h.up["primary"].Enqueue(openaitest.Unavailable(), openaitest.Unavailable(), openaitest.Unavailable())
	if resp := h.post("/v1/chat/completions", `{"model":"smart","messages":[]}`); resp.Header.Get(HeaderProvider) != "backup" {
		t.Fatalf("served by %q", resp.Header.Get(HeaderProvider))
	}
	mu.Lock()
	now = now.Add(h.gw.opts.Retry.Cooldown + time.Second)
	mu.Unlock()
	if resp := h.post("/v1/chat/completions", `{"model":"smart","messages":[]}`); resp.Header.Get(HeaderProvider) != "primary" {
		t.Errorf("after the cooldown, served by %q", resp.Header.Get(HeaderProvider))
	}
	h.gw.cooldownMu.Lock()
	defer h.gw.cooldownMu.Unlock()
	if len(h.gw.cooldowns) != 0 {
		t.Errorf("cooldowns left: %v", h.gw.cooldowns)
	}
}
