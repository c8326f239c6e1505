package server

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"opentracy/backend/api"
	"opentracy/backend/config"
	"opentracy/backend/providers/local"
	"opentracy/backend/providers/local/localtest"
	"opentracy/backend/traces"
	"opentracy/gpu/download/downloadtest"
	"opentracy/gpu/hub"
	"opentracy/gpu/hub/hubtest"
)

const testHFToken = "hf_test-token-never-logged-0123456789"

// weightsSize is large enough for several progress reports and a download held mid-way.
const weightsSize = 3 << 20

// addModel puts a Qwen3-shaped repository (config, tokenizer, one weights file) on the Hub.
func addModel(fh *hubtest.Hub, id string) *hubtest.Repo {
	r := rand.New(rand.NewPCG(1, 2))
	weights := make([]byte, weightsSize)
	for i := range weights {
		weights[i] = byte(r.UintN(256))
	}
	rp := &hubtest.Repo{ID: id, Commit: strings.Repeat("c", 40), Files: map[string][]byte{
		"config.json":       []byte(`{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3","hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":8,"vocab_size":64}`),
		"tokenizer.json":    []byte(`{"version":"1.0","model":{"type":"BPE","vocab":{}}}`),
		"model.safetensors": weights,
	}}
	fh.Add(rp)
	return rp
}

// startWithHub runs a server whose Hugging Face endpoint is the fake Hub.
func startWithHub(t *testing.T, fh *hubtest.Hub, dataDir string, mutate ...func(*Options)) *testServer {
	t.Helper()
	ts := startServer(t, append([]func(*Options){func(o *Options) {
		o.Config.DataDir = dataDir
		o.Config.HuggingFace = config.HuggingFace{Endpoint: fh.URL, Token: testHFToken}
		o.Sink = traces.NewMemorySink(10)
	}}, mutate...)...)
	t.Cleanup(func() {
		if strings.Contains(ts.logs.String(), testHFToken) {
			t.Errorf("the Hugging Face token was logged:\n%s", ts.logs.String())
		}
	})
	return ts
}

// jobOf decodes a job from an answer.
func jobOf(t *testing.T, body string) api.Job {
	t.Helper()
	var j api.Job
	if err := json.Unmarshal([]byte(body), &j); err != nil || j.ID == "" {
		t.Fatalf("not a job: %s (%v)", body, err)
	}
	return j
}

// waitJob polls a job until it is no longer running.
func waitJob(t *testing.T, ts *testServer, id string) api.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := ts.send(t, "GET", "/api/jobs/"+id, "")
		if resp.StatusCode != 200 {
			t.Fatalf("job %s: %d %s", id, resp.StatusCode, body)
		}
		if j := jobOf(t, body); j.State != api.JobRunning {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still running after 30s: %s", id, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitProgress waits until a running job reports at least n bytes done.
func waitProgress(t *testing.T, ts *testServer, id string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := ts.send(t, "GET", "/api/jobs/"+id, "")
		j := jobOf(t, body)
		if j.State != api.JobRunning {
			t.Fatalf("job ended: %+v", j)
		}
		if j.Progress.Done >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %d bytes after 10s, want %d", id, j.Progress.Done, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (ts *testServer) localModels(t *testing.T) api.LocalModels {
	t.Helper()
	resp, body := ts.send(t, "GET", "/api/local-models", "")
	if resp.StatusCode != 200 {
		t.Fatalf("local models: %d %s", resp.StatusCode, body)
	}
	var out api.LocalModels
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// gatewayModels lists /v1/models.
func (ts *testServer) gatewayModels(t *testing.T) []string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.base+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ids []string
	for _, m := range gjson.Get(readBody(t, resp), "data.#.id").Array() {
		ids = append(ids, m.String())
	}
	return ids
}

// jobEvents collects the "job" events of the server's event stream.
type jobEvents struct {
	mu   sync.Mutex
	jobs []api.Job
}

func (ts *testServer) watchJobs(t *testing.T) *jobEvents {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.base+"/api/events", nil)
	req.Header.Set(TokenHeader, testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	ev := &jobEvents{}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[len("event: "):]
				if event == string(api.EventHello) {
					close(started)
				}
			case strings.HasPrefix(line, "data: ") && event == string(api.EventJob):
				var j api.Job
				if json.Unmarshal([]byte(line[len("data: "):]), &j) == nil {
					ev.mu.Lock()
					ev.jobs = append(ev.jobs, j)
					ev.mu.Unlock()
				}
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no hello on the event stream")
	}
	return ev
}

