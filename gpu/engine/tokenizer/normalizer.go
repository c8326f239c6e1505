package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before pre-tokenization. Byte-level BPE models use at most a Unicode
// normalization form (Qwen3: NFC; Llama 3: none); offsets are not tracked because the engine only
// needs ids.
type normalizer func(string) string

func newNormalizer(raw json.RawMessage) (normalizer, error) {
	typ, err := componentType(raw)
	if err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	switch typ {
	case "":
		return nil, nil
	case "NFC":
		return formNormalizer(norm.NFC), nil
	case "NFD":
		return formNormalizer(norm.NFD), nil
	case "NFKC":
		return formNormalizer(norm.NFKC), nil
	case "NFKD":
		return formNormalizer(norm.NFKD), nil
	case "Lowercase":
		return strings.ToLower, nil
	case "Sequence":
		var seq struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := json.Unmarshal(raw, &seq); err != nil {
			return nil, fmt.Errorf("normalizer Sequence: %w", err)
		}
		var parts []normalizer
		for i, r := range seq.Normalizers {
			n, err := newNormalizer(r)
			if err != nil {
				return nil, fmt.Errorf("normalizer Sequence[%d]: %w", i, err)
			}
			if n != nil {
				parts = append(parts, n)
			}
		}
		if len(parts) == 0 {
			return nil, nil
		}
		return func(s string) string {
			for _, n := range parts {
				s = n(s)
			}
			return s
		}, nil
	default:
		return nil, fmt.Errorf("normalizer %q is not supported", typ)
	}
}

func formNormalizer(f norm.Form) normalizer {
	return func(s string) string {
		// Most text is already normalized; the quick check avoids a copy then.
		if f.IsNormalString(s) {
			return s
		}
		return f.String(s)
	}
}
