package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"opentracy/backend/aliases"
	"opentracy/backend/api"
	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/catalog"
)

// maxAPIBody bounds management API request bodies.
const maxAPIBody = 1 << 20

func (s *Server) gatewayAPIRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/providers", s.listProviders)
	mux.HandleFunc("GET /api/provider-types", s.listProviderTypes)
	mux.HandleFunc("POST /api/providers", s.createProvider)
	mux.HandleFunc("PUT /api/providers/{name}", s.updateProvider)
	mux.HandleFunc("DELETE /api/providers/{name}", s.deleteProvider)
	mux.HandleFunc("POST /api/providers/{name}/check", s.checkProvider)
	mux.HandleFunc("GET /api/aliases", s.listAliases)
	mux.HandleFunc("PUT /api/aliases/{name}", s.putAlias)
	mux.HandleFunc("DELETE /api/aliases/{name}", s.deleteAlias)
	mux.HandleFunc("GET /api/aliases/{name}/history", s.aliasHistory)
	mux.HandleFunc("POST /api/aliases/{name}/rollback", s.rollbackAlias)
}

func (s *Server) listProviders(w http.ResponseWriter, _ *http.Request) {
	stats := map[string]api.ProviderStats{}
	for _, st := range s.gateway.ProviderStats() {
		ps := api.ProviderStats{Attempts: st.Attempts, Failures: st.Failures, P50Millis: st.P50Milli, P95Millis: st.P95Milli}
		if st.Attempts > 0 {
			ps.SuccessRate = float64(st.Attempts-st.Failures) / float64(st.Attempts)
		}
		stats[st.Provider] = ps
	}
	list := s.providers.list()
	out := make([]api.Provider, 0, len(list))
	for _, p := range list {
		name := p.provider.Name()
		item := api.Provider{Name: name, Type: p.cfg.Type, Models: p.cfg.Models, Source: p.source, Stats: stats[name]}
		if item.Models == nil {
			item.Models = []string{}
		}
		if b, ok := p.provider.(interface{ BaseURL() string }); ok {
			item.BaseURL = b.BaseURL()
		}
		item.KeySet, item.KeyFrom = s.keyStatus(p)
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, out)
}

// keyStatus says whether a provider has a key and where it comes from, never the key itself.
func (s *Server) keyStatus(p configuredProvider) (bool, string) {
	if p.cfg.APIKey != "" {
		if p.source == sourceUI {
			return true, "saved in the app"
		}
		return true, "config file"
	}
	for _, name := range []string{p.cfg.APIKeyEnv, catalog.KeyEnv(p.cfg.Type)} {
		if name == "" {
			continue
		}
		if v, ok := s.opts.Env(name); ok && v != "" {
			return true, "$" + name
		}
	}
	return false, ""
}

