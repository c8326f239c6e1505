package tokenizer

import "unicode/utf8"

// StreamDecoder turns ids into text one token at a time, for streaming generation. A token may
// end inside a UTF-8 character (CJK and emoji often span two or three tokens); the decoder holds
// such bytes back until the character is complete, so every string it returns is valid UTF-8 and
// the concatenation of its outputs equals Decode of all the ids.
//
// A StreamDecoder is not safe for concurrent use; make one per sequence.
type StreamDecoder struct {
	t           *Tokenizer
	skipSpecial bool
	pending     []byte // bytes of an incomplete character
}

// NewStreamDecoder returns a decoder for one sequence of ids.
func (t *Tokenizer) NewStreamDecoder(skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skipSpecial: skipSpecial}
}

// Add decodes one more id and returns the text that is now complete (possibly "").
func (d *StreamDecoder) Add(id int) string {
	if id < 0 || id >= len(d.t.special) || (d.skipSpecial && d.t.special[id]) {
		return ""
	}
	d.pending = append(d.pending, d.t.tokenBytes(id)...)
	cut := len(d.pending) - incompleteTail(d.pending)
	if cut == 0 {
		return ""
	}
	out := string(appendValidUTF8(nil, d.pending[:cut]))
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return out
}

// Flush returns what is held back (an unfinished character becomes U+FFFD) and resets the
// decoder for reuse.
func (d *StreamDecoder) Flush() string {
	out := string(appendValidUTF8(nil, d.pending))
	d.pending = d.pending[:0]
	return out
}

// Pending reports whether bytes of an incomplete character are held back.
func (d *StreamDecoder) Pending() bool { return len(d.pending) > 0 }

// incompleteTail returns how many bytes at the end of b are the start of a UTF-8 character that
// more bytes could still complete (0 to 3).
func incompleteTail(b []byte) int {
	for n := 1; n <= 3 && n <= len(b); n++ {
		tail := b[len(b)-n:]
		if !utf8.RuneStart(tail[0]) {
			continue
		}
		if utf8.FullRune(tail) {
			return 0 // complete (or invalid, which more bytes cannot fix)
		}
		if validPrefixLen(tail) == len(tail) {
			return n
		}
		return 0
	}
	return 0
}

// validPrefixLen returns how many leading bytes of b form a valid, possibly unfinished, UTF-8
// sequence (0 when b[0] cannot start one).
func validPrefixLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the second byte
	switch {
	case c < 0x80:
		return 1
	case c >= 0xC2 && c <= 0xDF:
		need = 2
	case c >= 0xE0 && c <= 0xEF:
		need = 3
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F // no surrogates
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 4
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 0
	}
	n := 1
	for ; n < need && n < len(b); n++ {
		x := b[n]
		if n == 1 && (x < lo || x > hi) {
			break
		}
		if n > 1 && (x < 0x80 || x > 0xBF) {
			break
		}
	}
	return n
}

// appendValidUTF8 appends b to dst with each maximal invalid subpart replaced by one U+FFFD (the
// Unicode "substitution of maximal subparts" practice that Python and WHATWG decoders follow).
func appendValidUTF8(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			dst = append(dst, b[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			dst = append(dst, b[i:i+n]...)
			i += n
			continue
		}
		dst = utf8.AppendRune(dst, utf8.RuneError)
		i += max(1, validPrefixLen(b[i:]))
	}
	return dst
}
