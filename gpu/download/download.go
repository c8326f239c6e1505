// Package download fetches large files over HTTP the way model weights and GPU runtimes need:
// into a .part file that a later attempt resumes with an HTTP Range request, checked against a
// sha256 (or at least a size), then renamed into place so a reader never sees half a file.
// Server errors and dropped connections are retried with backoff; the context cancels everything.
//
// It is shared by gpu/hub (models) and gpu/runtime (the GPU runtime wheels).
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of the Client fields left zero.
const (
	DefaultRetries       = 5
	DefaultBackoff       = time.Second
	DefaultMaxBackoff    = 30 * time.Second
	DefaultStallTimeout  = 60 * time.Second
	DefaultProgressEvery = 250 * time.Millisecond
	// PartSuffix is appended to a file's path while it downloads.
	PartSuffix = ".part"
)

// Modes of what a download creates: only the user running the app may read models and runtimes,
// like everything else in the data dir.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// ErrChecksum means a file's content does not match its expected sha256.
var ErrChecksum = errors.New("checksum mismatch")

// ErrSize means a file's length does not match the expected one.
var ErrSize = errors.New("size mismatch")

// errStalled cancels an attempt that received nothing for StallTimeout.
var errStalled = errors.New("no data received")

// File is one file to fetch.
type File struct {
	// Name labels the file in progress reports, logs and errors.
	Name string
	// URL is fetched with GET.
	URL string
	// Path is where the verified file ends up; Path+PartSuffix holds it while it downloads.
	Path string
	// Size is the expected length in bytes; 0 means unknown (the response tells).
	Size int64
	// SHA256 is the expected hex digest; empty means only the size is checked.
	SHA256 string
	// Mode of the final file; 0 means FileMode.
	Mode fs.FileMode
}

// Progress reports how far a Fetch is. Totals are 0 while unknown.
type Progress struct {
	// File is the Name of the file being fetched; Index counts from 0 up to Count-1.
	File         string
	Index, Count int
	// FileDone and FileTotal are bytes of the current file, including what an earlier attempt
	// left in its .part file.
	FileDone, FileTotal int64
	// Done and Total are bytes over all files of the Fetch.
	Done, Total int64
	// BytesPerSec is the recent transfer rate (bytes on the wire only, not resumed ones).
	BytesPerSec float64
	// FileComplete is set on the last report of each file, once it is verified and in place.
	FileComplete bool
}

