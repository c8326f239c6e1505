// Package traces owns the record of one gateway request (Trace) and where records go (Sink).
// Durable stores (SQLite, ClickHouse) implement Sink behind a batching writer; MemorySink keeps
// recent traces for tests and for the UI until a store is configured.
package traces

import (
	"encoding/json"
	"sync"
	"time"
)

// Trace is everything recorded about one request through the gateway.
type Trace struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	// Endpoint is what was called: chat.completions, embeddings, completions, responses, anthropic.messages.
	Endpoint string `json:"endpoint"`
	// RequestedModel is the client's "model"; Alias is set when that was an alias.
	RequestedModel string `json:"requested_model"`
	Alias          string `json:"alias,omitempty"`
	// Model and Provider are what finally served the request (or was tried last).
	Model    string    `json:"model"`
	Provider string    `json:"provider"`
	Attempts []Attempt `json:"attempts"`
	// Status is the HTTP status the client got; Error the message when it was not 2xx.
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	Stream bool   `json:"stream"`
	// TTFTMillis is the time to the first streamed byte (0 when not streaming).
	TTFTMillis    float64 `json:"ttft_ms"`
	LatencyMillis float64 `json:"latency_ms"`
	Usage         Usage   `json:"usage"`
	CostUSD       float64 `json:"cost_usd"`
	FinishReason  string  `json:"finish_reason,omitempty"`
	// Input is the request's messages (or embeddings input, or prompt), as sent.
	Input json.RawMessage `json:"input,omitempty"`
	// Tools is the request's tools array, when given.
	Tools json.RawMessage `json:"tools,omitempty"`
	// Output is the response's choices (messages with content and tool calls).
	Output json.RawMessage `json:"output,omitempty"`
	// ToolCalls lists the tool calls of the first choice, for quick filtering.
	ToolCalls json.RawMessage   `json:"tool_calls,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	User      string            `json:"user,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
}

// Usage counts tokens in OpenAI's semantics: prompt includes cached and cache-write tokens,
// completion includes reasoning tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	CachedTokens     int `json:"cached_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens"`
	ReasoningTokens  int `json:"reasoning_tokens"`
}

// Attempt is one upstream call made for a request (retries and fallbacks make several).
type Attempt struct {
	Provider      string    `json:"provider"`
	Model         string    `json:"model"`
	StartedAt     time.Time `json:"started_at"`
	LatencyMillis float64   `json:"latency_ms"`
	// Status is the upstream status, 0 for a transport error.
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Sink receives finished traces. Record must not block the request that produced the trace.
type Sink interface {
	Record(t *Trace)
}

// MemorySink keeps the most recent traces in memory, bounded by count and by the bytes of their
// messages: agent conversations and long documents make single traces megabytes large.
type MemorySink struct {
	mu       sync.Mutex
	ring     []*Trace
	next     int
	bytes    int // payload bytes of the traces in ring
	maxBytes int
	total    uint64
	waiters  []chan struct{}
}

// DefaultMemoryBytes bounds a MemorySink's payloads unless told otherwise.
const DefaultMemoryBytes = 64 << 20

// NewMemorySink keeps up to capacity traces (default 1000) and DefaultMemoryBytes of payload.
func NewMemorySink(capacity int) *MemorySink {
	if capacity <= 0 {
		capacity = 1000
	}
	return &MemorySink{ring: make([]*Trace, 0, capacity), maxBytes: DefaultMemoryBytes}
}

// payloadBytes is what a trace's messages weigh.
func payloadBytes(t *Trace) int {
	return len(t.Input) + len(t.Output) + len(t.Tools) + len(t.ToolCalls)
}

// Record stores t, dropping the oldest traces when over capacity or over the byte budget.
func (m *MemorySink) Record(t *Trace) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.ring) < cap(m.ring) {
		m.ring = append(m.ring, t)
	} else {
		m.bytes -= payloadBytes(m.ring[m.next])
		m.ring[m.next] = t
		m.next = (m.next + 1) % len(m.ring)
	}
	m.bytes += payloadBytes(t)
	for m.bytes > m.maxBytes && len(m.ring) > 1 {
		m.dropOldestLocked()
	}
	m.total++
	for _, w := range m.waiters {
		close(w)
	}
	m.waiters = nil
}

// dropOldestLocked removes the oldest trace, keeping the ring in order (oldest first from next).
func (m *MemorySink) dropOldestLocked() {
	ordered := make([]*Trace, 0, cap(m.ring))
	for i := range m.ring {
		ordered = append(ordered, m.ring[(m.next+i)%len(m.ring)])
	}
	m.bytes -= payloadBytes(ordered[0])
	m.ring, m.next = ordered[1:len(ordered):cap(m.ring)], 0
}

// Recent returns up to n traces (all when n <= 0), newest first.
func (m *MemorySink) Recent(n int) []*Trace {
	m.mu.Lock()
	defer m.mu.Unlock()
	size := len(m.ring)
	if n > size || n <= 0 {
		n = size
	}
	out := make([]*Trace, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, m.ring[(m.next-1-i+2*size)%size])
	}
	return out
}

// Total counts every trace recorded since start.
func (m *MemorySink) Total() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.total
}

// Changed returns a channel closed at the next Record (tests wait on it instead of sleeping).
func (m *MemorySink) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan struct{})
	m.waiters = append(m.waiters, ch)
	return ch
}
