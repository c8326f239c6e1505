package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The subset of Hugging Face's tokenizer.json that byte-level BPE models use. Components are kept
// as raw JSON and decoded by type, so that an unknown component is an error rather than ignored.

type fileJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	Model         modelJSON        `json:"model"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Dropout                 *float64        `json:"dropout"`
}

// parseMerges accepts both serializations: ["a b", ...] (older files, Llama 3) and
// [["a", "b"], ...] (tokenizers ≥ 0.20, Qwen3), which allows tokens that contain a space.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	// Decode the whole list in one call (per-item decoding doubles the load time); which form it
	// is shows in its first element.
	if inner := bytes.TrimSpace(bytes.TrimPrefix(raw, []byte("["))); len(inner) > 0 && inner[0] == '[' {
		var pairs [][2]string
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return nil, fmt.Errorf("merges: %w", err)
		}
		return pairs, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err != nil {
		return nil, fmt.Errorf("merges: %w", err)
	}
	out := make([][2]string, len(strs))
	for i, s := range strs {
		a, b, ok := strings.Cut(s, " ")
		if !ok {
			return nil, fmt.Errorf("merge %d %q: no space between the pair", i, s)
		}
		out[i] = [2]string{a, b}
	}
	return out, nil
}

// componentType reads the "type" field of a component; "" for JSON null or absent.
func componentType(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", err
	}
	if head.Type == "" {
		return "", fmt.Errorf("component without a type: %.80s", raw)
	}
	return head.Type, nil
}

// configJSON is the part of tokenizer_config.json the engine needs.
type configFile struct {
	BOSToken           tokenRef        `json:"bos_token"`
	EOSToken           tokenRef        `json:"eos_token"`
	PadToken           tokenRef        `json:"pad_token"`
	UnkToken           tokenRef        `json:"unk_token"`
	ChatTemplate       json.RawMessage `json:"chat_template"`
	SplitSpecialTokens bool            `json:"split_special_tokens"`
}

// tokenRef is a token in tokenizer_config.json: a string, an AddedToken object
// ({"content": ..., "__type": "AddedToken"}) or null.
type tokenRef string

func (t *tokenRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*t = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = tokenRef(s)
		return nil
	default:
		var obj struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		*t = tokenRef(obj.Content)
		return nil
	}
}

// chatTemplate returns the default chat template: a plain string, or the entry named "default"
// of the list form ([{"name": ..., "template": ...}]) that some models use.
func (c *configFile) chatTemplate() (string, error) {
	raw := bytes.TrimSpace(c.ChatTemplate)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("chat_template: %w", err)
		}
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf("chat_template: %w", err)
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	return "", nil
}
