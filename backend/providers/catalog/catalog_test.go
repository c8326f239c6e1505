package catalog

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"opentracy/backend/config"
)

func envOf(m map[string]string) config.Environment {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestNewBuildsEveryType(t *testing.T) {
	for _, typ := range Types() {
		cfg := config.Provider{Type: typ, APIKey: "k", BaseURL: "http://127.0.0.1:1/v1"}
		p, err := New(cfg, http.DefaultClient, envOf(nil))
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if p.Name() != typ {
			t.Errorf("%s: name %q", typ, p.Name())
		}
	}
	if _, err := New(config.Provider{Name: "x", Type: "nope"}, http.DefaultClient, envOf(nil)); err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := New(config.Provider{Type: "openai"}, http.DefaultClient, envOf(nil)); err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := New(config.Provider{Name: "mine", Type: "local"}, http.DefaultClient, envOf(nil)); err == nil || !strings.Contains(err.Error(), "built in") {
		t.Errorf("local in the config: %v", err)
	}
}

func TestFromEnvironment(t *testing.T) {
	got := FromEnvironment(envOf(map[string]string{
		"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-ant", "GROQ_API_KEY": "", "AZURE_OPENAI_API_KEY": "az", "HOME": "/h",
	}))
	var types []string
	for _, p := range got {
		types = append(types, p.Type)
	}
	if want := []string{"anthropic", "openai"}; !cmp.Equal(types, want) {
		t.Errorf("providers from env %v, want %v", types, want)
	}
}
