package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"opentracy/gpu/engine/tokenizer/reftest"
)

// Loaded tokenizers are shared by the tests of this package: loading one takes about a second.
var loaded struct {
	sync.Mutex
	m map[string]*Tokenizer
}

// loadFamilies loads the families' tokenizers in parallel (those not loaded yet).
func loadFamilies(t testing.TB, families ...string) {
	t.Helper()
	dirs := make([]string, len(families))
	for i, f := range families {
		dirs[i] = reftest.ModelDir(t, f)
	}
	errs := make([]error, len(families))
	var wg sync.WaitGroup
	for i, f := range families {
		loaded.Lock()
		_, ok := loaded.m[f]
		loaded.Unlock()
		if ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := Load(dirs[i])
			if err != nil {
				errs[i] = err
				return
			}
			loaded.Lock()
			defer loaded.Unlock()
			if loaded.m == nil {
				loaded.m = map[string]*Tokenizer{}
			}
			loaded.m[f] = tok
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("load %s: %v", families[i], err)
		}
	}
}

func loadFamily(t testing.TB, family string) *Tokenizer {
	t.Helper()
	loadFamilies(t, family)
	loaded.Lock()
	defer loaded.Unlock()
	return loaded.m[family]
}

// TestReference compares ids, decoding and streaming with the reference tokenizers on the golden
// texts and on real files of this repository.
func TestReference(t *testing.T) {
	texts := goldenTexts()
	corpus, err := corpusTexts()
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, corpus...)
	// Node and the three tokenizer loads take seconds each: overlap them.
	families := []string{reftest.Qwen3, reftest.Llama3, reftest.Llama31}
	reftest.Install(t)
	var ref map[string]reftest.Family
	done := make(chan struct{})
	go func() {
		defer close(done)
		ref = reftest.RunErr(reftest.Request{Texts: texts})
	}()
	loadFamilies(t, families...)
	<-done
	if ref == nil {
		ref = reftest.Run(t, reftest.Request{Texts: texts}) // again, to report the failure
	}
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			fam, ok := ref[family]
			if !ok || len(fam.IDs) != len(texts) || len(fam.IDsSpecial) != len(texts) || len(fam.Decoded) != len(texts) {
				t.Fatalf("reference answer for %s is incomplete", family)
			}
			tok := loadFamily(t, family)
			mismatches := 0
			for i, text := range texts {
				got := tok.Encode(text, false)
				if !slices.Equal(got, fam.IDs[i]) {
					mismatches++
					if mismatches <= 5 {
						t.Errorf("text %d %s:\n%s", i, clip(text), describeDiff(tok, got, fam.IDs[i]))
					}
					continue
				}
				if gotS := tok.Encode(text, true); !slices.Equal(gotS, fam.IDsSpecial[i]) {
					t.Errorf("text %d %s with special tokens: got %v, want %v", i, clip(text), head(gotS), head(fam.IDsSpecial[i]))
				}
				dec := tok.Decode(got, false)
				if dec != fam.Decoded[i] {
					t.Errorf("text %d %s: Decode = %q, reference %q", i, clip(text), clip(dec), clip(fam.Decoded[i]))
				}
				// Round trip: the text comes back, normalized as the model normalizes it.
				want := text
				if tok.normalize != nil {
					want = norm.NFC.String(text)
				}
				if dec != want {
					t.Errorf("text %d %s: Decode(Encode(x)) = %q", i, clip(text), clip(dec))
				}
				checkStream(t, tok, got, dec)
			}
			if mismatches > 0 {
				t.Errorf("%s: %d of %d texts encode differently", family, mismatches, len(texts))
			}
		})
	}
}

// checkStream feeds ids one by one and checks that every piece is valid UTF-8 and the pieces add
// up to the full decoding.
func checkStream(t *testing.T, tok *Tokenizer, ids []int, want string) {
	t.Helper()
	d := tok.NewStreamDecoder(false)
	var b strings.Builder
	for _, id := range ids {
		piece := d.Add(id)
		if !utf8.ValidString(piece) {
			t.Fatalf("stream piece %q is not valid UTF-8", piece)
		}
		b.WriteString(piece)
	}
	b.WriteString(d.Flush())
	if b.String() != want {
		t.Errorf("streamed %q, want %q", clip(b.String()), clip(want))
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q…(%d bytes)", s[:80], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func head(ids []int) []int {
	if len(ids) > 12 {
		return ids[:12]
	}
	return ids
}

// describeDiff shows where two id sequences part, with the tokens around that point.
func describeDiff(tok *Tokenizer, got, want []int) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	show := func(ids []int) string {
		lo, hi := max(0, i-3), min(len(ids), i+6)
		var parts []string
		for _, id := range ids[lo:hi] {
			parts = append(parts, fmt.Sprintf("%d:%q", id, tok.TokenBytes(id)))
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprintf("first difference at %d of %d/%d\n  got:  %s\n  want: %s", i, len(got), len(want), show(got), show(want))
}
