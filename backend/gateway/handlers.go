package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"opentracy/backend/providers"
	"opentracy/backend/traces"
)

// endpoint describes one OpenAI route the gateway understands.
type endpoint struct {
	name      string // the trace's Endpoint
	inputPath string // where the request's input lives (messages, input, prompt)
	// send calls the provider; observer reads the answer into the trace.
	send        func(ctx context.Context, p providers.Provider, req *providers.Request) (*providers.Response, error)
	newObserver func() observer
	wire        wireFormat
	// usageOption: the request may carry stream_options.include_usage (OpenAI chat and completions).
	usageOption bool
}

func (g *Gateway) chatCompletions(w http.ResponseWriter, r *http.Request) {
	g.handle(w, r, endpoint{
		name: "chat.completions", inputPath: "messages", newObserver: newChatObserver, usageOption: true,
		send: func(ctx context.Context, p providers.Provider, req *providers.Request) (*providers.Response, error) {
			return p.Chat(ctx, req)
		},
	})
}

func (g *Gateway) embeddings(w http.ResponseWriter, r *http.Request) {
	g.handle(w, r, endpoint{
		name: "embeddings", inputPath: "input",
		newObserver: func() observer { return &bodyObserver{} }, // vectors are not worth keeping
		send: func(ctx context.Context, p providers.Provider, req *providers.Request) (*providers.Response, error) {
			e, ok := p.(providers.Embedder)
			if !ok {
				return nil, unsupported(p, "embeddings")
			}
			return e.Embed(ctx, req)
		},
	})
}

// passthrough forwards OpenAI endpoints the gateway routes and traces but does not interpret.
func (g *Gateway) passthrough(path, name, inputPath, outputPath string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.handle(w, r, endpoint{
			name: name, inputPath: inputPath, usageOption: name == "completions",
			newObserver: func() observer { return &bodyObserver{outputPath: outputPath} },
			send: func(ctx context.Context, p providers.Provider, req *providers.Request) (*providers.Response, error) {
				f, ok := p.(providers.Passthrough)
				if !ok {
					return nil, unsupported(p, name)
				}
				return f.Forward(ctx, path, req)
			},
		})
	}
}

func unsupported(p providers.Provider, what string) error {
	return &providers.Error{Provider: p.Name(), Status: http.StatusNotFound,
		Body: providers.ErrorBody(fmt.Sprintf("provider %s does not serve %s", p.Name(), what), "invalid_request_error", "unsupported_endpoint")}
}

// handle parses, routes and serves one request, and records its trace whatever happens.
func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, ep endpoint) {
	tr := &traces.Trace{
		ID: newTraceID(), StartedAt: g.now().UTC(), Endpoint: ep.name,
		UserAgent: r.UserAgent(), Attempts: []traces.Attempt{},
	}
	defer func() {
		// The client gets its whole answer, to the end of the body, before the trace is
		// recorded: recording (a journal append) stays off the response's critical path.
		endBody(w)
		g.finishTrace(tr)
	}()
	w.Header().Set(HeaderTraceID, tr.ID)
	fail := func(status int, errType, code, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(ep.wire.errorBody(status, errorJSON(msg, errType, code)))
		tr.Status, tr.Error = status, msg
	}

	body, status, err := g.readBody(w, r)
	if err != nil {
		code := "invalid_json"
		if status == http.StatusRequestEntityTooLarge {
			code = "request_too_large"
		}
		fail(status, "invalid_request_error", code, err.Error())
		return
	}
	f := scanRequest(body, ep.inputPath)
	tr.RequestedModel = strings.Clone(f.model.String())
	tr.Stream = f.stream.Bool()
	tr.User = strings.Clone(f.user.String())
	if ep.wire == anthropicWire {
		tr.User = strings.Clone(f.metadata.Get("user_id").String())
	}
	// The trace shares the body's bytes rather than copying them: most of a long request is its
	// input, and the body is never modified.
	tr.Input = rawOf(body, f.input)
	tr.Tools = rawOf(body, f.tools)
	if tr.Metadata, err = metadata(r, f.metadata); err != nil {
		fail(http.StatusBadRequest, "invalid_request_error", "invalid_metadata", err.Error())
		return
	}
	if f.model.Type != gjson.String || tr.RequestedModel == "" {
		fail(http.StatusBadRequest, "invalid_request_error", "missing_model", "you must provide a model parameter (a string)")
		return
	}
	p, err := g.route(tr.RequestedModel)
	if err != nil {
		fail(http.StatusNotFound, "invalid_request_error", "model_not_found", err.Error())
		return
	}
	tr.Alias = p.alias

	c := &call{body: body, stream: tr.Stream, header: r.Header, send: ep.send, newObserver: ep.newObserver, wire: ep.wire}
	if c.stream && ep.usageOption && !f.streamOptions.Get("include_usage").Bool() {
		// Usage is what prices the request: ask for it, and keep the extra chunk from the client.
		if c.body, err = sjson.SetBytes(body, "stream_options.include_usage", true); err != nil {
			fail(http.StatusBadRequest, "invalid_request_error", "invalid_json", "stream_options: "+err.Error())
			return
		}
		c.stripUsage = true
	}
	g.serve(w, r, p, c, tr)
}

