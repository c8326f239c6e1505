package server

import (
	"context"
	"net/http"
)

// Handler is the one handler for every path, as served on the TCP listener.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("/v1/", s.requireGatewayKey(openAIErrors, s.gateway.Handler()))
	mux.Handle("/anthropic/", s.requireGatewayKey(anthropicErrors, s.gateway.AnthropicHandler()))
	mux.Handle("/api/", s.checkOrigin(s.requireUIToken(s.apiRoutes())))
	mux.Handle("/", s.uiHandler())
	return s.recoverPanics(s.checkHost(mux))
}

// DesktopHandler is Handler for the Wails AssetServer. Its requests come only from the app's own
// webview, in process, never from the network: they are trusted as the local user, so the UI token
// is injected and the Host and Origin checks (which guard the TCP listener) do not apply.
func (s *Server) DesktopHandler() http.Handler {
	h := s.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), trustedKey{}, true)))
	})
}

type trustedKey struct{}

func isTrusted(r *http.Request) bool {
	v, _ := r.Context().Value(trustedKey{}).(bool)
	return v
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSONBody(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

// recoverPanics turns a handler panic into a 500 in the API's error shape and a logged stack,
// instead of a dropped connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rec := recover()
			switch rec {
			case nil:
				return
			case http.ErrAbortHandler: // net/http's way to abort a response: not ours to handle
				panic(rec)
			}
			s.log.Error("handler panic", "path", r.URL.Path, "panic", rec)
			errorShapeFor(r.URL.Path).write(w, http.StatusInternalServerError, "server_error", "internal_error",
				"internal error: the request was not completed (see the OpenTracy log)")
		}()
		next.ServeHTTP(w, r)
	})
}
