// Package tokenizer is an exact byte-level BPE tokenizer for Hugging Face tokenizer.json files
// (Qwen2/Qwen3, Llama 3.x and other GPT-2-style models): the same ids as Hugging Face's
// tokenizers for the same text, and decoding that streams token by token.
//
// Encoding follows the library's pipeline: added tokens are cut out of the raw text, the rest is
// normalized, pre-tokenized into words, each word is mapped to bytes and merged by BPE rank, and a
// post-processor may add BOS/EOS. Offsets, padding, truncation and pairs are not implemented: the
// engine needs ids for one text at a time.
//
// A Tokenizer is immutable after loading apart from an internal word cache, and safe for
// concurrent use.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Tokenizer encodes text to token ids and back.
type Tokenizer struct {
	model     *bpe
	normalize normalizer // nil: none
	pre       preTokenizer

	added     []AddedToken
	rawAdded  *addedMatcher // tokens matched before normalization (normalized: false)
	normAdded *addedMatcher // tokens matched in normalized text (normalized: true)

	prefix, suffix []int // added by the post-processor when special tokens are asked for

	// The bytes of every id, back to back: one pointer-free block instead of 150k small slices,
	// which the garbage collector would otherwise scan on every cycle.
	arena   []byte
	offsets []uint32 // id → arena[offsets[id]:offsets[id+1]]
	known   []bool   // id → in use (vocabularies may have holes)
	special []bool   // id → special (skipped by Decode with skipSpecial)
	addedID map[string]int
	odd     map[int]string // vocabulary entries outside the byte alphabet (none in Qwen3/Llama 3)
	oddID   map[string]int

	bos, eos, pad int // -1 when the model has none
	chatTemplate  string
	splitSpecial  bool
}

// Load reads tokenizer.json and, when present, tokenizer_config.json from a model folder.
func Load(dir string) (*Tokenizer, error) {
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	cj, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := New(tj, cj)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", dir, err)
	}
	return t, nil
}

// New builds a tokenizer from the contents of tokenizer.json and tokenizer_config.json (which may
// be nil: then there is no BOS/EOS or chat template unless the post-processor names them).
func New(tokenizerJSON, configJSON []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	var cfg configFile
	if len(configJSON) > 0 {
		if err := json.Unmarshal(configJSON, &cfg); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: %w", err)
		}
	}
	t := &Tokenizer{bos: -1, eos: -1, pad: -1, splitSpecial: cfg.SplitSpecialTokens}
	var err error
	if t.model, err = newBPE(&f.Model); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if t.normalize, err = newNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if t.pre, err = newPreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if !hasByteLevel(t.pre) {
		return nil, fmt.Errorf("pre_tokenizer has no ByteLevel step: only byte-level BPE is supported")
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}

	size := 0
	for _, id := range f.Model.Vocab {
		size = max(size, id+1)
	}
	for _, a := range f.AddedTokens {
		size = max(size, a.ID+1)
	}
	idBytes := make([][]byte, size) // temporary, packed into the arena below
	t.known = make([]bool, size)
	t.special = make([]bool, size)
	t.addedID = make(map[string]int, len(f.AddedTokens))
	t.odd = map[int]string{}
	t.oddID = map[string]int{}
	for tok, id := range f.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("model: token %q has a negative id", tok)
		}
		raw, ok := alphabet.decode(tok)
		if !ok {
			t.odd[id] = tok
			t.oddID[tok] = id
		}
		idBytes[id] = raw
		t.known[id] = true
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 || a.Content == "" {
			return nil, fmt.Errorf("added token %q with id %d", a.Content, a.ID)
		}
		at := AddedToken{ID: a.ID, Content: a.Content, Special: a.Special, LStrip: a.LStrip,
			RStrip: a.RStrip, SingleWord: a.SingleWord, Normalized: a.Normalized}
		t.added = append(t.added, at)
		// Added tokens decode to their own text, not through the byte alphabet (as in
		// transformers, whose decoders emit added tokens verbatim).
		idBytes[a.ID] = []byte(a.Content)
		t.known[a.ID] = true
		t.special[a.ID] = a.Special
		t.addedID[a.Content] = a.ID
	}
	total := 0
	for _, b := range idBytes {
		total += len(b)
	}
	t.arena = make([]byte, 0, total)
	t.offsets = make([]uint32, size+1)
	for id, b := range idBytes {
		t.offsets[id] = uint32(len(t.arena))
		t.arena = append(t.arena, b...)
	}
	t.offsets[size] = uint32(len(t.arena))
	t.rawAdded = newAddedMatcher(t.added,
		func(a AddedToken) bool { return !a.Normalized },
		func(a AddedToken) string { return a.Content })
	t.normAdded = newAddedMatcher(t.added,
		func(a AddedToken) bool { return a.Normalized },
		func(a AddedToken) string {
			if t.normalize != nil {
				return t.normalize(a.Content)
			}
			return a.Content
		})

	if t.prefix, t.suffix, err = t.newPostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	for _, ref := range []struct {
		name string
		tok  tokenRef
		dst  *int
	}{{"bos_token", cfg.BOSToken, &t.bos}, {"eos_token", cfg.EOSToken, &t.eos}, {"pad_token", cfg.PadToken, &t.pad}} {
		if ref.tok == "" {
			continue
		}
		id, ok := t.TokenID(string(ref.tok))
		if !ok {
			return nil, fmt.Errorf("tokenizer_config.json: %s %q is not in the vocabulary", ref.name, ref.tok)
		}
		*ref.dst = id
	}
	if t.chatTemplate, err = cfg.chatTemplate(); err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	return t, nil
}