// StatusError is an HTTP answer other than success.
type StatusError struct {
	URL        string
	StatusCode int
	// Code is the server's machine-readable error code, when it gives one (X-Error-Code).
	Code string
	// Message is the server's explanation, when it gives one (X-Error-Message or the body).
	Message string
	// RetryAfter is the wait the server asked for (429, 503), or 0.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: %s", e.URL, http.StatusText(e.StatusCode))
	if e.StatusCode != 0 {
		msg = fmt.Sprintf("GET %s: HTTP %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Temporary reports whether trying again later may succeed (server trouble, rate limits).
func (e *StatusError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode == http.StatusRequestTimeout
}

// Client downloads files. The zero value works with the defaults above; a Client is safe for
// concurrent use by several Fetch calls as long as its fields are not changed meanwhile.
type Client struct {
	// HTTP sends the requests; nil means one with connect, TLS and header timeouts (and no
	// overall timeout, which would cut off large files).
	HTTP *http.Client
	// Token, when set, is sent as "Authorization: Bearer <token>". It is never logged, and Go's
	// client drops it when a redirect leaves the URL's domain and its subdomains (Hugging Face
	// redirects large files to a storage host elsewhere).
	Token string
	// UserAgent is sent with every request when set.
	UserAgent string
	// Retries is how many failed attempts in a row, without a byte of progress, are tolerated
	// before a file fails; an attempt that made progress resets the count.
	Retries int
	// Backoff is the first wait after a failure; it doubles up to MaxBackoff, with jitter.
	Backoff, MaxBackoff time.Duration
	// StallTimeout ends an attempt that received nothing for this long (then it is retried).
	StallTimeout time.Duration
	// ProgressEvery is the least time between two progress reports of the same file.
	ProgressEvery time.Duration
	// Log receives retries and restarts; nil discards them.
	Log *slog.Logger
}

// Fetch downloads files one after the other, skipping those already in place and verified.
// It calls progress (when not nil) at most every ProgressEvery per file, plus once when each file
// is in place; calls come one at a time, possibly from a timer goroutine, never after Fetch
// returns, and must return quickly.
func (c *Client) Fetch(ctx context.Context, files []File, progress func(Progress)) error {
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTPClient()
	}
	tr := newTracker(files, progress, c.progressEvery())
	defer tr.close()
	for i, f := range files {
		if err := c.fetch(ctx, hc, tr, i, f); err != nil {
			return fmt.Errorf("download %s: %w", f.Name, err)
		}
	}
	return nil
}

func (c *Client) fetch(ctx context.Context, hc *http.Client, tr *tracker, i int, f File) error {
	if f.URL == "" || f.Path == "" {
		return errors.New("a file needs a URL and a path")
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), DirMode); err != nil {
		return fmt.Errorf("create folder: %w", err)
	}
	tr.start(i, f.Size)
	if size, ok, err := inPlace(ctx, f); err != nil {
		return err
	} else if ok {
		c.log().Debug("already downloaded", "file", f.Name)
		tr.finishAt(i, size)
		return nil
	}

	part := f.Path + PartSuffix
	fresh := false // a checksum failure after a resumed download earns one try from scratch
	failures := 0
	for {
		res, err := c.attempt(ctx, hc, tr, i, f, part)
		if err == nil {
			err = verify(f, res)
			if err == nil {
				break
			}
			_ = os.Remove(part)
			tr.reset(i)
			if !errors.Is(err, ErrChecksum) || res.resumedFrom == 0 || fresh {
				return err
			}
			c.log().Warn("resumed download failed its checksum; starting over", "file", f.Name)
			fresh = true
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(err) {
			return err
		}
		if res.gained > 0 {
			failures = 0
		}
		failures++
		if failures > c.retries() {
			return fmt.Errorf("gave up after %d attempts: %w", failures, err)
		}
		wait := c.backoff(failures, err)
		c.log().Warn("download interrupted; retrying", "file", f.Name, "err", err,
			"attempt", failures, "wait", wait.String())
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
	if err := finish(part, f); err != nil {
		return err
	}
	tr.finish(i)
	return nil
}

// Get fetches a small document (an API answer) into memory with the same authentication, retries
// and errors as Fetch. An answer longer than limit bytes is an error.
func (c *Client) Get(ctx context.Context, url string, limit int64) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTPClient()
	}
	failures := 0
	for {
		body, err := c.get(ctx, hc, url, limit)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !retryable(err) {
			return nil, err
		}
		failures++
		if failures > c.retries() {
			return nil, fmt.Errorf("gave up after %d attempts: %w", failures, err)
		}
		wait := c.backoff(failures, err)
		c.log().Warn("request failed; retrying", "url", url, "err", err, "attempt", failures, "wait", wait.String())
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (c *Client) get(ctx context.Context, hc *http.Client, url string, limit int64) ([]byte, error) {
	req, err := c.newRequest(ctx, url)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(url, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, connError(err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: answer longer than %d bytes", url, limit)
	}
	return body, nil
}

func (c *Client) newRequest(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	return req, nil
}

// result is what one attempt learned about the file.
type result struct {
	size        int64  // bytes in the .part file
	sum         []byte // sha256 of those bytes
	resumedFrom int64  // bytes kept from an earlier attempt or run
	gained      int64  // bytes received by this attempt
}

// attempt downloads what is missing from the .part file. On error the bytes received so far stay
// in the .part file for the next attempt.
func (c *Client) attempt(ctx context.Context, hc *http.Client, tr *tracker, i int, f File, part string) (result, error) {
	var res result
	pf, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return res, fmt.Errorf("open %s: %w", part, err)
	}
	defer pf.Close()
	st, err := pf.Stat()
	if err != nil {
		return res, fmt.Errorf("stat %s: %w", part, err)
	}
	have := st.Size()
	if f.Size > 0 && have > f.Size {
		have = 0 // longer than the file can be: not a prefix of it
	}
	if f.Size > 0 && have == f.Size {
		// An earlier run got every byte but stopped before the rename.
		res.size, res.resumedFrom = have, have
		res.sum, err = hashPrefix(ctx, pf, have, sha256.New())
		return res, err
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := c.newRequest(actx, f.URL)
	if err != nil {
		return res, err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return res, connError(err)
	}
	defer resp.Body.Close()

	total := f.Size
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, _, size, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != have {
			// Not the bytes we asked for: trust nothing and start over.
			c.log().Warn("server answered a resume with other bytes; starting over", "file", f.Name,
				"content_range", resp.Header.Get("Content-Range"), "have", have)
			if err := pf.Truncate(0); err != nil {
				return res, fmt.Errorf("truncate %s: %w", part, err)
			}
			return res, &restartError{}
		}
		if size > 0 {
			if f.Size > 0 && size != f.Size {
				return res, fmt.Errorf("%w: server has %d bytes, expected %d", ErrSize, size, f.Size)
			}
			total = size
		}
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent:
		if have > 0 {
			c.log().Info("server ignored the range request; downloading from the start", "file", f.Name)
		}
		have = 0
		if resp.ContentLength >= 0 {
			if f.Size > 0 && resp.ContentLength != f.Size {
				return res, fmt.Errorf("%w: server sends %d bytes, expected %d", ErrSize, resp.ContentLength, f.Size)
			}
			total = resp.ContentLength
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The .part file may already hold the whole file (size unknown to us beforehand).
		if _, _, size, err := parseContentRange(resp.Header.Get("Content-Range")); err == nil && size == have {
			res.size, res.resumedFrom = have, have
			res.sum, err = hashPrefix(ctx, pf, have, sha256.New())
			return res, err
		}
		if err := pf.Truncate(0); err != nil {
			return res, fmt.Errorf("truncate %s: %w", part, err)
		}
		return res, &restartError{}
	default:
		return res, statusError(f.URL, resp)
	}

	h := sha256.New()
	if have > 0 {
		if _, err := hashPrefix(ctx, pf, have, h); err != nil {
			return res, err
		}
	}
	if err := pf.Truncate(have); err != nil {
		return res, fmt.Errorf("truncate %s: %w", part, err)
	}
	if _, err := pf.Seek(have, io.SeekStart); err != nil {
		return res, fmt.Errorf("seek %s: %w", part, err)
	}
	res.resumedFrom = have
	tr.resume(i, have, total)
	if have > 0 {
		c.log().Info("resuming download", "file", f.Name, "from", have, "total", total)
	}

	stall := c.stallTimeout()
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(stall)
			if _, err := pf.Write(buf[:n]); err != nil {
				return res, fmt.Errorf("write %s: %w", part, err)
			}
			h.Write(buf[:n])
			res.gained += int64(n)
			tr.add(i, int64(n))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if cause := context.Cause(actx); errors.Is(cause, errStalled) && ctx.Err() == nil {
				return res, fmt.Errorf("%w for %s", errStalled, stall)
			}
			return res, connError(rerr)
		}
	}
	res.size = have + res.gained
	if total > 0 && res.size < total {
		return res, connError(io.ErrUnexpectedEOF)
	}
	if err := pf.Sync(); err != nil {
		return res, fmt.Errorf("sync %s: %w", part, err)
	}
	res.sum = h.Sum(nil)
	return res, nil
}

// verify checks a complete .part file against what File expects.
func verify(f File, res result) error {
	if f.Size > 0 && res.size != f.Size {
		return fmt.Errorf("%w: got %d bytes, expected %d", ErrSize, res.size, f.Size)
	}
	if f.SHA256 != "" && !strings.EqualFold(hex.EncodeToString(res.sum), f.SHA256) {
		return fmt.Errorf("%w: got sha256 %x, expected %s", ErrChecksum, res.sum, f.SHA256)
	}
	return nil
}

// finish moves a verified .part file into place.
func finish(part string, f File) error {
	mode := f.Mode
	if mode == 0 {
		mode = FileMode
	}
	if err := os.Chmod(part, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", part, err)
	}
	if err := os.Rename(part, f.Path); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	syncDir(filepath.Dir(f.Path))
	return nil
}

// inPlace reports whether f.Path already holds the expected file (from an earlier run).
func inPlace(ctx context.Context, f File) (size int64, ok bool, err error) {
	st, err := os.Stat(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("stat %s: %w", f.Path, err)
	}
	if !st.Mode().IsRegular() || (f.Size > 0 && st.Size() != f.Size) {
		return 0, false, nil
	}
	if f.SHA256 == "" {
		return st.Size(), true, nil
	}
	sum, err := FileSHA256(ctx, f.Path)
	if err != nil {
		return 0, false, err
	}
	return st.Size(), strings.EqualFold(sum, f.SHA256), nil
}

// FileSHA256 returns the hex sha256 of a file, stopping early when ctx is cancelled.
func FileSHA256(ctx context.Context, path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	sum, err := hashPrefix(ctx, fh, st.Size(), sha256.New())
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}

// hashPrefix feeds the first n bytes of f to h and returns the digest.
func hashPrefix(ctx context.Context, f *os.File, n int64, h hash.Hash) ([]byte, error) {
	r := io.NewSectionReader(f, 0, n)
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, err := r.Read(buf)
		h.Write(buf[:k])
		if err == io.EOF {
			return h.Sum(nil), nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Name(), err)
		}
	}
}

