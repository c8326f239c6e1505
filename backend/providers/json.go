package providers

import (
	"bytes"
	"encoding/json"
)

// jsonMarshal encodes without HTML escaping: these bodies are JSON for machines, and "<" must stay "<".
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
