package gateway

import (
	"encoding/json"
	"unsafe"

	"github.com/tidwall/gjson"
)

// viewJSON parses data where it lies, without the copy gjson.ParseBytes makes of it (gjson.GetBytes
// reads bytes the same way): request and response bodies can be large, and each copy is paid on
// every request. The results point into data, so data must never change afterwards (the gateway
// does not modify a body once read), and strings kept beyond the request are cloned so that they do
// not hold a whole body in memory.
func viewJSON(data []byte) gjson.Result {
	if len(data) == 0 {
		return gjson.Result{}
	}
	return gjson.Parse(unsafe.String(unsafe.SliceData(data), len(data)))
}

// rawOf returns the bytes of v, a value found in viewJSON(data), as a slice of data (capacity
// capped, so an append cannot overwrite what follows), or nil when v does not exist.
func rawOf(data []byte, v gjson.Result) json.RawMessage {
	if !v.Exists() || v.Index <= 0 || v.Index+len(v.Raw) > len(data) {
		return nil
	}
	end := v.Index + len(v.Raw)
	return data[v.Index:end:end]
}
