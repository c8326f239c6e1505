package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// procCPU reads the CPU time (user + system, all threads) a process has used so far, from its
// CPU-time clock: to the nanosecond, where /proc/<pid>/stat counts 10 ms ticks (too coarse for
// an idle process, and sampled at the very ticks that wake a timer-driven one).
func procCPU(pid int) (time.Duration, error) {
	const cpuClockSched = 2 // CPUCLOCK_SCHED: the scheduler's exact runtime
	clock := ^pid<<3 | cpuClockSched
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(clock), uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, fmt.Errorf("read CPU time of process %d: %w", pid, e)
	}
	return time.Duration(ts.Nano()), nil
}

// procSwitches counts the context switches of every thread of a process so far: each time a
// thread stopped running, to sleep (a wake-up follows) or preempted.
func procSwitches(pid int) (uint64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("read context switches: %w", err)
	}
	var total uint64
	for _, t := range tasks {
		data, err := os.ReadFile(dir + "/" + t.Name() + "/status")
		if err != nil {
			continue // the thread exited
		}
		for line := range strings.Lines(string(data)) {
			name, rest, ok := strings.Cut(line, ":")
			if !ok || name != "voluntary_ctxt_switches" && name != "nonvoluntary_ctxt_switches" {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s/%s/status: %w", dir, t.Name(), err)
			}
			total += n
		}
	}
	return total, nil
}

// cpuMask is a CPU affinity mask of up to 1024 CPUs, as sched_setaffinity takes it.
type cpuMask [1024 / 64]uint64

func maskOf(cpus []int) (cpuMask, error) {
	var m cpuMask
	for _, c := range cpus {
		if c < 0 || c >= len(m)*64 {
			return m, fmt.Errorf("CPU %d out of range", c)
		}
		m[c/64] |= 1 << (c % 64)
	}
	return m, nil
}

func (m *cpuMask) cpus() []int {
	var out []int
	for i := range len(m) * 64 {
		if m[i/64]&(1<<(i%64)) != 0 {
			out = append(out, i)
		}
	}
	return out
}

func getAffinity(tid int) (cpuMask, error) {
	var m cpuMask
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return m, fmt.Errorf("sched_getaffinity: %w", e)
	}
	return m, nil
}

func setAffinity(tid int, m cpuMask) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return fmt.Errorf("sched_setaffinity: %w", e)
	}
	return nil
}

// allowedCPUs lists the CPUs this process may run on.
func allowedCPUs() ([]int, error) {
	m, err := getAffinity(0)
	if err != nil {
		return nil, err
	}
	return m.cpus(), nil
}

// pinSelf restricts every thread of this process to cpus; threads started later inherit it.
func pinSelf(cpus []int) error {
	m, err := maskOf(cpus)
	if err != nil {
		return err
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("pin the harness: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := setAffinity(tid, m); err != nil && !errors.Is(err, syscall.ESRCH) { // ESRCH: the thread exited
			return fmt.Errorf("pin the harness's thread %d: %w", tid, err)
		}
	}
	return nil
}

// startPinned runs start (which forks a child) on a thread restricted to cpus, so the child and
// every thread it starts inherit that affinity from the moment it exists.
func startPinned(cpus []int, start func() error) error {
	m, err := maskOf(cpus)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := getAffinity(0)
	if err != nil {
		return err
	}
	if err := setAffinity(0, m); err != nil {
		return fmt.Errorf("pin the gateway: %w", err)
	}
	startErr := start()
	if err := setAffinity(0, old); err != nil {
		return errors.Join(startErr, fmt.Errorf("restore the harness's affinity: %w", err))
	}
	return startErr
}