// parseContentRange reads "bytes start-end/size" or "bytes */size"; size is -1 when "*".
func parseContentRange(v string) (start, end, size int64, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("content-range %q: not in bytes", v)
	}
	rng, sz, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("content-range %q: no size", v)
	}
	size = -1
	if sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("content-range %q: %w", v, err)
		}
	}
	if rng == "*" {
		return -1, -1, size, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, fmt.Errorf("content-range %q: no range", v)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("content-range %q: %w", v, err)
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("content-range %q: %w", v, err)
	}
	if end < start || (size >= 0 && end >= size) {
		return 0, 0, 0, fmt.Errorf("content-range %q: inconsistent", v)
	}
	return start, end, size, nil
}

// statusError reads the server's explanation of a failed request.
func statusError(url string, resp *http.Response) *StatusError {
	e := &StatusError{URL: url, StatusCode: resp.StatusCode, Code: resp.Header.Get("X-Error-Code")}
	e.Message = resp.Header.Get("X-Error-Message")
	if e.Message == "" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		e.Message = errorMessage(body)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = time.Until(t)
		}
	}
	return e
}

// errorMessage takes {"error": "..."} apart, or keeps a short plain-text body.
func errorMessage(body []byte) string {
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "{") {
		if _, after, ok := strings.Cut(s, `"error":`); ok {
			after = strings.TrimSpace(after)
			if unq, err := strconv.QuotedPrefix(after); err == nil {
				if msg, err := strconv.Unquote(unq); err == nil {
					return msg
				}
			}
		}
	}
	if strings.HasPrefix(s, "<") || len(s) > 300 {
		return "" // an HTML page or a dump explains nothing in one line
	}
	return s
}

