//go:build !linux

package bench

import (
	"errors"
	"time"
)

// errNotLinux: CPU times and affinity are read and set through Linux interfaces.
var errNotLinux = errors.New("CPU time and pinning are measured and set on Linux only")

func procCPU(int) (time.Duration, error) { return 0, errNotLinux }
func procSwitches(int) (uint64, error)   { return 0, errNotLinux }
func allowedCPUs() ([]int, error)        { return nil, errNotLinux }
func pinSelf([]int) error                { return errNotLinux }

// startPinned is not reached off Linux (planCPUs shares the CPUs there); it starts unpinned.
func startPinned(_ []int, start func() error) error { return start() }
