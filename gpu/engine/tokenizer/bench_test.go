package tokenizer

import (
	"strings"
	"testing"

	"opentracy/gpu/engine/tokenizer/reftest"
)

// BenchmarkEncode measures encode throughput (MB/s of UTF-8 input) on real text: this package's
// sources and the project's READMEs (code and English prose), and on the CJK, emoji and mixed
// golden texts.
func BenchmarkEncode(b *testing.B) {
	corpus, err := corpusTexts()
	if err != nil {
		b.Fatal(err)
	}
	inputs := []struct{ name, text string }{
		{"code+prose", strings.Join(corpus, "\n")},
		{"golden", strings.Join(goldenTexts(), "\n")},
	}
	for _, family := range []string{reftest.Qwen3, reftest.Llama3} {
		tok := loadFamily(b, family)
		for _, in := range inputs {
			b.Run(family+"/"+in.name, func(b *testing.B) {
				b.SetBytes(int64(len(in.text)))
				cpu0, ok := processCPUTime()
				for b.Loop() {
					tok.Encode(in.text, false)
				}
				if cpu1, ok1 := processCPUTime(); ok && ok1 && cpu1 > cpu0 {
					// Includes the garbage collector's CPU, as it should.
					mb := float64(len(in.text)) * float64(b.N) / 1e6
					b.ReportMetric(mb/(cpu1-cpu0).Seconds(), "MB/cpu-s")
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	corpus, err := corpusTexts()
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Join(corpus, "\n")
	tok := loadFamily(b, reftest.Qwen3)
	ids := tok.Encode(text, false)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Decode(ids, false)
	}
}

func BenchmarkLoad(b *testing.B) {
	dir := reftest.ModelDir(b, reftest.Qwen3)
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
