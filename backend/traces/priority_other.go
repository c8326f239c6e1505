//go:build !linux

package traces

import "log/slog"

// runAtLowPriority runs f: lowering one thread's priority is done on Linux only.
func runAtLowPriority(_ *slog.Logger, f func()) { f() }
