package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// AddedToken is a token matched in the text as a whole before pre-tokenization (special tokens
// such as <|im_end|>, and added ones such as Qwen3's <think>).
type AddedToken struct {
	ID      int
	Content string
	// Special tokens are dropped by Decode with skipSpecial.
	Special bool
	// LStrip and RStrip make a match swallow the white space on that side.
	LStrip, RStrip bool
	// SingleWord tokens match only when not inside a word.
	SingleWord bool
	// Normalized tokens are matched in the normalized text, the others in the raw text.
	Normalized bool
}

// addedMatcher finds added tokens with leftmost-longest semantics (as Hugging Face's
// Aho-Corasick automaton does) using a byte trie; first[b] says whether any token starts with
// byte b, so most positions cost one table look-up.
type addedMatcher struct {
	first [256]bool
	nodes []trieNode
}

type trieNode struct {
	next  map[byte]int32
	token int32 // index into the tokens slice, -1 when no token ends here
}

func newAddedMatcher(tokens []AddedToken, include func(AddedToken) bool, key func(AddedToken) string) *addedMatcher {
	m := &addedMatcher{nodes: []trieNode{{token: -1}}}
	n := 0
	for i, t := range tokens {
		k := key(t)
		if !include(t) || k == "" {
			continue
		}
		n++
		m.first[k[0]] = true
		node := int32(0)
		for j := 0; j < len(k); j++ {
			if m.nodes[node].next == nil {
				m.nodes[node].next = make(map[byte]int32)
			}
			child, ok := m.nodes[node].next[k[j]]
			if !ok {
				child = int32(len(m.nodes))
				m.nodes = append(m.nodes, trieNode{token: -1})
				m.nodes[node].next[k[j]] = child
			}
			node = child
		}
		if m.nodes[node].token < 0 {
			m.nodes[node].token = int32(i)
		}
	}
	if n == 0 {
		return nil
	}
	return m
}

// longestAt returns the token index and length of the longest token starting at i, or -1.
func (m *addedMatcher) longestAt(s string, i int) (tok int, length int) {
	tok = -1
	node := int32(0)
	for j := i; j < len(s); j++ {
		child, ok := m.nodes[node].next[s[j]]
		if !ok {
			break
		}
		node = child
		if t := m.nodes[node].token; t >= 0 {
			tok, length = int(t), j+1-i
		}
	}
	return tok, length
}

// segment is a piece of the input: plain text (token < 0) or an added token's id.
type segment struct {
	text  string
	token int
}

// split cuts s at the added tokens, honouring single_word, lstrip and rstrip as Hugging Face's
// AddedVocabulary::find_matches does, and appends the pieces to dst.
func (m *addedMatcher) split(dst []segment, s string, tokens []AddedToken, skip func(AddedToken) bool) []segment {
	if m == nil {
		return append(dst, segment{text: s, token: -1})
	}
	done := 0 // everything before this offset has been emitted
	for i := 0; i < len(s); i++ {
		if !m.first[s[i]] {
			continue
		}
		ti, n := m.longestAt(s, i)
		if ti < 0 {
			continue
		}
		t := tokens[ti]
		start, stop := i, i+n
		if (skip != nil && skip(t)) ||
			(t.SingleWord && (endsWithWordChar(s[:start]) || startsWithWordChar(s[stop:]))) {
			// Left as text; like the automaton, resume the search after the match.
			i = stop - 1
			continue
		}
		if t.LStrip {
			start = max(trailingSpaceStart(s[:start]), done)
		}
		if t.RStrip {
			stop += leadingSpaceLen(s[stop:])
		}
		if start > done {
			dst = append(dst, segment{text: s[done:start], token: -1})
		}
		dst = append(dst, segment{token: t.ID})
		done = stop
		i = stop - 1
	}
	if done < len(s) {
		dst = append(dst, segment{text: s[done:], token: -1})
	}
	return dst
}

func isWordChar(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

func endsWithWordChar(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWordChar(r)
}

func trailingSpaceStart(s string) int {
	i := len(s)
	for i > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:i])
		if !unicode.IsSpace(r) {
			break
		}
		i -= n
	}
	return i
}

func leadingSpaceLen(s string) int {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return i
}
