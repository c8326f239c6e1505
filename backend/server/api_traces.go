package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"opentracy/backend/api"
	"opentracy/backend/events"
	"opentracy/backend/pricing"
	"opentracy/backend/traces"
)

const (
	// maxImportBytes bounds one import upload; maxImportLine one JSONL line (a 1 MB prompt with
	// its history and answer fits many times over).
	maxImportBytes = 1 << 30
	maxImportLine  = 64 << 20
	importBatch    = 500
)

func (s *Server) traceAPIRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/traces", s.listTraces)
	mux.HandleFunc("GET /api/traces/aggregate", s.aggregateTraces)
	mux.HandleFunc("GET /api/traces/export", s.exportTraces)
	mux.HandleFunc("POST /api/traces/import", s.importTraces)
	mux.HandleFunc("GET /api/traces/{id}", s.getTrace)
}

// publishTraces sends a "trace" event for every stored trace, so the Traces screen updates live.
func publishTraces(hub *events.Hub) func([]*traces.Trace) {
	return func(batch []*traces.Trace) {
		for _, t := range batch {
			// A TraceSummary always encodes.
			_, _ = hub.Publish(string(api.EventTrace), toSummary(traces.SummaryOf(t)))
		}
	}
}

// traceStore is the store behind the query API; nil when the server was given its own Sink.
func (s *Server) traceStore(w http.ResponseWriter) traces.Store {
	if s.traces == nil {
		openAIErrors.write(w, http.StatusServiceUnavailable, "server_error", "no_trace_store",
			"this instance keeps no trace store (traces go to a custom sink)")
		return nil
	}
	return s.traces.store
}

func (s *Server) listTraces(w http.ResponseWriter, r *http.Request) {
	store := s.traceStore(w)
	if store == nil {
		return
	}
	q, err := parseTraceQuery(r.URL.Query(), true)
	if err != nil {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_filter", err.Error())
		return
	}
	page, err := store.List(r.Context(), q)
	if err != nil {
		s.storeError(w, r, "list traces", err)
		return
	}
	out := api.TracePage{Traces: make([]api.TraceSummary, 0, len(page.Traces)), NextCursor: page.NextCursor}
	for _, sm := range page.Traces {
		out.Traces = append(out.Traces, toSummary(sm))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getTrace(w http.ResponseWriter, r *http.Request) {
	store := s.traceStore(w)
	if store == nil {
		return
	}
	id := r.PathValue("id")
	t, err := store.Get(r.Context(), id)
	if errors.Is(err, traces.ErrNotFound) {
		openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "trace_not_found", fmt.Sprintf("no trace with id %q", id))
		return
	}
	if err != nil {
		s.storeError(w, r, "get trace", err)
		return
	}
	writeJSON(w, http.StatusOK, s.toDetail(t))
}

func (s *Server) aggregateTraces(w http.ResponseWriter, r *http.Request) {
	store := s.traceStore(w)
	if store == nil {
		return
	}
	params := r.URL.Query()
	q, err := parseTraceQuery(params, false)
	if err != nil {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_filter", err.Error())
		return
	}
	aq := traces.AggregateQuery{Query: q, Bucket: time.Hour, GroupBy: params.Get("groupBy")}
	if b := params.Get("bucket"); b != "" {
		if aq.Bucket, err = time.ParseDuration(b); err != nil || aq.Bucket < time.Second {
			openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_filter",
				fmt.Sprintf("bucket %q: want a duration of at least 1s such as 15m or 1h", b))
			return
		}
	}
	switch aq.GroupBy {
	case "", "model", "provider", "alias":
	default:
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_filter",
			fmt.Sprintf("groupBy %q: want model, provider, alias or nothing", aq.GroupBy))
		return
	}
	if aq.To.IsZero() {
		aq.To = time.Now()
	}
	if aq.From.IsZero() {
		aq.From = aq.To.Add(-24 * time.Hour)
	}
	if !aq.From.Before(aq.To) {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_filter", "from must be before to")
		return
	}
	agg, err := store.Aggregate(r.Context(), aq)
	if err != nil {
		s.storeError(w, r, "aggregate traces", err)
		return
	}
	out := api.TraceAggregates{Series: make([]api.TraceSeries, 0, len(agg.Series))}
	for _, se := range agg.Series {
		ts := api.TraceSeries{Group: se.Group, Buckets: make([]api.TraceBucket, 0, len(se.Buckets))}
		for _, b := range se.Buckets {
			ts.Buckets = append(ts.Buckets, api.TraceBucket{
				Start: b.Start.UTC(), Requests: b.Requests, Errors: b.Errors, CostUSD: b.CostUSD,
				PromptTokens: b.PromptTokens, CompletionTokens: b.CompletionTokens,
				LatencyP50: b.LatencyP50, LatencyP95: b.LatencyP95, LatencyP99: b.LatencyP99,
			})
		}
		out.Series = append(out.Series, ts)
	}
	writeJSON(w, http.StatusOK, out)
}

