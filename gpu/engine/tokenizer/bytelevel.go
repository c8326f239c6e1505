package tokenizer

import "unicode/utf8"

// GPT-2's byte-level alphabet: every byte maps to a printable rune, so that BPE vocabularies can
// be stored as text. The tokenizer works on raw bytes internally and uses this table only to
// translate vocabulary entries when loading and token strings when asked.
type byteAlphabet struct {
	toRune [256]rune
	toByte [324]int16 // rune → byte, -1 outside the alphabet; the largest rune is 256+67
}

var alphabet = newByteAlphabet()

func newByteAlphabet() *byteAlphabet {
	a := &byteAlphabet{}
	for i := range a.toByte {
		a.toByte[i] = -1
	}
	n := 0
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = rune(256 + n)
			n++
		}
		a.toRune[b] = r
		a.toByte[r] = int16(b)
	}
	return a
}

// decode turns a vocabulary string into the bytes it stands for. ok is false when the string has
// a rune outside the alphabet; Hugging Face's ByteLevel decoder then uses the string's own UTF-8
// bytes, and so does this package.
func (a *byteAlphabet) decode(s string) (out []byte, ok bool) {
	out = make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0 || int(r) >= len(a.toByte) || a.toByte[r] < 0 {
			return []byte(s), false
		}
		out = append(out, byte(a.toByte[r]))
	}
	return out, true
}

// encode turns raw bytes into the vocabulary's text form.
func (a *byteAlphabet) encode(b []byte) string {
	out := make([]byte, 0, len(b)*2)
	for _, c := range b {
		out = utf8.AppendRune(out, a.toRune[c])
	}
	return string(out)
}
