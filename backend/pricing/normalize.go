package pricing

import (
	"slices"
	"strings"
)

// candidates returns the names model may be listed under, most faithful first (see Lookup,
// rule 6), all lower-case. Every step only strips a well-known decoration, so a candidate never
// loses a part of the name that tells models apart ("-mini", "-lite").
func candidates(model string) []string {
	s := strings.ToLower(strings.TrimSpace(model))
	out := []string{s}
	if s == "" {
		return out
	}
	add := func(c string) {
		if c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}

	s = strings.TrimPrefix(s, "models/") // Gemini API resource name
	s = stripDottedPrefixes(s)           // Bedrock "us.anthropic.claude-…"
	if i := strings.IndexByte(s, '@'); i > 0 {
		s = s[:i] // Vertex "claude-3-5-haiku@20241022"
	}
	s = stripBedrockVersion(s)
	add(s)
	for {
		trimmed, ok := stripVersionSuffix(s)
		if !ok {
			break
		}
		s = trimmed
		add(s)
	}
	add(dashDigitDots(s))
	add(s + "-latest")
	if trimmed, ok := strings.CutSuffix(s, "-0"); ok {
		add(trimmed)
	}
	return out
}

// stripDottedPrefixes drops leading "segment." parts made of letters and dashes only, as in
// Bedrock's region and vendor prefixes ("us.", "global.", "anthropic."). A dot after a digit
// ("gpt-4.1", "gemini-2.5-pro") is part of the name and stays.
func stripDottedPrefixes(s string) string {
	for {
		i := strings.IndexByte(s, '.')
		if i <= 0 || i == len(s)-1 || !lettersAndDashes(s[:i]) {
			return s
		}
		s = s[i+1:]
	}
}

func lettersAndDashes(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

// stripBedrockVersion drops a trailing "-v<n>" or "-v<n>:<m>" (Bedrock's "-v1:0").
func stripBedrockVersion(s string) string {
	i := strings.LastIndex(s, "-v")
	if i <= 0 {
		return s
	}
	major, minor, hasMinor := strings.Cut(s[i+2:], ":")
	if !allDigits(major) || (hasMinor && !allDigits(minor)) {
		return s
	}
	return s[:i]
}

// stripVersionSuffix drops one trailing date or version: "-latest", "-2024-08-06" (OpenAI),
// "-20250929" (Anthropic), "-2411" (Mistral), "-0709" (xAI), "-001" (Gemini on Vertex).
func stripVersionSuffix(s string) (string, bool) {
	if trimmed, ok := strings.CutSuffix(s, "-latest"); ok && trimmed != "" {
		return trimmed, true
	}
	if n := len(s); n > 11 && s[n-11] == '-' && s[n-6] == '-' && s[n-3] == '-' &&
		allDigits(s[n-10:n-6]) && allDigits(s[n-5:n-3]) && allDigits(s[n-2:]) {
		return s[:n-11], true
	}
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return s, false
	}
	if tail := s[i+1:]; (len(tail) == 3 || len(tail) == 4 || len(tail) == 8) && allDigits(tail) {
		return s[:i], true
	}
	return s, false
}

// dashDigitDots writes dots between digits as dashes, the way Anthropic spells versions
// ("claude-3.5-haiku" → "claude-3-5-haiku", as OpenRouter writes them).
func dashDigitDots(s string) string {
	b := []byte(s)
	for i := 1; i < len(b)-1; i++ {
		if b[i] == '.' && isDigit(b[i-1]) && isDigit(b[i+1]) {
			b[i] = '-'
		}
	}
	return string(b)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
