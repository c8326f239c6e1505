package bedrock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/providertest"
)

func TestNew(t *testing.T) {
	creds := map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range creds {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	type result struct {
		Name, Base, Region, Bearer string
		AKID, Secret, Session      string
	}
	tests := []struct {
		name    string
		cfg     config.Provider
		env     map[string]string
		want    result
		wantErr []string
	}{
		{
			name: "SigV4 from the environment, default endpoint from AWS_REGION",
			cfg:  config.Provider{Type: Type},
			env:  with(map[string]string{"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "us-west-2", "AWS_SESSION_TOKEN": "tok"}),
			want: result{Name: "bedrock", Base: "https://bedrock-runtime.eu-west-3.amazonaws.com", Region: "eu-west-3",
				AKID: "AKID", Secret: "secret", Session: "tok"},
		},
		{
			name: "AWS_DEFAULT_REGION when AWS_REGION is unset",
			cfg:  config.Provider{Type: Type},
			env:  with(map[string]string{"AWS_DEFAULT_REGION": "us-west-2"}),
			want: result{Name: "bedrock", Base: "https://bedrock-runtime.us-west-2.amazonaws.com", Region: "us-west-2", AKID: "AKID", Secret: "secret"},
		},
		{
			name: "config region and base URL win over the environment",
			cfg:  config.Provider{Name: "aws", Type: Type, Region: "ap-northeast-1", BaseURL: "http://localhost:9000/"},
			env:  with(map[string]string{"AWS_REGION": "eu-west-3", "BEDROCK_BASE_URL": "https://proxy.example"}),
			want: result{Name: "aws", Base: "http://localhost:9000", Region: "ap-northeast-1", AKID: "AKID", Secret: "secret"},
		},
		{
			name: "base URL from BEDROCK_BASE_URL",
			cfg:  config.Provider{Type: Type},
			env:  with(map[string]string{"AWS_REGION": "us-east-1", "BEDROCK_BASE_URL": "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com"}),
			want: result{Name: "bedrock", Base: "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com", Region: "us-east-1", AKID: "AKID", Secret: "secret"},
		},
		{
			name: "a Bedrock API key in the environment replaces SigV4",
			cfg:  config.Provider{Type: Type},
			env:  map[string]string{"AWS_REGION": "us-east-1", "AWS_BEARER_TOKEN_BEDROCK": "ABSK-env"},
			want: result{Name: "bedrock", Base: "https://bedrock-runtime.us-east-1.amazonaws.com", Region: "us-east-1", Bearer: "ABSK-env"},
		},
		{
			name: "the config key wins over the environment's",
			cfg:  config.Provider{Type: Type, APIKey: "ABSK-cfg", Region: "us-east-1"},
			env:  with(map[string]string{"AWS_BEARER_TOKEN_BEDROCK": "ABSK-env"}),
			want: result{Name: "bedrock", Base: "https://bedrock-runtime.us-east-1.amazonaws.com", Region: "us-east-1", Bearer: "ABSK-cfg"},
		},
		{
			name: "api_key_env names the key variable",
			cfg:  config.Provider{Type: Type, APIKeyEnv: "TEAM_BEDROCK_KEY", Region: "us-east-1"},
			env:  map[string]string{"TEAM_BEDROCK_KEY": "ABSK-team", "AWS_BEARER_TOKEN_BEDROCK": "ABSK-env"},
			want: result{Name: "bedrock", Base: "https://bedrock-runtime.us-east-1.amazonaws.com", Region: "us-east-1", Bearer: "ABSK-team"},
		},
		{
			name: "a bearer key with a base URL needs no region",
			cfg:  config.Provider{Type: Type, APIKey: "ABSK-cfg", BaseURL: "https://gateway.example/bedrock"},
			want: result{Name: "bedrock", Base: "https://gateway.example/bedrock", Bearer: "ABSK-cfg"},
		},
		{
			name:    "no region names where to set one",
			cfg:     config.Provider{Type: Type},
			env:     creds,
			wantErr: []string{"region", "AWS_REGION", "AWS_DEFAULT_REGION"},
		},
		{
			name:    "SigV4 needs a region even with a base URL",
			cfg:     config.Provider{Type: Type, BaseURL: "http://localhost:9000"},
			env:     creds,
			wantErr: []string{"AWS_REGION"},
		},
		{
			name:    "no credentials names the variables",
			cfg:     config.Provider{Type: Type, Region: "us-east-1"},
			env:     map[string]string{"AWS_ACCESS_KEY_ID": "AKID"},
			wantErr: []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_BEARER_TOKEN_BEDROCK"},
		},
		{
			name:    "base URL must be http(s)",
			cfg:     config.Provider{Type: Type, Region: "us-east-1", BaseURL: "bedrock-runtime.us-east-1.amazonaws.com"},
			env:     creds,
			wantErr: []string{"not an http(s) URL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg, nil, envMap(tt.env))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("err = %v, want it to mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := result{Name: p.Name(), Base: p.base, Region: p.region, Bearer: p.bearer,
				AKID: p.creds.AccessKeyID, Secret: p.creds.SecretAccessKey, Session: p.creds.SessionToken}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("provider (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatSigV4(t *testing.T) {
	tests := []struct {
		name        string
		session     string
		wantHeaders []string
	}{
		{name: "long-term keys", wantHeaders: []string{"accept", "content-length", "content-type", "host", "x-amz-date", "x-team"}},
		{name: "temporary credentials", session: "FwoGZXIvYXdzEBYaDtest",
			wantHeaders: []string{"accept", "content-length", "content-type", "host", "x-amz-date", "x-amz-security-token", "x-team"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "converse_tool_use.json"))
			up.Header.Set("X-Amzn-Requestid", "5e8f7d62-1a2b-4c3d-8e9f-0a1b2c3d4e5f")
			up.Header.Set("Set-Cookie", "not=forwarded")
			env := testEnv(map[string]string{"AWS_SESSION_TOKEN": tt.session})
			p := newTestProvider(t, config.Provider{BaseURL: up.URL, Headers: map[string]string{"X-Team": "search"}}, env)

			resp, err := p.Chat(context.Background(), &providers.Request{
				Body: []byte(`{"model":"bedrock/haiku","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Weather in Paris?"}],
					"max_tokens":512,"temperature":0.2,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}}]}`),
				Model: testModel,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()

			got := up.Last(t)
			if got.Method != http.MethodPost || got.RequestURI != "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse" {
				t.Errorf("request = %s %s", got.Method, got.RequestURI)
			}
			if got.Path != "/model/"+testModel+"/converse" {
				t.Errorf("decoded path = %s", got.Path)
			}
			signed := checkSigV4(t, got, aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: tt.session})
			if diff := cmp.Diff(tt.wantHeaders, signed); diff != "" {
				t.Errorf("signed headers (-want +got):\n%s", diff)
			}
			if d := got.Header.Get("X-Amz-Date"); d != "20250314T150926Z" {
				t.Errorf("X-Amz-Date = %q", d)
			}
			if v := got.Header.Get("X-Amz-Security-Token"); v != tt.session {
				t.Errorf("X-Amz-Security-Token = %q, want %q", v, tt.session)
			}
			wantBody := `{"system":[{"text":"Be brief."}],"messages":[{"role":"user","content":[{"text":"Weather in Paris?"}]}],
				"inferenceConfig":{"maxTokens":512,"temperature":0.2},
				"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{"location":{"type":"string"}}}}}}]}}`
			if diff := jsonDiff(t, []byte(wantBody), got.Body); diff != "" {
				t.Errorf("converse request (-want +got):\n%s", diff)
			}

			out, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fromConverse(fixture(t, "converse_tool_use.json"), testID, testModel, testNow().Unix())
			if err != nil {
				t.Fatal(err)
			}
			if diff := jsonDiff(t, want, out); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			wantHeader := http.Header{"X-Amzn-Requestid": {"5e8f7d62-1a2b-4c3d-8e9f-0a1b2c3d4e5f"}}
			if diff := cmp.Diff(wantHeader, resp.Header); diff != "" {
				t.Errorf("kept headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatModelIDs(t *testing.T) {
	// Ids with ':' and ARNs with '/' travel escaped, and the signature covers the escaped path.
	tests := []struct{ model, wantURI string }{
		{"amazon.nova-lite-v1:0", "/model/amazon.nova-lite-v1%3A0/converse"},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
			"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "converse_text.json"))
			p := newTestProvider(t, config.Provider{BaseURL: up.URL}, testEnv(nil))
			resp, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"Hi"}]}`), Model: tt.model})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := up.Last(t)
			if got.RequestURI != tt.wantURI {
				t.Errorf("request URI = %s, want %s", got.RequestURI, tt.wantURI)
			}
			checkSigV4(t, got, aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret})
		})
	}
}

func TestChatBearer(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Provider
		env  map[string]string
		want string
	}{
		{name: "from AWS_BEARER_TOKEN_BEDROCK", env: testEnv(map[string]string{"AWS_BEARER_TOKEN_BEDROCK": "ABSK-env"}), want: "Bearer ABSK-env"},
		{name: "from the config", cfg: config.Provider{APIKey: "ABSK-cfg"}, env: map[string]string{"AWS_REGION": testRegion}, want: "Bearer ABSK-cfg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "converse_text.json"))
			tt.cfg.BaseURL = up.URL
			p := newTestProvider(t, tt.cfg, tt.env)
			resp, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"Hi"}]}`), Model: testModel})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := up.Last(t)
			if got.Path != "/model/"+testModel+"/converse" {
				t.Errorf("path = %s", got.Path)
			}
			if a := got.Header.Get("Authorization"); a != tt.want {
				t.Errorf("Authorization = %q, want %q", a, tt.want)
			}
			if d := got.Header.Get("X-Amz-Date"); d != "" {
				t.Errorf("X-Amz-Date = %q, want none with a bearer key", d)
			}
		})
	}
}

func TestChatStreaming(t *testing.T) {
	up := providertest.NewUpstream(t, http.StatusOK, "application/vnd.amazon.eventstream", streamFixture(t, "stream_tools.events.json"))
	p := newTestProvider(t, config.Provider{BaseURL: up.URL}, testEnv(nil))
	// The body's stream flag alone asks for a stream too.
	resp, err := p.Chat(context.Background(), &providers.Request{
		Body:  []byte(`{"messages":[{"role":"user","content":"Weather in Paris and Tokyo?"}],"stream":true,"stream_options":{"include_usage":true}}`),
		Model: testModel,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := up.Last(t)
	if got.RequestURI != "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream" {
		t.Errorf("request URI = %s", got.RequestURI)
	}
	if a := got.Header.Get("Accept"); a != "application/vnd.amazon.eventstream" {
		t.Errorf("Accept = %q", a)
	}
	checkSigV4(t, got, aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret})
	if diff := jsonDiff(t, []byte(`{"messages":[{"role":"user","content":[{"text":"Weather in Paris and Tokyo?"}]}]}`), got.Body); diff != "" {
		t.Errorf("converse request (-want +got):\n%s", diff)
	}
	out, err := readAllSmall(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "stream_tools.chat.golden", out)
}

func TestChatHTTPErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		errorType  string
		retryAfter string
		body       string
		wantBody   string
		wantRetry  time.Duration
		retryable  bool
	}{
		{
			name: "throttled", status: 429, errorType: "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", retryAfter: "3",
			body:      `{"message":"Too many requests, please wait before trying again. You have sent too many requests.  Wait before trying again."}`,
			wantBody:  `{"error":{"message":"Too many requests, please wait before trying again. You have sent too many requests.  Wait before trying again.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`,
			wantRetry: 3 * time.Second, retryable: true,
		},
		{
			name: "invalid request", status: 400, errorType: "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
			body:     `{"message":"A conversation must start with a user message. Try again with a conversation that starts with a user message."}`,
			wantBody: `{"error":{"message":"A conversation must start with a user message. Try again with a conversation that starts with a user message.","type":"invalid_request_error","param":null,"code":null}}`,
		},
		{
			name: "unavailable", status: 503, errorType: "ServiceUnavailableException",
			body:      `{"message":"Bedrock is unable to process your request."}`,
			wantBody:  `{"error":{"message":"Bedrock is unable to process your request.","type":"server_error","param":null,"code":"service_unavailable"}}`,
			retryable: true,
		},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, stream), func(t *testing.T) {
				up := providertest.NewUpstream(t, tt.status, "application/json", []byte(tt.body))
				up.Header.Set("X-Amzn-Errortype", tt.errorType)
				if tt.retryAfter != "" {
					up.Header.Set("Retry-After", tt.retryAfter)
				}
				p := newTestProvider(t, config.Provider{Name: "aws", BaseURL: up.URL}, testEnv(nil))
				_, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"Hi"}]}`), Model: testModel, Stream: stream})
				var pe *providers.Error
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want *providers.Error", err)
				}
				if pe.Provider != "aws" || pe.Status != tt.status || pe.RetryAfter != tt.wantRetry || pe.Retryable() != tt.retryable {
					t.Errorf("error = provider %q status %d retry after %v retryable %v", pe.Provider, pe.Status, pe.RetryAfter, pe.Retryable())
				}
				if diff := jsonDiff(t, []byte(tt.wantBody), pe.Body); diff != "" {
					t.Errorf("error body (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestChatRefusedLocally(t *testing.T) {
	// Requests Bedrock cannot take are refused with a 400 before any upstream call.
	tests := []struct{ name, body, model, want string }{
		{"n > 1", `{"messages":[{"role":"user","content":"Hi"}],"n":3}`, testModel, "n>1"},
		{"image by URL", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`, testModel, "data: URL"},
		{"no model", `{"messages":[{"role":"user","content":"Hi"}]}`, "", "no model id"},
	}
	up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "converse_text.json"))
	p := newTestProvider(t, config.Provider{BaseURL: up.URL}, testEnv(nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Chat(context.Background(), &providers.Request{Body: []byte(tt.body), Model: tt.model})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest || !strings.Contains(string(pe.Body), tt.want) ||
				!strings.Contains(string(pe.Body), `"invalid_request_error"`) {
				t.Fatalf("err = %v, want a 400 mentioning %q", err, tt.want)
			}
		})
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests, want none", n)
	}
}

