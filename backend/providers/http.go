package providers

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxErrorBody bounds how much of an upstream error answer is read.
const MaxErrorBody = 1 << 20

// ReadErrorBody reads (a bounded part of) a failed upstream answer and closes it. A read that
// fails before any byte arrived is a transport error of provider.
func ReadErrorBody(provider string, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	if err != nil && len(data) == 0 {
		return nil, &Error{Provider: provider, Err: fmt.Errorf("read error body (status %d): %w", resp.StatusCode, err)}
	}
	return data, nil
}

// KeepHeaders returns the upstream response headers worth passing to the client: those whose
// lower-case name keep accepts (request ids, rate-limit headers).
func KeepHeaders(h http.Header, keep func(lowerName string) bool) http.Header {
	out := http.Header{}
	for k, vs := range h {
		if keep(strings.ToLower(k)) {
			out[k] = vs
		}
	}
	return out
}