func checkDecoder(raw json.RawMessage) error {
	typ, err := componentType(raw)
	if err != nil {
		return fmt.Errorf("decoder: %w", err)
	}
	if typ != "ByteLevel" {
		return fmt.Errorf("decoder %q: only ByteLevel is supported", typ)
	}
	return nil
}

// newPostProcessor reads the ids a post-processor puts around a single sequence.
func (t *Tokenizer) newPostProcessor(raw json.RawMessage) (prefix, suffix []int, err error) {
	typ, err := componentType(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("post_processor: %w", err)
	}
	switch typ {
	case "", "ByteLevel": // ByteLevel only adjusts offsets
		return nil, nil, nil
	case "Sequence":
		var seq struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := json.Unmarshal(raw, &seq); err != nil {
			return nil, nil, fmt.Errorf("post_processor Sequence: %w", err)
		}
		for i, r := range seq.Processors {
			p, s, err := t.newPostProcessor(r)
			if err != nil {
				return nil, nil, fmt.Errorf("post_processor Sequence[%d]: %w", i, err)
			}
			// Each processor wraps the output of the previous one.
			prefix = append(append([]int{}, p...), prefix...)
			suffix = append(suffix, s...)
		}
		return prefix, suffix, nil
	case "TemplateProcessing":
		var tp struct {
			Single []struct {
				SpecialToken *struct {
					ID string `json:"id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID string `json:"id"`
				} `json:"Sequence"`
			} `json:"single"`
			SpecialTokens map[string]struct {
				IDs []int `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := json.Unmarshal(raw, &tp); err != nil {
			return nil, nil, fmt.Errorf("post_processor TemplateProcessing: %w", err)
		}
		seen := false
		for _, item := range tp.Single {
			switch {
			case item.Sequence != nil:
				if item.Sequence.ID != "A" || seen {
					return nil, nil, fmt.Errorf("post_processor TemplateProcessing: single template uses sequence %q", item.Sequence.ID)
				}
				seen = true
			case item.SpecialToken != nil:
				st, ok := tp.SpecialTokens[item.SpecialToken.ID]
				if !ok {
					return nil, nil, fmt.Errorf("post_processor TemplateProcessing: special token %q is not defined", item.SpecialToken.ID)
				}
				if seen {
					suffix = append(suffix, st.IDs...)
				} else {
					prefix = append(prefix, st.IDs...)
				}
			}
		}
		if !seen {
			return nil, nil, fmt.Errorf("post_processor TemplateProcessing: single template has no sequence")
		}
		return prefix, suffix, nil
	case "BertProcessing", "RobertaProcessing":
		var bp struct {
			Sep [2]json.RawMessage `json:"sep"`
			Cls [2]json.RawMessage `json:"cls"`
		}
		if err := json.Unmarshal(raw, &bp); err != nil {
			return nil, nil, fmt.Errorf("post_processor %s: %w", typ, err)
		}
		var cls, sep int
		if err := json.Unmarshal(bp.Cls[1], &cls); err != nil {
			return nil, nil, fmt.Errorf("post_processor %s cls: %w", typ, err)
		}
		if err := json.Unmarshal(bp.Sep[1], &sep); err != nil {
			return nil, nil, fmt.Errorf("post_processor %s sep: %w", typ, err)
		}
		return []int{cls}, []int{sep}, nil
	default:
		return nil, nil, fmt.Errorf("post_processor %q is not supported", typ)
	}
}

// Encode returns the ids of text. Special and added tokens written in the text (such as
// "<|im_end|>") become their ids, as in Hugging Face's default; addSpecial also applies the
// post-processor (Llama 3.1 and later: a leading <|begin_of_text|>; Qwen3: nothing).
// Invalid UTF-8 is first replaced by U+FFFD, since the reference tokenizers only see valid text.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	return t.encode(text, addSpecial, t.splitSpecial)
}

// EncodeOrdinary is Encode with special tokens in the text treated as plain text (Hugging Face's
// split_special_tokens): for user content that must not be able to forge "<|im_end|>".
// Non-special added tokens such as Qwen3's <think> still match.
func (t *Tokenizer) EncodeOrdinary(text string, addSpecial bool) []int {
	return t.encode(text, addSpecial, true)
}

func (t *Tokenizer) encode(text string, addSpecial, splitSpecial bool) []int {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	ids := make([]int, 0, len(text)/3+len(t.prefix)+len(t.suffix)+1)
	if addSpecial {
		ids = append(ids, t.prefix...)
	}
	var skip func(AddedToken) bool
	if splitSpecial {
		skip = func(a AddedToken) bool { return a.Special }
	}
	var segs, inner []segment
	var words []string
	segs = t.rawAdded.split(segs, text, t.added, skip)
	for _, sg := range segs {
		if sg.token >= 0 {
			ids = append(ids, sg.token)
			continue
		}
		s := sg.text
		if t.normalize != nil {
			s = t.normalize(s)
		}
		inner = t.normAdded.split(inner[:0], s, t.added, skip)
		for _, in := range inner {
			if in.token >= 0 {
				ids = append(ids, in.token)
				continue
			}
			words = t.pre.split(words[:0], in.text)
			for _, w := range words {
				ids = t.model.appendWord(ids, w)
			}
		}
	}
	if addSpecial {
		ids = append(ids, t.suffix...)
	}
	return ids
}

// Decode returns the text of ids; skipSpecial drops special tokens. Byte sequences that are not
// valid UTF-8 (a token cut inside a character) become U+FFFD, one per maximal invalid subpart as
// Python and JavaScript decoders do. Unlike transformers' default for Llama 3, no
// "clean_up_tokenization_spaces" is applied, so Decode(Encode(x)) == x. Unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	buf := make([]byte, 0, len(ids)*4)
	for _, id := range ids {
		if id < 0 || id >= len(t.special) || (skipSpecial && t.special[id]) {
			continue
		}
		buf = append(buf, t.arena[t.offsets[id]:t.offsets[id+1]]...)
	}
	if utf8.Valid(buf) {
		return string(buf)
	}
	return string(appendValidUTF8(nil, buf))
}

// TokenBytes returns the bytes one token stands for (nil for an unknown id): a token can be part
// of a UTF-8 character, so a single token's text is only meaningful in a byte-level sense.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.known) || !t.known[id] {
		return nil
	}
	return t.tokenBytes(id)
}

