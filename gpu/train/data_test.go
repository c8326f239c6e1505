package train

import (
	"slices"
	"strings"
	"testing"

	"opentracy/gpu/engine/chat"
	"opentracy/gpu/engine/lm"
	"opentracy/gpu/engine/tokenizer"
)

func TestReadJSONL(t *testing.T) {
	in := `{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}, {"role": "assistant", "content": "Hello."}]}

{"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]}
`
	exs, err := ReadJSONL(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 {
		t.Fatalf("%d examples, want 2", len(exs))
	}
	if got := exs[0].Messages[1].Content; got != "Hi there" {
		t.Errorf("content parts joined to %q", got)
	}
	last := exs[1].Messages[1]
	if last.Content != "" || len(last.ToolCalls) != 1 || last.ToolCalls[0].Function.Name != "get_weather" || len(exs[1].Tools) != 1 {
		t.Errorf("tool-call example read as %+v, tools %d", last, len(exs[1].Tools))
	}

	for name, bad := range map[string]string{
		"not json":          "{",
		"no answer":         `{"messages": [{"role": "user", "content": "x"}]}`,
		"ends with user":    `{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}`,
		"image part":        `{"messages": [{"role": "user", "content": [{"type": "image_url"}]}, {"role": "assistant", "content": "y"}]}`,
		"content is number": `{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "y"}]}`,
	} {
		_, err := ReadJSONL(strings.NewReader("\n" + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: error %v, want one naming line 2", name, err)
		}
	}
}

// TestTokenize checks the split between prompt and completion for both families: the prompt
// is exactly what inference sends (generation prompt included), the completion is the answer
// and the end-of-turn token, nothing after it.
func TestTokenize(t *testing.T) {
	for _, c := range []struct {
		family         lm.Family
		promptSuffix   string
		completionText string
	}{
		{lm.Qwen3, "<|im_start|>assistant\n<think>\n\n</think>\n\n", "Paris.<|im_end|>"},
		{lm.Llama, "<|start_header_id|>assistant<|end_header_id|>\n\n", "Paris.<|eot_id|>"},
	} {
		t.Run(string(c.family), func(t *testing.T) {
			dir := tinyDir(t, c.family)
			m := loadModel(t, dir)
			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := ChatTemplate(tok.ChatTemplate(), c.family, quiet)
			if err != nil {
				t.Fatal(err)
			}
			ex := Example{Messages: []chat.Message{
				{Role: "system", Content: "You answer in one word."},
				{Role: "user", Content: "Capital of France?"},
				{Role: "assistant", Content: "Paris."},
			}}
			seqs, st, err := Tokenize([]Example{ex}, tok, tmpl, TokenizeOptions{EOS: m.EOSTokenIDs()})
			if err != nil {
				t.Fatal(err)
			}
			s := seqs[0]
			prompt := tok.Decode(s.IDs[:s.PromptLen], false)
			completion := tok.Decode(s.IDs[s.PromptLen:], false)
			wantPrompt, err := tmpl.Render(ex.Messages[:2], chat.Options{AddGenerationPrompt: true, EnableThinking: new(bool)})
			if err != nil {
				t.Fatal(err)
			}
			if prompt != wantPrompt || !strings.HasSuffix(prompt, c.promptSuffix) {
				t.Errorf("prompt %q, want %q", prompt, wantPrompt)
			}
			if completion != c.completionText {
				t.Errorf("completion %q, want %q", completion, c.completionText)
			}
			if st.Examples != 1 || st.Tokens != len(s.IDs) || st.CompletionTokens != s.Completion() {
				t.Errorf("stats %+v for a sequence of %d tokens", st, len(s.IDs))
			}

			// Truncation keeps the start; an example with no answer token left is dropped.
			seqs, st, err = Tokenize([]Example{ex, ex}, tok, tmpl, TokenizeOptions{EOS: m.EOSTokenIDs(), MaxLen: s.PromptLen + 2})
			if err != nil || len(seqs) != 2 || seqs[0].Completion() != 2 || st.Truncated != 2 {
				t.Errorf("truncated to 2 answer tokens: %d seqs, stats %+v, err %v", len(seqs), st, err)
			}
			seqs, st, err = Tokenize([]Example{ex}, tok, tmpl, TokenizeOptions{MaxLen: s.PromptLen})
			if err != nil || len(seqs) != 0 || st.Dropped != 1 {
				t.Errorf("no room for the answer: %d seqs, stats %+v, err %v", len(seqs), st, err)
			}
		})
	}
}

// TestThinkingAnswer: an answer with its own reasoning keeps the <think> block in the
// completion (the prompt with thinking off would not be a prefix).
func TestThinkingAnswer(t *testing.T) {
	ex := Example{Messages: []chat.Message{
		{Role: "user", Content: "2+2?"},
		{Role: "assistant", Content: "<think>\nadd\n</think>\n\n4"},
	}}
	p, c, err := splitRendering(ex, chat.Qwen3())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p, "<|im_start|>assistant\n") || c != "<think>\nadd\n</think>\n\n4<|im_end|>\n" {
		t.Errorf("prompt %q completion %q", p, c)
	}
}

func TestEpochBatches(t *testing.T) {
	lens := make([]int, 50)
	for i := range lens {
		lens[i] = 10 + (i*37)%90
	}
	a := epochBatches(lens, 4, 9, 0)
	if !slices.EqualFunc(a, epochBatches(lens, 4, 9, 0), slices.Equal[[]int]) {
		t.Fatal("same seed and epoch gave another order")
	}
	if slices.EqualFunc(a, epochBatches(lens, 4, 9, 1), slices.Equal[[]int]) {
		t.Error("epochs 0 and 1 have the same order")
	}
	seen := make([]int, len(lens))
	spread := 0
	for _, b := range a {
		if len(b) == 0 || len(b) > 4 {
			t.Fatalf("micro-batch of %d", len(b))
		}
		lo, hi := 1<<30, 0
		for _, i := range b {
			seen[i]++
			lo, hi = min(lo, lens[i]), max(hi, lens[i])
		}
		spread += hi - lo
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("sequence %d appears %d times in the epoch", i, n)
		}
	}
	// Grouping by length: within-batch spread far below that of random batches (~45 here).
	if avg := float64(spread) / float64(len(a)); avg > 15 {
		t.Errorf("average length spread in a micro-batch %.1f: not grouped by length", avg)
	}
}
