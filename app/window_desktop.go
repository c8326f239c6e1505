//go:build desktop

package app

import (
	"os"
	"runtime"
)

// WhyNoWindow says why this process cannot open a window, or "" when it can.
func WhyNoWindow() string { return displayMissing(runtime.GOOS, os.Getenv) }
