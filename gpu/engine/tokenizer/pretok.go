package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// preTokenizer cuts normalized text into words; BPE never merges across words.
type preTokenizer interface {
	// split appends the non-empty pieces of s to dst.
	split(dst []string, s string) []string
}

// matcher finds the non-overlapping matches of a pattern, left to right, as byte offsets.
type matcher interface {
	matches(s string, yield func(start, end int))
}

func newPreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	typ, err := componentType(raw)
	if err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	switch typ {
	case "":
		return nil, nil
	case "Sequence":
		var seq struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &seq); err != nil {
			return nil, fmt.Errorf("pre_tokenizer Sequence: %w", err)
		}
		seqp := &sequencePreTok{}
		for i, r := range seq.PreTokenizers {
			p, err := newPreTokenizer(r)
			if err != nil {
				return nil, fmt.Errorf("pre_tokenizer Sequence[%d]: %w", i, err)
			}
			if hasByteLevel(p) {
				seqp.byteLevel = true
			}
			// A ByteLevel step without prefix space or regex changes nothing here (the byte
			// mapping is implicit); skipping it saves a pass over every piece.
			if bl, ok := p.(*byteLevelPreTok); ok && !bl.addPrefixSpace && bl.regex == nil {
				continue
			}
			if p != nil {
				seqp.steps = append(seqp.steps, p)
			}
		}
		return seqp, nil
	case "Split":
		var sp struct {
			Pattern struct {
				Regex  *string `json:"Regex"`
				String *string `json:"String"`
			} `json:"pattern"`
			Behavior string `json:"behavior"`
			Invert   bool   `json:"invert"`
		}
		if err := json.Unmarshal(raw, &sp); err != nil {
			return nil, fmt.Errorf("pre_tokenizer Split: %w", err)
		}
		var m matcher
		switch {
		case sp.Pattern.Regex != nil:
			m, err = newRegexMatcher(*sp.Pattern.Regex)
			if err != nil {
				return nil, fmt.Errorf("pre_tokenizer Split: %w", err)
			}
		case sp.Pattern.String != nil && *sp.Pattern.String != "":
			m = literalMatcher(*sp.Pattern.String)
		default:
			return nil, fmt.Errorf("pre_tokenizer Split: no pattern")
		}
		b, err := parseBehavior(sp.Behavior)
		if err != nil {
			return nil, fmt.Errorf("pre_tokenizer Split: %w", err)
		}
		return &splitPreTok{m: m, behavior: b, invert: sp.Invert}, nil
	case "ByteLevel":
		var bl struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := json.Unmarshal(raw, &bl); err != nil {
			return nil, fmt.Errorf("pre_tokenizer ByteLevel: %w", err)
		}
		p := &byteLevelPreTok{addPrefixSpace: bl.AddPrefixSpace}
		if bl.UseRegex == nil || *bl.UseRegex { // the field defaults to true
			m, err := newRegexMatcher(gpt2Pattern)
			if err != nil {
				return nil, fmt.Errorf("pre_tokenizer ByteLevel: %w", err)
			}
			p.regex = &splitPreTok{m: m, behavior: isolated}
		}
		return p, nil
	default:
		return nil, fmt.Errorf("pre_tokenizer %q is not supported", typ)
	}
}

// hasByteLevel reports whether the pre-tokenizer maps bytes to GPT-2's alphabet, which the BPE
// model here relies on.
func hasByteLevel(p preTokenizer) bool {
	switch p := p.(type) {
	case *byteLevelPreTok:
		return true
	case *sequencePreTok:
		return p.byteLevel
	}
	return false
}

type sequencePreTok struct {
	steps     []preTokenizer
	byteLevel bool // one of the steps, possibly skipped, is ByteLevel
}

func (s *sequencePreTok) split(dst []string, text string) []string {
	if len(s.steps) == 0 {
		return appendNonEmpty(dst, text)
	}
	start := len(dst)
	dst = s.steps[0].split(dst, text)
	var scratch []string
	for _, step := range s.steps[1:] {
		scratch = append(scratch[:0], dst[start:]...)
		dst = dst[:start]
		for _, piece := range scratch {
			dst = step.split(dst, piece)
		}
	}
	return dst
}

// byteLevelPreTok is the ByteLevel pre-tokenizer: an optional prefix space and, with use_regex,
// GPT-2's split. The byte-to-rune mapping itself is implicit (BPE runs on bytes).
type byteLevelPreTok struct {
	addPrefixSpace bool
	regex          *splitPreTok // nil without use_regex
}

// gpt2Pattern is the ByteLevel pre-tokenizer's built-in split (use_regex: true).
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

func (p *byteLevelPreTok) split(dst []string, s string) []string {
	// Hugging Face adds the space to every piece present at this step, not only the first.
	if p.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if p.regex == nil {
		return appendNonEmpty(dst, s)
	}
	return p.regex.split(dst, s)
}

type behavior int

