package traces

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// A journal record is a trace in a binary envelope rather than plain JSON:
//
//	0x02 | uvarint n | n bytes of JSON: the trace without its raw fields
//	     | then for Input, Tools, Output, ToolCalls: uvarint n+1 (0 for nil) | n bytes, verbatim
//
// The raw fields are the bulk of a trace (a long conversation is megabytes) and json.Marshal
// would scan, compact and HTML-escape them: slower, and a replayed trace would no longer hold
// the exact bytes the client sent. Records written as plain JSON (first byte '{') still decode.
const recordV2 = 0x02

func encodeRecord(t *Trace) ([]byte, error) {
	head := *t
	head.Input, head.Tools, head.Output, head.ToolCalls = nil, nil, nil, nil
	var hbuf bytes.Buffer
	enc := json.NewEncoder(&hbuf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&head); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(1 + 5*binary.MaxVarintLen64 + hbuf.Len() + len(t.Input) + len(t.Tools) + len(t.Output) + len(t.ToolCalls))
	buf.WriteByte(recordV2)
	putBytes(&buf, hbuf.Bytes(), true)
	for _, raw := range [][]byte{t.Input, t.Tools, t.Output, t.ToolCalls} {
		putBytes(&buf, raw, raw != nil)
	}
	return buf.Bytes(), nil
}

// putBytes writes b with its length; present=false marks nil (length 0), else length+1.
func putBytes(buf *bytes.Buffer, b []byte, present bool) {
	n := uint64(0)
	if present {
		n = uint64(len(b)) + 1
	}
	buf.Write(binary.AppendUvarint(nil, n))
	buf.Write(b)
}

var errBadRecord = errors.New("malformed journal record")

// decodeRecord reads a record written by encodeRecord, or a plain-JSON one. rec is not retained.
func decodeRecord(rec []byte) (*Trace, error) {
	t := new(Trace)
	if len(rec) > 0 && rec[0] == '{' {
		if err := json.Unmarshal(rec, t); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadRecord, err)
		}
		return t, nil
	}
	if len(rec) == 0 || rec[0] != recordV2 {
		return nil, errBadRecord
	}
	// The raw fields point into one copy: the caller reuses rec for the next record.
	rest := bytes.Clone(rec[1:])
	next := func() ([]byte, bool, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k)+1 {
			return nil, false, errBadRecord
		}
		rest = rest[k:]
		if n == 0 {
			return nil, false, nil
		}
		b := rest[: n-1 : n-1]
		rest = rest[n-1:]
		return b, true, nil
	}
	head, ok, err := next()
	if err != nil || !ok {
		return nil, errBadRecord
	}
	if err := json.Unmarshal(head, t); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	for _, dst := range []*json.RawMessage{&t.Input, &t.Tools, &t.Output, &t.ToolCalls} {
		b, ok, err := next()
		if err != nil {
			return nil, err
		}
		if ok {
			*dst = b
		}
	}
	if len(rest) != 0 {
		return nil, errBadRecord
	}
	return t, nil
}