// of returns the events of one job so far.
func (e *jobEvents) of(id string) []api.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []api.Job
	for _, j := range e.jobs {
		if j.ID == id {
			out = append(out, j)
		}
	}
	return out
}

// waitFinal waits for the event that ends a job.
func (e *jobEvents) waitFinal(t *testing.T, id string) []api.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := e.of(id)
		if len(evs) > 0 && evs[len(evs)-1].State != api.JobRunning {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no final event for job %s after 30s: %+v", id, evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestModelDownloadWithProgressEvents(t *testing.T) {
	fh := hubtest.New(t)
	rp := addModel(fh, "acme/Tiny-Qwen")
	ts := startWithHub(t, fh, t.TempDir())
	evs := ts.watchJobs(t)

	empty := ts.localModels(t)
	if len(empty.Models) != 0 || len(empty.Students) != 0 || len(empty.Downloads) != 0 || empty.Provider != "local" {
		t.Fatalf("before: %+v", empty)
	}
	// The gateway's model list is cached: the download must still show up in it at once.
	if slices.Contains(ts.gatewayModels(t), "local/acme--Tiny-Qwen") {
		t.Fatal("listed before the download")
	}

	resp, body := ts.send(t, "POST", "/api/local-models/download", `{"repo":"acme/Tiny-Qwen"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("download: %d %s", resp.StatusCode, body)
	}
	job := jobOf(t, body)
	if job.Kind != api.JobModelDownload || job.State != api.JobRunning || job.Repo != "acme/Tiny-Qwen" || job.Model != "acme--Tiny-Qwen" ||
		resp.Header.Get("Location") != "/api/jobs/"+job.ID {
		t.Fatalf("job %+v, location %q", job, resp.Header.Get("Location"))
	}
	final := waitJob(t, ts, job.ID)
	if final.State != api.JobDone || final.Error != "" || final.FinishedAt == nil || final.Progress.Total == 0 ||
		final.Progress.Done != final.Progress.Total || final.Revision != "main" {
		t.Fatalf("final job %+v", final)
	}

	events := evs.waitFinal(t, job.ID)
	sawWeights := false
	for _, e := range events {
		p := e.Progress
		if p.File == "model.safetensors" && p.FileTotal == weightsSize && p.FileCount == 3 && p.Total > weightsSize {
			sawWeights = true
		}
		if p.Done > p.Total && p.Total > 0 {
			t.Errorf("progress beyond the total: %+v", p)
		}
	}
	if !sawWeights || events[0].State != api.JobRunning || events[len(events)-1].State != api.JobDone {
		t.Errorf("events %+v", events)
	}
	for _, r := range fh.Requests("") {
		if r.Authorization != "Bearer "+testHFToken {
			t.Errorf("request %s without the token: %q", r.Path, r.Authorization)
		}
	}

	list := ts.localModels(t)
	if len(list.Models) != 1 || len(list.Downloads) != 0 {
		t.Fatalf("after: %+v", list)
	}
	m := list.Models[0]
	if m.Name != "acme--Tiny-Qwen" || m.Repo != rp.ID || m.Commit != rp.Commit || m.Family != hub.FamilyQwen3 || !m.Complete ||
		!m.Ready || m.Problem != "" || m.Downloading || m.Loaded || m.SizeBytes < weightsSize || m.DownloadedAt == nil || m.Params == 0 {
		t.Errorf("model %+v", m)
	}
	if !slices.Contains(ts.gatewayModels(t), "local/acme--Tiny-Qwen") {
		t.Error("the downloaded model is not in /v1/models")
	}

	// Downloading it again finds it complete at the same commit: no file is fetched again.
	before := len(fh.Requests(fh.FilePath(rp, "model.safetensors")))
	_, body = ts.send(t, "POST", "/api/local-models/download", `{"repo":"acme/Tiny-Qwen","revision":"main"}`)
	if again := waitJob(t, ts, jobOf(t, body).ID); again.State != api.JobDone ||
		len(fh.Requests(fh.FilePath(rp, "model.safetensors"))) != before {
		t.Errorf("second download %+v fetched the weights again", again)
	}

	resp, body = ts.send(t, "DELETE", "/api/local-models/acme--Tiny-Qwen", "")
	if resp.StatusCode != 200 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	var after api.LocalModels
	if err := json.Unmarshal([]byte(body), &after); err != nil || len(after.Models) != 0 {
		t.Fatalf("delete answered %s (%v)", body, err)
	}
	if _, err := os.Stat(filepath.Join(ts.engine.hub.Dir(), "acme--Tiny-Qwen")); !os.IsNotExist(err) {
		t.Errorf("model folder left: %v", err)
	}
	if slices.Contains(ts.gatewayModels(t), "local/acme--Tiny-Qwen") {
		t.Error("the deleted model is still in /v1/models")
	}
	resp, body = ts.send(t, "DELETE", "/api/local-models/acme--Tiny-Qwen", "")
	wantErrorBody(t, resp.StatusCode, body, 404, "model_not_found")
	if strings.Contains(body, testHFToken) {
		t.Error("the token leaked into an answer")
	}
}

func TestModelDownloadRefusals(t *testing.T) {
	fh := hubtest.New(t)
	ts := startWithHub(t, fh, t.TempDir())

	for _, tc := range []struct{ body, code, mention string }{
		{`{"repo":"not a repo"}`, "invalid_repo", "owner/name"},
		{`{"repo":""}`, "invalid_repo", "Qwen/Qwen3-0.6B"},
		{`{"repo":"../etc/passwd"}`, "invalid_repo", "not a Hugging Face repository id"},
		{`{"repo":"acme/x","revision":"main branch"}`, "invalid_revision", "revision"},
		{`{"repo":"acme/x","extra":1}`, "invalid_json", "extra"},
	} {
		resp, body := ts.send(t, "POST", "/api/local-models/download", tc.body)
		wantErrorBody(t, resp.StatusCode, body, 400, tc.code)
		if msg := gjson.Get(body, "error.message").String(); !strings.Contains(msg, tc.mention) {
			t.Errorf("%s: message %q does not mention %q", tc.body, msg, tc.mention)
		}
	}

	// A repository the Hub does not have: the job fails and says why.
	_, body := ts.send(t, "POST", "/api/local-models/download", `{"repo":"acme/missing"}`)
	failed := waitJob(t, ts, jobOf(t, body).ID)
	if failed.State != api.JobFailed || !strings.Contains(failed.Error, "not found") {
		t.Errorf("job %+v", failed)
	}
	if dl := ts.localModels(t).Downloads; len(dl) != 1 || dl[0].ID != failed.ID {
		t.Errorf("the failed download is not listed: %+v", dl)
	}
	resp, body := ts.send(t, "DELETE", "/api/local-models/download/"+failed.ID, "")
	wantErrorBody(t, resp.StatusCode, body, 409, "job_not_running")
	resp, _ = ts.send(t, "DELETE", "/api/jobs/"+failed.ID, "")
	if resp.StatusCode != http.StatusNoContent || len(ts.localModels(t).Downloads) != 0 {
		t.Errorf("dismiss: %d", resp.StatusCode)
	}
	for _, path := range []string{"/api/jobs/job_nope", "/api/local-models/download/job_nope"} {
		resp, body = ts.send(t, "DELETE", path, "")
		wantErrorBody(t, resp.StatusCode, body, 404, "job_not_found")
	}
	resp, body = ts.send(t, "GET", "/api/jobs/job_nope", "")
	wantErrorBody(t, resp.StatusCode, body, 404, "job_not_found")
	resp, body = ts.send(t, "DELETE", "/api/local-models/nothing-here", "")
	wantErrorBody(t, resp.StatusCode, body, 404, "model_not_found")
}

func TestModelDownloadConflictCancelAndResume(t *testing.T) {
	fh := hubtest.New(t)
	rp := addModel(fh, "acme/Tiny-Qwen")
	weights := fh.FilePath(rp, "model.safetensors")
	fh.Fail(weights, downloadtest.Fault{StallAfter: 1 << 20})
	ts := startWithHub(t, fh, t.TempDir())
	evs := ts.watchJobs(t)

	_, body := ts.send(t, "POST", "/api/local-models/download", `{"repo":"acme/Tiny-Qwen"}`)
	job := jobOf(t, body)
	waitProgress(t, ts, job.ID, 1<<20)

	resp, body := ts.send(t, "POST", "/api/local-models/download", `{"repo":"acme/Tiny-Qwen"}`)
	wantErrorBody(t, resp.StatusCode, body, 409, "job_running")
	if !strings.Contains(body, job.ID) {
		t.Errorf("the conflict does not name the running job: %s", body)
	}
	resp, body = ts.send(t, "DELETE", "/api/local-models/acme--Tiny-Qwen", "")
	wantErrorBody(t, resp.StatusCode, body, 409, "model_busy")
	resp, body = ts.send(t, "DELETE", "/api/jobs/"+job.ID, "")
	wantErrorBody(t, resp.StatusCode, body, 409, "job_running")

	list := ts.localModels(t)
	if len(list.Models) != 1 || !list.Models[0].Downloading || list.Models[0].Ready ||
		len(list.Downloads) != 1 || list.Downloads[0].State != api.JobRunning {
		t.Fatalf("while downloading: %+v", list)
	}
	if running := evs.of(job.ID); len(running) == 0 || running[len(running)-1].Progress.Done < 1<<20 {
		t.Errorf("no progress event for the first megabyte: %+v", running)
	}

	resp, body = ts.send(t, "DELETE", "/api/local-models/download/"+job.ID, "")
	if resp.StatusCode != 200 {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	if canceled := jobOf(t, body); canceled.State != api.JobCanceled || !strings.Contains(canceled.Error, "resume") {
		t.Fatalf("canceled job %+v", canceled)
	}
	list = ts.localModels(t)
	if len(list.Models) != 1 || list.Models[0].Complete || list.Models[0].Downloading || list.Models[0].Problem == "" ||
		len(list.Downloads) != 1 || list.Downloads[0].State != api.JobCanceled {
		t.Fatalf("after cancel: %+v", list)
	}

	// Downloading again resumes from the partial file and replaces the canceled record.
	_, body = ts.send(t, "POST", "/api/local-models/download", `{"repo":"acme/Tiny-Qwen"}`)
	if done := waitJob(t, ts, jobOf(t, body).ID); done.State != api.JobDone {
		t.Fatalf("resumed job %+v", done)
	}
	reqs := fh.Requests(weights)
	if last := reqs[len(reqs)-1]; last.Range != "bytes=1048576-" || last.Sent != weightsSize-1<<20 {
		t.Errorf("not resumed: %+v", reqs)
	}
	list = ts.localModels(t)
	if len(list.Downloads) != 0 || len(list.Models) != 1 || !list.Models[0].Ready {
		t.Errorf("after the resumed download: %+v", list)
	}
}

func TestInterruptedDownloadSurvivesARestart(t *testing.T) {
	fh := hubtest.New(t)
	rp := addModel(fh, "acme/Tiny-Qwen")
	weights := fh.FilePath(rp, "model.safetensors")
	fh.Fail(weights, downloadtest.Fault{StallAfter: 1 << 20})
	dataDir := t.TempDir()

	first := startWithHub(t, fh, dataDir)
	_, body := first.send(t, "POST", "/api/local-models/download", `{"repo":"acme/Tiny-Qwen"}`)
	job := jobOf(t, body)
	waitProgress(t, first, job.ID, 1<<20)
	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	second := startWithHub(t, fh, dataDir)
	list := second.localModels(t)
	if len(list.Downloads) != 1 {
		t.Fatalf("downloads after the restart: %+v", list.Downloads)
	}
	if d := list.Downloads[0]; d.ID != job.ID || d.State != api.JobInterrupted || !strings.Contains(d.Error, "resume") ||
		d.Repo != "acme/Tiny-Qwen" || d.Progress.Done < 1<<20 || d.FinishedAt == nil {
		t.Errorf("interrupted download %+v", d)
	}
	if len(list.Models) != 1 || list.Models[0].Complete || list.Models[0].Downloading {
		t.Errorf("the partial model %+v", list.Models)
	}

	_, body = second.send(t, "POST", "/api/local-models/download", `{"repo":"acme/Tiny-Qwen"}`)
	if done := waitJob(t, second, jobOf(t, body).ID); done.State != api.JobDone {
		t.Fatalf("resumed %+v", done)
	}
	reqs := fh.Requests(weights)
	if last := reqs[len(reqs)-1]; last.Range != "bytes=1048576-" {
		t.Errorf("not resumed after the restart: %+v", reqs)
	}
	if list := second.localModels(t); len(list.Downloads) != 0 || !list.Models[0].Ready {
		t.Errorf("after resuming: %+v", list)
	}
}

func TestJobsCutShortByAKillAreInterrupted(t *testing.T) {
	dataDir := t.TempDir()
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := jobsFile{Jobs: []api.Job{
		{ID: "job_a", Kind: api.JobModelDownload, State: api.JobRunning, Repo: "acme/a", Model: "acme--a", CreatedAt: started, UpdatedAt: started,
			Progress: api.JobProgress{Done: 10, Total: 100, BytesPerSec: 5}},
		{ID: "job_b", Kind: api.JobRuntimeInstall, State: api.JobFailed, Error: "boom", CreatedAt: started, UpdatedAt: started},
	}}
	data, _ := json.Marshal(f)
	if err := os.WriteFile(filepath.Join(dataDir, JobsFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.Config.DataDir = dataDir; o.Sink = traces.NewMemorySink(1) })
	_, body := ts.send(t, "GET", "/api/jobs", "")
	var jobs []api.Job
	if err := json.Unmarshal([]byte(body), &jobs); err != nil || len(jobs) != 2 {
		t.Fatalf("jobs %s (%v)", body, err)
	}
	if a := jobs[0]; a.State != api.JobInterrupted || a.Error == "" || a.Progress.Done != 10 || a.Progress.BytesPerSec != 0 || a.FinishedAt == nil {
		t.Errorf("killed job %+v", a)
	}
	if b := jobs[1]; b.State != api.JobFailed || b.Error != "boom" {
		t.Errorf("finished job changed: %+v", b)
	}
	// The file says so too, and is private.
	st, err := os.Stat(filepath.Join(dataDir, JobsFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("jobs file: %v %v", st, err)
	}
	saved, _ := os.ReadFile(filepath.Join(dataDir, JobsFile))
	if !strings.Contains(string(saved), `"interrupted"`) {
		t.Errorf("the file still says running:\n%s", saved)
	}
}

func TestUnreadableJobsFileIsSetAside(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, JobsFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.Config.DataDir = dataDir; o.Sink = traces.NewMemorySink(1) })
	if _, body := ts.send(t, "GET", "/api/jobs", ""); body != "[]\n" {
		t.Errorf("jobs %s", body)
	}
	if _, err := os.Stat(filepath.Join(dataDir, JobsFile+".bad")); err != nil {
		t.Errorf("not set aside: %v", err)
	}
}

func TestLocalModelsLoadedStudentsAndDelete(t *testing.T) {
	ts, _, lp, _ := startWithLocalModel(t)
	adapter := filepath.Join(t.TempDir(), "adapter")
	localtest.WriteAdapter(t, adapter, 3)
	if _, err := lp.Registry().AddStudent(t.Context(), local.StudentSpec{Name: "helper", BaseModel: "tiny", AdapterDir: adapter, Description: "test"}); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequestWithContext(t.Context(), "POST", ts.base+"/v1/chat/completions",
		strings.NewReader(`{"model":"local/tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	chat, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, chat); chat.StatusCode != 200 {
		t.Fatalf("chat: %d %s", chat.StatusCode, body)
	}
	chat.Body.Close()

	list := ts.localModels(t)
	if len(list.Models) != 1 || len(list.Students) != 1 {
		t.Fatalf("list %+v", list)
	}
	if m := list.Models[0]; m.Name != "tiny" || !m.Ready || !m.Loaded || m.Family != hub.FamilyQwen3 {
		t.Errorf("model %+v", m)
	}
	if s := list.Students[0]; s.Name != "helper" || s.Base != "tiny" || !s.Ready || s.Loaded || s.Adapter == "" || s.Description != "test" || s.CreatedAt == nil {
		t.Errorf("student %+v", s)
	}

	resp, body := ts.send(t, "DELETE", "/api/local-models/tiny", "")
	wantErrorBody(t, resp.StatusCode, body, 409, "model_busy")
	if !strings.Contains(body, "helper") {
		t.Errorf("the refusal does not name the student: %s", body)
	}
	resp, body = ts.send(t, "DELETE", "/api/local-models/helper", "")
	if resp.StatusCode != 200 || gjson.Get(body, "students.#").Int() != 0 {
		t.Fatalf("delete student: %d %s", resp.StatusCode, body)
	}
	// A loaded model is unloaded, then deleted, even one put there by hand.
	resp, body = ts.send(t, "DELETE", "/api/local-models/tiny", "")
	if resp.StatusCode != 200 || gjson.Get(body, "models.#").Int() != 0 {
		t.Fatalf("delete model: %d %s", resp.StatusCode, body)
	}
	if len(lp.Loaded()) != 0 {
		t.Errorf("still loaded: %+v", lp.Loaded())
	}
	if _, err := os.Stat(filepath.Join(lp.Registry().ModelsDir(), "tiny")); !os.IsNotExist(err) {
		t.Errorf("folder left: %v", err)
	}
}
