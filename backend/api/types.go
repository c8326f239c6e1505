// Package api holds the JSON types of the management API under /api. They are the contract between
// the Go backend and the UI: the TypeScript types in frontend/src/api/types.gen.ts are generated from
// this package (make generate), never written by hand.
package api

import "time"

// Shell names the way the running process presents its UI.
type Shell string

const (
	ShellDesktop Shell = "desktop"
	ShellServer  Shell = "server"
)

// Info describes the running instance: what the UI needs to tell the user how to connect.
type Info struct {
	Version    string      `json:"version"`
	Shell      Shell       `json:"shell"`
	Gateway    GatewayInfo `json:"gateway"`
	DataDir    string      `json:"dataDir"`
	ConfigFile string      `json:"configFile,omitempty"`
	StartedAt  time.Time   `json:"startedAt"`
}

// GatewayInfo is what a client application pastes into its SDK.
type GatewayInfo struct {
	// BaseURL is the OpenAI-compatible base URL, e.g. http://127.0.0.1:8787/v1.
	BaseURL string `json:"baseURL"`
	// AnthropicBaseURL is the base URL for Anthropic SDK clients.
	AnthropicBaseURL string `json:"anthropicBaseURL"`
	// Key is the gateway key clients send as "Authorization: Bearer <key>".
	Key string `json:"key"`
	// KeySource tells where the key came from: generated on first run, the config file, a flag or the environment.
	KeySource KeySource `json:"keySource"`
}

// KeySource says where a secret came from.
type KeySource string

const (
	KeyGenerated KeySource = "generated"
	KeyConfig    KeySource = "config"
	KeyFlag      KeySource = "flag"
	KeyEnv       KeySource = "env"
)

// ErrorResponse is the error body of every /api and /v1 endpoint (OpenAI's error shape).
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody carries a human-readable message and machine-readable type and code.
type ErrorBody struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
}

// EventType is the SSE "event:" field of /api/events.
type EventType string

const (
	// EventHello is the first event of every stream; its data is a Hello.
	EventHello EventType = "hello"
	// EventReset tells a reconnecting client that events were missed: refetch what is shown.
	EventReset EventType = "reset"
	// EventServerStats carries a ServerStats sample.
	EventServerStats EventType = "server.stats"
	// EventTrace carries the TraceSummary of a trace just stored.
	EventTrace EventType = "trace"
	// EventJob carries a Job whose state or progress changed.
	EventJob EventType = "job"
)

// Hello opens every event stream.
type Hello struct {
	Version   string    `json:"version"`
	StartedAt time.Time `json:"startedAt"`
}

// ServerStats is a periodic sample of the process, sent as EventServerStats.
type ServerStats struct {
	Time          time.Time `json:"time"`
	UptimeSeconds float64   `json:"uptimeSeconds"`
	// RSSBytes is the resident set size of the process (0 where the platform does not report it).
	RSSBytes   uint64 `json:"rssBytes"`
	HeapBytes  uint64 `json:"heapBytes"`
	Goroutines int    `json:"goroutines"`
	// EventClients is the number of open /api/events streams.
	EventClients int `json:"eventClients"`
	// EventsEvicted counts event streams closed because the client fell too far behind.
	EventsEvicted uint64 `json:"eventsEvicted"`
}

// Enums lists the values of every string enum above, so the generated TypeScript has union types.
func Enums() map[any][]string {
	return map[any][]string{
		Shell(""):         {string(ShellDesktop), string(ShellServer)},
		KeySource(""):     {string(KeyGenerated), string(KeyConfig), string(KeyFlag), string(KeyEnv)},
		EventType(""):     {string(EventHello), string(EventReset), string(EventServerStats), string(EventTrace), string(EventJob)},
		AliasStrategy(""): {string(StrategyFallback), string(StrategyWeighted)},
		EnginePlanStatus(""): {string(PlanGPU), string(PlanCPU), string(PlanNoGPU), string(PlanNeedsRuntime),
			string(PlanUnusable), string(PlanError)},
		JobKind(""):  {string(JobModelDownload), string(JobRuntimeInstall)},
		JobState(""): {string(JobRunning), string(JobDone), string(JobFailed), string(JobCanceled), string(JobInterrupted)},
	}
}

