package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"opentracy/backend/config"
	"opentracy/backend/providers"
)

type recorded struct {
	path, query string
	header      http.Header
	body        string
}

// upstream answers every request with status and body, recording what it got.
func upstream(t *testing.T, status int, body string, header map[string]string) (*httptest.Server, *[]recorded) {
	t.Helper()
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, recorded{r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func noEnv(string) (string, bool) { return "", false }

func chat(t *testing.T, p *Provider, body string) (*providers.Response, error) {
	t.Helper()
	return p.Chat(context.Background(), &providers.Request{Body: []byte(body), Model: gjson.Get(body, "model").String(), Stream: gjson.Get(body, "stream").Bool(), Header: http.Header{}})
}

func TestPresetQuirks(t *testing.T) {
	for _, tc := range []struct {
		typ, body, model, want string
	}{
		{"openai", `{"model":"gpt-4o","max_completion_tokens":5,"x":1}`, "gpt-4o", `{"model":"gpt-4o","max_completion_tokens":5,"x":1}`},
		{"openai", `{"model":"smart","stream":true}`, "gpt-4o-mini", `{"model":"gpt-4o-mini","stream":true}`},
		{"mistral", `{"model":"m","max_completion_tokens":5}`, "m", `{"model":"m","max_tokens":5}`},
		{"mistral", `{"model":"m","max_completion_tokens":5,"max_tokens":9}`, "m", `{"model":"m","max_completion_tokens":5,"max_tokens":9}`},
		{"perplexity", `{"model":"sonar","stream":true,"stream_options":{"include_usage":true}}`, "sonar", `{"model":"sonar","stream":true}`},
	} {
		srv, got := upstream(t, 200, `{}`, nil)
		p, err := New(config.Provider{Type: tc.typ, BaseURL: srv.URL + "/v1", APIKey: "k"}, srv.Client(), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := p.Chat(context.Background(), &providers.Request{Body: []byte(tc.body), Model: tc.model, Header: http.Header{}})
		if err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		resp.Body.Close()
		if (*got)[0].body != tc.want || (*got)[0].path != "/v1/chat/completions" {
			t.Errorf("%s: upstream got %s %s, want %s", tc.typ, (*got)[0].path, (*got)[0].body, tc.want)
		}
	}
}

func TestAzureDeploymentsAndHeaders(t *testing.T) {
	srv, got := upstream(t, 200, `{}`, nil)
	p, err := New(config.Provider{Type: "azure", BaseURL: srv.URL, APIKey: "az-key", Deployments: map[string]string{"gpt-4o": "prod-4o"}}, srv.Client(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := chat(t, p, `{"model":"gpt-4o"}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Length != 2 { // the gateway sizes its read of the answer by it
		t.Errorf("Length %d, want the upstream's Content-Length 2", resp.Length)
	}
	r := (*got)[0]
	if r.path != "/openai/deployments/prod-4o/chat/completions" || r.query != "api-version=2024-10-21" || r.header.Get("Api-Key") != "az-key" || r.header.Get("Authorization") != "" {
		t.Errorf("azure request %s?%s headers %v", r.path, r.query, r.header)
	}
}

func TestKeysHeadersAndBaseURLFromEnvironment(t *testing.T) {
	srv, got := upstream(t, 200, `{}`, nil)
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"GROQ_API_KEY": "gsk-env", "GROQ_BASE_URL": srv.URL + "/openai/v1"}[k]
		return v, ok
	}
	p, err := New(config.Provider{Type: "groq", Headers: map[string]string{"X-Title": "OpenTracy"}}, srv.Client(), env)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"model":"llama"}`), Model: "llama",
		Header: http.Header{"Openai-Organization": {"org-1"}, "Cookie": {"secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := (*got)[0]
	if r.path != "/openai/v1/chat/completions" || r.header.Get("Authorization") != "Bearer gsk-env" || r.header.Get("X-Title") != "OpenTracy" ||
		r.header.Get("OpenAI-Organization") != "org-1" || r.header.Get("Cookie") != "" {
		t.Errorf("request %s headers %v", r.path, r.header)
	}
	if _, err := New(config.Provider{Type: "groq"}, srv.Client(), noEnv); err == nil || !strings.Contains(err.Error(), "GROQ_API_KEY") {
		t.Errorf("missing key error: %v", err)
	}
	if _, err := New(config.Provider{Type: "openai-compatible"}, srv.Client(), noEnv); err == nil || !strings.Contains(err.Error(), "base_url") {
		t.Errorf("missing base URL error: %v", err)
	}
	if _, err := New(config.Provider{Type: "ollama"}, srv.Client(), noEnv); err != nil {
		t.Errorf("local servers need no key: %v", err)
	}
}

func TestUpstreamErrors(t *testing.T) {
	for _, tc := range []struct {
		name         string
		status       int
		body         string
		header       map[string]string
		wantMsg      string
		wantWait     time.Duration
		retry, fallb bool
	}{
		{"openai shaped kept", 429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, map[string]string{"Retry-After": "2"}, "Rate limit reached", 2 * time.Second, true, true},
		{"retry-after-ms", 429, `{"error":{"message":"slow down"}}`, map[string]string{"Retry-After-Ms": "1500"}, "slow down", 1500 * time.Millisecond, true, true},
		{"html from a proxy wrapped", 502, `<html><body>Bad Gateway</body></html>`, nil, "upstream returned 502: <html>", 0, true, true},
		{"bad request", 400, `{"error":{"message":"bad","type":"invalid_request_error"}}`, nil, "bad", 0, false, false},
		{"unauthorized falls back", 401, `{"error":{"message":"Incorrect API key"}}`, nil, "Incorrect API key", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := upstream(t, tc.status, tc.body, tc.header)
			p, _ := New(config.Provider{Type: "openai", BaseURL: srv.URL + "/v1", APIKey: "k"}, srv.Client(), noEnv)
			_, err := chat(t, p, `{"model":"m"}`)
			var perr *providers.Error
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v", err)
			}
			if perr.Status != tc.status || !strings.Contains(gjson.GetBytes(perr.Body, "error.message").String(), tc.wantMsg) ||
				perr.RetryAfter != tc.wantWait || perr.Retryable() != tc.retry || perr.Fallbackable() != tc.fallb {
				t.Errorf("error %+v body %s retryable %v fallbackable %v", perr, perr.Body, perr.Retryable(), perr.Fallbackable())
			}
		})
	}
	p, _ := New(config.Provider{Type: "openai", BaseURL: "http://127.0.0.1:1/v1", APIKey: "k"}, http.DefaultClient, noEnv)
	_, err := chat(t, p, `{"model":"m"}`)
	var perr *providers.Error
	if !errors.As(err, &perr) || perr.Status != 0 || !perr.Retryable() {
		t.Errorf("connection refused: %v", err)
	}
}

func TestListModelsAndCheck(t *testing.T) {
	srv, got := upstream(t, 200, `{"object":"list","data":[{"id":"gpt-4o","object":"model"},{"id":"gpt-4o-mini","object":"model"}]}`, nil)
	p, _ := New(config.Provider{Type: "openai", BaseURL: srv.URL + "/v1", APIKey: "k"}, srv.Client(), noEnv)
	ids, err := p.ListModels(context.Background())
	if err != nil || strings.Join(ids, ",") != "gpt-4o,gpt-4o-mini" || (*got)[0].path != "/v1/models" {
		t.Errorf("models %v %v", ids, err)
	}
	bad, _ := upstream(t, 401, `{"error":{"message":"Incorrect API key provided"}}`, nil)
	p2, _ := New(config.Provider{Type: "openai", BaseURL: bad.URL + "/v1", APIKey: "k"}, bad.Client(), noEnv)
	var perr *providers.Error
	if err := p2.Check(context.Background()); !errors.As(err, &perr) || perr.Status != 401 {
		t.Errorf("check with a bad key: %v", err)
	}
}

func TestForwardKeepsUnknownEndpointsBodies(t *testing.T) {
	srv, got := upstream(t, 200, `{"id":"resp_1","object":"response"}`, nil)
	p, _ := New(config.Provider{Type: "openai", BaseURL: srv.URL + "/v1", APIKey: "k"}, srv.Client(), noEnv)
	body := `{"model":"gpt-4o","input":"hi","reasoning":{"effort":"low"},"store":false}`
	resp, err := p.Forward(context.Background(), "/responses", &providers.Request{Body: []byte(body), Model: "gpt-4o", Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if (*got)[0].path != "/v1/responses" || (*got)[0].body != body {
		t.Errorf("forwarded %s %s", (*got)[0].path, (*got)[0].body)
	}
}
