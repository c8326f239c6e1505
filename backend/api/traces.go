package api

import (
	"encoding/json"
	"time"
)

// Traces API: GET /api/traces (TracePage), GET /api/traces/{id} (TraceDetail),
// GET /api/traces/aggregate (TraceAggregates), GET /api/traces/export (JSONL of the trace
// format), POST /api/traces/import (ImportResult).
//
// The list, aggregate and export endpoints take the same filter parameters, each optional:
//
//	from, to             RFC 3339 times; traces that started in [from, to)
//	model, provider,     repeatable; any of the values matches
//	alias, endpoint
//	status               "ok" (2xx) or "error"
//	minCost, maxCost     USD
//	minLatency,          milliseconds
//	maxLatency
//	minTokens, maxTokens prompt + completion tokens
//	meta                 repeatable "key=value"; every pair must match
//	q                    full-text search over the prompt and the answer
//	cursor, limit        list only: the previous page's nextCursor; page size (default 50, max 500)
//	bucket, groupBy      aggregate only: a Go duration ("1h", "15m"); "model", "provider", "alias" or ""

// TracePage is one page of the trace list, newest first.
type TracePage struct {
	Traces []TraceSummary `json:"traces"`
	// NextCursor fetches the next page; absent on the last one.
	NextCursor string `json:"nextCursor,omitempty"`
}

// TraceSummary is a row of the Traces table; also the data of the live "trace" event.
type TraceSummary struct {
	ID             string     `json:"id"`
	StartedAt      time.Time  `json:"startedAt"`
	Endpoint       string     `json:"endpoint"`
	RequestedModel string     `json:"requestedModel"`
	Alias          string     `json:"alias,omitempty"`
	Model          string     `json:"model"`
	Provider       string     `json:"provider"`
	Status         int        `json:"status"`
	Error          string     `json:"error,omitempty"`
	Stream         bool       `json:"stream"`
	LatencyMillis  float64    `json:"latencyMs"`
	TTFTMillis     float64    `json:"ttftMs"`
	Usage          TokenUsage `json:"usage"`
	CostUSD        float64    `json:"costUsd"`
	// Preview is the start of the last user message.
	Preview string `json:"preview"`
}

// TokenUsage counts tokens with OpenAI's semantics: prompt includes cached and cache-write
// tokens, completion includes reasoning tokens.
type TokenUsage struct {
	PromptTokens     int `json:"promptTokens"`
	CompletionTokens int `json:"completionTokens"`
	CachedTokens     int `json:"cachedTokens"`
	CacheWriteTokens int `json:"cacheWriteTokens"`
	ReasoningTokens  int `json:"reasoningTokens"`
}

// TraceDetail is everything recorded about one request, for the trace drawer.
type TraceDetail struct {
	TraceSummary
	FinishReason string         `json:"finishReason,omitempty"`
	Attempts     []TraceAttempt `json:"attempts"`
	// Input is the request's messages (chat), input (embeddings) or prompt (completions), exactly
	// as the client sent them; Output the response's choices; Tools the request's tools array.
	Input     json.RawMessage   `json:"input,omitempty"`
	Output    json.RawMessage   `json:"output,omitempty"`
	Tools     json.RawMessage   `json:"tools,omitempty"`
	ToolCalls json.RawMessage   `json:"toolCalls,omitempty"`
	Metadata  map[string]string `json:"metadata"`
	User      string            `json:"user,omitempty"`
	UserAgent string            `json:"userAgent,omitempty"`
	// CostBreakdown splits the cost by token kind at the current price of the model; absent when
	// the model has no known price.
	CostBreakdown *CostBreakdown `json:"costBreakdown,omitempty"`
}

// TraceAttempt is one upstream call made for a request (retries and fallbacks make several).
type TraceAttempt struct {
	Provider      string    `json:"provider"`
	Model         string    `json:"model"`
	StartedAt     time.Time `json:"startedAt"`
	LatencyMillis float64   `json:"latencyMs"`
	// Status is the upstream's HTTP status, 0 for a connection error.
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

// CostBreakdown is a request's cost in USD by token kind; Total is their sum.
type CostBreakdown struct {
	Input       float64 `json:"input"`
	CachedInput float64 `json:"cachedInput"`
	CacheWrite  float64 `json:"cacheWrite"`
	Output      float64 `json:"output"`
	Reasoning   float64 `json:"reasoning"`
	Total       float64 `json:"total"`
}

// TraceAggregates are chart series: one per group (one with group "" when not grouped).
type TraceAggregates struct {
	Series []TraceSeries `json:"series"`
}

// TraceSeries is one group's buckets, oldest first; empty buckets are included with zeros.
type TraceSeries struct {
	Group   string        `json:"group"`
	Buckets []TraceBucket `json:"buckets"`
}

// TraceBucket summarises the traces that started in [start, start+bucket).
type TraceBucket struct {
	Start            time.Time `json:"start"`
	Requests         int64     `json:"requests"`
	Errors           int64     `json:"errors"`
	CostUSD          float64   `json:"costUsd"`
	PromptTokens     int64     `json:"promptTokens"`
	CompletionTokens int64     `json:"completionTokens"`
	LatencyP50       float64   `json:"latencyP50Ms"`
	LatencyP95       float64   `json:"latencyP95Ms"`
	LatencyP99       float64   `json:"latencyP99Ms"`
}

// ImportResult reports a JSONL import: every line is imported, skipped as already present, or
// listed in Errors with its line number; nothing is half-imported.
type ImportResult struct {
	Imported int           `json:"imported"`
	Skipped  int           `json:"skipped"`
	Errors   []ImportError `json:"errors"`
}

// ImportError names a line that could not be imported and why.
type ImportError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}
