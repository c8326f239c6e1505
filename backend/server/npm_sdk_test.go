package server

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestOfficialNodeSDKs runs the official openai and @anthropic-ai/sdk npm packages against the
// gateway (frontend/e2e/sdk/sdk-check.mjs), with a fake OpenAI upstream behind it.
func TestOfficialNodeSDKs(t *testing.T) {
	frontend := filepath.Join("..", "..", "frontend")
	if _, err := os.Stat(filepath.Join(frontend, "node_modules", "openai")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("frontend/node_modules is missing: make test installs it (make deps)")
		}
		t.Skip("the npm SDKs are not installed here: run make deps (CI always runs this test)")
	}
	ts, _, sink := startWithFakeOpenAI(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("e2e", "sdk", "sdk-check.mjs"))
	cmd.Dir = frontend
	cmd.Env = append(os.Environ(), "OPENTRACY_BASE="+ts.base, "OPENTRACY_KEY="+testKey)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("sdk-check: %v\n%s\n%s", err, out, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	hello := "Hello! How can I assist you today?"
	want := map[string]any{
		"chat":            map[string]any{"content": hello, "totalTokens": 29.0},
		"stream":          map[string]any{"content": hello, "promptTokens": 19.0},
		"tools":           []any{[]any{"get_current_weather", "Boston, MA"}, []any{"get_current_weather", "Paris"}},
		"streamedTools":   []any{"Boston, MA", "Paris"},
		"jsonSchema":      map[string]any{"finish": "stop"},
		"embeddings":      map[string]any{"dims": 3.0},
		"models":          []any{"openai/gpt-4o-mini"},
		"wrongKey":        map[string]any{"status": 401.0, "code": "invalid_api_key"},
		"anthropic":       map[string]any{"text": hello, "stop": "end_turn", "inputTokens": 19.0},
		"anthropicStream": map[string]any{"text": hello, "outputTokens": 10.0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SDK results (-want +got):\n%s", diff)
	}
	waitTraces(t, sink, 8)
	if n := sink.Total(); n != 8 {
		t.Errorf("%d traces, want 8 (every model call through the gateway but the refused one)", n)
	}
}