func TestChatTransportAndBodyFailures(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close()
		p := newTestProvider(t, config.Provider{BaseURL: base}, testEnv(nil))
		_, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"Hi"}]}`), Model: testModel})
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Status != 0 || pe.Err == nil || !pe.Retryable() {
			t.Fatalf("err = %#v, want a retryable transport error", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "converse_text.json"))
		p := newTestProvider(t, config.Provider{BaseURL: up.URL}, testEnv(nil))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Chat(ctx, &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"Hi"}]}`), Model: testModel})
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Status != 0 || !errors.Is(err, context.Canceled) || pe.Retryable() {
			t.Fatalf("err = %v, want a non-retryable cancellation", err)
		}
	})
	t.Run("unreadable answer", func(t *testing.T) {
		up := providertest.NewUpstream(t, http.StatusOK, "text/html", []byte("<html>maintenance</html>"))
		p := newTestProvider(t, config.Provider{BaseURL: up.URL}, testEnv(nil))
		_, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"Hi"}]}`), Model: testModel})
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Status != http.StatusBadGateway || !strings.Contains(string(pe.Body), "unreadable") {
			t.Fatalf("err = %v, want a 502", err)
		}
	})
}

func TestNewIDs(t *testing.T) {
	a, b := newID(), newID()
	if !strings.HasPrefix(a, "chatcmpl-") || len(a) < len("chatcmpl-")+20 || a == b {
		t.Errorf("ids %q and %q are not fresh chatcmpl- ids", a, b)
	}
	if slices.Contains([]string{a, b}, testID) {
		t.Error("newID returned the test id")
	}
}

func TestSigV4CheckDetectsTampering(t *testing.T) {
	// The signature check in these tests is only worth something if it fails on a request that
	// differs from what was signed.
	up := providertest.NewUpstream(t, http.StatusOK, "application/json", fixture(t, "converse_text.json"))
	p := newTestProvider(t, config.Provider{BaseURL: up.URL, Headers: map[string]string{"X-Team": "search"}}, testEnv(nil))
	resp, err := p.Chat(context.Background(), &providers.Request{Body: []byte(`{"messages":[{"role":"user","content":"Hi"}]}`), Model: testModel})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	good := up.Last(t)
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
	if _, err := verifySigV4(good, creds); err != nil {
		t.Fatalf("untouched request: %v", err)
	}
	tests := []struct {
		name   string
		tamper func(r *providertest.Recorded)
		creds  aws.Credentials
	}{
		{name: "body", tamper: func(r *providertest.Recorded) { r.Body = []byte(strings.Replace(string(r.Body), "Hi", "Ho", 1)) }},
		{name: "path", tamper: func(r *providertest.Recorded) { r.RequestURI = strings.Replace(r.RequestURI, "haiku", "sonnet", 1) }},
		{name: "signed header", tamper: func(r *providertest.Recorded) { r.Header.Set("X-Team", "ads") }},
		{name: "date", tamper: func(r *providertest.Recorded) { r.Header.Set("X-Amz-Date", "20250314T150927Z") }},
		{name: "secret", creds: aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			r.Header = good.Header.Clone()
			r.Body = slices.Clone(good.Body)
			if tt.tamper != nil {
				tt.tamper(&r)
			}
			c := creds
			if tt.creds.AccessKeyID != "" {
				c = tt.creds
			}
			if _, err := verifySigV4(r, c); err == nil {
				t.Error("tampered request verified")
			}
		})
	}
}
