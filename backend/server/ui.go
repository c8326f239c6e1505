package server

import (
	"errors"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// uiHandler serves the built frontend. Unknown paths without a file extension get index.html, so
// client-side routes survive a reload. Opening "/?token=<UI token>" (the link `serve` prints) stores
// the token in an HttpOnly, SameSite=Strict cookie and redirects to the same page without it.
func (s *Server) uiHandler() http.Handler {
	ui := s.opts.UI
	files := http.FileServerFS(ui)
	want := []byte(s.opts.Secrets.UIToken.Reveal())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			openAIErrors.write(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed",
				r.Method+" "+r.URL.Path+" is not an API endpoint")
			return
		}
		setUISecurityHeaders(w.Header())

		if q := r.URL.Query(); q.Has(tokenParam) {
			if tokenMatches(want, q.Get(tokenParam)) {
				http.SetCookie(w, &http.Cookie{
					Name: tokenCookie, Value: q.Get(tokenParam), Path: "/",
					HttpOnly: true, SameSite: http.SameSiteStrictMode,
					MaxAge: 400 * 24 * 60 * 60, // browsers cap cookie lifetime at 400 days
				})
			}
			q.Del(tokenParam)
			target := r.URL.Path
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}

		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" || name == "index.html" {
			s.serveIndex(w, r)
			return
		}
		if _, err := fs.Stat(ui, name); err != nil {
			if errors.Is(err, fs.ErrNotExist) && path.Ext(name) == "" {
				s.serveIndex(w, r) // a client-side route
				return
			}
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(name, "assets/") {
			// Vite puts a content hash in every file name under assets/.
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		files.ServeHTTP(w, r)
	})
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	index, err := fs.ReadFile(s.opts.UI, "index.html")
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("The OpenTracy UI is not built into this binary: run `make build`.\nThe gateway and API work: see /healthz.\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(index)
}

func setUISecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	// The login link carries the UI token: never send it on as a Referer.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
		"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
}