func (t *Tokenizer) tokenBytes(id int) []byte {
	return t.arena[t.offsets[id]:t.offsets[id+1]:t.offsets[id+1]]
}

// TokenID returns the id of a token as spelled in tokenizer.json (byte-level form, e.g. "Ġthe",
// or an added token's content such as "<|im_end|>").
func (t *Tokenizer) TokenID(token string) (int, bool) {
	if id, ok := t.addedID[token]; ok {
		return id, true
	}
	if id, ok := t.oddID[token]; ok {
		return id, true
	}
	raw, ok := alphabet.decode(token)
	if !ok {
		return 0, false
	}
	id, ok := t.model.vocab[string(raw)]
	return int(id), ok
}

// Token returns the token string of an id as spelled in tokenizer.json.
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.known) || !t.known[id] {
		return "", false
	}
	if s, ok := t.odd[id]; ok {
		return s, true
	}
	if t.isAdded(id) {
		return string(t.tokenBytes(id)), true
	}
	return alphabet.encode(t.tokenBytes(id)), true
}

func (t *Tokenizer) isAdded(id int) bool {
	for _, a := range t.added {
		if a.ID == id {
			return true
		}
	}
	return false
}

// VocabSize is one more than the largest id (model vocabulary and added tokens), i.e. the size an
// id-indexed table needs. A model's embedding matrix may be larger (Qwen3 pads it to 151936).
func (t *Tokenizer) VocabSize() int { return len(t.known) }

// IsSpecial reports whether id is a special token.
func (t *Tokenizer) IsSpecial(id int) bool { return id >= 0 && id < len(t.special) && t.special[id] }

// AddedTokens returns the added tokens (special or not) in tokenizer.json order.
func (t *Tokenizer) AddedTokens() []AddedToken { return append([]AddedToken(nil), t.added...) }

// BOS returns the beginning-of-sequence id from tokenizer_config.json (Qwen3 has none).
func (t *Tokenizer) BOS() (int, bool) { return t.bos, t.bos >= 0 }

// EOS returns the end-of-sequence id from tokenizer_config.json. Generation may stop on more ids
// (generation_config.json lists them; Qwen3 also stops on <|endoftext|>).
func (t *Tokenizer) EOS() (int, bool) { return t.eos, t.eos >= 0 }

// Pad returns the padding id from tokenizer_config.json.
func (t *Tokenizer) Pad() (int, bool) { return t.pad, t.pad >= 0 }

// ChatTemplate returns the Jinja chat template from tokenizer_config.json ("" when none).
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }
