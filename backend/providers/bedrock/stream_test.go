package bedrock

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/google/go-cmp/cmp"

	"opentracy/backend/providers/chatwire"
)

func newTestStream(upstream io.Reader, includeUsage bool) *chatwire.Stream {
	return newChatStream(io.NopCloser(upstream), testID, testModel, testNow().Unix(), includeUsage)
}

func TestChatStreamGolden(t *testing.T) {
	tests := []struct {
		in           string
		includeUsage bool
		golden       string
	}{
		{"stream_text.events.json", false, "stream_text.chat.golden"},
		{"stream_text.events.json", true, "stream_text_usage.chat.golden"},
		{"stream_tools.events.json", true, "stream_tools.chat.golden"},
		{"stream_reasoning.events.json", false, "stream_reasoning.chat.golden"},
		{"stream_exception.events.json", true, "stream_exception.chat.golden"},
		{"stream_model_error.events.json", false, "stream_model_error.chat.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			in := streamFixture(t, tt.in)
			got, err := io.ReadAll(newTestStream(bytes.NewReader(in), tt.includeUsage))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.golden, got)

			// The same bytes come out whatever the read sizes: one byte or half a buffer per
			// upstream read, and one-byte reads of the output.
			variants := map[string]io.Reader{
				"one byte upstream": iotest.OneByteReader(bytes.NewReader(in)),
				"half upstream":     iotest.HalfReader(bytes.NewReader(in)),
				"one byte both":     iotest.OneByteReader(bytes.NewReader(in)),
			}
			for name, r := range variants {
				var other []byte
				var err error
				if name == "one byte both" {
					other, err = readAllSmall(newTestStream(r, tt.includeUsage))
				} else {
					other, err = io.ReadAll(newTestStream(r, tt.includeUsage))
				}
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

// sseData splits an OpenAI SSE stream into its data payloads.
func sseData(t *testing.T, stream []byte) []string {
	t.Helper()
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(string(stream), "\n\n"), "\n\n") {
		if ev == "" {
			continue
		}
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("malformed event %q", ev)
		}
		out = append(out, data)
	}
	return out
}

func TestChatStreamChunks(t *testing.T) {
	// The tool stream, checked field by field: indices count tool calls, id and name come once.
	got, err := io.ReadAll(newTestStream(bytes.NewReader(streamFixture(t, "stream_tools.events.json")), true))
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		Index          int
		ID, Name, Args string
	}
	var (
		calls  []call
		finish []string
		usage  []chatwire.Usage
	)
	data := sseData(t, got)
	if data[len(data)-1] != "[DONE]" {
		t.Fatalf("last event = %q, want [DONE]", data[len(data)-1])
	}
	for _, d := range data[:len(data)-1] {
		var c chatwire.Chunk
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			t.Fatal(err)
		}
		if c.ID != testID || c.Model != testModel || c.Object != "chat.completion.chunk" {
			t.Errorf("chunk header = %s %s %s", c.ID, c.Model, c.Object)
		}
		if c.Usage != nil {
			usage = append(usage, *c.Usage)
		}
		for _, ch := range c.Choices {
			if ch.FinishReason != nil {
				finish = append(finish, *ch.FinishReason)
			}
			for _, tc := range ch.Delta.ToolCalls {
				calls = append(calls, call{*tc.Index, tc.ID, tc.Function.Name, tc.Function.Arguments})
			}
		}
	}
	wantCalls := []call{
		{0, "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", ""},
		{0, "", "", `{"location"`},
		{0, "", "", `: "Paris"}`},
		{1, "tooluse_4rGq9RZlTi2dPSuLxVYQxw", "get_weather", ""},
		{1, "", "", `{"location": "Tokyo"}`},
		{2, "tooluse_Yb3nZ2cPQe6bS0VvWq1r8g", "get_time", ""},
		{2, "", "", `{}`},
	}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("tool call deltas (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"tool_calls"}, finish); diff != "" {
		t.Errorf("finish reasons (-want +got):\n%s", diff)
	}
	wantUsage := []chatwire.Usage{{PromptTokens: 2420, CompletionTokens: 71, TotalTokens: 2491,
		PromptTokensDetails: &chatwire.PromptDetails{CachedTokens: 1800, CacheCreationTokens: 200}}}
	if diff := cmp.Diff(wantUsage, usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestChatStreamEndings(t *testing.T) {
	start := frameSpec{Event: "messageStart", Payload: json.RawMessage(`{"role":"assistant"}`)}
	text := frameSpec{Event: "contentBlockDelta", Payload: json.RawMessage(`{"contentBlockIndex":0,"delta":{"text":"Hi"}}`)}
	stop := frameSpec{Event: "messageStop", Payload: json.RawMessage(`{"stopReason":"stop_sequence"}`)}
	meta := frameSpec{Event: "metadata", Payload: json.RawMessage(`{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4}}`)}
	usageChunk := `{"id":"chatcmpl-test","object":"chat.completion.chunk","created":1741964966,"model":"` + testModel +
		`","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":0,"cache_creation_tokens":0}}}`
	finishChunk := `{"id":"chatcmpl-test","object":"chat.completion.chunk","created":1741964966,"model":"` + testModel +
		`","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`

	tests := []struct {
		name    string
		specs   []frameSpec
		wantEnd []string // the last events
		wantErr error
	}{
		{name: "metadata after messageStop", specs: []frameSpec{start, text, stop, meta}, wantEnd: []string{finishChunk, usageChunk, "[DONE]"}},
		{name: "metadata before messageStop", specs: []frameSpec{start, text, meta, stop}, wantEnd: []string{finishChunk, usageChunk, "[DONE]"}},
		{name: "no metadata: no usage chunk", specs: []frameSpec{start, text, stop}, wantEnd: []string{finishChunk, "[DONE]"}},
		{name: "no messageStop: cut short", specs: []frameSpec{start, text, meta}, wantErr: io.ErrUnexpectedEOF},
		{name: "empty stream", specs: nil, wantErr: io.ErrUnexpectedEOF},
		{name: "frames after the end are not read", specs: []frameSpec{start, stop, meta, text}, wantEnd: []string{finishChunk, usageChunk, "[DONE]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(newTestStream(bytes.NewReader(frames(t, tt.specs)), true))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if bytes.Contains(got, []byte("[DONE]")) {
					t.Errorf("a cut stream ended with [DONE]:\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			data := sseData(t, got)
			if len(data) < len(tt.wantEnd) {
				t.Fatalf("only %d events: %q", len(data), data)
			}
			if diff := cmp.Diff(tt.wantEnd, data[len(data)-len(tt.wantEnd):]); diff != "" {
				t.Errorf("last events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatStreamCutEverywhere(t *testing.T) {
	// Cut anywhere, the stream is complete only when the cut falls between two messages after
	// messageStop; everywhere else it fails with io.ErrUnexpectedEOF and sends no [DONE].
	in := streamFixture(t, "stream_text.events.json")
	boundaries := map[int]bool{}
	var stopEnd int
	for pos, n := 0, 0; pos < len(in); n++ {
		pos += int(binary.BigEndian.Uint32(in[pos:]))
		boundaries[pos] = true
		if n == 5 { // messageStop is the sixth message of the script
			stopEnd = pos
		}
	}
	for i := range len(in) {
		got, err := io.ReadAll(newTestStream(bytes.NewReader(in[:i]), true))
		complete := boundaries[i] && i >= stopEnd
		if complete {
			if err != nil || !bytes.HasSuffix(got, []byte("data: [DONE]\n\n")) {
				t.Fatalf("cut at %d (after messageStop): err = %v, output ends %q", i, err, got[max(0, len(got)-20):])
			}
			continue
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) || bytes.Contains(got, []byte("[DONE]")) {
			t.Fatalf("cut at %d: err = %v, [DONE] sent = %v", i, err, bytes.Contains(got, []byte("[DONE]")))
		}
	}
}

func TestChatStreamBadFrames(t *testing.T) {
	good := streamFixture(t, "stream_text.events.json")
	corrupt := bytes.Clone(good)
	corrupt[20] ^= 0xff // inside the first message's headers: its CRC no longer matches
	huge := bytes.Clone(good)
	binary.BigEndian.PutUint32(huge, 1<<30)
	tiny := bytes.Clone(good)
	binary.BigEndian.PutUint32(tiny, 8)

	var errFrame bytes.Buffer
	msg := eventstream.Message{}
	msg.Headers.Set(":message-type", eventstream.StringValue("error"))
	msg.Headers.Set(":error-code", eventstream.StringValue("InternalFailure"))
	msg.Headers.Set(":error-message", eventstream.StringValue("An internal error occurred."))
	if err := eventstream.NewEncoder().Encode(&errFrame, msg); err != nil {
		t.Fatal(err)
	}
	badJSON := frames(t, []frameSpec{{Event: "contentBlockDelta", Payload: json.RawMessage(`"not an object"`)}})

	tests := []struct {
		name    string
		in      []byte
		wantErr string
		want    string // an expected event, when there is no error
	}{
		{name: "checksum mismatch", in: corrupt, wantErr: "checksum"},
		{name: "length too large", in: huge, wantErr: "malformed"},
		{name: "length too small", in: tiny, wantErr: "malformed"},
		{name: "payload that is not an event", in: badJSON, wantErr: "decode bedrock stream event"},
		{name: "error message", in: errFrame.Bytes(),
			want: `{"error":{"message":"An internal error occurred.","type":"server_error","param":null,"code":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(newTestStream(bytes.NewReader(tt.in), false))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			data := sseData(t, got)
			if diff := cmp.Diff(tt.want, data[len(data)-1]); diff != "" {
				t.Errorf("last event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatStreamLazyAndClose(t *testing.T) {
	pr, pw := io.Pipe()
	stream := newChatStream(pr, testID, testModel, testNow().Unix(), false)
	first := frames(t, []frameSpec{{Event: "messageStart", Payload: json.RawMessage(`{"role":"assistant"}`)}})
	go func() { _, _ = pw.Write(first) }()

	// The role chunk needs only the first message: the stream must not wait for more.
	got := make([]byte, 4096)
	n, err := stream.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got[:n]), `"role":"assistant"`) {
		t.Fatalf("first read = %q, want the role chunk", got[:n])
	}

	// A Read blocked on the upstream returns once the stream is closed.
	done := make(chan error, 1)
	go func() {
		_, err := stream.Read(got)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := stream.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, chatwire.ErrStreamClosed) {
			t.Errorf("blocked Read returned %v, want chatwire.ErrStreamClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not abort the blocked Read")
	}
	if _, err := pw.Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("upstream still open after Close: write err = %v", err)
	}
	if _, err := stream.Read(got); !errors.Is(err, chatwire.ErrStreamClosed) {
		t.Errorf("Read after Close = %v, want chatwire.ErrStreamClosed", err)
	}
	if err := stream.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