// exportTraces streams every matching trace, newest first, one trace-format JSON object per
// line: the format importTraces reads back.
func (s *Server) exportTraces(w http.ResponseWriter, r *http.Request) {
	store := s.traceStore(w)
	if store == nil {
		return
	}
	q, err := parseTraceQuery(r.URL.Query(), false)
	if err != nil {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_filter", err.Error())
		return
	}
	// Check the query before committing to a 200: a broken store gets a proper error.
	if _, err := store.List(r.Context(), traces.Query{Limit: 1}); err != nil {
		s.storeError(w, r, "export traces", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="traces-%s.jsonl"`, time.Now().UTC().Format("20060102-150405")))
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	err = traces.Scan(r.Context(), store, q, func(t *traces.Trace) error {
		n++
		return enc.Encode(t)
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// The status is sent: abort the connection so that the client sees a failed download,
		// never a silently truncated file.
		s.log.Error("export traces failed", "after", n, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// importTraces reads JSONL: each line is a trace as exported (its id and started_at kept), or an
// OpenAI chat fine-tuning record {"messages": [...]} whose final assistant message becomes the
// output. Lines already stored (same id; a chat record's id is the hash of its line) are
// skipped, so importing a file twice changes nothing.
func (s *Server) importTraces(w http.ResponseWriter, r *http.Request) {
	store := s.traceStore(w)
	if store == nil {
		return
	}
	body := http.MaxBytesReader(w, r.Body, maxImportBytes)
	br := bufio.NewReaderSize(body, 1<<20)
	res := api.ImportResult{Errors: []api.ImportError{}}
	var (
		batch []*traces.Trace
		lines []int
		now   = time.Now().UTC()
	)
	flush := func() error {
		err := s.writeImport(r.Context(), store, batch, lines, &res)
		batch, lines = batch[:0], lines[:0]
		return err
	}
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(br, maxImportLine)
		if errors.Is(err, io.EOF) && line == nil {
			break
		}
		if errors.Is(err, errLineTooLong) {
			res.Errors = append(res.Errors, api.ImportError{Line: lineNo, Message: fmt.Sprintf("line longer than %d MiB", maxImportLine>>20)})
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				openAIErrors.write(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "import_too_large",
					fmt.Sprintf("import larger than %d MiB: split the file (nothing after line %d was imported)", maxImportBytes>>20, lineNo-1))
				return
			}
			openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "import_read_failed", err.Error())
			return
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			t, perr := parseImportLine(line, now)
			if perr != nil {
				res.Errors = append(res.Errors, api.ImportError{Line: lineNo, Message: perr.Error()})
			} else {
				batch, lines = append(batch, t), append(lines, lineNo)
			}
			if len(batch) >= importBatch {
				if err := flush(); err != nil {
					s.storeError(w, r, "import traces", err)
					return
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if err := flush(); err != nil {
		s.storeError(w, r, "import traces", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// writeImport stores batch, counting what was new; a batch the store rejects is retried one
// trace at a time so that each bad line is named and the others still land.
func (s *Server) writeImport(ctx context.Context, store traces.Store, batch []*traces.Trace, lines []int, res *api.ImportResult) error {
	if len(batch) == 0 {
		return nil
	}
	fresh := make([]*traces.Trace, 0, len(batch))
	freshLines := make([]int, 0, len(batch))
	for i, t := range batch {
		if _, err := store.Get(ctx, t.ID); err == nil {
			res.Skipped++
			continue
		} else if !errors.Is(err, traces.ErrNotFound) {
			return err
		}
		fresh, freshLines = append(fresh, t), append(freshLines, lines[i])
	}
	err := store.Write(ctx, fresh)
	if err == nil {
		res.Imported += len(fresh)
		return nil
	}
	if !errors.Is(err, traces.ErrRejected) {
		return err
	}
	for i, t := range fresh {
		if err := store.Write(ctx, []*traces.Trace{t}); errors.Is(err, traces.ErrRejected) {
			res.Errors = append(res.Errors, api.ImportError{Line: freshLines[i], Message: err.Error()})
		} else if err != nil {
			return err
		} else {
			res.Imported++
		}
	}
	return nil
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline; a line over limit is consumed and
// reported as errLineTooLong. At the end it returns the last line (if any) with io.EOF.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > limit {
			line = nil
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return []byte{}, errLineTooLong
		}
		line = append(line, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return nil, io.EOF
			}
			return line, io.EOF
		case err != nil:
			return nil, err
		}
		return bytes.TrimSuffix(line, []byte("\n")), nil
	}
}

// parseImportLine reads one line in the trace format or OpenAI's chat fine-tuning format.
func parseImportLine(line []byte, now time.Time) (*traces.Trace, error) {
	var probe struct {
		ID        string          `json:"id"`
		StartedAt json.RawMessage `json:"started_at"`
		Messages  json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if probe.ID != "" || probe.StartedAt != nil {
		var t traces.Trace
		if err := json.Unmarshal(line, &t); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		if t.ID == "" || t.StartedAt.IsZero() {
			return nil, errors.New("trace: needs both id and started_at")
		}
		return &t, nil
	}
	if probe.Messages == nil {
		return nil, errors.New(`neither a trace (id, started_at) nor a chat record ({"messages": [...]})`)
	}
	return chatRecordTrace(line, now)
}

// chatRecordTrace turns {"messages": [...], "tools"?: [...], "metadata"?: {...}} into a trace.
func chatRecordTrace(line []byte, now time.Time) (*traces.Trace, error) {
	var rec struct {
		Messages []json.RawMessage `json:"messages"`
		Tools    json.RawMessage   `json:"tools"`
		Model    string            `json:"model"`
		Metadata map[string]any    `json:"metadata"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, fmt.Errorf("chat record: %w", err)
	}
	if len(rec.Messages) == 0 {
		return nil, errors.New("chat record: no messages")
	}
	input := rec.Messages
	var output json.RawMessage
	var last struct {
		Role string `json:"role"`
	}
	if err := json.Unmarshal(rec.Messages[len(rec.Messages)-1], &last); err != nil {
		return nil, fmt.Errorf("chat record: message %d: %w", len(rec.Messages), err)
	}
	if last.Role == "assistant" && len(rec.Messages) > 1 {
		input = rec.Messages[:len(rec.Messages)-1]
		output, _ = json.Marshal([]map[string]any{{
			"index": 0, "message": rec.Messages[len(rec.Messages)-1], "finish_reason": "stop",
		}})
	}
	in, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("chat record: %w", err)
	}
	sum := sha256.Sum256(line)
	t := &traces.Trace{
		ID:             "import-" + hex.EncodeToString(sum[:12]),
		StartedAt:      now,
		Endpoint:       "chat.completions",
		RequestedModel: rec.Model,
		Model:          rec.Model,
		Provider:       "import",
		Status:         http.StatusOK,
		Input:          in,
		Output:         output,
		Tools:          rec.Tools,
		Metadata:       map[string]string{"source": "import"},
	}
	if output != nil {
		t.FinishReason = "stop"
	}
	for k, v := range rec.Metadata {
		if str, ok := v.(string); ok {
			t.Metadata[k] = str
		} else {
			t.Metadata[k] = string(mustJSON(v))
		}
	}
	return t, nil
}

