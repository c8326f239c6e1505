package app

import "testing"

func TestDisplayMissing(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		goos string
		env  map[string]string
		want bool
	}{
		{"linux", nil, true},
		{"linux", map[string]string{"DISPLAY": ":0"}, false},
		{"linux", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, false},
		{"darwin", nil, false},
		{"windows", nil, false},
	} {
		if got := displayMissing(tc.goos, env(tc.env)) != ""; got != tc.want {
			t.Errorf("%s %v: missing=%v, want %v", tc.goos, tc.env, got, tc.want)
		}
	}
}
