package server

import (
	"net/http"

	"opentracy/backend/api"
)

// apiRoutes is the management API used by the UI (JSON types in backend/api).
func (s *Server) apiRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/info", s.getInfo)
	mux.HandleFunc("GET /api/events", s.streamEvents)
	mux.HandleFunc("GET /api/stats", s.getStats)
	s.gatewayAPIRoutes(mux)
	s.traceAPIRoutes(mux)
	s.engineAPIRoutes(mux)
	s.modelAPIRoutes(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "unknown_endpoint",
			"unknown API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func (s *Server) getInfo(w http.ResponseWriter, _ *http.Request) {
	urls := s.URLs()
	writeJSON(w, http.StatusOK, api.Info{
		Version: s.opts.Version,
		Shell:   s.opts.Shell,
		Gateway: api.GatewayInfo{
			BaseURL:          urls.Gateway,
			AnthropicBaseURL: urls.Anthropic,
			Key:              s.gatewayKey.Reveal(), // the local user's own key, shown so they can paste it
			KeySource:        s.gatewayKeyFrom,
		},
		DataDir:    s.opts.Config.DataDir,
		ConfigFile: s.opts.Config.File,
		StartedAt:  s.startedAt.UTC(),
	})
}

func (s *Server) getStats(w http.ResponseWriter, _ *http.Request) {
	var out api.Stats
	if s.traces != nil {
		st := s.traces.writer.Stats()
		out.Traces = api.TraceStats{
			Durable: true, Recorded: st.Recorded, Written: st.Written, Replayed: st.Replayed,
			Queued: st.Queued, Spilled: st.Spilled, JournalBytes: st.JournalBytes, Retries: st.Retries,
			Dropped: st.Dropped, Rejected: st.Rejected, StoreDown: st.StoreDown, LastError: st.LastError,
		}
	}
	writeJSON(w, http.StatusOK, out)
}
