package gateway

import (
	"github.com/tidwall/gjson"

	"opentracy/backend/providers"
	"opentracy/backend/providers/anthropic"
)

// wireFormat is the client's API dialect: how its errors look, in a body and inside a stream.
type wireFormat int

const (
	openAIWire wireFormat = iota
	anthropicWire
)

// errorBody renders an error body (OpenAI- or Anthropic-shaped) in the client's dialect.
func (f wireFormat) errorBody(status int, body []byte) []byte {
	if f == anthropicWire && gjson.GetBytes(body, "type").String() != "error" {
		return anthropic.ErrorFromOpenAI(status, body)
	}
	return body
}

// streamError is the event that ends a broken stream.
func (f wireFormat) streamError(msg string) []byte {
	body := providers.ErrorBody(msg, "server_error", "upstream_stream_error")
	if f == anthropicWire {
		return []byte("event: error\ndata: " + string(anthropic.ErrorFromOpenAI(502, body)) + "\n\n")
	}
	return []byte("data: " + string(body) + "\n\n")
}
