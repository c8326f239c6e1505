// Package aliases maps a name an application calls (model="smart") to real models: one target,
// an ordered fallback chain, or a weighted split (canary). Aliases are read on every request,
// lock-free; every change is kept in a history with who and when, so any version can be restored.
package aliases

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"opentracy/backend/atomicfile"
)

// Strategies.
const (
	// Fallback tries the targets in order.
	Fallback = "fallback"
	// Weighted picks one target by weight per request; the others follow as fallbacks.
	Weighted = "weighted"
)

// Target is a model an alias points to: "provider/model" or a bare model name.
type Target struct {
	Model  string `json:"model" yaml:"model"`
	Weight int    `json:"weight,omitempty" yaml:"weight"`
}

// Alias is one named route.
type Alias struct {
	Name     string   `json:"name" yaml:"name"`
	Strategy string   `json:"strategy" yaml:"strategy"`
	Targets  []Target `json:"targets" yaml:"targets"`
}

// Change is one entry of the history: the alias after the change (nil when deleted).
type Change struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Alias   *Alias    `json:"alias"`
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	// Action is set, delete or rollback.
	Action string `json:"action"`
	// From is the version a rollback restored.
	From int `json:"from,omitempty"`
}

// ErrNotFound is returned for an unknown alias or version.
var ErrNotFound = errors.New("not found")

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Validate checks an alias and fills in the default strategy.
func (a *Alias) Validate() error {
	if !validName.MatchString(a.Name) {
		return fmt.Errorf("alias name %q: use 1-64 letters, digits, '.', '_', ':' or '-' (no '/', which names a provider)", a.Name)
	}
	if a.Strategy == "" {
		a.Strategy = Fallback
	}
	if a.Strategy != Fallback && a.Strategy != Weighted {
		return fmt.Errorf("alias %q: strategy %q: want %q or %q", a.Name, a.Strategy, Fallback, Weighted)
	}
	if len(a.Targets) == 0 {
		return fmt.Errorf("alias %q: give at least one target model", a.Name)
	}
	total := 0
	for i, t := range a.Targets {
		if t.Model == "" {
			return fmt.Errorf("alias %q: target %d has no model", a.Name, i+1)
		}
		if t.Model == a.Name {
			return fmt.Errorf("alias %q: a target cannot be the alias itself", a.Name)
		}
		if t.Weight < 0 {
			return fmt.Errorf("alias %q: target %s has a negative weight", a.Name, t.Model)
		}
		total += t.Weight
	}
	if a.Strategy == Weighted && total == 0 {
		return fmt.Errorf("alias %q: a weighted alias needs a positive weight on some target", a.Name)
	}
	return nil
}

// Registry holds the aliases, persisted as JSON (current aliases and full history) in one file.
type Registry struct {
	path    string
	current atomic.Pointer[map[string]Alias] // read on every request

	mu      sync.Mutex // serialises changes
	history []Change
	now     func() time.Time
}

type fileFormat struct {
	History []Change `json:"history"`
}

