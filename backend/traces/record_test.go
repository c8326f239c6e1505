package traces

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRecordKeepsRawFieldsByteForByte(t *testing.T) {
	in := testTrace("r1")
	// Whitespace, HTML-ish characters and key order must survive a crash and replay.
	in.Input = json.RawMessage("[ {\"role\":\"user\",\n \"content\":\"<b>x</b> & y\"} ]")
	in.Tools = json.RawMessage(`[]`)
	in.ToolCalls = nil
	in.Metadata = map[string]string{"team": "a<b>"}
	rec, err := encodeRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	scratch := append([]byte(nil), rec...)
	out, err := decodeRecord(scratch)
	if err != nil {
		t.Fatal(err)
	}
	clear(scratch) // the journal reuses its buffer: the trace must not point into it
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
	if string(out.Input) != string(in.Input) || out.Tools == nil || out.ToolCalls != nil {
		t.Errorf("raw fields: input %q tools %v tool_calls %v", out.Input, out.Tools, out.ToolCalls)
	}
}

func TestRecordReadsPlainJSON(t *testing.T) {
	in := testTrace("legacy")
	rec, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != "legacy" || string(out.Input) != string(in.Input) {
		t.Errorf("legacy record decoded as %+v", out)
	}
}

func TestRecordRejectsGarbage(t *testing.T) {
	good, err := encodeRecord(testTrace("x"))
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string][]byte{
		"empty":     nil,
		"unknown":   {0x07, 1, 2},
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte(nil), good...), 0),
		"long":      {recordV2, 0xff, 0xff, 0x03},
	} {
		if _, err := decodeRecord(rec); !errors.Is(err, errBadRecord) {
			t.Errorf("%s: err = %v, want errBadRecord", name, err)
		}
	}
}

func BenchmarkRecordEncode(b *testing.B) {
	t := testTrace("bench")
	big := make([]byte, 0, 100<<10)
	big = append(big, `[{"role":"user","content":"`...)
	for len(big) < 100<<10 {
		big = append(big, "lorem ipsum dolor sit amet "...)
	}
	t.Input = append(big, `"}]`...)
	b.Run("record", func(b *testing.B) {
		b.SetBytes(int64(len(t.Input)))
		for b.Loop() {
			if _, err := encodeRecord(t); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.SetBytes(int64(len(t.Input)))
		for b.Loop() {
			if _, err := json.Marshal(t); err != nil {
				b.Fatal(err)
			}
		}
	})
}
