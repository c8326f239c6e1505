// Package generate turns a language model's next-token logits into completions: greedy or
// temperature / top-k / top-p sampling with a seeded RNG, EOS ids, stop sequences matched on the
// decoded text, a token budget, streaming through a callback, and cancellation by context.
//
// It works on any LM (a tiny interface); FromModel adapts an *lm.Model. Text needs a Tokenizer
// (only Decode is used here), defined here so that this package does not depend on a particular
// tokenizer implementation.
package generate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"opentracy/gpu/engine/lm"
)

// Tokenizer converts between text and token ids. The engine's tokenizer package
// (*tokenizer.Tokenizer) has exactly these methods.
type Tokenizer interface {
	// Encode returns the ids of text; addSpecial adds the tokenizer's BOS/EOS decorations
	// (false for text rendered by a chat template, which already holds them).
	Encode(text string, addSpecial bool) []int
	// Decode returns the text of ids; skipSpecial drops special tokens. Bytes of an unfinished
	// UTF-8 character must come out as U+FFFD.
	Decode(ids []int, skipSpecial bool) string
}

// LM is what generation needs from a model.
type LM interface {
	// Start prefills the prompts and returns a decoding session and each prompt's next-token
	// logits. maxNewTokens is an upper bound the session may lower (context length).
	Start(ctx context.Context, prompts [][]int, maxNewTokens int) (Session, [][]float32, error)
	// EOSTokenIDs are the default end-of-sequence ids.
	EOSTokenIDs() []int
}

// Session decodes one token per row per Step.
type Session interface {
	Step(ctx context.Context, tokens []int) ([][]float32, error)
	// MaxNewTokens is the number of tokens the session can still take in total (the effective
	// budget after the context-length cap).
	MaxNewTokens() int
	Close()
}

// FromModel adapts a loaded model to LM.
func FromModel(m *lm.Model) LM { return modelLM{m} }

type modelLM struct{ m *lm.Model }

func (a modelLM) Start(ctx context.Context, prompts [][]int, maxNew int) (Session, [][]float32, error) {
	s, logits, err := a.m.NewSession(ctx, prompts, maxNew)
	if err != nil {
		return nil, nil, err
	}
	return s, logits, nil
}

func (a modelLM) EOSTokenIDs() []int { return a.m.EOSTokenIDs() }

// Params control one generation call.
type Params struct {
	// MaxTokens bounds the generated tokens per prompt; 0 means as many as the context allows.
	MaxTokens int
	// Temperature <= 0 selects greedy decoding.
	Temperature float64
	// TopK keeps the k most likely tokens (0: off).
	TopK int
	// TopP keeps the smallest set of tokens whose probability reaches TopP (0 or 1: off).
	TopP float64
	// Seed makes sampling reproducible; each prompt i uses the stream (Seed, i).
	Seed uint64
	// Stop sequences end a completion when they appear in its decoded text; the text is cut
	// before them. They need a Tokenizer.
	Stop []string
	// EOS overrides the model's end-of-sequence ids when non-nil.
	EOS []int
	// KeepSpecialTokens keeps special tokens in the decoded text (they are skipped by default,
	// as OpenAI-compatible servers do).
	KeepSpecialTokens bool
	// AddSpecialTokens is passed to Encode by GenerateText.
	AddSpecialTokens bool
}

// FinishReason says why a completion ended, in OpenAI's terms.
type FinishReason string

// Finish reasons.
const (
	FinishStop   FinishReason = "stop"   // EOS token or stop sequence
	FinishLength FinishReason = "length" // token budget or context exhausted
)

// Result is one prompt's completion.
type Result struct {
	// Tokens are the generated ids, without the EOS token (a stop sequence's tokens stay).
	Tokens []int
	// Text is the decoded completion, cut before a matched stop sequence (empty without a
	// Tokenizer).
	Text string
	// FinishReason is empty if generation was interrupted (context or callback error).
	FinishReason FinishReason
	// StopSequence is the stop sequence that ended the completion, if any.
	StopSequence string
	// PromptTokens and CompletionTokens are usage counts; the latter includes an EOS token.
	PromptTokens, CompletionTokens int
}

// Chunk is one streaming event for prompt Index: a generated token and the text that became
// safe to show. Text withholds a possible start of a stop sequence and incomplete UTF-8 until
// they are resolved. The last chunk of a prompt carries its FinishReason; Token is -1 on a
// chunk that adds no token (the EOS that ended it).
type Chunk struct {
	Index        int
	Token        int
	Text         string
	FinishReason FinishReason
}

// row is the per-prompt decoding state.
type row struct {
	res     Result
	sampler *Sampler
	emitted string // text already streamed
	done    bool
	lastTok int
	maxStop int
}