// Open loads the registry from path (created on first change). Seed aliases from the config are
// added, as changes by "config", when no alias of that name exists yet: edits made at run time win.
func Open(path string, seed []Alias) (*Registry, error) {
	r := &Registry{path: path, now: time.Now}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		var f fileFormat
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("read aliases %s: %w", path, err)
		}
		r.history = f.History
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("read aliases: %w", err)
	}
	r.publish()
	seeded := false
	for _, a := range seed {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if r.everExisted(a.Name) {
			continue
		}
		r.appendLocked(Change{Name: a.Name, Alias: &a, By: "config", Action: "set"})
		seeded = true
	}
	if seeded {
		if err := r.save(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Get returns the alias named name.
func (r *Registry) Get(name string) (Alias, bool) {
	a, ok := (*r.current.Load())[name]
	return a, ok
}

// List returns all aliases sorted by name.
func (r *Registry) List() []Alias {
	cur := *r.current.Load()
	out := make([]Alias, 0, len(cur))
	for _, a := range cur {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Resolve returns the models to try for name, in order, or false when name is no alias.
func (r *Registry) Resolve(name string) ([]string, bool) {
	a, ok := r.Get(name)
	if !ok {
		return nil, false
	}
	return a.Order(rand.Float64), true
}

// Order lists the target models in the order to try them. For a weighted alias the first is drawn
// by weight (pick is a uniform [0,1) source); the rest follow by descending weight as fallbacks.
func (a Alias) Order(pick func() float64) []string {
	models := make([]string, 0, len(a.Targets))
	if a.Strategy != Weighted {
		for _, t := range a.Targets {
			models = append(models, t.Model)
		}
		return models
	}
	total := 0
	for _, t := range a.Targets {
		total += t.Weight
	}
	x := pick() * float64(total)
	first := -1
	for i, t := range a.Targets {
		if t.Weight == 0 {
			continue
		}
		if x < float64(t.Weight) {
			first = i
			break
		}
		x -= float64(t.Weight)
	}
	if first < 0 { // rounding at the top end
		for i := len(a.Targets) - 1; i >= 0; i-- {
			if a.Targets[i].Weight > 0 {
				first = i
				break
			}
		}
	}
	rest := slices.Clone(a.Targets)
	rest = slices.Delete(rest, first, first+1)
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Weight > rest[j].Weight })
	models = append(models, a.Targets[first].Model)
	for _, t := range rest {
		models = append(models, t.Model)
	}
	return models
}

// Set creates or replaces an alias.
func (r *Registry) Set(a Alias, by string) (Change, error) {
	if err := a.Validate(); err != nil {
		return Change{}, err
	}
	return r.change(Change{Name: a.Name, Alias: &a, By: by, Action: "set"})
}

// Delete removes an alias.
func (r *Registry) Delete(name, by string) (Change, error) {
	if _, ok := r.Get(name); !ok {
		return Change{}, fmt.Errorf("alias %q: %w", name, ErrNotFound)
	}
	return r.change(Change{Name: name, By: by, Action: "delete"})
}

// Rollback restores the alias as it was at version (which may recreate a deleted alias).
func (r *Registry) Rollback(name string, version int, by string) (Change, error) {
	r.mu.Lock()
	var target *Change
	for i := range r.history {
		if c := r.history[i]; c.Version == version && c.Name == name {
			target = &c
		}
	}
	r.mu.Unlock()
	if target == nil {
		return Change{}, fmt.Errorf("alias %q version %d: %w", name, version, ErrNotFound)
	}
	return r.change(Change{Name: name, Alias: target.Alias, By: by, Action: "rollback", From: version})
}

// History returns the changes of one alias, or of all when name is "", newest first.
func (r *Registry) History(name string) []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Change
	for i := len(r.history) - 1; i >= 0; i-- {
		if name == "" || r.history[i].Name == name {
			out = append(out, r.history[i])
		}
	}
	return out
}

func (r *Registry) change(c Change) (Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c = r.appendLocked(c)
	if err := r.save(); err != nil {
		r.history = r.history[:len(r.history)-1]
		r.publish()
		return Change{}, err
	}
	return c, nil
}

func (r *Registry) appendLocked(c Change) Change {
	c.Version = len(r.history) + 1
	c.At = r.now().UTC()
	r.history = append(r.history, c)
	r.publish()
	return c
}

func (r *Registry) everExisted(name string) bool {
	for _, c := range r.history {
		if c.Name == name {
			return true
		}
	}
	return false
}

// publish rebuilds the lock-free view from the history.
func (r *Registry) publish() {
	cur := map[string]Alias{}
	for _, c := range r.history {
		if c.Alias == nil {
			delete(cur, c.Name)
		} else {
			cur[c.Name] = *c.Alias
		}
	}
	r.current.Store(&cur)
}

func (r *Registry) save() error {
	if r.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(fileFormat{History: r.history}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode aliases: %w", err)
	}
	if err := atomicfile.Write(r.path, data, 0o600); err != nil {
		return fmt.Errorf("save aliases: %w", err)
	}
	return nil
}
