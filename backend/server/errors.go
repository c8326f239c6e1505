package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"opentracy/backend/api"
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

type anthropicError struct {
	Type  string             `json:"type"`
	Error anthropicErrorBody `json:"error"`
}

type anthropicErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// write sends status with an error body. errType is OpenAI's type; code is our machine-readable code.
func (e errorShape) write(w http.ResponseWriter, status int, errType, code, msg string) {
	var body any = api.ErrorResponse{Error: api.ErrorBody{Message: msg, Type: errType, Code: code}}
	if e == anthropicErrors {
		body = anthropicError{Type: "error", Error: anthropicErrorBody{Type: anthropicErrorType(status), Message: msg}}
	}
	writeJSON(w, status, body)
}

// anthropicErrorType maps a status to the error types Anthropic documents.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	default:
		return "api_error"
	}
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
