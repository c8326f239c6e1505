package chatwire

import (
	"encoding/json"
	"fmt"
)

// Turn is one turn of a conversation in an API that takes alternating user and assistant
// turns of content blocks B (Anthropic Messages, Bedrock Converse).
type Turn[B any] struct {
	Role   string
	Blocks []B
}

// TurnBlocks converts message contents to an API's blocks.
type TurnBlocks[B any] struct {
	// System takes each text part of the system and developer messages, in order.
	System     func(Part)
	User       func(content json.RawMessage) ([]B, error)
	Assistant  func(Message) ([]B, error)
	ToolResult func(Message) (B, error)
}

// Turns folds OpenAI chat messages into alternating turns: system and developer messages,
// wherever they appear, go to System; a tool result joins a user turn; consecutive turns of one
// role merge; and an empty turn, which both APIs reject and which carries nothing, is dropped.
func Turns[B any](msgs []Message, conv TurnBlocks[B]) ([]Turn[B], error) {
	var turns []Turn[B]
	for i, m := range msgs {
		var (
			role   string
			blocks []B
			err    error
		)
		switch m.Role {
		case "system", "developer":
			parts, err := Parts(m.Content)
			if err != nil {
				return nil, fmt.Errorf("messages[%d]: %w", i, err)
			}
			for _, p := range parts {
				if p.Type != "text" {
					return nil, fmt.Errorf("messages[%d]: a %s message may only hold text, not %q", i, m.Role, p.Type)
				}
				conv.System(p)
			}
			continue
		case "user":
			role = "user"
			blocks, err = conv.User(m.Content)
		case "assistant":
			role = "assistant"
			blocks, err = conv.Assistant(m)
		case "tool":
			role = "user"
			var b B
			b, err = conv.ToolResult(m)
			blocks = []B{b}
		default:
			return nil, fmt.Errorf("messages[%d]: role %q is not supported", i, m.Role)
		}
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(turns); n > 0 && turns[n-1].Role == role {
			turns[n-1].Blocks = append(turns[n-1].Blocks, blocks...)
			continue
		}
		turns = append(turns, Turn[B]{Role: role, Blocks: blocks})
	}
	return turns, nil
}
