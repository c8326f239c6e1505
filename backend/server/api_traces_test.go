package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"opentracy/backend/api"
	"opentracy/backend/providers/openai/openaitest"
)

// startWithStore runs the server with its default durable store in a fresh data dir and a fake
// OpenAI upstream.
func startWithStore(t *testing.T) *testServer {
	t.Helper()
	fake := openaitest.New()
	t.Cleanup(fake.Close)
	dataDir := t.TempDir()
	return startServer(t, func(o *Options) {
		o.Config.DataDir = dataDir
		o.Env = envOf(map[string]string{"OPENAI_API_KEY": "sk-upstream", "OPENAI_BASE_URL": fake.BaseURL()})
	})
}

// chat sends one chat completion through the gateway and returns its trace id.
func (ts *testServer) chat(t *testing.T, model, prompt, metadata string) string {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":%q}]}`, model, prompt)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", ts.base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	if metadata != "" {
		req.Header.Set("X-OpenTracy-Metadata", metadata)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	return resp.Header.Get("X-OpenTracy-Trace-Id")
}

func (ts *testServer) page(t *testing.T, query string) api.TracePage {
	t.Helper()
	resp, body := ts.send(t, "GET", "/api/traces?"+query, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/traces?%s: %d %s", query, resp.StatusCode, body)
	}
	var p api.TracePage
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func pageIDs(p api.TracePage) []string {
	out := []string{}
	for _, s := range p.Traces {
		out = append(out, s.ID)
	}
	return out
}

// TestTracesAPI: requests through the gateway arrive live on /api/events, then list, filter,
// search, open and aggregate as the Traces and Overview screens do.
func TestTracesAPI(t *testing.T) {
	ts := startWithStore(t)
	ev, _ := ts.events(t)

	ids := []string{
		ts.chat(t, "gpt-4o-mini", "What is the capital of France?", `{"team":"search"}`),
		ts.chat(t, "gpt-4o", "Write a haiku about otters", `{"team":"docs"}`),
		ts.chat(t, "gpt-4o-mini", "Translate otters into German", `{"team":"docs"}`),
	}
	for i := range ids {
		var sm api.TraceSummary
		if err := json.Unmarshal([]byte(ev.nextOf(string(api.EventTrace)).data), &sm); err != nil {
			t.Fatal(err)
		}
		if sm.ID != ids[i] || sm.Provider != "openai" || sm.Status != 200 {
			t.Errorf("live trace %d = %+v, want id %s from openai", i, sm, ids[i])
		}
	}

	if got := pageIDs(ts.page(t, "")); !equal(got, []string{ids[2], ids[1], ids[0]}) {
		t.Errorf("list = %v, want newest first %v", got, ids)
	}
	cases := map[string][]string{
		"model=gpt-4o-mini":                  {ids[2], ids[0]},
		"model=gpt-4o&model=gpt-4o-mini":     {ids[2], ids[1], ids[0]},
		"meta=team%3Ddocs":                   {ids[2], ids[1]},
		"meta=team%3Ddocs&model=gpt-4o-mini": {ids[2]},
		"q=otters":                           {ids[2], ids[1]},
		"status=error":                       {},
		"provider=openai&limit=1":            {ids[2]},
		"from=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)): {},
	}
	for query, want := range cases {
		if got := pageIDs(ts.page(t, query)); !equal(got, want) {
			t.Errorf("?%s = %v, want %v", query, got, want)
		}
	}
	p := ts.page(t, "limit=2")
	if p.NextCursor == "" || len(p.Traces) != 2 {
		t.Fatalf("first page of 2: %+v", p)
	}
	if got := pageIDs(ts.page(t, "limit=2&cursor="+url.QueryEscape(p.NextCursor))); !equal(got, []string{ids[0]}) {
		t.Errorf("second page = %v", got)
	}
	if first := p.Traces[0]; first.Preview != "Translate otters into German" || first.Usage.PromptTokens == 0 || first.LatencyMillis <= 0 {
		t.Errorf("summary = %+v, want the last user message as preview, tokens and latency", first)
	}

	resp, body := ts.send(t, "GET", "/api/traces/"+ids[0], "")
	if resp.StatusCode != 200 {
		t.Fatalf("get trace: %d %s", resp.StatusCode, body)
	}
	var d api.TraceDetail
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if gjson.Get(body, "input.1.content").String() != "What is the capital of France?" ||
		gjson.Get(body, "output.0.message.role").String() != "assistant" ||
		d.Metadata["team"] != "search" || len(d.Attempts) != 1 || d.Attempts[0].Status != 200 {
		t.Errorf("detail = %s", body)
	}
	if d.CostBreakdown == nil || d.CostBreakdown.Total <= 0 || !near(d.CostBreakdown.Total, d.CostUSD) {
		t.Errorf("cost breakdown %+v, want parts summing to the trace's cost %v", d.CostBreakdown, d.CostUSD)
	}

	resp, body = ts.send(t, "GET", "/api/traces/nope", "")
	wantErrorBody(t, resp.StatusCode, body, 404, "trace_not_found")
	for _, bad := range []string{"status=maybe", "from=yesterday", "minCost=cheap", "meta=team", "limit=9999"} {
		resp, body := ts.send(t, "GET", "/api/traces?"+bad, "")
		wantErrorBody(t, resp.StatusCode, body, 400, "invalid_filter")
	}

	from := url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339))
	to := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	resp, body = ts.send(t, "GET", "/api/traces/aggregate?bucket=2h&groupBy=model&from="+from+"&to="+to, "")
	if resp.StatusCode != 200 {
		t.Fatalf("aggregate: %d %s", resp.StatusCode, body)
	}
	var agg api.TraceAggregates
	if err := json.Unmarshal([]byte(body), &agg); err != nil {
		t.Fatal(err)
	}
	requests := map[string]int64{}
	for _, s := range agg.Series {
		for _, b := range s.Buckets {
			requests[s.Group] += b.Requests
		}
	}
	if requests["gpt-4o-mini"] != 2 || requests["gpt-4o"] != 1 {
		t.Errorf("aggregate by model = %v (%s)", requests, body)
	}
	resp, body = ts.send(t, "GET", "/api/traces/aggregate?groupBy=team", "")
	wantErrorBody(t, resp.StatusCode, body, 400, "invalid_filter")
}