// Types lists every type the UI uses; the generator emits one TypeScript type for each.
func Types() []any {
	return []any{Info{}, ErrorResponse{}, Hello{}, ServerStats{}, EventType(""),
		Provider{}, ProviderCheck{}, ProviderInput{}, ProviderType{}, Alias{}, AliasChange{}, RollbackRequest{}, Stats{},
		TracePage{}, TraceSummary{}, TraceDetail{}, TraceAggregates{}, ImportResult{},
		Engine{}, LocalModels{}, DownloadRequest{}, Job{}}
}

// Provider is one configured upstream, as the Providers screen shows it. Keys are never sent:
// only whether one is set and where it comes from.
type Provider struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	BaseURL string   `json:"baseURL"`
	KeySet  bool     `json:"keySet"`
	KeyFrom string   `json:"keyFrom"`
	Models  []string `json:"models"`
	// Source is where the provider was configured: "config" (the YAML file), "environment" (a
	// key variable) or "ui" (added in the app; only these can be edited there).
	Source string        `json:"source"`
	Stats  ProviderStats `json:"stats"`
}

// ProviderStats summarise recent upstream attempts.
type ProviderStats struct {
	Attempts    uint64  `json:"attempts"`
	Failures    uint64  `json:"failures"`
	P50Millis   float64 `json:"p50Millis"`
	P95Millis   float64 `json:"p95Millis"`
	SuccessRate float64 `json:"successRate"`
}

// ProviderCheck is the result of testing a provider's connection.
type ProviderCheck struct {
	OK            bool    `json:"ok"`
	LatencyMillis float64 `json:"latencyMillis"`
	Message       string  `json:"message"`
}

// Alias routes a name apps call (model="smart") to target models.
type Alias struct {
	Name     string        `json:"name"`
	Strategy AliasStrategy `json:"strategy"`
	Targets  []AliasTarget `json:"targets"`
}

// AliasStrategy is fallback (targets in order) or weighted (a canary split).
type AliasStrategy string

const (
	StrategyFallback AliasStrategy = "fallback"
	StrategyWeighted AliasStrategy = "weighted"
)

// AliasTarget is a model an alias points to.
type AliasTarget struct {
	Model  string `json:"model"`
	Weight int    `json:"weight,omitempty"`
}

// AliasChange is one entry of an alias's history; Alias is absent for a deletion.
type AliasChange struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Alias   *Alias    `json:"alias,omitempty"`
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Action  string    `json:"action"`
	From    int       `json:"from,omitempty"`
}

// RollbackRequest restores an alias to a version of its history.
type RollbackRequest struct {
	Version int `json:"version"`
}

// ProviderInput creates or edits a provider from the UI. APIKey is write-only: it is stored in
// the data dir (mode 0600) and never returned; leave it empty when editing to keep the old key.
type ProviderInput struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	BaseURL string   `json:"baseURL,omitempty"`
	APIKey  string   `json:"apiKey,omitempty"`
	Models  []string `json:"models,omitempty"`
}

// ProviderType describes a provider type for the "add provider" form.
type ProviderType struct {
	Type           string `json:"type"`
	DefaultBaseURL string `json:"defaultBaseURL,omitempty"`
	KeyEnv         string `json:"keyEnv,omitempty"`
	KeyRequired    bool   `json:"keyRequired"`
}

// Stats reports the health of trace capture: nothing is lost silently, so drops show here.
type Stats struct {
	Traces TraceStats `json:"traces"`
}

// TraceStats are the trace writer's counters since start.
type TraceStats struct {
	// Durable is false when traces are only kept in memory (no store configured).
	Durable bool `json:"durable"`
	// Recorded counts traces handed over; Written those the store committed; Replayed those
	// recovered from a previous run's journal.
	Recorded uint64 `json:"recorded"`
	Written  uint64 `json:"written"`
	Replayed uint64 `json:"replayed"`
	// Queued waits in memory, Spilled in the journal only.
	Queued       int    `json:"queued"`
	Spilled      uint64 `json:"spilled"`
	JournalBytes int64  `json:"journalBytes"`
	Retries      uint64 `json:"retries"`
	// Dropped counts traces lost; it should stay 0.
	Dropped uint64 `json:"dropped"`
	// Rejected counts traces the store refused as invalid whatever the retries; each is kept
	// in the journal folder's rejected.jsonl for inspection instead of blocking the others.
	Rejected  uint64 `json:"rejected"`
	StoreDown bool   `json:"storeDown"`
	LastError string `json:"lastError,omitempty"`
}
