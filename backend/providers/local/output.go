package local

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"

	"opentracy/backend/providers/chatwire"
)

// toolStyle is how a model family writes tool calls.
type toolStyle int

const (
	noTools    toolStyle = iota
	qwenTools            // <tool_call>{"name": …, "arguments": {…}}</tool_call> blocks after any text
	llamaTools           // the whole answer is {"name": …, "parameters": {…}}
)

// outputConfig says what the parser looks for in a completion.
type outputConfig struct {
	// thinking: the completion may open with a <think>…</think> block (Qwen3 asked to think).
	thinking bool
	tools    toolStyle
}

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
	toolOpen   = "<tool_call>"
	toolClose  = "</tool_call>"
)

type parseState int

const (
	stBegin       parseState = iota // may still open a think block
	stThinkBegin                    // after <think>: newlines dropped
	stThinking                      // reasoning until </think>
	stAnswerBegin                   // newlines after </think> dropped; a Llama tool call starts here
	stAnswer                        // content
	stTools                         // tool calls, kept whole until the end
)

// outputParser splits generated text into reasoning, content and tool calls as it arrives. It
// holds back only what may be the start of a tag (and newlines that may precede one), so a
// stream shows text as soon as it is known to be content, and the split depends only on the
// whole text, never on how it was cut into deltas: streamed and non-streamed answers agree.
type outputParser struct {
	cfg        outputConfig
	state      parseState
	afterThink bool
	pend       string
	toolText   strings.Builder
}

func newOutputParser(cfg outputConfig) *outputParser {
	p := &outputParser{cfg: cfg, state: stAnswerBegin}
	if cfg.thinking {
		p.state = stBegin
	}
	return p
}

// feed takes newly generated text and returns the reasoning and content that can be shown now.
func (p *outputParser) feed(text string) (reasoning, content string) {
	p.pend += text
	var r, c strings.Builder
	for {
		switch p.state {
		case stBegin:
			t := strings.TrimLeft(p.pend, " \t\r\n")
			if strings.HasPrefix(t, thinkOpen) {
				p.pend, p.state = t[len(thinkOpen):], stThinkBegin
				continue
			}
			if strings.HasPrefix(thinkOpen, t) { // could still become <think>
				return r.String(), c.String()
			}
			p.state = stAnswerBegin
		case stThinkBegin:
			if p.pend = strings.TrimLeft(p.pend, "\n"); p.pend == "" {
				return r.String(), c.String()
			}
			p.state = stThinking
		case stThinking:
			if i := strings.Index(p.pend, thinkClose); i >= 0 {
				r.WriteString(strings.TrimRight(p.pend[:i], "\n"))
				p.pend, p.state, p.afterThink = p.pend[i+len(thinkClose):], stAnswerBegin, true
				continue
			}
			n := emittable(p.pend, thinkClose, true)
			r.WriteString(p.pend[:n])
			p.pend = p.pend[n:]
			return r.String(), c.String()
		case stAnswerBegin:
			if p.afterThink {
				if p.pend = strings.TrimLeft(p.pend, "\n"); p.pend == "" {
					return r.String(), c.String()
				}
			}
			if p.cfg.tools == llamaTools {
				t := strings.TrimLeft(p.pend, " \t\r\n")
				if t == "" {
					return r.String(), c.String()
				}
				if t[0] == '{' {
					p.state = stTools
					continue
				}
			}
			p.state = stAnswer
		case stAnswer:
			if p.cfg.tools != qwenTools {
				c.WriteString(p.pend)
				p.pend = ""
				return r.String(), c.String()
			}
			if i := strings.Index(p.pend, toolOpen); i >= 0 {
				c.WriteString(p.pend[:i])
				p.pend, p.state = p.pend[i:], stTools
				continue
			}
			n := emittable(p.pend, toolOpen, false)
			c.WriteString(p.pend[:n])
			p.pend = p.pend[n:]
			return r.String(), c.String()
		case stTools:
			p.toolText.WriteString(p.pend)
			p.pend = ""
			return r.String(), c.String()
		}
	}
}

// finish returns what was held back, and the tool calls. Text that looked like a tool call but
// does not parse as one is content after all.
func (p *outputParser) finish() (reasoning, content string, calls []chatwire.ToolCall) {
	pend := p.pend
	p.pend = ""
	switch p.state {
	case stThinkBegin, stThinking: // cut off while thinking
		return strings.TrimRight(pend, "\n"), "", nil
	case stTools:
		text := p.toolText.String()
		var rest string
		var err error
		if p.cfg.tools == llamaTools {
			var call chatwire.ToolCall
			call, err = parseToolCall(text)
			calls = []chatwire.ToolCall{call}
		} else {
			calls, rest, err = parseQwenToolCalls(text)
		}
		if err != nil {
			return "", text, nil
		}
		return "", rest, calls
	}
	return "", pend, nil
}

// emittable is how much of s can be shown: all but a suffix that may begin tag, and, with
// newlines, the newlines before it (the template trims them around the tag).
func emittable(s, tag string, newlines bool) int {
	n := len(s)
	for k := min(len(tag)-1, n); k > 0; k-- {
		if strings.HasSuffix(s, tag[:k]) {
			n -= k
			break
		}
	}
	if newlines {
		n = len(strings.TrimRight(s[:n], "\n"))
	}
	return n
}

// parseQwenToolCalls reads <tool_call> blocks; rest is the text around them, if more than space.
// A block cut off by the token budget is still tried: its JSON may be complete.
func parseQwenToolCalls(s string) (calls []chatwire.ToolCall, rest string, err error) {
	var outside strings.Builder
	for {
		i := strings.Index(s, toolOpen)
		if i < 0 {
			outside.WriteString(s)
			break
		}
		outside.WriteString(s[:i])
		s = s[i+len(toolOpen):]
		body := s
		if j := strings.Index(s, toolClose); j >= 0 {
			body, s = s[:j], s[j+len(toolClose):]
		} else {
			s = ""
		}
		call, err := parseToolCall(body)
		if err != nil {
			return nil, "", err
		}
		calls = append(calls, call)
	}
	if len(calls) == 0 {
		return nil, "", errors.New("no tool call")
	}
	return calls, strings.TrimSpace(outside.String()), nil
}

// parseToolCall reads {"name": …, "arguments" or "parameters": {…}} into an OpenAI tool call.
func parseToolCall(text string) (chatwire.ToolCall, error) {
	var v struct {
		Name       string          `json:"name"`
		Arguments  json.RawMessage `json:"arguments"`
		Parameters json.RawMessage `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(text)), &v); err != nil {
		return chatwire.ToolCall{}, err
	}
	if v.Name == "" {
		return chatwire.ToolCall{}, errors.New("tool call without a name")
	}
	args := v.Arguments
	if len(args) == 0 {
		args = v.Parameters
	}
	var s string
	if json.Unmarshal(args, &s) == nil {
		args = []byte(s) // arguments written as a string of JSON text
	}
	input, err := chatwire.ToolInput(string(args))
	if err != nil {
		return chatwire.ToolCall{}, err
	}
	return chatwire.ToolCall{ID: newID("call_"), Type: "function",
		Function: chatwire.Function{Name: v.Name, Arguments: string(bytes.TrimSpace(input))}}, nil
}

// newID returns prefix and 24 random letters and digits, the shape of OpenAI's ids.
func newID(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand's Read never fails
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}