// TestTracesExportImport: an export re-imports into another instance with ids and timestamps
// kept, a second import changes nothing, and OpenAI chat records and bad lines are handled
// line by line.
func TestTracesExportImport(t *testing.T) {
	src := startWithStore(t)
	for i := range 5 {
		src.chat(t, "gpt-4o-mini", fmt.Sprintf("question %d", i), `{"team":"a"}`)
	}
	waitListed(t, src, 5)
	resp, export := src.send(t, "GET", "/api/traces/export?model=gpt-4o-mini", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	lines := strings.Split(strings.TrimSpace(export), "\n")
	if len(lines) != 5 {
		t.Fatalf("export has %d lines, want 5", len(lines))
	}

	dst := startWithStore(t)
	resp, body := dst.send(t, "POST", "/api/traces/import", export)
	if resp.StatusCode != 200 || gjson.Get(body, "imported").Int() != 5 || gjson.Get(body, "errors.#").Int() != 0 {
		t.Fatalf("import: %d %s", resp.StatusCode, body)
	}
	orig, copied := src.page(t, ""), dst.page(t, "")
	if !equal(pageIDs(orig), pageIDs(copied)) || !orig.Traces[4].StartedAt.Equal(copied.Traces[4].StartedAt) {
		t.Errorf("imported %+v, want the same ids and times as %+v", copied, orig)
	}
	_, body = dst.send(t, "POST", "/api/traces/import", export)
	if gjson.Get(body, "imported").Int() != 0 || gjson.Get(body, "skipped").Int() != 5 {
		t.Errorf("second import: %s, want all skipped", body)
	}

	mixed := strings.Join([]string{
		`{"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"Hi there"},{"role":"assistant","content":"Hello!"}],"metadata":{"split":"train"}}`,
		`not json`,
		``,
		`{"id":"x"}`,
		`{"prompt":"legacy"}`,
	}, "\n")
	_, body = dst.send(t, "POST", "/api/traces/import", mixed)
	var res api.ImportResult
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if res.Imported != 1 || len(res.Errors) != 3 || res.Errors[0].Line != 2 || res.Errors[1].Line != 4 || res.Errors[2].Line != 5 {
		t.Errorf("mixed import = %s", body)
	}
	chat := dst.page(t, "meta=split%3Dtrain")
	if len(chat.Traces) != 1 || chat.Traces[0].Preview != "Hi there" {
		t.Fatalf("imported chat record: %+v", chat)
	}
	_, body = dst.send(t, "GET", "/api/traces/"+chat.Traces[0].ID, "")
	if gjson.Get(body, "output.0.message.content").String() != "Hello!" || gjson.Get(body, "input.#").Int() != 2 {
		t.Errorf("chat record detail: %s", body)
	}
}

// waitListed waits for n traces in the store: the writer commits in the background.
func waitListed(t *testing.T, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(ts.page(t, "").Traces) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d traces listed after 5s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantErrorBody(t *testing.T, status int, body string, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || gjson.Get(body, "error.code").String() != code || gjson.Get(body, "error.message").String() == "" {
		t.Errorf("got %d %s, want %d with code %s and a message", status, body, wantStatus, code)
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

// TestTraceRetention: a server started with trace_retention deletes older traces at once and
// keeps the rest.
func TestTraceRetention(t *testing.T) {
	dataDir := t.TempDir()
	first := startServer(t, func(o *Options) { o.Config.DataDir = dataDir })
	now := time.Now().UTC()
	var lines []string
	for i, age := range []time.Duration{72 * time.Hour, 49 * time.Hour, 47 * time.Hour, time.Minute} {
		lines = append(lines, fmt.Sprintf(`{"id":"t%d","started_at":%q,"endpoint":"chat.completions","model":"m","status":200}`, i, now.Add(-age).Format(time.RFC3339Nano)))
	}
	if _, body := first.send(t, "POST", "/api/traces/import", strings.Join(lines, "\n")); gjson.Get(body, "imported").Int() != 4 {
		t.Fatalf("import: %s", body)
	}
	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, func(o *Options) {
		o.Config.DataDir = dataDir
		o.Config.TraceRetention = 48 * time.Hour
	})
	// The log line follows the deletion: wait for both.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := pageIDs(second.page(t, ""))
		logged := strings.Contains(second.logs.String(), "deleted old traces")
		if equal(got, []string{"t3", "t2"}) && logged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after retention: %v (want t3 and t2 only), logged %v:\n%s", got, logged, second.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