// storeError answers a failed store call: the store being down is the server's problem, not
// the request's, and its details go to the log.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Error(what+" failed", "err", err)
	openAIErrors.write(w, http.StatusServiceUnavailable, "server_error", "trace_store_error", what+": "+err.Error())
}

// parseTraceQuery reads the filter parameters documented in backend/api/traces.go.
func parseTraceQuery(v url.Values, paged bool) (traces.Query, error) {
	var (
		q    traces.Query
		errs []error
	)
	timeParam := func(name string, dst *time.Time) {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", name, s))
			}
			*dst = t
		}
	}
	floatParam := func(name string) *float64 {
		s := v.Get(name)
		if s == "" {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != f {
			errs = append(errs, fmt.Errorf("%s %q: want a number", name, s))
			return nil
		}
		return &f
	}
	intParam := func(name string) *int {
		s := v.Get(name)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want an integer", name, s))
			return nil
		}
		return &n
	}
	timeParam("from", &q.From)
	timeParam("to", &q.To)
	q.Models, q.Providers, q.Aliases, q.Endpoints = v["model"], v["provider"], v["alias"], v["endpoint"]
	switch q.Status = v.Get("status"); q.Status {
	case "", "ok", "error":
	default:
		errs = append(errs, fmt.Errorf("status %q: want ok or error", q.Status))
	}
	q.MinCostUSD, q.MaxCostUSD = floatParam("minCost"), floatParam("maxCost")
	q.MinLatency, q.MaxLatency = floatParam("minLatency"), floatParam("maxLatency")
	q.MinTokens, q.MaxTokens = intParam("minTokens"), intParam("maxTokens")
	for _, kv := range v["meta"] {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("meta %q: want key=value", kv))
			continue
		}
		if q.Metadata == nil {
			q.Metadata = map[string]string{}
		}
		q.Metadata[k] = val
	}
	q.Text = strings.TrimSpace(v.Get("q"))
	if paged {
		q.Cursor = v.Get("cursor")
		if l := intParam("limit"); l != nil {
			if *l < 1 || *l > 500 {
				errs = append(errs, fmt.Errorf("limit %d: want 1 to 500", *l))
			}
			q.Limit = *l
		}
	}
	return q, errors.Join(errs...)
}

