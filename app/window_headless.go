//go:build !desktop

package app

// WhyNoWindow says why this process cannot open a window: binaries built without Wails' desktop
// tag (`go build`, `make server`) are headless servers, lean enough for machines without GTK.
func WhyNoWindow() string { return "This build has no desktop window (built without Wails)" }
