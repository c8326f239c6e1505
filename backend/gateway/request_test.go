package gateway

import (
	"bytes"
	"testing"
)

func TestScanRequest(t *testing.T) {
	body := []byte(` {"messages":[{"role":"user","content":"{\"model\":\"no\"}"}],"metadata":{"model":"no"},` +
		`"model":"gpt-4o","model":"second","stream":true,"tools":[{"type":"function"}],"user":"u","stream_options":{"include_usage":true}}`)
	f := scanRequest(body, "messages")
	if f.model.String() != "gpt-4o" || !f.stream.Bool() || f.user.String() != "u" ||
		f.metadata.Get("model").String() != "no" || !f.streamOptions.Get("include_usage").Bool() {
		t.Errorf("fields: %+v", f)
	}
	in, tools := rawOf(body, f.input), rawOf(body, f.tools)
	if string(in) != `[{"role":"user","content":"{\"model\":\"no\"}"}]` || string(tools) != `[{"type":"function"}]` {
		t.Errorf("input %s, tools %s", in, tools)
	}
	if cap(in) != len(in) {
		t.Error("an appended input would overwrite the body")
	}
	if f := scanRequest([]byte(`{"input":"x"}`), "messages"); f.input.Exists() || rawOf(nil, f.input) != nil {
		t.Errorf("no messages: %+v", f)
	}
}

func TestReadAllSized(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10_000)
	for _, length := range []int64{-1, 0, 10, int64(len(data)), int64(len(data)) + 500, maxPresize * 4} {
		got, err := readAllSized(bytes.NewReader(data), length, 1<<30)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("length %d: %d bytes, %v", length, len(got), err)
		}
	}
	if got, _ := readAllSized(bytes.NewReader(data), int64(len(data)), 1<<30); cap(got) != len(data)+1 {
		t.Errorf("announced length: cap %d, want %d (no growth)", cap(got), len(data)+1)
	}
}
