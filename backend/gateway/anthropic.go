package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"opentracy/backend/providers"
	"opentracy/backend/providers/anthropic"
	"opentracy/backend/traces"
)

// NativeMessages is implemented by providers that speak Anthropic's Messages API themselves.
type NativeMessages interface {
	Messages(ctx context.Context, req *providers.Request) (*providers.Response, error)
}

// AnthropicHandler serves POST /anthropic/v1/messages, so apps built on Anthropic's SDKs are
// routed and traced too: natively to Anthropic, or translated for any other provider.
func (g *Gateway) AnthropicHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /anthropic/v1/messages", func(w http.ResponseWriter, r *http.Request) {
		g.handle(w, r, endpoint{
			name: "anthropic.messages", inputPath: "messages", wire: anthropicWire,
			newObserver: func() observer { return &messagesObserver{} },
			send:        sendMessages,
		})
	})
	mux.HandleFunc("/anthropic/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(anthropicWire.errorBody(http.StatusNotFound,
			errorJSON("Not found: "+r.Method+" "+r.URL.Path+" (OpenTracy serves POST /anthropic/v1/messages)", "invalid_request_error", "unknown_url")))
	})
	return mux
}

// sendMessages forwards an Anthropic request natively, or translates it to OpenAI chat and the
// answer back, errors included.
func sendMessages(ctx context.Context, p providers.Provider, req *providers.Request) (*providers.Response, error) {
	if n, ok := p.(NativeMessages); ok {
		return n.Messages(ctx, req)
	}
	chatBody, err := anthropic.ChatRequestFromMessages(req.Body)
	if err != nil {
		return nil, &providers.Error{Provider: p.Name(), Status: http.StatusBadRequest,
			Body: anthropic.ErrorFromOpenAI(http.StatusBadRequest, providers.ErrorBody(err.Error(), "invalid_request_error", ""))}
	}
	resp, err := p.Chat(ctx, &providers.Request{Body: chatBody, Model: req.Model, Stream: req.Stream, Header: req.Header})
	if err != nil {
		return nil, err // rendered in Anthropic's shape by the wire format when sent
	}
	if req.Stream {
		resp.Body = anthropic.MessagesStreamFromChat(resp.Body, req.Model)
		return resp, nil
	}
	defer resp.Body.Close()
	body, err := readAllSized(io.LimitReader(resp.Body, maxResponseBytes), resp.Length, maxResponseBytes)
	if err != nil {
		return nil, &providers.Error{Provider: p.Name(), Err: err}
	}
	out, err := anthropic.MessagesResponseFromChat(body, req.Model)
	if err != nil {
		return nil, &providers.Error{Provider: p.Name(), Status: http.StatusBadGateway,
			Body: providers.ErrorBody("cannot translate the upstream answer: "+err.Error(), "server_error", "bad_upstream_response")}
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	return resp, nil
}

// messagesObserver reads Anthropic messages and their streams into the trace.
type messagesObserver struct {
	usage   traces.Usage
	stop    string
	text    strings.Builder
	blocks  []json.RawMessage // whole-body content blocks
	tools   []*toolUse
	current *toolUse
	done    bool
}

type toolUse struct {
	ID    string          `json:"id"`
	Type  string          `json:"type"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
	args  strings.Builder
}

// anthropicUsage converts Anthropic usage (input excludes cache reads and writes) to ours.
func anthropicUsage(u gjson.Result, into *traces.Usage) {
	if v := u.Get("input_tokens"); v.Exists() {
		read, write := int(u.Get("cache_read_input_tokens").Int()), int(u.Get("cache_creation_input_tokens").Int())
		into.PromptTokens = int(v.Int()) + read + write
		into.CachedTokens, into.CacheWriteTokens = read, write
	}
	if v := u.Get("output_tokens"); v.Exists() {
		into.CompletionTokens = int(v.Int())
	}
}

func (o *messagesObserver) whole(body []byte) {
	m := gjson.ParseBytes(body)
	anthropicUsage(m.Get("usage"), &o.usage)
	o.stop = m.Get("stop_reason").String()
	m.Get("content").ForEach(func(_, b gjson.Result) bool {
		o.blocks = append(o.blocks, json.RawMessage(b.Raw))
		return true
	})
}

func (o *messagesObserver) event(data []byte, _ bool) bool {
	ev := gjson.ParseBytes(data)
	switch ev.Get("type").String() {
	case "message_start":
		anthropicUsage(ev.Get("message.usage"), &o.usage)
	case "content_block_start":
		if b := ev.Get("content_block"); b.Get("type").String() == "tool_use" {
			o.current = &toolUse{ID: b.Get("id").String(), Type: "tool_use", Name: b.Get("name").String()}
			o.tools = append(o.tools, o.current)
		}
	case "content_block_delta":
		d := ev.Get("delta")
		switch d.Get("type").String() {
		case "text_delta":
			o.text.WriteString(d.Get("text").String())
		case "input_json_delta":
			if o.current != nil {
				o.current.args.WriteString(d.Get("partial_json").String())
			}
		}
	case "content_block_stop":
		o.current = nil
	case "message_delta":
		anthropicUsage(ev.Get("usage"), &o.usage)
		if s := ev.Get("delta.stop_reason"); s.Exists() {
			o.stop = s.String()
		}
	case "message_stop":
		o.done = true
	}
	return true
}

func (o *messagesObserver) ended() bool { return o.done }

func (o *messagesObserver) finish(tr *traces.Trace) {
	tr.Usage = o.usage
	tr.FinishReason = o.stop
	blocks := o.blocks
	if blocks == nil && (o.text.Len() > 0 || len(o.tools) > 0) {
		if o.text.Len() > 0 {
			b, _ := json.Marshal(map[string]string{"type": "text", "text": o.text.String()})
			blocks = append(blocks, b)
		}
		for _, t := range o.tools {
			t.Input = json.RawMessage(t.args.String())
			if !json.Valid(t.Input) {
				t.Input = json.RawMessage("{}")
			}
			b, _ := json.Marshal(t)
			blocks = append(blocks, b)
		}
	}
	if blocks == nil {
		return
	}
	tr.Output, _ = json.Marshal([]map[string]any{{"role": "assistant", "content": blocks}})
	var calls []json.RawMessage
	for _, b := range blocks {
		if gjson.GetBytes(b, "type").String() == "tool_use" {
			calls = append(calls, b)
		}
	}
	if calls != nil {
		tr.ToolCalls, _ = json.Marshal(calls)
	}
}
