package lm

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkForward measures full-sequence forward throughput (prompt tokens/s) on a tiny model.
func BenchmarkForward(b *testing.B) {
	m := tinyModel(b, TinyOptions{}, Options{})
	ctx := context.Background()
	for _, shape := range [][2]int{{1, 64}, {8, 64}} {
		bs, t := shape[0], shape[1]
		b.Run(fmt.Sprintf("B%d_T%d", bs, t), func(b *testing.B) {
			ids := make([][]int, bs)
			for r := range ids {
				ids[r] = make([]int, t)
				for i := range ids[r] {
					ids[r][i] = (r*7 + i) % m.Config.VocabSize
				}
			}
			if _, err := m.ForwardLogits(ctx, ids, nil); err != nil { // compile outside the timer
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.ForwardLogits(ctx, ids, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bs*t*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkDecode measures KV-cache decoding throughput (generated tokens/s, all rows counted)
// on a tiny model, after a 16-token prompt.
func BenchmarkDecode(b *testing.B) {
	m := tinyModel(b, TinyOptions{}, Options{})
	ctx := context.Background()
	for _, bs := range []int{1, 8} {
		b.Run(fmt.Sprintf("B%d", bs), func(b *testing.B) {
			prompts := make([][]int, bs)
			for r := range prompts {
				prompts[r] = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, r}
			}
			tokens := make([]int, bs)
			const perSession = 64
			var s *Session
			steps := 0
			newSession := func() {
				if s != nil {
					s.Close()
				}
				var err error
				if s, _, err = m.NewSession(ctx, prompts, perSession); err != nil {
					b.Fatal(err)
				}
			}
			newSession()
			for range perSession { // compile every shape outside the timer
				if _, err := s.Step(ctx, tokens); err != nil {
					b.Fatal(err)
				}
			}
			newSession()
			b.ResetTimer()
			for b.Loop() {
				if s.Generated() == perSession {
					b.StopTimer()
					newSession()
					b.StartTimer()
				}
				if _, err := s.Step(ctx, tokens); err != nil {
					b.Fatal(err)
				}
				steps++
			}
			s.Close()
			b.ReportMetric(float64(bs*steps)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