func toSummary(sm traces.Summary) api.TraceSummary {
	return api.TraceSummary{
		ID: sm.ID, StartedAt: sm.StartedAt.UTC(), Endpoint: sm.Endpoint, RequestedModel: sm.RequestedModel,
		Alias: sm.Alias, Model: sm.Model, Provider: sm.Provider, Status: sm.Status, Error: sm.Error,
		Stream: sm.Stream, LatencyMillis: sm.LatencyMillis, TTFTMillis: sm.TTFTMillis,
		Usage: api.TokenUsage(sm.Usage), CostUSD: sm.CostUSD, Preview: sm.Preview,
	}
}

func (s *Server) toDetail(t *traces.Trace) api.TraceDetail {
	d := api.TraceDetail{
		TraceSummary: toSummary(traces.SummaryOf(t)),
		FinishReason: t.FinishReason,
		Attempts:     make([]api.TraceAttempt, 0, len(t.Attempts)),
		Input:        t.Input, Output: t.Output, Tools: t.Tools, ToolCalls: t.ToolCalls,
		Metadata: t.Metadata, User: t.User, UserAgent: t.UserAgent,
	}
	if d.Metadata == nil {
		d.Metadata = map[string]string{}
	}
	for _, a := range t.Attempts {
		d.Attempts = append(d.Attempts, api.TraceAttempt{
			Provider: a.Provider, Model: a.Model, StartedAt: a.StartedAt.UTC(),
			LatencyMillis: a.LatencyMillis, Status: a.Status, Error: a.Error,
		})
	}
	if price, ok := s.parts.priceOf(t.Provider, t.Model); ok {
		c := price.Breakdown(pricing.Usage(t.Usage))
		d.CostBreakdown = &api.CostBreakdown{
			Input: c.Input, CachedInput: c.CachedInput, CacheWrite: c.CacheWrite,
			Output: c.Output, Reasoning: c.Reasoning, Total: c.Total,
		}
	}
	// Raw JSON that is not valid JSON (a client sent garbage) would break the response: send it
	// as a JSON string instead.
	for _, raw := range []*json.RawMessage{&d.Input, &d.Output, &d.Tools, &d.ToolCalls} {
		if len(*raw) > 0 && !json.Valid(*raw) {
			*raw = mustJSON(strings.ToValidUTF8(string(*raw), "\uFFFD"))
		}
	}
	return d
}
