package gateway

import (
	"fmt"
	"sort"
	"strings"
)

// deployment is one (provider, upstream model) pair a request can be sent to.
type deployment struct {
	provider string
	model    string
}

func (d deployment) String() string { return d.provider + "/" + d.model }

// plan is the ordered list of deployments to try for a requested model.
type plan struct {
	alias       string
	deployments []deployment
	routes      *routes
}

// errNoRoute is a model the gateway cannot place.
type errNoRoute struct{ model, known string }

func (e *errNoRoute) Error() string {
	return fmt.Sprintf("The model `%s` does not exist or is not configured in OpenTracy. Use an alias, \"provider/model\" or a configured model%s.", e.model, e.known)
}

// route resolves a requested model: an alias (its targets in order), "provider/model", or a bare
// model name served by configured providers.
func (g *Gateway) route(model string) (plan, error) {
	rt := g.routes.Load()
	if model == "" {
		return plan{}, &errNoRoute{model: model}
	}
	if g.opts.Aliases != nil {
		if targets, ok := g.opts.Aliases.Resolve(model); ok {
			p := plan{alias: model, routes: rt}
			for _, t := range targets {
				deps, err := g.resolveModel(rt, t)
				if err != nil {
					g.log.Warn("alias target cannot be routed", "alias", model, "target", t, "err", err)
					continue
				}
				p.deployments = append(p.deployments, deps...)
			}
			if len(p.deployments) == 0 {
				return plan{}, fmt.Errorf("alias %q has no routable target (check its targets and the providers)", model)
			}
			return p, nil
		}
	}
	deps, err := g.resolveModel(rt, model)
	if err != nil {
		return plan{}, err
	}
	return plan{deployments: deps, routes: rt}, nil
}

func (g *Gateway) resolveModel(rt *routes, model string) ([]deployment, error) {
	if prov, rest, ok := strings.Cut(model, "/"); ok {
		if _, exists := rt.providers[prov]; exists && rest != "" {
			return []deployment{{provider: prov, model: rest}}, nil
		}
	}
	if deps := rt.deployments[model]; len(deps) > 0 {
		return deps, nil // shared: callers only read it
	}
	// A model named after a well-known family goes to the configured provider of that family.
	if prov := familyOf(model); prov != "" {
		if _, ok := rt.providers[prov]; ok {
			return []deployment{{provider: prov, model: model}}, nil
		}
	}
	return nil, &errNoRoute{model: model, known: g.knownModels(rt)}
}

// familyOf names the provider type of the big model families, so their bare model names route
// without listing every model in the config.
func familyOf(model string) string {
	for _, f := range [...]struct{ prefix, provider string }{
		{"gpt-", "openai"}, {"chatgpt-", "openai"}, {"o1", "openai"}, {"o3", "openai"}, {"o4", "openai"},
		{"text-embedding-", "openai"}, {"claude-", "anthropic"}, {"gemini-", "gemini"}, {"grok-", "xai"},
		{"mistral-", "mistral"}, {"deepseek-", "deepseek"},
	} {
		if strings.HasPrefix(model, f.prefix) {
			return f.provider
		}
	}
	return ""
}

func (g *Gateway) knownModels(rt *routes) string {
	var names []string
	if g.opts.Aliases != nil {
		for _, a := range g.opts.Aliases.List() {
			names = append(names, a.Name)
		}
	}
	for m := range rt.models {
		names = append(names, m)
	}
	if len(names) == 0 {
		if len(rt.order) == 0 {
			return " (no provider is configured yet: add one in the Providers screen or the config file)"
		}
		return " (configured providers: " + strings.Join(rt.order, ", ") + ")"
	}
	sort.Strings(names)
	if len(names) > 20 {
		names = append(names[:20], "…")
	}
	return " such as " + strings.Join(names, ", ")
}
