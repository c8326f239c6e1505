package traces

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for an unknown trace id.
var ErrNotFound = errors.New("trace not found")

// BatchWriter is what the Writer needs of a store.
type BatchWriter interface {
	// Write stores a batch atomically: all of it or none. Writing a trace whose ID is already
	// stored is a no-op, so replaying a journal after a crash never duplicates.
	Write(ctx context.Context, batch []*Trace) error
}

// Store persists traces and answers the queries behind the Traces and Overview screens. SQLite
// (default) and ClickHouse implement it and pass one contract test suite.
type Store interface {
	BatchWriter
	// Get returns one trace with its full messages, or ErrNotFound.
	Get(ctx context.Context, id string) (*Trace, error)
	// List returns one page of summaries, newest first, matching q.
	List(ctx context.Context, q Query) (Page, error)
	// Aggregate returns time-bucketed totals and latency percentiles for charts.
	Aggregate(ctx context.Context, q AggregateQuery) (Aggregates, error)
	// DeleteBefore removes every trace that started before t (retention) and reports how many.
	DeleteBefore(ctx context.Context, t time.Time) (int64, error)
	Close() error
}

// Scan calls fn with every full trace matching q (Cursor and Limit ignored), newest first, one
// page at a time so that memory stays bounded whatever the size of the result. It stops at the
// first error fn returns and returns it.
func Scan(ctx context.Context, s Store, q Query, fn func(*Trace) error) error {
	q.Cursor, q.Limit = "", 200
	for {
		page, err := s.List(ctx, q)
		if err != nil {
			return err
		}
		for _, sm := range page.Traces {
			t, err := s.Get(ctx, sm.ID)
			if errors.Is(err, ErrNotFound) {
				continue // removed by retention since the page was read
			}
			if err != nil {
				return err
			}
			if err := fn(t); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		q.Cursor = page.NextCursor
	}
}

// Query filters traces; zero fields do not filter.
type Query struct {
	From, To   time.Time // StartedAt in [From, To)
	Models     []string  // resolved model
	Providers  []string
	Aliases    []string
	Endpoints  []string
	Status     string // "ok" (2xx), "error" (anything else), or "" for both
	MinCostUSD *float64
	MaxCostUSD *float64
	MinLatency *float64 // milliseconds
	MaxLatency *float64
	MinTokens  *int // prompt + completion
	MaxTokens  *int
	Metadata   map[string]string // every key must have this value
	Text       string            // full-text search over input and output text
	Cursor     string            // from the previous Page; "" for the first page
	Limit      int               // default 50, at most 500
}

// Page is one page of a listing.
type Page struct {
	Traces []Summary
	// NextCursor continues the listing; "" on the last page.
	NextCursor string
}

// Summary is a trace without its messages, plus the first words of the prompt.
type Summary struct {
	ID             string    `json:"id"`
	StartedAt      time.Time `json:"started_at"`
	Endpoint       string    `json:"endpoint"`
	RequestedModel string    `json:"requested_model"`
	Alias          string    `json:"alias,omitempty"`
	Model          string    `json:"model"`
	Provider       string    `json:"provider"`
	Status         int       `json:"status"`
	Error          string    `json:"error,omitempty"`
	Stream         bool      `json:"stream"`
	LatencyMillis  float64   `json:"latency_ms"`
	TTFTMillis     float64   `json:"ttft_ms"`
	Usage          Usage     `json:"usage"`
	CostUSD        float64   `json:"cost_usd"`
	// Preview is the start of the last user message (at most 200 characters).
	Preview string `json:"preview"`
}

// AggregateQuery asks for totals over [From, To) in buckets of Bucket, grouped by GroupBy
// ("model", "provider", "alias" or "" for one series), with the filters of Query.
type AggregateQuery struct {
	Query
	Bucket  time.Duration
	GroupBy string
}

// Aggregates are chart-ready series.
type Aggregates struct {
	Series []Series `json:"series"`
}

// Series is one group's buckets, oldest first; empty buckets are included with zeros.
type Series struct {
	Group   string   `json:"group"`
	Buckets []Bucket `json:"buckets"`
}

// Bucket summarises the traces that started in [Start, Start+Bucket).
type Bucket struct {
	Start            time.Time `json:"start"`
	Requests         int64     `json:"requests"`
	Errors           int64     `json:"errors"`
	CostUSD          float64   `json:"cost_usd"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	LatencyP50       float64   `json:"latency_p50_ms"`
	LatencyP95       float64   `json:"latency_p95_ms"`
	LatencyP99       float64   `json:"latency_p99_ms"`
}