func (s *Server) checkProvider(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, p := range s.providers.list() {
		if p.provider.Name() != name {
			continue
		}
		checker, ok := p.provider.(providers.Checker)
		if !ok {
			writeJSON(w, http.StatusOK, api.ProviderCheck{Message: "this provider type cannot be checked without sending a request"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		defer cancel()
		start := time.Now()
		err := checker.Check(ctx)
		res := api.ProviderCheck{OK: err == nil, LatencyMillis: float64(time.Since(start).Microseconds()) / 1000, Message: "connected"}
		if err != nil {
			res.Message = checkMessage(err)
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "provider_not_found", fmt.Sprintf("no provider named %q", name))
}

func checkMessage(err error) string {
	var perr *providers.Error
	if errors.As(err, &perr) {
		switch {
		case perr.Status == 401 || perr.Status == 403:
			return fmt.Sprintf("the key was refused (HTTP %d)", perr.Status)
		case perr.Status == 0:
			return "cannot reach the provider: " + perr.Err.Error()
		default:
			return fmt.Sprintf("HTTP %d: %s", perr.Status, perr.Error())
		}
	}
	return err.Error()
}

func (s *Server) listProviderTypes(w http.ResponseWriter, _ *http.Request) {
	out := []api.ProviderType{}
	for _, t := range catalog.Describe() {
		out = append(out, api.ProviderType{Type: t.Type, DefaultBaseURL: t.DefaultBaseURL, KeyEnv: t.KeyEnv, KeyRequired: t.KeyRequired})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createProvider(w http.ResponseWriter, r *http.Request) {
	var in api.ProviderInput
	if !decodeJSON(w, r, &in) {
		return
	}
	if in.Name == "" {
		in.Name = in.Type
	}
	s.changeProvider(w, in.Name, s.providers.upsert(in.Name, providerConfig(in), true))
}

func (s *Server) updateProvider(w http.ResponseWriter, r *http.Request) {
	var in api.ProviderInput
	if !decodeJSON(w, r, &in) {
		return
	}
	name := r.PathValue("name")
	s.changeProvider(w, name, s.providers.upsert(name, providerConfig(in), false))
}

func (s *Server) deleteProvider(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.changeProvider(w, name, s.providers.remove(name))
}

func providerConfig(in api.ProviderInput) config.Provider {
	return config.Provider{Name: in.Name, Type: in.Type, BaseURL: in.BaseURL, APIKey: config.Secret(in.APIKey), Models: in.Models}
}

// changeProvider answers a provider change: the new list, or why it was refused.
func (s *Server) changeProvider(w http.ResponseWriter, name string, err error) {
	var bad errProviderInput
	switch {
	case errors.Is(err, errNotFound):
		openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "provider_not_found", err.Error())
	case errors.As(err, &bad):
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_provider", err.Error())
	case err != nil:
		s.log.Error("provider change failed", "provider", name, "err", err)
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "save_failed", err.Error())
	default:
		s.log.Info("provider changed", "provider", name)
		s.listProviders(w, nil)
	}
}

func (s *Server) listAliases(w http.ResponseWriter, _ *http.Request) {
	list := s.aliases.List()
	out := make([]api.Alias, 0, len(list))
	for _, a := range list {
		out = append(out, toAPIAlias(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) putAlias(w http.ResponseWriter, r *http.Request) {
	var in api.Alias
	if !decodeJSON(w, r, &in) {
		return
	}
	a := aliases.Alias{Name: r.PathValue("name"), Strategy: string(in.Strategy)}
	for _, t := range in.Targets {
		a.Targets = append(a.Targets, aliases.Target{Model: t.Model, Weight: t.Weight})
	}
	c, err := s.aliases.Set(a, actor(r))
	if err != nil {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_alias", err.Error())
		return
	}
	s.log.Info("alias changed", "alias", a.Name, "version", c.Version, "by", c.By)
	writeJSON(w, http.StatusOK, toAPIChange(c))
}

func (s *Server) deleteAlias(w http.ResponseWriter, r *http.Request) {
	c, err := s.aliases.Delete(r.PathValue("name"), actor(r))
	if err != nil {
		writeAliasError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIChange(c))
}

func (s *Server) aliasHistory(w http.ResponseWriter, r *http.Request) {
	changes := s.aliases.History(r.PathValue("name"))
	out := make([]api.AliasChange, 0, len(changes))
	for _, c := range changes {
		out = append(out, toAPIChange(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) rollbackAlias(w http.ResponseWriter, r *http.Request) {
	var in api.RollbackRequest
	if !decodeJSON(w, r, &in) {
		return
	}
	c, err := s.aliases.Rollback(r.PathValue("name"), in.Version, actor(r))
	if err != nil {
		writeAliasError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIChange(c))
}

func writeAliasError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, aliases.ErrNotFound) {
		status = http.StatusNotFound
	}
	openAIErrors.write(w, status, "invalid_request_error", "alias_error", err.Error())
}

// actor names who made a change, for alias histories.
func actor(r *http.Request) string {
	if isTrusted(r) {
		return "desktop"
	}
	return "ui"
}

// decodeJSON reads a bounded JSON body, answering 400 with the reason when it is not valid.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "invalid request body: "+err.Error())
		return false
	}
	return true
}

func toAPIAlias(a aliases.Alias) api.Alias {
	out := api.Alias{Name: a.Name, Strategy: api.AliasStrategy(a.Strategy), Targets: []api.AliasTarget{}}
	for _, t := range a.Targets {
		out.Targets = append(out.Targets, api.AliasTarget{Model: t.Model, Weight: t.Weight})
	}
	return out
}

func toAPIChange(c aliases.Change) api.AliasChange {
	out := api.AliasChange{Version: c.Version, Name: c.Name, At: c.At, By: c.By, Action: c.Action, From: c.From}
	if c.Alias != nil {
		a := toAPIAlias(*c.Alias)
		out.Alias = &a
	}
	return out
}