const (
	removed behavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

func parseBehavior(s string) (behavior, error) {
	switch s {
	case "Removed":
		return removed, nil
	case "Isolated":
		return isolated, nil
	case "MergedWithPrevious":
		return mergedWithPrevious, nil
	case "MergedWithNext":
		return mergedWithNext, nil
	case "Contiguous":
		return contiguous, nil
	}
	return 0, fmt.Errorf("split behavior %q is not supported", s)
}

// splitPreTok is Hugging Face's Split: the text is cut into matches and the gaps between them,
// and behavior says what happens to the matches (the delimiters; with invert, the gaps are).
type splitPreTok struct {
	m        matcher
	behavior behavior
	invert   bool
}

func (p *splitPreTok) split(dst []string, s string) []string {
	if s == "" {
		return dst
	}
	if p.behavior == isolated {
		// Every match and every gap is its own piece, whichever side is the delimiter.
		prev := 0
		p.m.matches(s, func(start, end int) {
			if start > prev {
				dst = append(dst, s[prev:start])
			}
			if end > start {
				dst = append(dst, s[start:end])
			}
			prev = end
		})
		return appendNonEmpty(dst, s[prev:])
	}
	type span struct {
		start, end int
		delim      bool
	}
	var spans []span
	prev := 0
	p.m.matches(s, func(start, end int) {
		if start > prev {
			spans = append(spans, span{prev, start, p.invert})
		}
		if end > start {
			spans = append(spans, span{start, end, !p.invert})
		}
		prev = end
	})
	if prev < len(s) {
		spans = append(spans, span{prev, len(s), p.invert})
	}
	// A port of Hugging Face's SplitDelimiterBehavior: fold the spans into pieces.
	type piece struct{ start, end int }
	var pieces []piece
	switch p.behavior {
	case removed:
		for _, sp := range spans {
			if !sp.delim {
				pieces = append(pieces, piece{sp.start, sp.end})
			}
		}
	case contiguous:
		prevDelim := false
		for _, sp := range spans {
			if sp.delim == prevDelim && len(pieces) > 0 {
				pieces[len(pieces)-1].end = sp.end
			} else {
				pieces = append(pieces, piece{sp.start, sp.end})
			}
			prevDelim = sp.delim
		}
	case mergedWithPrevious:
		prevDelim := false
		for _, sp := range spans {
			if sp.delim && !prevDelim && len(pieces) > 0 {
				pieces[len(pieces)-1].end = sp.end
			} else {
				pieces = append(pieces, piece{sp.start, sp.end})
			}
			prevDelim = sp.delim
		}
	case mergedWithNext:
		prevDelim := false
		for i := len(spans) - 1; i >= 0; i-- {
			sp := spans[i]
			if sp.delim && !prevDelim && len(pieces) > 0 {
				pieces[len(pieces)-1].start = sp.start
			} else {
				pieces = append(pieces, piece{sp.start, sp.end})
			}
			prevDelim = sp.delim
		}
		for i, j := 0, len(pieces)-1; i < j; i, j = i+1, j-1 {
			pieces[i], pieces[j] = pieces[j], pieces[i]
		}
	}
	for _, pc := range pieces {
		dst = appendNonEmpty(dst, s[pc.start:pc.end])
	}
	return dst
}

func appendNonEmpty(dst []string, s string) []string {
	if s == "" {
		return dst
	}
	return append(dst, s)
}

// literalMatcher matches a fixed string.
type literalMatcher string

func (l literalMatcher) matches(s string, yield func(start, end int)) {
	off := 0
	for {
		i := strings.Index(s[off:], string(l))
		if i < 0 {
			return
		}
		yield(off+i, off+i+len(l))
		off += i + len(l)
	}
}

// newRegexMatcher compiles a tokenizer.json pattern. The GPT-4-style patterns of Qwen and Llama 3
// get a hand-written scanner (several times faster, and checked against the regex in tests);
// anything else runs on regexp2, which has the look-ahead (?!\S) that Go's regexp lacks.
func newRegexMatcher(pattern string) (matcher, error) {
	if m, ok := fastMatcherFor(pattern); ok {
		return m, nil
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return &regexMatcher{re: re}, nil
}

type regexMatcher struct {
	re *regexp2.Regexp
}

func (m *regexMatcher) matches(s string, yield func(start, end int)) {
	runes := []rune(s)
	// regexp2 reports rune offsets; walk the string alongside to turn them into byte offsets.
	runePos, bytePos := 0, 0
	toByte := func(r int) int {
		for runePos < r {
			_, n := utf8.DecodeRuneInString(s[bytePos:])
			bytePos += n
			runePos++
		}
		return bytePos
	}
	match, err := m.re.FindRunesMatch(runes)
	for err == nil && match != nil {
		start := toByte(match.Index)
		end := toByte(match.Index + match.Length)
		yield(start, end)
		match, err = m.re.FindNextMatch(match)
	}
	// err is only ever a match timeout, and none is set.
}
