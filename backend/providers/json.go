package providers

import (
	"bytes"
	"encoding/json"
)

// Marshal encodes v as JSON without HTML escaping: these bodies are for machines, and "<" must
// stay "<" as the client wrote it.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
