package train

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/lm"
)

// Example is one chat fine-tuning example. The final message is the assistant answer the model
// learns to write; the messages before it are the prompt.
type Example struct {
	Messages []chat.Message
	// Tools are the function definitions offered in the conversation, as in the request's
	// "tools" ({"type": "function", "function": {...}}).
	Tools []json.RawMessage
}

// wireMessage is a message of OpenAI's chat fine-tuning format, whose content may also be null
// (an assistant turn with tool calls only) or a list of content parts.
type wireMessage struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	ReasoningContent *string         `json:"reasoning_content,omitempty"`
	ToolCalls        []chat.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string          `json:"tool_call_id,omitempty"`
	Name             string          `json:"name,omitempty"`
}

func (w wireMessage) content() (string, error) {
	raw := bytes.TrimSpace(w.Content)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content is neither a string nor a list of parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part of type %q is not supported (text only)", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// ReadJSONL reads OpenAI's chat fine-tuning format: one {"messages": [...], "tools": [...]}
// object per line (blank lines are skipped). Every example must end with an assistant message.
func ReadJSONL(r io.Reader) ([]Example, error) {
	var out []Example
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20) // one example may be long
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var doc struct {
			Messages []wireMessage     `json:"messages"`
			Tools    []json.RawMessage `json:"tools"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("train: line %d: %w", line, err)
		}
		ex := Example{Tools: doc.Tools}
		for i, w := range doc.Messages {
			content, err := w.content()
			if err != nil {
				return nil, fmt.Errorf("train: line %d: message %d: %w", line, i, err)
			}
			ex.Messages = append(ex.Messages, chat.Message{
				Role: w.Role, Content: content, ReasoningContent: w.ReasoningContent,
				ToolCalls: w.ToolCalls, ToolCallID: w.ToolCallID, Name: w.Name,
			})
		}
		if err := ex.check(); err != nil {
			return nil, fmt.Errorf("train: line %d: %w", line, err)
		}
		out = append(out, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: read examples: %w", err)
	}
	return out, nil
}

// ReadJSONLFile is ReadJSONL on a file.
func ReadJSONLFile(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	return ReadJSONL(f)
}

func (ex Example) check() error {
	n := len(ex.Messages)
	if n < 2 {
		return errors.New("an example needs a prompt and an assistant answer (at least two messages)")
	}
	if ex.Messages[n-1].Role != "assistant" {
		return fmt.Errorf("the last message has role %q, want assistant", ex.Messages[n-1].Role)
	}
	return nil
}

// Sequence is a tokenized example: the loss is on IDs[PromptLen:], the completion.
type Sequence struct {
	IDs       []int
	PromptLen int
}

// Completion returns the number of completion tokens.
func (s Sequence) Completion() int { return len(s.IDs) - s.PromptLen }

// Encoder turns text into token ids (*tokenizer.Tokenizer is one).
type Encoder interface {
	Encode(text string, addSpecial bool) []int
}

// TokenizeOptions tune Tokenize.
type TokenizeOptions struct {
	// MaxLen truncates longer sequences (0: no limit). The completion's tail is cut, as
	// transformers' truncation does; an example left with no completion token is dropped.
	MaxLen int
	// EOS are the model's end-of-sequence ids: the completion ends at the first of them, so that
	// what a template writes after the end of turn (Qwen3's "\n") is not trained.
	EOS []int
}

// TokenizeStats counts what Tokenize did.
type TokenizeStats struct {
	Examples, Truncated, Dropped int
	Tokens, CompletionTokens     int
}

// Tokenize renders each example with the chat template and tokenizes it. The prompt is what
// the template gives for the messages before the answer with the generation prompt added (the
// same text inference sends), so training and serving see identical prompt tokens; the
// completion is the rest of the full rendering, encoded separately.
func Tokenize(examples []Example, tok Encoder, tmpl chat.Template, opts TokenizeOptions) ([]Sequence, TokenizeStats, error) {
	var st TokenizeStats
	out := make([]Sequence, 0, len(examples))
	for i, ex := range examples {
		if err := ex.check(); err != nil {
			return nil, st, fmt.Errorf("train: example %d: %w", i, err)
		}
		prompt, completion, err := splitRendering(ex, tmpl)
		if err != nil {
			return nil, st, fmt.Errorf("train: example %d: %w", i, err)
		}
		p := tok.Encode(prompt, false)
		c := tok.Encode(completion, false)
		if cut := slices.IndexFunc(c, func(id int) bool { return slices.Contains(opts.EOS, id) }); cut >= 0 {
			c = c[:cut+1]
		}
		st.Examples++
		if len(p) == 0 || len(c) == 0 {
			st.Dropped++
			continue
		}
		ids := append(p[:len(p):len(p)], c...)
		if opts.MaxLen > 0 && len(ids) > opts.MaxLen {
			st.Truncated++
			ids = ids[:opts.MaxLen]
			if len(ids) <= len(p) {
				st.Dropped++
				continue
			}
		}
		s := Sequence{IDs: ids, PromptLen: len(p)}
		st.Tokens += len(ids)
		st.CompletionTokens += s.Completion()
		out = append(out, s)
	}
	return out, st, nil
}

// splitRendering returns the prompt text (generation prompt included) and the completion text
// of an example. Qwen3's template writes an empty <think></think> block into a final answer
// without reasoning: the prompt variant with thinking switched off ends with that block, so it
// is tried first and the block stays out of the trained completion.
func splitRendering(ex Example, tmpl chat.Template) (prompt, completion string, err error) {
	full, err := tmpl.Render(ex.Messages, chat.Options{Tools: ex.Tools})
	if err != nil {
		return "", "", err
	}
	head := ex.Messages[:len(ex.Messages)-1]
	off := false
	for _, thinking := range []*bool{&off, nil} {
		p, err := tmpl.Render(head, chat.Options{Tools: ex.Tools, AddGenerationPrompt: true, EnableThinking: thinking})
		if err != nil {
			return "", "", err
		}
		if strings.HasPrefix(full, p) && len(full) > len(p) {
			return p, full[len(p):], nil
		}
	}
	return "", "", fmt.Errorf("the %s template's prompt is not a prefix of the full conversation", tmpl.Name())
}

// ChatTemplate picks the chat template for a model: the one in its tokenizer_config.json when
// it is a family package chat knows, else the family's default (Qwen3's, or Meta-Llama-3's).
func ChatTemplate(template string, family lm.Family, log *slog.Logger) (chat.Template, error) {
	if log == nil {
		log = slog.Default()
	}
	if template != "" {
		t, exact, err := chat.Detect(template)
		if err == nil {
			if !exact {
				log.Warn("chat template differs from the known one of its family; rendering it as that family", "family", t.Name())
			}
			return t, nil
		}
		log.Warn("unknown chat template; using the model family's", "family", family)
	}
	switch family {
	case lm.Qwen3:
		return chat.Qwen3(), nil
	case lm.Llama:
		return chat.Llama3(), nil
	}
	return nil, fmt.Errorf("train: no chat template for model family %q", family)
}

// fingerprint identifies a data set (ids and prompt lengths), so that a checkpoint is resumed
// only on the data it was trained on.
func fingerprint(seqs []Sequence) string {
	h := sha256.New()
	var buf [8]byte
	put := func(v int) {
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	put(len(seqs))
	for _, s := range seqs {
		put(len(s.IDs))
		put(s.PromptLen)
		for _, id := range s.IDs {
			put(id)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
