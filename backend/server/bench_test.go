package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkGatewayAuth measures what every gateway request pays before routing: panic guard,
// Host check, key comparison and mux dispatch (served in process, no network).
func BenchmarkGatewayAuth(b *testing.B) {
	ts := startServer(b)
	h := ts.Handler()
	req := httptest.NewRequest("GET", "/v1/models", nil)
	req.Host = ts.Addr()
	req.Header.Set("Authorization", "Bearer "+testKey)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
