// Package downloadtest is a loopback file server for tests of code that downloads: it honours
// Range requests like a CDN does, records every request, and injects the failures a real download
// meets (server errors, a connection cut mid-file, a stall, a server that ignores Range or answers
// with the wrong bytes).
package downloadtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is what the server does wrong on one request for a file.
type Fault struct {
	// Status answers with this status and a short body instead of the file.
	Status int
	// Header is added to a Status answer (e.g. Retry-After, X-Error-Code).
	Header http.Header
	// Body replaces the short default body of a Status answer.
	Body string
	// DropAfter sends the headers and this many bytes of the answer, then cuts the connection
	// (when the answer is longer).
	DropAfter int64
	// StallAfter sends this many bytes, then sends nothing until the client goes away (when the
	// answer is longer).
	StallAfter int64
	// IgnoreRange answers a Range request with the whole file (200), as some servers do.
	IgnoreRange bool
	// WrongRange answers a Range request with a 206 whose bytes start at 0.
	WrongRange bool
}

// Request is what the server saw and did.
type Request struct {
	Method, Path, Query string
	// Range and Authorization are the request's headers.
	Range, Authorization string
	// Status is the answer's status; Sent is how many body bytes went out.
	Status int
	Sent   int64
}

// Server serves files put into it; other paths go to Mux.
type Server struct {
	*httptest.Server
	// Mux handles the paths that are not files (an API, say).
	Mux *http.ServeMux

	mu       sync.Mutex
	files    map[string][]byte
	faults   map[string][]Fault
	reqs     []Request
	finished []bool // per request: its handler has returned
}

// New starts a server on a loopback address and stops it when the test ends.
func New(t testing.TB) *Server {
	s := &Server{Mux: http.NewServeMux(), files: map[string][]byte{}, faults: map[string][]Fault{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Put serves content at path (which starts with /).
func (s *Server) Put(path string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = content
}

// Fail queues faults for the next requests of path, one per request.
func (s *Server) Fail(path string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[path] = append(s.faults[path], faults...)
}

// Requests returns the requests of path so far (all paths when path is ""), in arrival order.
// It waits a little for answers still being sent: a client can have read a whole answer before
// the handler that sent it has returned.
func (s *Server) Requests(path string) []Request {
	deadline := time.Now().Add(2 * time.Second)
	for {
		s.mu.Lock()
		var out []Request
		pending := false
		for i, r := range s.reqs {
			if path == "" || r.Path == path {
				out = append(out, r)
				pending = pending || !s.finished[i]
			}
		}
		s.mu.Unlock()
		if !pending || time.Now().After(deadline) {
			return out
		}
		time.Sleep(time.Millisecond)
	}
}

// Sent returns the body bytes sent for path over all requests.
func (s *Server) Sent(path string) int64 {
	var n int64
	for _, r := range s.Requests(path) {
		n += r.Sent
	}
	return n
}

// arrive records a request in arrival order; done fills in its answer once known (also when the
// handler aborts), which may be after later requests arrived.
func (s *Server) arrive(r *http.Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization"),
	})
	s.finished = append(s.finished, false)
	return len(s.reqs) - 1
}

func (s *Server) done(i int, status *int, sent *int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs[i].Status, s.reqs[i].Sent = *status, *sent
	s.finished[i] = true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	content, isFile := s.files[r.URL.Path]
	var fault Fault
	if q := s.faults[r.URL.Path]; len(q) > 0 {
		fault, s.faults[r.URL.Path] = q[0], q[1:]
	}
	s.mu.Unlock()

	status, sent := 0, int64(0)
	defer s.done(s.arrive(r), &status, &sent)
	rec := &recorder{ResponseWriter: w, status: &status, sent: &sent}
	if !isFile && fault.Status == 0 {
		s.Mux.ServeHTTP(rec, r)
		if status == 0 {
			status = http.StatusOK
		}
		return
	}
	if fault.Status != 0 {
		for k, v := range fault.Header {
			w.Header()[k] = v
		}
		body := fault.Body
		if body == "" {
			body = http.StatusText(fault.Status)
		}
		rec.WriteHeader(fault.Status)
		_, _ = rec.Write([]byte(body))
		return
	}
	serveFile(rec, r, content, fault)
}

func serveFile(w *recorder, r *http.Request, content []byte, fault Fault) {
	size := int64(len(content))
	start := int64(0)
	partial := false
	if rng := r.Header.Get("Range"); rng != "" && !fault.IgnoreRange {
		from, ok := parseRange(rng)
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if from >= size {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		partial = true
		start = from
		if fault.WrongRange {
			start = 0
		}
	}
	body := content[start:]
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(int64(len(body)), 10))
	if partial {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, size-1, size))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if r.Method == http.MethodHead {
		return
	}
	// A fault at or past the end of the body would not be one: the file is simply sent.
	switch n := int64(len(body)); {
	case fault.DropAfter > 0 && fault.DropAfter < n:
		_, _ = w.Write(body[:fault.DropAfter])
		w.Flush()
		panic(http.ErrAbortHandler) // cuts the connection mid-body
	case fault.StallAfter > 0 && fault.StallAfter < n:
		_, _ = w.Write(body[:fault.StallAfter])
		w.Flush()
		<-r.Context().Done()
		return
	}
	_, _ = w.Write(body)
}

// parseRange reads "bytes=N-" and "bytes=N-M" (the end is ignored: downloads ask for the rest).
func parseRange(v string) (int64, bool) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, false
	}
	from, _, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(from, 10, 64)
	return n, err == nil && n >= 0
}

// recorder notes the status and the bytes of an answer.
type recorder struct {
	http.ResponseWriter
	status *int
	sent   *int64
}

func (r *recorder) WriteHeader(code int) {
	if *r.status == 0 {
		*r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if *r.status == 0 {
		*r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	*r.sent += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