// requestFields are the top-level fields of a request the gateway reads.
type requestFields struct {
	model, stream, user, metadata, input, tools, streamOptions gjson.Result
}

// scanRequest finds the fields in one pass over a valid JSON object. A lookup per field would
// scan the body again each time, and SDKs put "model" after "messages", so with a long context
// every lookup walks all of it. The first of duplicate keys wins, as with gjson.Get. The results
// point into body (see viewJSON).
func scanRequest(body []byte, inputPath string) requestFields {
	var f requestFields
	viewJSON(body).ForEach(func(k, v gjson.Result) bool {
		var dst *gjson.Result
		switch k.Str {
		case "model":
			dst = &f.model
		case "stream":
			dst = &f.stream
		case "user":
			dst = &f.user
		case "metadata":
			dst = &f.metadata
		case "tools":
			dst = &f.tools
		case "stream_options":
			dst = &f.streamOptions
		case inputPath:
			dst = &f.input
		default:
			return true
		}
		if !dst.Exists() {
			*dst = v
		}
		return true
	})
	return f
}

// readBody reads a bounded JSON object; the error's status is 413 or 400 and its message says why.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	body, err := readAllSized(http.MaxBytesReader(w, r.Body, g.opts.MaxBodyBytes), r.ContentLength, g.opts.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d MiB (the gateway's max_body_bytes)", g.opts.MaxBodyBytes>>20)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	if len(body) == 0 {
		return nil, http.StatusBadRequest, errors.New("request body is empty: send a JSON object")
	}
	if !gjson.ValidBytes(body) {
		var raw json.RawMessage
		err := json.Unmarshal(body, &raw)
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, http.StatusBadRequest, fmt.Errorf("request body is not valid JSON: %s (at byte %d)", syn.Error(), syn.Offset)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("request body is not valid JSON: %v", err)
	}
	// Valid JSON starting with '{' is an object: no need to parse it all again to know.
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); trimmed[0] != '{' {
		return nil, http.StatusBadRequest, errors.New("request body must be a JSON object")
	}
	return body, 0, nil
}

// maxPresize bounds the buffer allocated on the strength of a Content-Length alone, before the
// bytes arrive (a client announcing a huge body and trickling it must not cost that much memory).
const maxPresize = 1 << 20

