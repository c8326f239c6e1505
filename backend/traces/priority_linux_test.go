package traces

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// niceStore records the priority of the thread each batch is written on.
type niceStore struct {
	*writerTestStore
	nice atomic.Int64
}

func (s *niceStore) Write(ctx context.Context, batch []*Trace) error {
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		return err
	}
	s.nice.Store(int64(20 - raw))
	return s.writerTestStore.Write(ctx, batch)
}

// The store is written on a thread below the process's priority, and that thread ends with the
// writer: no other goroutine is left running at the lowered priority, on the main thread
// neither.
func TestWriterStoresAtLowerPriority(t *testing.T) {
	base := processNice(t)
	want := min(base+backgroundNice, 19)
	if want == base {
		t.Skipf("the process already runs at nice %d, the lowest priority", base)
	}
	lowered := func() int { return threadsAtNice(t, want) }
	before := lowered()

	store := &niceStore{writerTestStore: newWriterTestStore()}
	w := newTestWriter(t, store, WriterOptions{FlushInterval: time.Millisecond})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Record(testTrace("a"))
	waitFor(t, "the trace written", 5*time.Second, func() bool { return store.count() == 1 })
	if got := store.nice.Load(); got != int64(want) {
		t.Errorf("store written at nice %d, want %d (the process's %d + %d)", got, want, base, backgroundNice)
	}
	if n := lowered(); n != before+1 {
		t.Errorf("%d threads at nice %d while the writer runs, want %d", n, want, before+1)
	}
	closeWriter(t, w)
	waitFor(t, "the writer's thread gone", 5*time.Second, func() bool { return lowered() == before })
}

// processNice is the nice value of the process's main thread.
func processNice(t *testing.T) int {
	t.Helper()
	return statNice(t, "/proc/self/stat")
}

// threadsAtNice counts this process's threads running at nice.
func threadsAtNice(t *testing.T, nice int) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range stats {
		if _, err := os.Stat(p); err == nil && statNice(t, p) == nice {
			n++
		}
	}
	return n
}

// statNice reads the nice field (the 19th) of a /proc stat file; a thread that ended meanwhile
// counts as -100.
func statNice(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return -100
	}
	// The command name (field 2) may hold spaces; the fields after its ")" are plain.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	nice, err := strconv.Atoi(fields[16]) // field 19 is the 17th after the name
	if err != nil {
		t.Fatalf("%s: nice %q: %v", path, fields[16], err)
	}
	return nice
}
