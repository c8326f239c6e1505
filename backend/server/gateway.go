package server

import "net/http"

// gatewayRoutes is the OpenAI-compatible surface. The proxy itself (chat completions, embeddings,
// providers, aliases) lives in backend/gateway; until it is mounted the gateway has no models.
func (s *Server) gatewayRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, modelList{Object: "list", Data: []model{}})
	})
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "unknown_url",
			"Unrecognized request URL ("+r.Method+": "+r.URL.Path+"). OpenTracy serves the OpenAI API under /v1.")
	})
	return mux
}

// anthropicRoutes is the Anthropic Messages ingress.
func (s *Server) anthropicRoutes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		anthropicErrors.write(w, http.StatusNotFound, "", "", "Not found: "+r.Method+" "+r.URL.Path)
	})
}

type modelList struct {
	Object string  `json:"object"`
	Data   []model `json:"data"`
}

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}
