package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"

	"opentracy/backend/atomicfile"
	"opentracy/backend/config"
	"opentracy/backend/gateway"
	"opentracy/backend/providers"
	"opentracy/backend/providers/catalog"
)

// ProvidersFile holds the providers added in the UI, keys included (mode 0600).
const ProvidersFile = "providers.json"

// Provider sources.
const (
	sourceConfig = "config"
	sourceEnv    = "environment"
	sourceUI     = "ui"
	// sourceBuiltin: always there, like the local models provider.
	sourceBuiltin = "built-in"
)

// configuredProvider is a provider with how it was configured.
type configuredProvider struct {
	cfg      config.Provider
	provider providers.Provider
	source   string
}

// providerSet is every provider: fixed ones (config file or environment) and those managed in the
// UI, which are persisted and can change at run time. Each change rebuilds the gateway's routes.
type providerSet struct {
	file   string
	env    config.Environment
	client *http.Client
	gw     *gateway.Gateway

	mu      sync.Mutex
	fixed   []configuredProvider
	managed []config.Provider
	all     []configuredProvider
}

// managedFile is the on-disk form: config.Provider redacts its key when encoded, so keys are
// stored through this type.
type managedFile struct {
	Providers []managedProvider `json:"providers"`
}

type managedProvider struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	BaseURL string   `json:"base_url,omitempty"`
	APIKey  string   `json:"api_key,omitempty"`
	Models  []string `json:"models,omitempty"`
}

// newProviderSet builds the providers. builtin ones come last and give way to a configured
// provider of the same name.
func newProviderSet(cfg config.Config, env config.Environment, file string, builtin ...configuredProvider) (*providerSet, error) {
	ps := &providerSet{file: file, env: env, client: catalog.NewHTTPClient()}
	cfgs, source := cfg.Providers, sourceConfig
	if len(cfgs) == 0 {
		cfgs, source = catalog.FromEnvironment(env), sourceEnv
	}
	for _, pc := range cfgs {
		p, err := catalog.New(pc, ps.client, env)
		if err != nil {
			return nil, err
		}
		ps.fixed = append(ps.fixed, configuredProvider{cfg: pc, provider: p, source: source})
	}
	for _, b := range builtin {
		if !slices.ContainsFunc(ps.fixed, func(p configuredProvider) bool { return p.provider.Name() == b.provider.Name() }) {
			ps.fixed = append(ps.fixed, b)
		}
	}
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", file, err)
	default:
		var f managedFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("read %s: %w (fix or move the file)", file, err)
		}
		for _, m := range f.Providers {
			ps.managed = append(ps.managed, config.Provider{Name: m.Name, Type: m.Type, BaseURL: m.BaseURL, APIKey: config.Secret(m.APIKey), Models: m.Models})
		}
	}
	all, err := ps.build(ps.managed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	ps.all = all
	return ps, nil
}

// build combines the fixed providers with the managed ones, refusing duplicate names.
func (ps *providerSet) build(managed []config.Provider) ([]configuredProvider, error) {
	all := slices.Clone(ps.fixed)
	names := map[string]bool{}
	for _, p := range all {
		names[p.provider.Name()] = true
	}
	for _, pc := range managed {
		p, err := catalog.New(pc, ps.client, ps.env)
		if err != nil {
			return nil, err
		}
		if names[p.Name()] {
			return nil, fmt.Errorf("a provider named %q already exists", p.Name())
		}
		names[p.Name()] = true
		all = append(all, configuredProvider{cfg: pc, provider: p, source: sourceUI})
	}
	return all, nil
}

// list returns the current providers.
func (ps *providerSet) list() []configuredProvider {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.all
}

// routes returns what the gateway routes with: the providers and the bare-model map.
func routesOf(all []configuredProvider) ([]providers.Provider, map[string][]string) {
	list := make([]providers.Provider, 0, len(all))
	models := map[string][]string{}
	for _, p := range all {
		list = append(list, p.provider)
		for _, m := range p.cfg.Models {
			models[m] = append(models[m], p.provider.Name())
		}
	}
	return list, models
}

// errProviderInput is a change refused because of what was asked, not because of the disk.
type errProviderInput struct{ error }

// upsert adds or replaces a managed provider; an empty key keeps the one stored before.
func (ps *providerSet) upsert(name string, in config.Provider, create bool) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	managed := slices.Clone(ps.managed)
	i := slices.IndexFunc(managed, func(p config.Provider) bool { return p.Name == name })
	switch {
	case create && i >= 0:
		return errProviderInput{fmt.Errorf("a provider named %q already exists", name)}
	case !create && i < 0:
		if slices.ContainsFunc(ps.fixed, func(p configuredProvider) bool { return p.provider.Name() == name }) {
			return errProviderInput{fmt.Errorf("provider %q comes from the %s and cannot be edited here", name, ps.fixed[0].source)}
		}
		return errProviderInput{fmt.Errorf("no provider named %q: %w", name, errNotFound)}
	}
	in.Name = name
	if i >= 0 {
		if in.APIKey == "" {
			in.APIKey = managed[i].APIKey
		}
		managed[i] = in
	} else {
		managed = append(managed, in)
	}
	return ps.commit(managed)
}

func (ps *providerSet) remove(name string) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	i := slices.IndexFunc(ps.managed, func(p config.Provider) bool { return p.Name == name })
	if i < 0 {
		return errProviderInput{fmt.Errorf("no provider named %q was added in the app: %w", name, errNotFound)}
	}
	return ps.commit(slices.Delete(slices.Clone(ps.managed), i, i+1))
}

// commit validates, saves and applies a new managed list (caller holds mu).
func (ps *providerSet) commit(managed []config.Provider) error {
	all, err := ps.build(managed)
	if err != nil {
		return errProviderInput{err}
	}
	f := managedFile{Providers: []managedProvider{}}
	for _, p := range managed {
		f.Providers = append(f.Providers, managedProvider{Name: p.Name, Type: p.Type, BaseURL: p.BaseURL, APIKey: p.APIKey.Reveal(), Models: p.Models})
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode providers: %w", err)
	}
	if err := atomicfile.Write(ps.file, data, config.SecretMode); err != nil {
		return fmt.Errorf("save providers: %w", err)
	}
	ps.managed, ps.all = managed, all
	ps.gw.SetProviders(routesOf(all))
	return nil
}

var errNotFound = errors.New("not found")

// typeOf returns a provider's type by name ("" when unknown).
func (ps *providerSet) typeOf(name string) string {
	for _, p := range ps.list() {
		if p.provider.Name() == name {
			return p.cfg.Type
		}
	}
	return ""
}

func (e errProviderInput) Unwrap() error { return e.error }
