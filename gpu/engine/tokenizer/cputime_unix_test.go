//go:build unix

package tokenizer

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time this process has used: benchmarks report throughput per CPU
// second too, which stays comparable on a machine shared with other work.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
