package traces

import (
	"log/slog"
	"runtime"
	"syscall"
)

// backgroundNice is how much lower than the process's the writer thread's priority is: at +10
// the kernel gives it about a tenth of a normal thread's share of a busy CPU.
const backgroundNice = 10

// runAtLowPriority runs f on a thread of its own whose priority is lowered, so that the store's
// batches (SQLite's work runs on the calling thread) yield the CPU to the threads answering
// requests rather than stall them for a scheduler slice. The thread is never handed back: it ends
// with f's goroutine, so no other goroutine runs at its priority (an unprivileged process could
// not raise it again).
func runAtLowPriority(log *slog.Logger, f func()) {
	runtime.LockOSThread()
	tid := syscall.Gettid()
	if tid == syscall.Getpid() {
		// The main thread never ends (the runtime parks it when its goroutine exits locked), so a
		// lowered priority would outlive f there. Hold it with this goroutine, the only one that
		// can run on it now, while f runs on another thread.
		done := make(chan struct{})
		go func() {
			defer close(done)
			runAtLowPriority(log, f)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err == nil {
		nice := 20 - raw // the system call answers 20 − nice, never negative
		err = syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(nice+backgroundNice, 19))
	}
	if err != nil {
		runtime.UnlockOSThread() // unchanged: the thread may serve others
		log.Debug("trace writer runs at the process's priority", "err", err)
	}
	f()
}
