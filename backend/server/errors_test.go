package server

import (
	"math"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWriteJSONEncodeFailure: a value JSON cannot hold is a 500 in the API's error shape, not a
// half-written 200.
func TestWriteJSONEncodeFailure(t *testing.T) {
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, map[string]float64{"cost": math.Inf(1)})
	e := wantError(t, rec.Result(), 500, "encode_failed")
	if e.Type != "server_error" || !strings.Contains(e.Message, "unsupported value") {
		t.Errorf("error = %+v, want a server_error naming the encoding failure", e)
	}
}
