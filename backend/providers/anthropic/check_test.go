package anthropic

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"opentracy/backend/config"
	"opentracy/backend/providers"
)

func TestCheckListsModels(t *testing.T) {
	status := http.StatusOK
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = w.Write([]byte(`{"data":[{"type":"model","id":"claude-sonnet-4-5-20250929"}],"has_more":false}`))
			return
		}
		_, _ = w.Write([]byte(`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`))
	}))
	defer srv.Close()
	p, err := New(config.Provider{BaseURL: srv.URL, APIKey: "sk-ant"}, srv.Client(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	if got.Method != "GET" || got.URL.Path != "/v1/models" || got.Header.Get("X-Api-Key") != "sk-ant" || got.Header.Get("Anthropic-Version") != Version {
		t.Errorf("request %s %s %v", got.Method, got.URL.Path, got.Header)
	}
	if p.BaseURL() != srv.URL {
		t.Errorf("base URL %q", p.BaseURL())
	}
	status = http.StatusUnauthorized
	var perr *providers.Error
	if err := p.Check(context.Background()); !errors.As(err, &perr) || perr.Status != 401 {
		t.Errorf("check with a bad key: %v", err)
	}
}
