package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"opentracy/backend/config"
	"opentracy/backend/providers/openai/openaitest"
)

func (ts *testServer) send(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, ts.base+path, strings.NewReader(body))
	req.Header.Set(TokenHeader, testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readBody(t, resp)
}

func TestProvidersManagedInTheUI(t *testing.T) {
	fake := openaitest.New()
	defer fake.Close()
	dataDir := t.TempDir()
	ts := startServer(t, func(o *Options) {
		o.Config.DataDir = dataDir
		o.Env = envOf(map[string]string{"OPENAI_API_KEY": "sk-env"})
	})

	resp, body := ts.send(t, "POST", "/api/providers", `{"name":"lab","type":"openai-compatible","baseURL":"`+fake.BaseURL()+`","apiKey":"sk-lab-secret","models":["qwen3-8b"]}`)
	if resp.StatusCode != 200 || strings.Contains(body, "sk-lab-secret") {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	lab := gjson.Get(body, `#(name=="lab")`)
	if lab.Get("source").String() != "ui" || !lab.Get("keySet").Bool() || lab.Get("keyFrom").String() != "saved in the app" {
		t.Errorf("created provider %s", lab.Raw)
	}
	st, err := os.Stat(filepath.Join(dataDir, ProvidersFile))
	if err != nil || st.Mode().Perm() != config.SecretMode {
		t.Fatalf("providers file %v %v", st, err)
	}

	chat := func(model string) {
		t.Helper()
		if _, err := sdkClient(ts, testKey).CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{
			Model: model, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Hi"}}}); err != nil {
			t.Fatalf("chat %s: %v", model, err)
		}
	}
	chat("qwen3-8b") // a bare model the new provider lists
	chat("lab/qwen3-8b")

	// Editing without a key keeps the stored key.
	if resp, body := ts.send(t, "PUT", "/api/providers/lab", `{"type":"openai-compatible","baseURL":"`+fake.BaseURL()+`","models":["qwen3-8b","llama-3.2-3b"]}`); resp.StatusCode != 200 {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	chat("llama-3.2-3b")
	for _, r := range fake.Requests() {
		if r.Header.Get("Authorization") != "Bearer sk-lab-secret" {
			t.Errorf("upstream key %q after edit", r.Header.Get("Authorization"))
		}
	}

	for _, tc := range []struct{ method, path, body, code string }{
		{"POST", "/api/providers", `{"name":"lab","type":"openai-compatible","baseURL":"http://127.0.0.1:1/v1"}`, "invalid_provider"},
		{"POST", "/api/providers", `{"name":"x","type":"nope"}`, "invalid_provider"},
		{"POST", "/api/providers", `{"name":"y","type":"groq"}`, "invalid_provider"}, // no key anywhere
		{"PUT", "/api/providers/openai", `{"type":"openai"}`, "invalid_provider"},    // from the environment
		{"DELETE", "/api/providers/ghost", ``, "provider_not_found"},
	} {
		resp, body := ts.send(t, tc.method, tc.path, tc.body)
		if resp.StatusCode < 400 || gjson.Get(body, "error.code").String() != tc.code {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, resp.StatusCode, body)
		}
	}

	// A restart keeps what was added in the UI.
	ts.Shutdown(t.Context())
	ts2 := startServer(t, func(o *Options) { o.Config.DataDir = dataDir })
	if _, body := ts2.send(t, "GET", "/api/providers", ""); gjson.Get(body, `#(name=="lab").models.#`).Int() != 2 {
		t.Errorf("after restart %s", body)
	}
	if resp, _ := ts2.send(t, "DELETE", "/api/providers/lab", ""); resp.StatusCode != 200 {
		t.Errorf("delete %d", resp.StatusCode)
	}
	if _, err := sdkClient(ts2, testKey).CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{Model: "lab/qwen3-8b"}); err == nil {
		t.Error("deleted provider still routes")
	}
}
