package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The split patterns of Qwen2/Qwen3 (digits one by one) and Llama 3 (digits in groups of up to
// three); both descend from OpenAI's cl100k. Recognizing them lets a hand-written scanner replace
// the backtracking regex engine, which is the slowest step of encoding otherwise.
const (
	qwenPattern   = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

func fastMatcherFor(pattern string) (matcher, bool) {
	switch pattern {
	case qwenPattern:
		return cl100kMatcher{maxDigits: 1}, true
	case llama3Pattern:
		return cl100kMatcher{maxDigits: 3}, true
	}
	return nil, false
}

// cl100kMatcher scans for the pattern above with the same leftmost-first, backtracking semantics
// as the regex. Every rune is a letter (\p{L}), a number (\p{N}), white space (\s, Unicode
// White_Space) or "other", and each class starts some alternative, so the matches tile the text.
type cl100kMatcher struct {
	maxDigits int
}

type runeClass uint8

const (
	classOther runeClass = iota
	classLetter
	classNumber
	classSpace   // white space other than \r and \n
	classNewline // \r or \n
)

// asciiClass holds the class of each ASCII byte, the common case.
var asciiClass = func() (t [utf8.RuneSelf]runeClass) {
	for c := range t {
		t[c] = classify(rune(c))
	}
	return t
}()

func classify(r rune) runeClass {
	switch {
	case r == '\r' || r == '\n':
		return classNewline
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

// at returns the rune class at byte offset i and the rune's length; past the end it returns
// classOther with length 0.
func classAt(s string, i int) (runeClass, int) {
	if i >= len(s) {
		return classOther, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return classify(r), n
}

func isSpaceClass(c runeClass) bool { return c == classSpace || c == classNewline }

func (m cl100kMatcher) matches(s string, yield func(start, end int)) {
	for i := 0; i < len(s); {
		end := m.next(s, i)
		yield(i, end)
		i = end
	}
}

// next returns the end of the match that starts at i (there always is one).
func (m cl100kMatcher) next(s string, i int) int {
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if s[i] == '\'' && i+1 < len(s) {
		switch s[i+1] | 0x20 { // ASCII lower case; the regex engines fold no other letters here
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2]|0x20 == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2]|0x20 == 'l' {
				return i + 3
			}
		}
	}
	c, n := classAt(s, i)
	switch c {
	case classLetter:
		return m.letters(s, i+n)
	case classNumber:
		j := i + n
		for k := 1; k < m.maxDigits; k++ {
			c2, n2 := classAt(s, j)
			if c2 != classNumber {
				break
			}
			j += n2
		}
		return j
	case classNewline:
		// [^\r\n\p{L}\p{N}]?\p{L}+ cannot start here and neither can the punctuation branch:
		// \s*[\r\n]+ matches up to the last newline of the white-space run.
		return m.spaces(s, i)
	case classSpace:
		// [^\r\n\p{L}\p{N}]?\p{L}+: one space-like prefix rune, then letters.
		if c2, n2 := classAt(s, i+n); c2 == classLetter {
			return m.letters(s, i+n+n2)
		}
		//  ?[^\s\p{L}\p{N}]+[\r\n]*: only a plain space may lead.
		if s[i] == ' ' {
			if c2, _ := classAt(s, i+1); c2 == classOther && i+1 < len(s) {
				return m.punct(s, i+1)
			}
		}
		return m.spaces(s, i)
	default: // classOther
		if c2, n2 := classAt(s, i+n); c2 == classLetter {
			return m.letters(s, i+n+n2)
		}
		return m.punct(s, i)
	}
}

// letters consumes \p{L}* from j.
func (m cl100kMatcher) letters(s string, j int) int {
	for j < len(s) {
		c, n := classAt(s, j)
		if c != classLetter {
			break
		}
		j += n
	}
	return j
}

// punct consumes [^\s\p{L}\p{N}]+[\r\n]* from j (the first rune is known to qualify).
func (m cl100kMatcher) punct(s string, j int) int {
	for j < len(s) {
		c, n := classAt(s, j)
		if c != classOther {
			break
		}
		j += n
	}
	for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
		j++
	}
	return j
}

// spaces handles the three white-space branches for the run that starts at i:
// \s*[\r\n]+ (up to the run's last newline), \s+(?!\S) (the run, less its last rune when text
// follows) and \s+ (a lone space before text).
func (m cl100kMatcher) spaces(s string, i int) int {
	j := i
	lastNewline := -1
	lastRune := i
	for j < len(s) {
		c, n := classAt(s, j)
		if !isSpaceClass(c) {
			break
		}
		if c == classNewline {
			lastNewline = j
		}
		lastRune = j
		j += n
	}
	if lastNewline >= 0 {
		return lastNewline + 1
	}
	if j == len(s) || lastRune == i {
		return j
	}
	return lastRune
}