// connectionError marks failures of the connection itself, which are worth retrying.
type connectionError struct{ err error }

func (e *connectionError) Error() string { return "connection: " + e.err.Error() }
func (e *connectionError) Unwrap() error { return e.err }

func connError(err error) error { return &connectionError{err: err} }

// restartError asks for another attempt from byte 0, right away.
type restartError struct{}

func (*restartError) Error() string { return "server sent unexpected bytes; restarting the download" }

func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Temporary()
	}
	var ce *connectionError
	var re *restartError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &re) || errors.As(err, &ne) || errors.Is(err, errStalled)
}

func (c *Client) backoff(failures int, err error) time.Duration {
	var re *restartError
	if errors.As(err, &re) {
		return 0
	}
	base, ceiling := c.Backoff, c.MaxBackoff
	if base <= 0 {
		base = DefaultBackoff
	}
	if ceiling <= 0 {
		ceiling = DefaultMaxBackoff
	}
	d := base << min(failures-1, 20)
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	// Jitter keeps many clients that failed together from retrying together.
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > d {
		d = min(se.RetryAfter, 5*time.Minute)
	}
	return d
}

func (c *Client) retries() int {
	if c.Retries > 0 {
		return c.Retries
	}
	return DefaultRetries
}

func (c *Client) stallTimeout() time.Duration {
	if c.StallTimeout > 0 {
		return c.StallTimeout
	}
	return DefaultStallTimeout
}

func (c *Client) progressEvery() time.Duration {
	if c.ProgressEvery > 0 {
		return c.ProgressEvery
	}
	return DefaultProgressEvery
}

func (c *Client) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// syncDir makes a rename durable; some systems cannot sync a folder, which is not worth failing.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}
