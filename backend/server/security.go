package server

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"

	"opentracy/backend/config"
)

// Names under which the UI token travels.
const (
	tokenParam  = "token"
	tokenCookie = "opentracy_ui"
	// TokenHeader lets scripts call /api with the UI token without a cookie.
	TokenHeader = "X-OpenTracy-UI-Token"
)

// allowedHosts lists the Host header values this instance answers to: the bound address and, for a
// loopback or wildcard bind, its loopback names. Anything else is refused, so a web page that
// rebinds its own DNS name to 127.0.0.1 cannot talk to the gateway (DNS rebinding).
func allowedHosts(cfg config.Config, boundAddr string) map[string]bool {
	allowed := map[string]bool{}
	host, port, err := net.SplitHostPort(boundAddr)
	if err != nil {
		return allowed
	}
	allowed[strings.ToLower(boundAddr)] = true
	ip := net.ParseIP(host)
	if ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		for _, h := range []string{"127.0.0.1", "localhost", "::1"} {
			allowed[net.JoinHostPort(h, port)] = true
		}
	}
	for _, h := range cfg.AllowedHosts {
		allowed[strings.ToLower(h)] = true
	}
	return allowed
}

func (s *Server) hostAllowed(host string) bool {
	allowed := s.allowed.Load()
	return allowed != nil && (*allowed)[strings.ToLower(host)]
}

func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isTrusted(r) || s.hostAllowed(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		s.log.Warn("refused request for a foreign host", "host", r.Host, "path", r.URL.Path, "remote", r.RemoteAddr)
		errorShapeFor(r.URL.Path).write(w, http.StatusForbidden, "invalid_request_error", "forbidden_host",
			"Host "+quote(r.Host)+" is not allowed: OpenTracy answers only to its own address (add other names to allowed_hosts in the config)")
	})
}

// checkOrigin refuses browser requests from other sites (CSRF): an Origin header, when present,
// must name this instance, and Sec-Fetch-Site must not say cross-site.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isTrusted(r) || s.originAllowed(r) {
			next.ServeHTTP(w, r)
			return
		}
		s.log.Warn("refused request from a foreign origin", "origin", r.Header.Get("Origin"), "path", r.URL.Path)
		openAIErrors.write(w, http.StatusForbidden, "invalid_request_error", "forbidden_origin",
			"Origin "+quote(r.Header.Get("Origin"))+" may not call the OpenTracy management API: only the OpenTracy UI may")
	})
}

func (s *Server) originAllowed(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a cross-origin browser request (curl, scripts, same-origin GET)
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		return false // includes the opaque "null" origin of sandboxed frames and file:// pages
	}
	return s.hostAllowed(u.Host)
}

// requireUIToken guards the management API: the UI token from the cookie set at login, the
// X-OpenTracy-UI-Token header or a Bearer token.
func (s *Server) requireUIToken(next http.Handler) http.Handler {
	want := []byte(s.opts.Secrets.UIToken.Reveal())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isTrusted(r) || tokenMatches(want, uiToken(r)) {
			next.ServeHTTP(w, r)
			return
		}
		openAIErrors.write(w, http.StatusUnauthorized, "invalid_request_error", "ui_token_required",
			"the management API needs the UI token: open the link that `opentracy serve` printed")
	})
}

func uiToken(r *http.Request) string {
	if c, err := r.Cookie(tokenCookie); err == nil {
		return c.Value
	}
	if t := r.Header.Get(TokenHeader); t != "" {
		return t
	}
	return bearer(r)
}

// requireGatewayKey guards the gateway: "Authorization: Bearer <key>" as OpenAI SDKs send it, or
// "x-api-key: <key>" as Anthropic SDKs do.
func (s *Server) requireGatewayKey(shape errorShape, next http.Handler) http.Handler {
	want := []byte(s.gatewayKey.Reveal())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := bearer(r)
		if got == "" {
			got = r.Header.Get("X-Api-Key")
		}
		if tokenMatches(want, got) {
			next.ServeHTTP(w, r)
			return
		}
		msg := "missing gateway key: send \"Authorization: Bearer <gateway key>\" (the key is shown in the OpenTracy UI and printed by `opentracy serve`)"
		if got != "" {
			msg = "incorrect gateway key: use the key shown in the OpenTracy UI or printed by `opentracy serve`"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="opentracy"`)
		shape.write(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", msg)
	})
}

func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// tokenMatches compares in constant time, so response timing does not leak the key.
func tokenMatches(want []byte, got string) bool {
	return len(want) > 0 && subtle.ConstantTimeCompare(want, []byte(got)) == 1
}

func quote(s string) string {
	const limit = 100 // a hostile header is echoed, but never at length
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' {
			return -1
		}
		return r
	}, s) + `"`
}
