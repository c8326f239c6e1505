// Package buildinfo reports the version of this binary.
package buildinfo

import "runtime/debug"

// version is set at link time: -ldflags "-X opentracy/backend/buildinfo.version=v1.2.3".
var version = ""

// Version returns the release version, or "dev+<commit>" for a development build.
func Version() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev+" + rev
}
