package server

import (
	"fmt"
	"path/filepath"
	"sort"

	"opentracy/backend/aliases"
	"opentracy/backend/config"
	"opentracy/backend/gateway"
	"opentracy/backend/pricing"
	"opentracy/backend/providers/local"
	"opentracy/backend/traces"
)

// AliasesFile is where aliases and their history live in the data dir.
const AliasesFile = "aliases.json"

// gatewayParts are the gateway and what it routes and prices with.
type gatewayParts struct {
	local     *local.Provider // closed on shutdown: it holds loaded models
	gw        *gateway.Gateway
	aliases   *aliases.Registry
	providers *providerSet
	prices    *pricing.Table
}

// priceOf prices by the provider's type: a provider named "work-openai" bills like "openai".
func (g gatewayParts) priceOf(provider, model string) (pricing.Price, bool) {
	return g.prices.Lookup(g.providers.typeOf(provider), model)
}

// buildGateway assembles providers, aliases and prices from the configuration.
func buildGateway(opts Options, sink traces.Sink) (gatewayParts, error) {
	cfg := opts.Config
	lp, err := local.New(local.Options{DataDir: cfg.DataDir, Env: opts.Env, Engine: cfg.Engine.Config, Logger: opts.Logger})
	if err != nil {
		return gatewayParts{}, err
	}
	ps, err := newProviderSet(cfg, opts.Env, filepath.Join(cfg.DataDir, ProvidersFile),
		configuredProvider{cfg: config.Provider{Name: local.Type, Type: local.Type}, provider: lp, source: sourceBuiltin})
	if err != nil {
		return gatewayParts{}, err
	}
	timeouts := map[string]gateway.Timeouts{}
	for _, p := range ps.list() {
		if p.cfg.Timeout > 0 || p.cfg.StreamIdleTimeout > 0 {
			timeouts[p.provider.Name()] = gateway.Timeouts{Request: p.cfg.Timeout, StreamIdle: p.cfg.StreamIdleTimeout}
		}
	}

	prices, err := pricing.NewTable(cfg.Prices)
	if err != nil {
		return gatewayParts{}, fmt.Errorf("prices: %w", err)
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
		return gatewayParts{}, err
	}
	parts := gatewayParts{local: lp, aliases: reg, providers: ps, prices: prices}

	list, models := routesOf(ps.list())
	gw := gateway.New(gateway.Options{
		Providers: list,
		Models:    models,
		Aliases:   reg,
		Sink:      sink,
		Logger:    opts.Logger,
		Cost: func(provider, model string, u traces.Usage) float64 {
			price, ok := parts.priceOf(provider, model)
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
	ps.gw = gw
	parts.gw = gw
	return parts, nil
}
