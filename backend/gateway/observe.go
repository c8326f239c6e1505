package gateway

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"opentracy/backend/traces"
)

// observer reads what the upstream answered into the trace: every streamed event, or the whole body.
type observer interface {
	// event sees one streamed event's data and says whether to forward it to the client.
	event(data []byte, stripUsage bool) (forward bool)
	whole(body []byte)
	// ended reports whether the stream reached its format's last event.
	ended() bool
	finish(tr *traces.Trace)
}

// usageFrom reads an OpenAI usage object (chat, completions, embeddings) or a Responses API one.
func usageFrom(u gjson.Result) traces.Usage {
	if !u.Exists() || u.Type == gjson.Null {
		return traces.Usage{}
	}
	if in := u.Get("input_tokens"); in.Exists() { // Responses API
		return traces.Usage{
			PromptTokens:     int(in.Int()),
			CompletionTokens: int(u.Get("output_tokens").Int()),
			CachedTokens:     int(u.Get("input_tokens_details.cached_tokens").Int()),
			ReasoningTokens:  int(u.Get("output_tokens_details.reasoning_tokens").Int()),
		}
	}
	return traces.Usage{
		PromptTokens:     int(u.Get("prompt_tokens").Int()),
		CompletionTokens: int(u.Get("completion_tokens").Int()),
		CachedTokens:     int(u.Get("prompt_tokens_details.cached_tokens").Int()),
		CacheWriteTokens: int(u.Get("prompt_tokens_details.cache_creation_tokens").Int()),
		ReasoningTokens:  int(u.Get("completion_tokens_details.reasoning_tokens").Int()),
	}
}

// chatObserver rebuilds chat completion choices from a whole body or from streamed deltas.
type chatObserver struct {
	usage   traces.Usage
	choices map[int64]*choiceAcc
	raw     json.RawMessage // the whole body's choices, when not streamed
}

type choiceAcc struct {
	content, reasoning strings.Builder
	role, finish       string
	toolCalls          map[int64]*toolCallAcc
	refusal            strings.Builder
}

type toolCallAcc struct {
	id, typ, name string
	args          strings.Builder
}

func newChatObserver() observer { return &chatObserver{} } // choices is made by the first event

// ended is false: an OpenAI stream ends with [DONE], which the relay handles itself.
func (o *chatObserver) ended() bool { return false }

// whole reads the answer in one pass; the choices kept are a slice of body (see viewJSON).
func (o *chatObserver) whole(body []byte) {
	seenUsage := false // the first of duplicate keys counts, as with gjson.Get
	viewJSON(body).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "usage":
			if !seenUsage {
				o.usage, seenUsage = usageFrom(v), true
			}
		case "choices":
			if v.IsArray() && o.raw == nil { // whole is called once
				o.raw = rawOf(body, v)
			}
		}
		return true
	})
}

func (o *chatObserver) event(data []byte, stripUsage bool) bool {
	if !gjson.ValidBytes(data) {
		return true // not ours to judge: forwarded as is
	}
	chunk := gjson.ParseBytes(data)
	choices := chunk.Get("choices")
	if u := chunk.Get("usage"); u.Exists() && u.Type != gjson.Null {
		o.usage = usageFrom(u)
		if stripUsage && len(choices.Array()) == 0 {
			return false // the usage chunk the gateway asked for on its own behalf
		}
	}
	choices.ForEach(func(_, c gjson.Result) bool {
		if o.choices == nil {
			o.choices = map[int64]*choiceAcc{}
		}
		idx := c.Get("index").Int()
		acc := o.choices[idx]
		if acc == nil {
			acc = &choiceAcc{toolCalls: map[int64]*toolCallAcc{}}
			o.choices[idx] = acc
		}
		d := c.Get("delta")
		if r := d.Get("role"); r.Exists() {
			acc.role = r.String()
		}
		acc.content.WriteString(d.Get("content").String())
		acc.reasoning.WriteString(d.Get("reasoning_content").String())
		acc.refusal.WriteString(d.Get("refusal").String())
		d.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
			ti := tc.Get("index").Int()
			t := acc.toolCalls[ti]
			if t == nil {
				t = &toolCallAcc{typ: "function"}
				acc.toolCalls[ti] = t
			}
			if v := tc.Get("id"); v.Exists() {
				t.id = v.String()
			}
			if v := tc.Get("type"); v.Exists() {
				t.typ = v.String()
			}
			if v := tc.Get("function.name"); v.Exists() {
				t.name += v.String()
			}
			t.args.WriteString(tc.Get("function.arguments").String())
			return true
		})
		if f := c.Get("finish_reason"); f.Exists() && f.Type != gjson.Null {
			acc.finish = f.String()
		}
		return true
	})
	return true
}