// readAllSized is io.ReadAll with the buffer sized from the announced length: a large body is
// read without the copies and small reads of a buffer grown from 512 bytes.
func readAllSized(r io.Reader, length, limit int64) ([]byte, error) {
	size := int64(512)
	if length > 0 {
		size = min(length, limit, maxPresize) + 1 // +1: the EOF read needs room too
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // let append pick the growth
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// metadata merges the body's "metadata" object with the X-OpenTracy-Metadata header (which wins).
// Non-string values are kept as their JSON text.
func metadata(r *http.Request, m gjson.Result) (map[string]string, error) {
	var out map[string]string
	add := func(obj gjson.Result) {
		obj.ForEach(func(k, v gjson.Result) bool {
			if out == nil {
				out = map[string]string{}
			}
			// Cloned: the values point into the request body (see viewJSON).
			if v.Type == gjson.String {
				out[strings.Clone(k.String())] = strings.Clone(v.String())
			} else {
				out[strings.Clone(k.String())] = strings.Clone(v.Raw)
			}
			return true
		})
	}
	if m.IsObject() {
		add(m)
	}
	if h := r.Header.Get(HeaderMetadata); h != "" {
		m := gjson.Parse(h)
		if !gjson.Valid(h) || !m.IsObject() {
			return nil, fmt.Errorf("%s must be a JSON object, like {\"feature\":\"search\"}", HeaderMetadata)
		}
		add(m)
	}
	return out, nil
}

func (g *Gateway) finishTrace(tr *traces.Trace) {
	tr.LatencyMillis = millis(g.now().Sub(tr.StartedAt))
	if tr.Usage != (traces.Usage{}) {
		tr.CostUSD = g.opts.Cost(tr.Provider, tr.Model, tr.Usage)
	}
	g.opts.Sink.Record(tr)
}

// newTraceID returns a UUIDv7: unique and ordered by time, so ids sort like traces do.
func newTraceID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelItem `json:"data"`
}

type modelItem struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// listModels answers OpenAI's GET /v1/models with the aliases, then every provider's models as
// "provider/model": those configured, or, for a provider with none configured, what its upstream
// lists (cached for modelListTTL).
func (g *Gateway) listModels(w http.ResponseWriter, r *http.Request) {
	rt := g.routes.Load()
	list := modelList{Object: "list", Data: []modelItem{}}
	if g.opts.Aliases != nil {
		for _, a := range g.opts.Aliases.List() {
			list.Data = append(list.Data, modelItem{ID: a.Name, Object: "model", OwnedBy: "opentracy-alias"})
		}
	}
	configured := map[string][]string{}
	for model, provs := range rt.models {
		for _, p := range provs {
			configured[p] = append(configured[p], model)
		}
	}
	var items []modelItem
	for _, name := range rt.order {
		models := configured[name]
		if len(models) == 0 {
			models = g.upstreamModels(r.Context(), rt.providers[name])
		}
		for _, m := range models {
			items = append(items, modelItem{ID: name + "/" + m, Object: "model", OwnedBy: name})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	list.Data = append(list.Data, items...)
	writeJSON(w, http.StatusOK, list)
}

// modelListTTL is how long an upstream's model list is reused.
const modelListTTL = 10 * time.Minute

type cachedModels struct {
	ids []string
	at  time.Time
}

// upstreamModels asks a provider for its models, at most once per modelListTTL; a failure lists
// none (and is logged) rather than failing the whole list.
func (g *Gateway) upstreamModels(ctx context.Context, p providers.Provider) []string {
	lister, ok := p.(providers.ModelLister)
	if !ok {
		return nil
	}
	g.modelsMu.Lock()
	c, ok := g.modelCache[p.Name()]
	g.modelsMu.Unlock()
	if ok && g.now().Sub(c.at) < modelListTTL {
		return c.ids
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ids, err := lister.ListModels(ctx)
	if err != nil {
		g.log.Warn("cannot list a provider's models", "provider", p.Name(), "err", err)
		return nil
	}
	g.modelsMu.Lock()
	g.modelCache[p.Name()] = cachedModels{ids: ids, at: g.now()}
	g.modelsMu.Unlock()
	return ids
}

// ForgetModels drops the cached model list of the named provider, so that the next /v1/models
// asks it again: the local provider's list changes as soon as a model is downloaded or deleted.
func (g *Gateway) ForgetModels(provider string) {
	g.modelsMu.Lock()
	defer g.modelsMu.Unlock()
	delete(g.modelCache, provider)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "", "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func errorJSON(msg, errType, code string) []byte { return providers.ErrorBody(msg, errType, code) }

// endBody ends the response body now where the server can (h1serve's EndBody, found as
// http.ResponseController finds Flush), and otherwise flushes it: a client reading to the end of
// the body then does not wait for what the handler does after its answer.
func endBody(w http.ResponseWriter) {
	for u := w; ; {
		switch t := u.(type) {
		case interface{ EndBody() error }:
			_ = t.EndBody() // a failed write shows in the trace already, or cannot be told
			return
		case interface{ Unwrap() http.ResponseWriter }:
			u = t.Unwrap()
		default:
			_ = http.NewResponseController(w).Flush()
			return
		}
	}
}

// writeError sends a gateway-side error in OpenAI's shape.
func writeError(w http.ResponseWriter, status int, errType, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorJSON(msg, errType, code))
}
