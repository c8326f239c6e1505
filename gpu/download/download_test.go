package download_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opentracy/gpu/download"
	"opentracy/gpu/download/downloadtest"
)

func content(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// client is quick to retry, so failure tests stay fast.
func client(logs *bytes.Buffer) *download.Client {
	c := &download.Client{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, ProgressEvery: time.Nanosecond}
	if logs != nil {
		c.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return c
}

func file(srv *downloadtest.Server, dir, name string, data []byte) download.File {
	return download.File{
		Name: name, URL: srv.URL + "/" + name, Path: filepath.Join(dir, name),
		Size: int64(len(data)), SHA256: sum(data),
	}
}

func mustEqualFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (%d bytes, want %d)", path, len(got), len(want))
	}
	if _, err := os.Stat(path + download.PartSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s.part still there: %v", path, err)
	}
}

func TestFetchVerifiesAndReportsProgress(t *testing.T) {
	srv := downloadtest.New(t)
	a, b := content(300_000, 1), content(1234, 2)
	srv.Put("/a.bin", a)
	srv.Put("/b.json", b)
	dir := filepath.Join(t.TempDir(), "new", "folder")
	files := []download.File{file(srv, dir, "a.bin", a), file(srv, dir, "b.json", b)}
	files[1].SHA256 = "" // size check only, like a small non-LFS file

	var reports []download.Progress
	if err := client(nil).Fetch(context.Background(), files, func(p download.Progress) { reports = append(reports, p) }); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, files[0].Path, a)
	mustEqualFile(t, files[1].Path, b)
	for _, f := range files {
		st, _ := os.Stat(f.Path)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f.Name, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v, want 0700", st.Mode().Perm())
	}

	last := reports[len(reports)-1]
	total := int64(len(a) + len(b))
	if !last.FileComplete || last.Done != total || last.Total != total || last.Index != 1 || last.Count != 2 {
		t.Fatalf("last report %+v", last)
	}
	var prev int64
	completes := 0
	for _, p := range reports {
		if p.Done < prev {
			t.Fatalf("overall progress went back: %+v after %d", p, prev)
		}
		prev = p.Done
		if p.FileComplete {
			completes++
		}
	}
	if completes != 2 {
		t.Fatalf("%d file-complete reports, want 2", completes)
	}
	if reports[len(reports)-2].BytesPerSec <= 0 && last.BytesPerSec <= 0 {
		t.Fatalf("no transfer rate reported: %+v", last)
	}

	// A second fetch finds both files in place and asks the server nothing.
	before := len(srv.Requests(""))
	if err := client(nil).Fetch(context.Background(), files, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Requests("")); n != before {
		t.Fatalf("second fetch made %d requests", n-before)
	}
}

func TestResumesAfterConnectionDrop(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(500_000, 3)
	srv.Put("/w.safetensors", data)
	srv.Fail("/w.safetensors", downloadtest.Fault{DropAfter: 200_000})
	dir := t.TempDir()
	f := file(srv, dir, "w.safetensors", data)

	var logs bytes.Buffer
	if err := client(&logs).Fetch(context.Background(), []download.File{f}, nil); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)

	reqs := srv.Requests("/w.safetensors")
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2: %+v", len(reqs), reqs)
	}
	if reqs[0].Range != "" || reqs[0].Sent != 200_000 {
		t.Fatalf("first request %+v", reqs[0])
	}
	if reqs[1].Range != "bytes=200000-" || reqs[1].Status != http.StatusPartialContent {
		t.Fatalf("second request did not resume: %+v", reqs[1])
	}
	if sent := srv.Sent("/w.safetensors"); sent != int64(len(data)) {
		t.Fatalf("server sent %d bytes for a %d-byte file: the resume re-downloaded", sent, len(data))
	}
	if !strings.Contains(logs.String(), "resuming download") {
		t.Fatalf("no resume logged:\n%s", logs.String())
	}
}

