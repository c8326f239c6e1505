//go:build !linux

package sqlite

import (
	"testing"
	"time"
)

// cpuTime and threadCPUTime are measured on Linux only; elsewhere the benchmarks report time.
func cpuTime(*testing.B) time.Duration { return 0 }

func threadCPUTime() time.Duration { return 0 }
