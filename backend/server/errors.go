package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"opentracy/backend/providers"
	"opentracy/backend/providers/anthropic"
)

// errorShape writes an error in the wire format its clients expect.
type errorShape int

const (
	// openAIErrors is {"error":{"message","type","param","code"}}, used by /v1 and /api.
	openAIErrors errorShape = iota
	// anthropicErrors is {"type":"error","error":{"type","message"}}, used by /anthropic.
	anthropicErrors
)

func errorShapeFor(path string) errorShape {
	if strings.HasPrefix(path, "/anthropic/") {
		return anthropicErrors
	}
	return openAIErrors
}

// write sends status with an error body. errType is OpenAI's type; code is our machine-readable
// code. The body is the gateway's own (providers.ErrorBody), so a client sees one shape whether
// the gateway, the server around it or an upstream refused its request.
func (e errorShape) write(w http.ResponseWriter, status int, errType, code, msg string) {
	body := providers.ErrorBody(msg, errType, code)
	if e == anthropicErrors {
		body = anthropic.ErrorFromOpenAI(status, body) // the adapter owns the status → type mapping
	}
	writeJSONBody(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // messages quote code like "<gateway key>"; this is JSON, not HTML
	if err := enc.Encode(v); err != nil {
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "encode_failed", "encode response: "+err.Error())
		return
	}
	writeJSONBody(w, status, buf.Bytes())
}

// writeJSONBody sends status with body, already JSON, which no cache may keep.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// mustJSON encodes values whose encoding cannot fail (plain structs of strings, numbers and times).
func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
