package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"opentracy/backend/providers/chatwire"
)

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{
			name: "lf",
			in:   "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n",
			want: []sseEvent{{"a", []byte("1")}, {"b", []byte("2")}},
		},
		{
			name: "crlf",
			in:   "event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n",
			want: []sseEvent{{"a", []byte("1")}, {"", []byte("2")}},
		},
		{
			name: "cr only",
			in:   "event: a\rdata: 1\r\rdata: 2\r\r",
			want: []sseEvent{{"a", []byte("1")}, {"", []byte("2")}},
		},
		{
			name: "multi-line data joined with newline",
			in:   "data: {\"a\":\ndata: 1}\n\n",
			want: []sseEvent{{"", []byte("{\"a\":\n1}")}},
		},
		{
			name: "comments and unknown fields are skipped",
			in:   ": keep-alive\nid: 7\nretry: 100\ndata: x\n: mid\n\n",
			want: []sseEvent{{"", []byte("x")}},
		},
		{
			name: "no space after colon, only one space stripped",
			in:   "data:x\n\ndata:  y\n\n",
			want: []sseEvent{{"", []byte("x")}, {"", []byte(" y")}},
		},
		{
			name: "field without colon is an empty data line",
			in:   "data\ndata\n\n",
			want: []sseEvent{{"", []byte("\n")}},
		},
		{
			name: "event without data is not dispatched and its name does not leak",
			in:   "event: lonely\n\ndata: z\n\n",
			want: []sseEvent{{"", []byte("z")}},
		},
		{
			name: "last event without trailing blank line",
			in:   "data: a\n\ndata: [DONE]",
			want: []sseEvent{{"", []byte("a")}, {"", []byte("[DONE]")}},
		},
		{
			name: "byte order mark",
			in:   "\xEF\xBB\xBFdata: a\n\n",
			want: []sseEvent{{"", []byte("a")}},
		},
		{
			name: "empty stream",
			in:   "",
			want: nil,
		},
		{
			name: "blank lines only",
			in:   "\n\r\n\n",
			want: nil,
		},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "one byte", "half"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				switch mode {
				case "one byte":
					r = iotest.OneByteReader(r)
				case "half":
					r = iotest.HalfReader(r)
				}
				s := newSSEReader(r)
				var got []sseEvent
				for {
					ev, err := s.next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ev)
				}
				if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(sseEvent{})); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestSSEReaderSplitEverywhere(t *testing.T) {
	// Every split of a stream into two reads gives the same events.
	in := fixture(t, "stream_tool_use.sse")
	want := collectEvents(t, bytes.NewReader(in))
	for i := range len(in) {
		got := collectEvents(t, io.MultiReader(bytes.NewReader(in[:i]), bytes.NewReader(in[i:])))
		if !sameEvents(want, got) {
			t.Fatalf("split at %d changes the events", i)
		}
	}
}

// sameEvents is a fast equality for the many comparisons of TestSSEReaderSplitEverywhere.
func sameEvents(a, b []sseEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || !bytes.Equal(a[i].data, b[i].data) {
			return false
		}
	}
	return true
}

func collectEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	s := newSSEReader(r)
	var out []sseEvent
	for {
		ev, err := s.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

func TestChatStreamGolden(t *testing.T) {
	tests := []struct {
		in           string
		includeUsage bool
		golden       string
	}{
		{"stream_text.sse", false, "stream_text.chat.golden"},
		{"stream_text.sse", true, "stream_text_usage.chat.golden"},
		{"stream_tool_use.sse", false, "stream_tool_use.chat.golden"},
		{"stream_parallel_tools.sse", true, "stream_parallel_tools.chat.golden"},
		{"stream_thinking.sse", true, "stream_thinking.chat.golden"},
		{"stream_error.sse", false, "stream_error.chat.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			in := fixture(t, tt.in)
			got, err := io.ReadAll(newChatStream(io.NopCloser(bytes.NewReader(in)), tt.includeUsage, testNow))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.golden, got)

			// The same bytes come out whatever the framing and read sizes of the upstream: one
			// byte per read, \r\n and \r line endings, and one-byte reads of the output.
			variants := map[string]io.Reader{
				"one byte upstream": iotest.OneByteReader(bytes.NewReader(in)),
				"crlf":              iotest.OneByteReader(strings.NewReader(strings.ReplaceAll(string(in), "\n", "\r\n"))),
				"cr":                iotest.HalfReader(strings.NewReader(strings.ReplaceAll(string(in), "\n", "\r"))),
			}
			for name, r := range variants {
				other, err := readAllSmall(newChatStream(io.NopCloser(r), tt.includeUsage, testNow))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if diff := cmp.Diff(string(got), string(other)); diff != "" {
					t.Errorf("%s output differs (-whole +variant):\n%s", name, diff)
				}
			}
		})
	}
}

// chunks decodes an OpenAI chunk stream, stopping at [DONE].
func chunks(t *testing.T, stream []byte) (out []chatwire.Chunk, done bool) {
	t.Helper()
	for _, ev := range collectEvents(t, bytes.NewReader(stream)) {
		if string(ev.data) == "[DONE]" {
			return out, true
		}
		var c chatwire.Chunk
		if err := json.Unmarshal(ev.data, &c); err != nil {
			t.Fatalf("chunk %s: %v", ev.data, err)
		}
		out = append(out, c)
	}
	return out, false
}

func TestChatStreamToolCallIndices(t *testing.T) {
	out, err := io.ReadAll(newChatStream(io.NopCloser(bytes.NewReader(fixture(t, "stream_parallel_tools.sse"))), false, testNow))
	if err != nil {
		t.Fatal(err)
	}
	cs, done := chunks(t, out)
	if !done {
		t.Fatal("no [DONE]")
	}
	type call struct {
		id, name, args string
	}
	calls := map[int]*call{}
	var order []int
	for _, c := range cs {
		for _, tc := range c.Choices[0].Delta.ToolCalls {
			if tc.Index == nil {
				t.Fatalf("tool call delta without index: %+v", tc)
			}
			i := *tc.Index
			if calls[i] == nil {
				calls[i] = &call{}
				order = append(order, i)
			}
			calls[i].id += tc.ID
			calls[i].name += tc.Function.Name
			calls[i].args += tc.Function.Arguments
		}
	}
	want := map[int]*call{
		0: {"toolu_01A", "get_weather", `{"location": "Paris"}`},
		1: {"toolu_01B", "get_weather", `{"location": "Tokyo"}`},
		2: {"toolu_01C", "get_time", `{}`},
	}
	if diff := cmp.Diff(want, calls, cmp.AllowUnexported(call{})); diff != "" {
		t.Errorf("tool calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0, 1, 2}, order); diff != "" {
		t.Errorf("tool call order (-want +got):\n%s", diff)
	}
	last := cs[len(cs)-1]
	if fr := last.Choices[0].FinishReason; fr == nil || *fr != "tool_calls" {
		t.Errorf("finish_reason = %v, want tool_calls", fr)
	}
}

func TestChatStreamUsageOnlyWhenAsked(t *testing.T) {
	for _, include := range []bool{false, true} {
		out, err := io.ReadAll(newChatStream(io.NopCloser(bytes.NewReader(fixture(t, "stream_parallel_tools.sse"))), include, testNow))
		if err != nil {
			t.Fatal(err)
		}
		cs, _ := chunks(t, out)
		var usage []*chatwire.Usage
		for _, c := range cs {
			if c.Usage != nil {
				if len(c.Choices) != 0 {
					t.Errorf("usage chunk has choices: %+v", c)
				}
				usage = append(usage, c.Usage)
			}
		}
		if !include {
			if len(usage) != 0 {
				t.Errorf("include_usage false: got usage chunks %+v", usage)
			}
			continue
		}
		// input 620 + cache reads 1800; output from message_delta.
		want := []*chatwire.Usage{{PromptTokens: 2420, CompletionTokens: 71, TotalTokens: 2491,
			PromptTokensDetails: &chatwire.PromptDetails{CachedTokens: 1800}}}
		if diff := cmp.Diff(want, usage); diff != "" {
			t.Errorf("usage (-want +got):\n%s", diff)
		}
		if cs[len(cs)-1].Usage == nil {
			t.Errorf("usage chunk is not the last chunk before [DONE]")
		}
	}
}

func TestChatStreamMessageDeltaInputUsage(t *testing.T) {
	// Newer API versions repeat (cumulative) input counts in message_delta; they win.
	in := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"input_tokens\":7,\"cache_read_input_tokens\":3,\"cache_creation_input_tokens\":2,\"output_tokens\":9}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	out, err := io.ReadAll(newChatStream(io.NopCloser(strings.NewReader(in)), true, testNow))
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := chunks(t, out)
	want := &chatwire.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21,
		PromptTokensDetails: &chatwire.PromptDetails{CachedTokens: 3, CacheCreationTokens: 2}}
	if diff := cmp.Diff(want, cs[len(cs)-1].Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if fr := cs[len(cs)-2].Choices[0].FinishReason; fr == nil || *fr != "length" {
		t.Errorf("finish_reason = %v, want length", fr)
	}
}

func TestChatStreamTruncated(t *testing.T) {
	in := fixture(t, "stream_text.sse")
	cut := bytes.Index(in, []byte("event: content_block_stop"))
	s := newChatStream(io.NopCloser(bytes.NewReader(in[:cut])), false, testNow)
	out, err := io.ReadAll(s)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if bytes.Contains(out, []byte("[DONE]")) {
		t.Errorf("a truncated stream must not end with [DONE]:\n%s", out)
	}
	if !bytes.Contains(out, []byte(`"content":"!"`)) {
		t.Errorf("what arrived before the cut is lost:\n%s", out)
	}
}

func TestChatStreamUpstreamReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("event: ping\ndata: {\"type\":\"ping\"}\n\n"), iotest.ErrReader(boom))
	_, err := io.ReadAll(newChatStream(io.NopCloser(r), false, testNow))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
}