func TestResumesAPartFileFromAnEarlierRun(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(100_000, 4)
	srv.Put("/m.bin", data)
	dir := t.TempDir()
	f := file(srv, dir, "m.bin", data)
	if err := os.WriteFile(f.Path+download.PartSuffix, data[:60_000], 0o600); err != nil {
		t.Fatal(err)
	}
	var first download.Progress
	err := client(nil).Fetch(context.Background(), []download.File{f}, func(p download.Progress) {
		if first.File == "" {
			first = p
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)
	reqs := srv.Requests("/m.bin")
	if len(reqs) != 1 || reqs[0].Range != "bytes=60000-" || reqs[0].Sent != 40_000 {
		t.Fatalf("requests %+v", reqs)
	}
	if first.FileDone != 60_000 || first.FileTotal != 100_000 {
		t.Fatalf("first report should count the resumed bytes: %+v", first)
	}
}

func TestRestartsWhenServerIgnoresRange(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(50_000, 5)
	srv.Put("/x.bin", data)
	srv.Fail("/x.bin", downloadtest.Fault{IgnoreRange: true})
	dir := t.TempDir()
	f := file(srv, dir, "x.bin", data)
	// A prefix that is not even the file's: were it kept, the checksum would fail.
	if err := os.WriteFile(f.Path+download.PartSuffix, bytes.Repeat([]byte{'z'}, 20_000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := client(nil).Fetch(context.Background(), []download.File{f}, nil); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)
	reqs := srv.Requests("/x.bin")
	if len(reqs) != 1 || reqs[0].Range == "" || reqs[0].Status != http.StatusOK {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestRestartsWhenContentRangeIsWrong(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(50_000, 6)
	srv.Put("/x.bin", data)
	srv.Fail("/x.bin", downloadtest.Fault{WrongRange: true})
	dir := t.TempDir()
	f := file(srv, dir, "x.bin", data)
	if err := os.WriteFile(f.Path+download.PartSuffix, data[:10_000], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := client(nil).Fetch(context.Background(), []download.File{f}, nil); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)
	reqs := srv.Requests("/x.bin")
	if len(reqs) != 2 || reqs[0].Range != "bytes=10000-" || reqs[1].Range != "" {
		t.Fatalf("want a resume answered wrongly, then a fresh download: %+v", reqs)
	}
}

func TestRejectsWrongChecksum(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(10_000, 7)
	srv.Put("/bad.bin", data)
	dir := t.TempDir()
	f := file(srv, dir, "bad.bin", data)
	f.SHA256 = sum([]byte("something else"))

	err := client(nil).Fetch(context.Background(), []download.File{f}, nil)
	if !errors.Is(err, download.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	if !strings.Contains(err.Error(), "bad.bin") {
		t.Fatalf("error does not name the file: %v", err)
	}
	for _, p := range []string{f.Path, f.Path + download.PartSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind after a checksum failure", p)
		}
	}
	if n := len(srv.Requests("/bad.bin")); n != 1 {
		t.Fatalf("a fresh download that fails its checksum is not retried; got %d requests", n)
	}
}

func TestCorruptPartFileIsRetriedFromScratchOnce(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(40_000, 8)
	srv.Put("/c.bin", data)
	dir := t.TempDir()
	f := file(srv, dir, "c.bin", data)
	corrupt := bytes.Clone(data[:30_000])
	corrupt[100] ^= 0xff
	if err := os.WriteFile(f.Path+download.PartSuffix, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := client(nil).Fetch(context.Background(), []download.File{f}, nil); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)
	reqs := srv.Requests("/c.bin")
	if len(reqs) != 2 || reqs[0].Range != "bytes=30000-" || reqs[1].Range != "" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestSizeMismatchIsAnError(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(1000, 9)
	srv.Put("/s.bin", data)
	f := file(srv, t.TempDir(), "s.bin", data)
	f.Size = 999
	if err := client(nil).Fetch(context.Background(), []download.File{f}, nil); !errors.Is(err, download.ErrSize) {
		t.Fatalf("err = %v, want ErrSize", err)
	}
}

func TestRetriesServerErrorsButNotClientErrors(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(1000, 10)
	srv.Put("/r.bin", data)
	srv.Fail("/r.bin", downloadtest.Fault{Status: 503}, downloadtest.Fault{Status: 502})
	dir := t.TempDir()
	f := file(srv, dir, "r.bin", data)
	if err := client(nil).Fetch(context.Background(), []download.File{f}, nil); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)
	if n := len(srv.Requests("/r.bin")); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}

	srv.Fail("/gone.bin", downloadtest.Fault{Status: 404, Header: http.Header{"X-Error-Code": {"EntryNotFound"}}})
	g := download.File{Name: "gone.bin", URL: srv.URL + "/gone.bin", Path: filepath.Join(dir, "gone.bin")}
	err := client(nil).Fetch(context.Background(), []download.File{g}, nil)
	var se *download.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || se.Code != "EntryNotFound" {
		t.Fatalf("err = %v, want a 404 StatusError", err)
	}
	if n := len(srv.Requests("/gone.bin")); n != 1 {
		t.Fatalf("a 404 was retried: %d requests", n)
	}
}

func TestGivesUpAfterRetries(t *testing.T) {
	srv := downloadtest.New(t)
	srv.Put("/down.bin", []byte("x"))
	for range 10 {
		srv.Fail("/down.bin", downloadtest.Fault{Status: 500})
	}
	c := client(nil)
	c.Retries = 2
	f := download.File{Name: "down.bin", URL: srv.URL + "/down.bin", Path: filepath.Join(t.TempDir(), "down.bin")}
	err := c.Fetch(context.Background(), []download.File{f}, nil)
	var se *download.StatusError
	if !errors.As(err, &se) || se.StatusCode != 500 {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.Requests("/down.bin")); n != 3 {
		t.Fatalf("%d requests, want 3 (1 + 2 retries)", n)
	}
}

func TestStalledDownloadIsResumed(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(80_000, 11)
	srv.Put("/slow.bin", data)
	srv.Fail("/slow.bin", downloadtest.Fault{StallAfter: 30_000})
	dir := t.TempDir()
	f := file(srv, dir, "slow.bin", data)
	c := client(nil)
	c.StallTimeout = 150 * time.Millisecond
	if err := c.Fetch(context.Background(), []download.File{f}, nil); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)
	var resumed bool
	for _, r := range srv.Requests("/slow.bin") {
		resumed = resumed || r.Range == "bytes=30000-"
	}
	if !resumed {
		t.Fatalf("no resume after the stall: %+v", srv.Requests("/slow.bin"))
	}
}

func TestCancelKeepsThePartFile(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(80_000, 12)
	srv.Put("/big.bin", data)
	srv.Fail("/big.bin", downloadtest.Fault{StallAfter: 25_000})
	dir := t.TempDir()
	f := file(srv, dir, "big.bin", data)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- client(nil).Fetch(ctx, []download.File{f}, func(p download.Progress) {
			if p.FileDone >= 25_000 {
				cancel()
			}
		})
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not stop the download")
	}
	st, err := os.Stat(f.Path + download.PartSuffix)
	if err != nil || st.Size() != 25_000 {
		t.Fatalf("part file after cancel: %v, %v", st, err)
	}
	if _, err := os.Stat(f.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a cancelled download is in place")
	}
}

func TestTokenIsSentButNeverLogged(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(5000, 13)
	srv.Put("/t.bin", data)
	srv.Fail("/t.bin", downloadtest.Fault{Status: 503}, downloadtest.Fault{DropAfter: 100})
	var logs bytes.Buffer
	c := client(&logs)
	c.Token = "hf_secret_token_value"
	f := file(srv, t.TempDir(), "t.bin", data)
	if err := c.Fetch(context.Background(), []download.File{f}, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Requests("/t.bin") {
		if r.Authorization != "Bearer hf_secret_token_value" {
			t.Fatalf("request without the token: %+v", r)
		}
	}
	if strings.Contains(logs.String(), "hf_secret") {
		t.Fatalf("token in logs:\n%s", logs.String())
	}
}

func TestUnknownSizeTakesTheServersLength(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(7000, 14)
	srv.Put("/u.bin", data)
	f := file(srv, t.TempDir(), "u.bin", data)
	f.Size, f.SHA256 = 0, ""
	var last download.Progress
	if err := client(nil).Fetch(context.Background(), []download.File{f}, func(p download.Progress) { last = p }); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)
	if last.Total != 7000 || last.Done != 7000 {
		t.Fatalf("last report %+v", last)
	}
}

func TestGetRetriesAndLimits(t *testing.T) {
	srv := downloadtest.New(t)
	srv.Put("/api/x", []byte(`{"ok":true}`))
	srv.Fail("/api/x", downloadtest.Fault{Status: 500})
	c := client(nil)
	c.Token = "tok"
	body, err := c.Get(context.Background(), srv.URL+"/api/x", 100)
	if err != nil || string(body) != `{"ok":true}` {
		t.Fatalf("Get = %q, %v", body, err)
	}
	reqs := srv.Requests("/api/x")
	if len(reqs) != 2 || reqs[1].Authorization != "Bearer tok" {
		t.Fatalf("requests %+v", reqs)
	}
	if _, err := c.Get(context.Background(), srv.URL+"/api/x", 5); err == nil {
		t.Fatal("an answer over the limit was accepted")
	}
	srv.Fail("/api/x", downloadtest.Fault{Status: 401, Body: `{"error":"Invalid credentials in Authorization header"}`})
	_, err = c.Get(context.Background(), srv.URL+"/api/x", 100)
	var se *download.StatusError
	if !errors.As(err, &se) || se.StatusCode != 401 || se.Message != "Invalid credentials in Authorization header" {
		t.Fatalf("err = %v", err)
	}
}

func TestThrottledProgressStillShowsTheLastBytesOfAStalledTransfer(t *testing.T) {
	srv := downloadtest.New(t)
	data := content(80_000, 15)
	srv.Put("/p.bin", data)
	srv.Fail("/p.bin", downloadtest.Fault{StallAfter: 30_000})
	c := client(nil)
	c.ProgressEvery, c.StallTimeout = 200*time.Millisecond, time.Minute
	f := file(srv, t.TempDir(), "p.bin", data)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	err := c.Fetch(ctx, []download.File{f}, func(p download.Progress) {
		if p.FileDone == 30_000 {
			cancel() // only possible if the report held back by the throttle comes
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the held-back report came after %v", d)
	}
}

func TestTokenDoesNotFollowARedirectToAnotherHost(t *testing.T) {
	storage := downloadtest.New(t)
	data := content(3000, 16)
	storage.Put("/blob", data)
	api := downloadtest.New(t)
	// Same machine, another host name: what a redirect to a storage host looks like to the client.
	elsewhere := strings.Replace(storage.URL, "127.0.0.1", "localhost", 1)
	api.Mux.HandleFunc("/resolve/w.bin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere+"/blob", http.StatusFound)
	})
	c := client(nil)
	c.Token = "hf_secret"
	f := download.File{Name: "w.bin", URL: api.URL + "/resolve/w.bin", Path: filepath.Join(t.TempDir(), "w.bin"),
		Size: int64(len(data)), SHA256: sum(data)}
	if err := c.Fetch(context.Background(), []download.File{f}, nil); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, f.Path, data)
	if r := api.Requests("/resolve/w.bin"); len(r) != 1 || r[0].Authorization != "Bearer hf_secret" {
		t.Fatalf("API requests %+v", r)
	}
	if r := storage.Requests("/blob"); len(r) != 1 || r[0].Authorization != "" {
		t.Fatalf("the token reached the storage host: %+v", r)
	}
}
