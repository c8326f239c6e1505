//go:build !selftest

package app

import (
	"context"
	"log/slog"
)

// selfTest is only compiled into test builds (-tags selftest); release builds carry no hook.
func selfTest(*slog.Logger) func(context.Context) { return nil }