func TestChatStreamBadEventJSON(t *testing.T) {
	_, err := io.ReadAll(newChatStream(io.NopCloser(strings.NewReader("event: message_start\ndata: {nope\n\n")), false, testNow))
	if err == nil || !strings.Contains(err.Error(), "message_start") {
		t.Fatalf("err = %v, want a decode error naming the event", err)
	}
}

func TestChatStreamCloseMidStream(t *testing.T) {
	pr, pw := io.Pipe()
	up := newBody(pr)
	s := newChatStream(up, false, testNow)
	in := fixture(t, "stream_text.sse")
	first := bytes.Index(in, []byte("event: content_block_start"))

	go func() {
		// The first event, then nothing: the upstream hangs, as a slow model would.
		_, _ = pw.Write(in[:first])
	}()
	buf := make([]byte, 4096)
	n, err := s.Read(buf)
	if err != nil || !bytes.Contains(buf[:n], []byte(`"role":"assistant"`)) {
		t.Fatalf("first read = %q, %v", buf[:n], err)
	}

	readDone := make(chan error, 1)
	go func() {
		_, err := s.Read(buf)
		readDone <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the Read block on the upstream
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readDone:
		if err == nil {
			t.Error("Read after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a pending Read")
	}
	if !up.closed.Load() {
		t.Error("Close did not close the upstream body")
	}
	if _, err := pw.Write([]byte("x")); err == nil {
		t.Error("the upstream can still be written after Close")
	}
	if _, err := s.Read(buf); !errors.Is(err, chatwire.ErrStreamClosed) {
		t.Errorf("Read after Close: %v, want chatwire.ErrStreamClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