// Generate completes each prompt. tok may be nil when no text is needed (then Stop must be
// empty). onChunk, if not nil, is called synchronously for every chunk; an error from it stops
// generation and is returned. On cancellation the results so far are returned with ctx.Err().
func Generate(ctx context.Context, model LM, tok Tokenizer, prompts [][]int, p Params, onChunk func(Chunk) error) ([]Result, error) {
	if len(p.Stop) > 0 && tok == nil {
		return nil, errors.New("generate: stop sequences need a tokenizer")
	}
	for _, s := range p.Stop {
		if s == "" {
			return nil, errors.New("generate: empty stop sequence")
		}
	}
	if p.MaxTokens < 0 {
		return nil, fmt.Errorf("generate: negative MaxTokens %d", p.MaxTokens)
	}
	eos := p.EOS
	if eos == nil {
		eos = model.EOSTokenIDs()
	}
	isEOS := make(map[int]bool, len(eos))
	for _, id := range eos {
		isEOS[id] = true
	}
	maxNew := p.MaxTokens
	if maxNew == 0 {
		maxNew = 1 << 30 // the session caps it at the context length
	}
	sess, logits, err := model.Start(ctx, prompts, maxNew)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer sess.Close()
	budget := sess.MaxNewTokens()

	rows := make([]*row, len(prompts))
	for i, pr := range prompts {
		rows[i] = &row{sampler: NewSampler(p, p.Seed, uint64(i)), lastTok: pr[len(pr)-1]}
		rows[i].res.PromptTokens = len(pr)
		for _, s := range p.Stop {
			rows[i].maxStop = max(rows[i].maxStop, len(s))
		}
	}
	results := func() []Result {
		out := make([]Result, len(rows))
		for i, r := range rows {
			out[i] = r.res
		}
		return out
	}
	emit := func(c Chunk) error {
		if onChunk == nil {
			return nil
		}
		if err := onChunk(c); err != nil {
			return fmt.Errorf("generate: stream: %w", err)
		}
		return nil
	}
	if budget == 0 {
		for i, r := range rows {
			r.res.FinishReason = FinishLength
			if err := emit(Chunk{Index: i, Token: -1, FinishReason: FinishLength}); err != nil {
				return results(), err
			}
		}
		return results(), nil
	}
	// Text is decoded every step only when someone looks at it before the end.
	textEachStep := onChunk != nil || len(p.Stop) > 0
	for {
		next := make([]int, len(rows))
		active := 0
		for i, r := range rows {
			if r.done {
				next[i] = r.lastTok
				continue
			}
			id := r.sampler.Sample(logits[i])
			r.res.CompletionTokens++
			chunk := Chunk{Index: i, Token: id}
			switch {
			case isEOS[id]:
				chunk.Token = -1
				r.finish(FinishStop)
			default:
				r.res.Tokens = append(r.res.Tokens, id)
				r.lastTok = id
				if len(r.res.Tokens) >= budget {
					r.finish(FinishLength)
				}
			}
			if tok != nil && (textEachStep || r.done) {
				chunk.Text = r.updateText(tok.Decode(r.res.Tokens, !p.KeepSpecialTokens), p.Stop)
			}
			chunk.FinishReason = r.res.FinishReason
			if err := emit(chunk); err != nil {
				return results(), err
			}
			next[i] = r.lastTok
			if !r.done {
				active++
			}
		}
		if active == 0 {
			return results(), nil
		}
		if err := ctx.Err(); err != nil {
			return results(), err
		}
		logits, err = sess.Step(ctx, next)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return results(), ctxErr
			}
			return results(), fmt.Errorf("generate: %w", err)
		}
	}
}

func (r *row) finish(reason FinishReason) {
	r.done = true
	r.res.FinishReason = reason
}

// updateText takes the row's newly decoded text, applies stop sequences, and returns the text
// newly safe to stream (everything left, once the row is done).
func (r *row) updateText(text string, stops []string) string {
	if len(stops) > 0 {
		// Earlier text was already searched; a new match must end in the new part, so the
		// search starts one stop-length before what was streamed.
		from := min(max(0, len(r.emitted)-r.maxStop), len(text))
		cut, which := -1, ""
		for _, s := range stops {
			if i := strings.Index(text[from:], s); i >= 0 && (cut < 0 || from+i < cut) {
				cut, which = from+i, s
			}
		}
		if cut >= 0 { // a stop sequence wins over a budget reached on the same token
			text = text[:cut]
			r.res.StopSequence = which
			r.finish(FinishStop)
		}
	}
	r.res.Text = text
	safe := len(text)
	if !r.done {
		safe = heldBack(text, stops)
	}
	if !strings.HasPrefix(text[:safe], r.emitted) {
		// The decoder revised text already streamed (or must wait); nothing can be added.
		return ""
	}
	delta := text[len(r.emitted):safe]
	r.emitted = text[:safe]
	return delta
}

// heldBack returns how much of text can be streamed now: it excludes a trailing incomplete
// UTF-8 sequence (decoders render it as U+FFFD until the next token completes it) and the
// longest suffix that is a proper prefix of a stop sequence.
func heldBack(text string, stops []string) int {
	safe := len(text)
	for safe > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:safe])
		if r != utf8.RuneError {
			break
		}
		safe -= size
	}
	hold := 0
	for _, s := range stops {
		for n := min(len(s)-1, safe); n > hold; n-- {
			if strings.HasSuffix(text[:safe], s[:n]) {
				hold = n
				break
			}
		}
	}
	return safe - hold
}

// GenerateText encodes text prompts with tok, then runs Generate.
func GenerateText(ctx context.Context, model LM, tok Tokenizer, prompts []string, p Params, onChunk func(Chunk) error) ([]Result, error) {
	ids := make([][]int, len(prompts))
	for i, text := range prompts {
		enc := tok.Encode(text, p.AddSpecialTokens)
		if len(enc) == 0 {
			return nil, fmt.Errorf("generate: prompt %d encodes to no tokens", i)
		}
		ids[i] = enc
	}
	return Generate(ctx, model, tok, ids, p, onChunk)
}
