package gateway

import (
	"slices"
	"sort"
	"sync"
)

// ProviderStat summarises recent upstream attempts of one provider (for the Providers screen).
type ProviderStat struct {
	Provider string  `json:"provider"`
	Attempts uint64  `json:"attempts"`
	Failures uint64  `json:"failures"`
	P50Milli float64 `json:"p50_ms"`
	P95Milli float64 `json:"p95_ms"`
}

// latencyWindow is how many recent latencies the percentiles are computed over.
const latencyWindow = 512

type providerStats struct {
	mu  sync.Mutex
	per map[string]*providerWindow
}

type providerWindow struct {
	attempts, failures uint64
	latencies          []float64 // ring of successful attempts' latencies
	next               int
}

func newProviderStats() *providerStats { return &providerStats{per: map[string]*providerWindow{}} }

func (s *providerStats) observe(provider string, status int, latencyMillis float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.per[provider]
	if w == nil {
		w = &providerWindow{latencies: make([]float64, 0, latencyWindow)}
		s.per[provider] = w
	}
	w.attempts++
	if status < 200 || status > 299 {
		w.failures++
		return
	}
	if len(w.latencies) < latencyWindow {
		w.latencies = append(w.latencies, latencyMillis)
	} else {
		w.latencies[w.next] = latencyMillis
		w.next = (w.next + 1) % latencyWindow
	}
}

// ProviderStats returns per-provider attempt counts and latency percentiles, by provider name.
func (g *Gateway) ProviderStats() []ProviderStat {
	s := g.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProviderStat, 0, len(s.per))
	for name, w := range s.per {
		st := ProviderStat{Provider: name, Attempts: w.attempts, Failures: w.failures}
		if n := len(w.latencies); n > 0 {
			sorted := slices.Clone(w.latencies)
			slices.Sort(sorted)
			st.P50Milli = sorted[(n-1)*50/100]
			st.P95Milli = sorted[(n-1)*95/100]
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out
}
