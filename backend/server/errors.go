package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"opentracy/backend/api"
	"opentracy/backend/providers/anthropic"
)

// errorShape writes an error in the wire format its clients expect.
type errorShape int

const (
	// openAIErrors is {"error":{"message","type","code"}}, used by /v1 and /api.
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

// write sends status with an error body. errType is OpenAI's type; code is our machine-readable code.
func (e errorShape) write(w http.ResponseWriter, status int, errType, code, msg string) {
	body := api.ErrorResponse{Error: api.ErrorBody{Message: msg, Type: errType, Code: code}}
	if e == anthropicErrors {
		// The Anthropic adapter owns the status → Anthropic error type mapping.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write(anthropic.ErrorFromOpenAI(status, mustJSON(body)))
		return
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // messages quote code like "<gateway key>"; this is JSON, not HTML
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error":{"message":"encode response","type":"server_error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// mustJSON encodes values whose encoding cannot fail (plain structs of strings, numbers and times).
func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
