package download

import "testing"

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in               string
		start, end, size int64
		bad              bool
	}{
		{in: "bytes 100-199/200", start: 100, end: 199, size: 200},
		{in: "bytes 0-0/1", start: 0, end: 0, size: 1},
		{in: "bytes 5-9/*", start: 5, end: 9, size: -1},
		{in: "bytes */300", start: -1, end: -1, size: 300},
		{in: "bytes 10-5/20", bad: true},
		{in: "bytes 10-25/20", bad: true},
		{in: "items 0-1/2", bad: true},
		{in: "bytes 0-1", bad: true},
		{in: "", bad: true},
	} {
		start, end, size, err := parseContentRange(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || start != tc.start || end != tc.end || size != tc.size {
			t.Errorf("%q = %d, %d, %d, %v", tc.in, start, end, size, err)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	for in, want := range map[string]string{
		`{"error":"Access to model x/y is restricted."}`: "Access to model x/y is restricted.",
		`{"error": "quoted \"inner\""}`:                  `quoted "inner"`,
		"Invalid credentials":                            "Invalid credentials",
		"<html><body>oops</body></html>":                 "",
	} {
		if got := errorMessage([]byte(in)); got != want {
			t.Errorf("errorMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
