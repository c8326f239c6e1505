package sqlite

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far: SQLite's C code included, which
// the Go profiler shows only as cgocall.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPUTime is the calling thread's CPU time so far (RUSAGE_THREAD), 0 if unknown.
func threadCPUTime() time.Duration {
	const rusageThread = 1
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
