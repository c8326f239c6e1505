package server

import (
	"fmt"
	"path/filepath"
	"sort"

	"opentracy/backend/aliases"
	"opentracy/backend/config"
	"opentracy/backend/gateway"
	"opentracy/backend/pricing"
	"opentracy/backend/providers"
	"opentracy/backend/providers/catalog"
	"opentracy/backend/traces"
)

// AliasesFile is where aliases and their history live in the data dir.
const AliasesFile = "aliases.json"

// configuredProvider is a provider with how it was configured.
type configuredProvider struct {
	cfg      config.Provider
	provider providers.Provider
	source   string // "config" or "environment"
}

// buildGateway assembles providers, aliases and prices from the configuration.
func buildGateway(opts Options, sink traces.Sink) (*gateway.Gateway, *aliases.Registry, []configuredProvider, error) {
	cfg := opts.Config
	env := opts.Env
	cfgs, source := cfg.Providers, "config"
	if len(cfgs) == 0 {
		cfgs, source = catalog.FromEnvironment(env), "environment"
	}
	client := catalog.NewHTTPClient()
	var built []configuredProvider
	models := map[string][]string{}
	typeOf := map[string]string{}
	timeouts := map[string]gateway.Timeouts{}
	for _, pc := range cfgs {
		p, err := catalog.New(pc, client, env)
		if err != nil {
			return nil, nil, nil, err
		}
		built = append(built, configuredProvider{cfg: pc, provider: p, source: source})
		typeOf[p.Name()] = pc.Type
		for _, m := range pc.Models {
			models[m] = append(models[m], p.Name())
		}
		if pc.Timeout > 0 || pc.StreamIdleTimeout > 0 {
			timeouts[p.Name()] = gateway.Timeouts{Request: pc.Timeout, StreamIdle: pc.StreamIdleTimeout}
		}
	}

	prices, err := pricing.NewTable(cfg.Prices)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("prices: %w", err)
	}
	var seed []aliases.Alias
	for name, a := range cfg.Aliases {
		al := aliases.Alias{Name: name, Strategy: a.Strategy}
		for _, t := range a.Targets {
			al.Targets = append(al.Targets, aliases.Target{Model: t.Model, Weight: t.Weight})
		}
		seed = append(seed, al)
	}
	sort.Slice(seed, func(i, j int) bool { return seed[i].Name < seed[j].Name })
	reg, err := aliases.Open(filepath.Join(cfg.DataDir, AliasesFile), seed)
	if err != nil {
		return nil, nil, nil, err
	}

	list := make([]providers.Provider, 0, len(built))
	for _, b := range built {
		list = append(list, b.provider)
	}
	gw := gateway.New(gateway.Options{
		Providers: list,
		Models:    models,
		Aliases:   reg,
		Sink:      sink,
		Logger:    opts.Logger,
		Cost: func(provider, model string, u traces.Usage) float64 {
			// Price by the provider's type: a provider named "work-openai" bills like "openai".
			price, ok := prices.Lookup(typeOf[provider], model)
			if !ok {
				return 0
			}
			return price.Cost(pricing.Usage(u))
		},
		Retry: gateway.RetryPolicy{
			MaxRetries: cfg.Gateway.MaxRetries, BaseDelay: cfg.Gateway.RetryBaseDelay, MaxDelay: cfg.Gateway.MaxRetryDelay,
			MaxRetryAfter: cfg.Gateway.MaxRetryAfter, Cooldown: cfg.Gateway.Cooldown,
		},
		Timeouts:        timeouts,
		DefaultTimeouts: gateway.Timeouts{Request: cfg.Gateway.Timeout, StreamIdle: cfg.Gateway.StreamIdleTimeout},
		MaxBodyBytes:    cfg.Gateway.MaxBodyBytes,
	})
	return gw, reg, built, nil
}