// Wire shapes of a rebuilt choice, as a non-streamed response would carry it.
type (
	wireChoice struct {
		Index        int64       `json:"index"`
		Message      wireMessage `json:"message"`
		FinishReason string      `json:"finish_reason,omitempty"`
	}
	wireMessage struct {
		Role             string         `json:"role"`
		Content          string         `json:"content"`
		ReasoningContent string         `json:"reasoning_content,omitempty"`
		Refusal          string         `json:"refusal,omitempty"`
		ToolCalls        []wireToolCall `json:"tool_calls,omitempty"`
	}
	wireToolCall struct {
		ID       string       `json:"id"`
		Type     string       `json:"type"`
		Function wireFunction `json:"function"`
	}
	wireFunction struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
)

func (o *chatObserver) finish(tr *traces.Trace) {
	tr.Usage = o.usage
	if o.raw == nil && len(o.choices) > 0 {
		choices := make([]wireChoice, 0, len(o.choices))
		for idx, acc := range o.choices {
			msg := wireMessage{Role: acc.role, Content: acc.content.String(), ReasoningContent: acc.reasoning.String(), Refusal: acc.refusal.String()}
			if msg.Role == "" {
				msg.Role = "assistant"
			}
			for ti := int64(0); ti < int64(len(acc.toolCalls)); ti++ {
				if t, ok := acc.toolCalls[ti]; ok {
					msg.ToolCalls = append(msg.ToolCalls, wireToolCall{ID: t.id, Type: t.typ, Function: wireFunction{Name: t.name, Arguments: t.args.String()}})
				}
			}
			choices = append(choices, wireChoice{Index: idx, Message: msg, FinishReason: acc.finish})
		}
		sort.Slice(choices, func(i, j int) bool { return choices[i].Index < choices[j].Index })
		o.raw, _ = json.Marshal(choices)
	}
	if o.raw != nil {
		tr.Output = o.raw
		first := viewJSON(o.raw).Get("0")
		tr.FinishReason = strings.Clone(first.Get("finish_reason").String())
		if tc := first.Get("message.tool_calls"); tc.IsArray() {
			tr.ToolCalls = rawOf(o.raw, tc)
		}
	}
}

// bodyObserver records the usage (and the output at outputPath) of endpoints the gateway does not
// rebuild: embeddings, legacy completions, the Responses API.
type bodyObserver struct {
	completed  bool // a Responses API stream reached its final event
	outputPath string
	usage      traces.Usage
	output     json.RawMessage
}

// whole reads the answer in one pass; the output kept is a slice of body (see viewJSON).
func (o *bodyObserver) whole(body []byte) {
	seenUsage, seenOutput := false, false // the first of duplicate keys counts, as with gjson.Get
	viewJSON(body).ForEach(func(k, v gjson.Result) bool {
		switch {
		case k.Str == "usage" && !seenUsage:
			o.usage, seenUsage = usageFrom(v), true
		case k.Str == o.outputPath && o.outputPath != "" && !seenOutput:
			o.output, seenOutput = rawOf(body, v), true
		}
		return true
	})
}

func (o *bodyObserver) event(data []byte, stripUsage bool) bool {
	if !gjson.ValidBytes(data) {
		return true
	}
	ev := gjson.ParseBytes(data)
	switch ev.Get("type").String() {
	case "response.completed", "response.incomplete", "response.failed":
		o.whole([]byte(ev.Get("response").Raw)) // the Responses API repeats the whole response at the end
		o.completed = true
		return true
	}
	if u := ev.Get("usage"); u.Exists() && u.Type != gjson.Null {
		o.usage = usageFrom(u)
		if stripUsage && len(ev.Get("choices").Array()) == 0 {
			return false
		}
	}
	return true
}

// ended: Responses API streams have no [DONE]; they end after their final response event.
func (o *bodyObserver) ended() bool { return o.completed }

func (o *bodyObserver) finish(tr *traces.Trace) {
	tr.Usage = o.usage
	tr.Output = o.output
}
