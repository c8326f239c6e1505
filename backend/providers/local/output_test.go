package local

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"opentracy/backend/providers/chatwire"
	"opentracy/gpu/engine/generate"
)

// parseAll runs the parser over text cut into pieces and returns everything it produced.
func parseAll(cfg outputConfig, pieces []string) (reasoning, content string, calls []string) {
	p := newOutputParser(cfg)
	var r, c strings.Builder
	for _, s := range pieces {
		dr, dc := p.feed(s)
		r.WriteString(dr)
		c.WriteString(dc)
	}
	fr, fc, fcalls := p.finish()
	r.WriteString(fr)
	c.WriteString(fc)
	for _, call := range fcalls {
		calls = append(calls, call.Function.Name+" "+call.Function.Arguments)
	}
	return r.String(), c.String(), calls
}

func TestOutputParser(t *testing.T) {
	think := outputConfig{thinking: true}
	qwen := outputConfig{thinking: true, tools: qwenTools}
	llama := outputConfig{tools: llamaTools}
	for _, tc := range []struct {
		name               string
		cfg                outputConfig
		text               string
		reasoning, content string
		calls              []string
	}{
		{"plain", outputConfig{}, "Hello <think> world", "", "Hello <think> world", nil},
		{"thinking", think, "<think>\nLet me see.\n</think>\n\nParis.", "Let me see.", "Paris.", nil},
		{"no think block", think, "Paris. </think>", "", "Paris. </think>", nil},
		{"leading space", think, "  <think>a</think>b", "a", "b", nil},
		{"cut off thinking", think, "<think>\nhmm\n", "hmm", "", nil},
		{"only a tag prefix", think, "<thi", "", "<thi", nil},
		{"qwen tool call", qwen, "<think>\n\n</think>\n\nLet me check.\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
			"", "Let me check.\n", []string{`weather {"city":"Paris"}`}},
		{"two qwen calls", outputConfig{tools: qwenTools}, "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>\n<tool_call>{\"name\":\"b\",\"arguments\":\"{\\\"x\\\":1}\"}</tool_call>",
			"", "", []string{"a {}", `b {"x":1}`}},
		{"broken qwen call is content", outputConfig{tools: qwenTools}, "Sure <tool_call>{oops</tool_call>", "", "Sure <tool_call>{oops</tool_call>", nil},
		{"tool tag prefix at the end", outputConfig{tools: qwenTools}, "a <tool_", "", "a <tool_", nil},
		{"llama tool call", llama, ` {"name": "weather", "parameters": {"city": "Paris"}}`, "", "", []string{`weather {"city":"Paris"}`}},
		{"llama plain answer", llama, "It is sunny {really}.", "", "It is sunny {really}.", nil},
		{"llama json that is no call", llama, `{"answer": 42}`, "", `{"answer": 42}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c, calls := parseAll(tc.cfg, []string{tc.text})
			if r != tc.reasoning || c != tc.content || strings.Join(calls, "|") != strings.Join(tc.calls, "|") {
				t.Errorf("got reasoning %q content %q calls %q\nwant reasoning %q content %q calls %q", r, c, calls, tc.reasoning, tc.content, tc.calls)
			}
			// However the text arrives, the split is the same.
			rng := rand.New(rand.NewPCG(1, 2))
			for range 50 {
				var pieces []string
				rest := tc.text
				for rest != "" {
					n := 1 + rng.IntN(min(4, len(rest)))
					pieces, rest = append(pieces, rest[:n]), rest[n:]
				}
				r2, c2, calls2 := parseAll(tc.cfg, pieces)
				if r2 != r || c2 != c || strings.Join(calls2, "|") != strings.Join(calls, "|") {
					t.Fatalf("pieces %q: reasoning %q content %q calls %q", pieces, r2, c2, calls2)
				}
			}
		})
	}
}

func TestOutputParserStreamsEarly(t *testing.T) {
	p := newOutputParser(outputConfig{thinking: true, tools: qwenTools})
	steps := []struct{ in, reasoning, content string }{
		{"<think>\n", "", ""},
		{"step one\n", "step one", ""}, // the newline may precede </think>: held
		{"step two", "\nstep two", ""},
		{"</thi", "", ""},
		{"nk>\n\nAns", "", "Ans"},
		{"wer <tool", "", "wer "},
		{"_c", "", ""},
		{"x", "", "<tool_cx"},
	}
	for _, s := range steps {
		r, c := p.feed(s.in)
		if r != s.reasoning || c != s.content {
			t.Fatalf("feed %q: reasoning %q content %q, want %q %q", s.in, r, c, s.reasoning, s.content)
		}
	}
}

// TestStreamedToolCalls: a stream that ends in tool calls sends them as OpenAI tool_call deltas,
// then finish_reason tool_calls, usage and [DONE].
func TestStreamedToolCalls(t *testing.T) {
	em := chatwire.Emitter{ID: "chatcmpl-1", Model: "m", Created: 1}
	p := newOutputParser(outputConfig{tools: qwenTools})
	var out bytes.Buffer
	_, c := p.feed("Checking.\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>")
	if c != "Checking.\n" {
		t.Fatalf("content %q", c)
	}
	if err := em.Content(&out, c); err != nil {
		t.Fatal(err)
	}
	res := generate.Result{FinishReason: generate.FinishStop, PromptTokens: 10, CompletionTokens: 20}
	if err := writeEnd(&em, &out, p, res, true); err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, ev := range strings.Split(strings.TrimSuffix(out.String(), "\n\n"), "\n\n") {
		evs = append(evs, strings.TrimPrefix(ev, "data: "))
	}
	// role, content, tool call name, its arguments, finish, usage, [DONE]
	if len(evs) != 7 || evs[6] != "[DONE]" || gjson.Get(evs[0], "choices.0.delta.role").String() != "assistant" {
		t.Fatalf("events %q", evs)
	}
	start := gjson.Parse(evs[2]).Get("choices.0.delta.tool_calls.0")
	args := gjson.Parse(evs[3]).Get("choices.0.delta.tool_calls.0")
	if !strings.HasPrefix(start.Get("id").String(), "call_") || start.Get("type").String() != "function" ||
		start.Get("function.name").String() != "weather" || start.Get("index").Int() != 0 ||
		args.Get("function.arguments").String() != `{"city":"Paris"}` || args.Get("index").Int() != 0 {
		t.Errorf("tool call deltas %s %s", evs[2], evs[3])
	}
	if gjson.Get(evs[4], "choices.0.finish_reason").String() != "tool_calls" {
		t.Errorf("finish chunk %s", evs[4])
	}
	if u := gjson.Parse(evs[5]); u.Get("usage.total_tokens").Int() != 30 || len(u.Get("choices").Array()) != 0 {
		t.Errorf("usage chunk %s", evs[5])
	}
}

// TestWholeAnswerSplit: a non-streamed answer carries the thinking as reasoning_content and the
// tool calls as tool_calls, with null content as OpenAI sends beside tool calls.
func TestWholeAnswerSplit(t *testing.T) {
	c := completion{id: "chatcmpl-1", model: "m", created: 1}
	res := generate.Result{Text: "<think>\nNeed the weather.\n</think>\n\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
		FinishReason: generate.FinishStop, PromptTokens: 3, CompletionTokens: 4}
	body, err := c.whole(res, &plan{output: outputConfig{thinking: true, tools: qwenTools}})
	if err != nil {
		t.Fatal(err)
	}
	got := gjson.ParseBytes(body)
	m := got.Get("choices.0.message")
	if m.Get("content").Type != gjson.Null || m.Get("reasoning_content").String() != "Need the weather." ||
		m.Get("tool_calls.0.function.arguments").String() != `{"city":"Paris"}` || m.Get("tool_calls.0.function.name").String() != "weather" ||
		got.Get("choices.0.finish_reason").String() != "tool_calls" || got.Get("usage.total_tokens").Int() != 7 ||
		got.Get("object").String() != "chat.completion" {
		t.Errorf("answer %s", body)
	}
}
