package traces

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writerTestStore is a BatchWriter that keeps traces by ID and can fail, hang or be slow on demand.
type writerTestStore struct {
	mu        sync.Mutex
	byID      map[string]*Trace
	order     []string // IDs in the order first committed
	batches   []int
	dups      int       // traces written again after being committed
	failUntil time.Time // Write fails before this
	fail      bool      // Write fails while set
	hang      bool      // Write blocks until ctx ends while set
	delay     time.Duration
	rejects   func(*Trace) bool // a batch holding such a trace fails with ErrRejected
	calls     atomic.Int64
}

func newWriterTestStore() *writerTestStore {
	return &writerTestStore{byID: make(map[string]*Trace)}
}

var errStoreDown = errors.New("store down")

func (s *writerTestStore) Write(ctx context.Context, batch []*Trace) error {
	s.calls.Add(1)
	s.mu.Lock()
	fail, hang, delay := s.fail || time.Now().Before(s.failUntil), s.hang, s.delay
	s.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range batch {
		if s.rejects != nil && s.rejects(t) {
			return fmt.Errorf("trace %q: %w", t.ID, ErrRejected)
		}
	}
	s.batches = append(s.batches, len(batch))
	for _, t := range batch {
		if _, ok := s.byID[t.ID]; ok {
			s.dups++
			continue
		}
		s.byID[t.ID] = t
		s.order = append(s.order, t.ID)
	}
	return nil
}

func (s *writerTestStore) set(f func(s *writerTestStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *writerTestStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

func (s *writerTestStore) snapshot() (order []string, batches []int, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...), append([]int(nil), s.batches...), s.dups
}

func (s *writerTestStore) Get(context.Context, string) (*Trace, error) { return nil, ErrNotFound }
func (s *writerTestStore) List(context.Context, Query) (Page, error)   { return Page{}, nil }
func (s *writerTestStore) Aggregate(context.Context, AggregateQuery) (Aggregates, error) {
	return Aggregates{}, nil
}
func (s *writerTestStore) Close() error { return nil }

// lockedBuffer collects log output written from the Writer's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testTrace(id string) *Trace {
	return &Trace{
		ID:             id,
		StartedAt:      time.Unix(1700000000, 0).UTC(),
		Endpoint:       "chat.completions",
		RequestedModel: "gpt-4o-mini",
		Model:          "gpt-4o-mini",
		Provider:       "openai",
		Status:         200,
		LatencyMillis:  123.4,
		Usage:          Usage{PromptTokens: 12, CompletionTokens: 34},
		Input:          []byte(`[{"role":"user","content":"What is the capital of France?"}]`),
		Output:         []byte(`[{"index":0,"message":{"role":"assistant","content":"Paris."}}]`),
	}
}

func newTestWriter(t testing.TB, store BatchWriter, opts WriterOptions) *Writer {
	t.Helper()
	if opts.RetryBase == 0 {
		opts.RetryBase, opts.RetryMax = 5*time.Millisecond, 50*time.Millisecond
	}
	w, err := NewWriter(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// waitFor polls cond: the Writer's progress is asynchronous by design.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func closeWriter(t testing.TB, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// abandon stops w like a kill -9 would: no drain, no fsync; only its file descriptors are released
// (after the test) so the temporary directory can be removed.
func abandon(t testing.TB, w *Writer, cancel context.CancelFunc) {
	t.Helper()
	cancel()
	<-w.done
	<-w.syncDone
	t.Cleanup(func() {
		if w.j != nil {
			for _, f := range append(w.j.unsynced, w.j.f) {
				if f != nil {
					f.Close()
				}
			}
		}
	})
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

func TestWriterBatchesBySizeInOrder(t *testing.T) {
	store := newWriterTestStore()
	w := newTestWriter(t, store, WriterOptions{QueueSize: 100, BatchSize: 10, FlushInterval: time.Hour, JournalDir: t.TempDir()})
	want := ids("t", 30)
	for _, id := range want {
		w.Record(testTrace(id))
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "30 traces", 5*time.Second, func() bool { return store.count() == 30 })
	order, batches, dups := store.snapshot()
	if got := fmt.Sprint(batches); got != "[10 10 10]" {
		t.Errorf("batches = %s, want three full ones (the interval is an hour)", got)
	}
	if strings.Join(order, ",") != strings.Join(want, ",") || dups != 0 {
		t.Errorf("order = %v (dups %d)", order, dups)
	}
	closeWriter(t, w)
}

func TestWriterFlushesPartialBatchAfterInterval(t *testing.T) {
	store := newWriterTestStore()
	const interval = 50 * time.Millisecond
	w := newTestWriter(t, store, WriterOptions{BatchSize: 100, FlushInterval: interval, JournalDir: t.TempDir()})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, id := range ids("p", 3) {
		w.Record(testTrace(id))
	}
	waitFor(t, "3 traces", 5*time.Second, func() bool { return store.count() == 3 })
	if took := time.Since(start); took < interval {
		t.Errorf("partial batch written after %v, before the %v interval", took, interval)
	}
	if _, batches, _ := store.snapshot(); fmt.Sprint(batches) != "[3]" {
		t.Errorf("batches = %v, want one of 3", batches)
	}
	closeWriter(t, w)
}

func TestWriterRecordNeverBlocksOnHungStore(t *testing.T) {
	store := newWriterTestStore()
	store.hang = true
	dir := t.TempDir()
	w := newTestWriter(t, store, WriterOptions{QueueSize: 10, BatchSize: 5, FlushInterval: 10 * time.Millisecond, JournalDir: dir})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var slowest time.Duration
	for _, id := range ids("h", n) {
		start := time.Now()
		w.Record(testTrace(id))
		slowest = max(slowest, time.Since(start))
	}
	// Generous for the race detector and a loaded machine; the hung store would block forever.
	if slowest > 100*time.Millisecond {
		t.Errorf("slowest Record took %v with a hung store", slowest)
	}
	s := w.Stats()
	// The writer holds 1 to 5 traces in its hung batch, at most 10 wait in the queue, the rest on
	// disk.
	inBatch := n - s.Queued - int(s.Spilled)
	if s.Queued > 10 || inBatch < 1 || inBatch > 5 || s.Dropped != 0 || s.Recorded != n || s.JournalBytes == 0 {
		t.Errorf("stats with hung store = %+v", s)
	}

	// Close gives up at its deadline and leaves everything to the journal.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a hung store = %v, want deadline exceeded", err)
	}
	if len(segmentFiles(t, dir)) == 0 {
		t.Fatal("journal removed although nothing was written")
	}
	healthy := newWriterTestStore()
	w2 := newTestWriter(t, healthy, WriterOptions{QueueSize: 10, BatchSize: 64, JournalDir: dir})
	closeWriter(t, w2) // Close drains without Start
	if _, _, dups := healthy.snapshot(); healthy.count() != n || dups != 0 {
		t.Errorf("after restart store has %d traces (%d dups), want %d", healthy.count(), dups, n)
	}
	if s := w2.Stats(); s.Replayed != n || s.Written != n {
		t.Errorf("restart stats = %+v", s)
	}
}

func TestWriterOutageAndRecovery(t *testing.T) {
	store := newWriterTestStore()
	store.failUntil = time.Now().Add(2 * time.Second)
	logs := &lockedBuffer{}
	w := newTestWriter(t, store, WriterOptions{
		QueueSize: 50, BatchSize: 20, FlushInterval: 10 * time.Millisecond, JournalDir: t.TempDir(),
		RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i, id := range ids("o", n) {
		w.Record(testTrace(id))
		if i%100 == 0 {
			time.Sleep(100 * time.Millisecond) // spread across the outage
		}
	}
	waitFor(t, "store down", time.Second, func() bool { return w.Stats().StoreDown || store.count() > 0 })
	waitFor(t, "all traces after recovery", 10*time.Second, func() bool { return store.count() == n })
	_, _, dups := store.snapshot()
	s := w.Stats()
	if dups != 0 || s.Written != n || s.Dropped != 0 || s.Retries == 0 || s.StoreDown || !strings.Contains(s.LastError, "store down") {
		t.Errorf("after recovery: dups %d, stats %+v", dups, s)
	}
	out := logs.String()
	if strings.Count(out, "trace store unavailable") != 1 || strings.Count(out, "trace store recovered") != 1 {
		t.Errorf("want one outage and one recovery line, got:\n%s", out)
	}
	closeWriter(t, w)
}

func TestWriterCrashReplaysJournal(t *testing.T) {
	dir := t.TempDir()
	store := newWriterTestStore()
	ctx, cancel := context.WithCancel(context.Background())
	w := newTestWriter(t, store, WriterOptions{QueueSize: 100, BatchSize: 50, FlushInterval: 5 * time.Millisecond, JournalDir: dir, SegmentBytes: 32 << 10})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	all := ids("c", n)
	for _, id := range all[:1000] {
		w.Record(testTrace(id))
	}
	waitFor(t, "first traces committed", 5*time.Second, func() bool { return store.count() == 1000 })
	store.set(func(s *writerTestStore) { s.fail = true })
	for _, id := range all[1000:] {
		w.Record(testTrace(id))
	}
	abandon(t, w, cancel)
	if got := store.count(); got != 1000 {
		t.Fatalf("store has %d before the crash", got)
	}

	store.set(func(s *writerTestStore) { s.fail = false })
	w2 := newTestWriter(t, store, WriterOptions{QueueSize: 100, BatchSize: 50, JournalDir: dir, SegmentBytes: 32 << 10})
	if s := w2.Stats(); s.Spilled < n-1000 {
		t.Errorf("before replay stats = %+v, want at least %d spilled", s, n-1000)
	}
	if err := w2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	w2.Record(testTrace("after-restart"))
	waitFor(t, "replay", 10*time.Second, func() bool { return store.count() == n+1 })
	order, _, _ := store.snapshot()
	if order[n] != "after-restart" {
		t.Errorf("trace recorded during replay written at %d, want after the replayed ones", slicesIndex(order, "after-restart"))
	}
	if strings.Join(order[:n], ",") != strings.Join(all, ",") {
		t.Error("replayed traces out of order")
	}
	if s := w2.Stats(); s.Replayed < n-1000 || s.Replayed > n || s.Recorded != 1 {
		t.Errorf("after replay stats = %+v", s)
	}
	closeWriter(t, w2)
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Errorf("journal not empty after a clean drain: %v", files)
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestWriterReplaysTornJournal(t *testing.T) {
	dir := t.TempDir()
	store := newWriterTestStore()
	store.fail = true
	ctx, cancel := context.WithCancel(context.Background())
	w := newTestWriter(t, store, WriterOptions{JournalDir: dir})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids("torn", 10) {
		w.Record(testTrace(id))
	}
	abandon(t, w, cancel)
	files := segmentFiles(t, dir)
	info, err := os.Stat(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(files[len(files)-1], info.Size()-7); err != nil {
		t.Fatal(err)
	}
	store.set(func(s *writerTestStore) { s.fail = false })
	w2 := newTestWriter(t, store, WriterOptions{JournalDir: dir})
	closeWriter(t, w2)
	order, _, _ := store.snapshot()
	if strings.Join(order, ",") != strings.Join(ids("torn", 9), ",") {
		t.Errorf("replayed %v, want the first 9", order)
	}
	if s := w2.Stats(); s.Dropped != 0 {
		t.Errorf("a torn tail is not a drop (never acknowledged on disk): %+v", s)
	}
}

func TestWriterCloseDrains(t *testing.T) {
	dir := t.TempDir()
	store := newWriterTestStore()
	store.delay = 2 * time.Millisecond
	w := newTestWriter(t, store, WriterOptions{QueueSize: 20, BatchSize: 7, FlushInterval: time.Hour, JournalDir: dir})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 500
	for _, id := range ids("d", n) {
		w.Record(testTrace(id))
	}
	closeWriter(t, w)
	order, _, dups := store.snapshot()
	if len(order) != n || dups != 0 || strings.Join(order, ",") != strings.Join(ids("d", n), ",") {
		t.Errorf("after Close store has %d traces (%d dups)", len(order), dups)
		for i, id := range order {
			if id != ids("d", n)[i] {
				t.Fatalf("at %d: %v", i, order[max(0, i-5):min(len(order), i+10)])
			}
		}
	}
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Errorf("journal not empty after a clean drain: %v", files)
	}
	s := w.Stats()
	if s.Queued != 0 || s.Spilled != 0 || s.JournalBytes != 0 || s.Written != n || s.Dropped != 0 {
		t.Errorf("stats after Close = %+v", s)
	}
	w.Record(testTrace("late"))
	if s := w.Stats(); s.Dropped != 1 {
		t.Errorf("Record after Close: dropped = %d, want 1", s.Dropped)
	}
	if err := w.Close(t.Context()); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("second Close = %v", err)
	}
	if err := w.Start(t.Context()); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("Start after Close = %v", err)
	}
}

func TestWriterConcurrentRecord(t *testing.T) {
	store := newWriterTestStore()
	w := newTestWriter(t, store, WriterOptions{QueueSize: 64, BatchSize: 50, FlushInterval: 5 * time.Millisecond, JournalDir: t.TempDir(), SegmentBytes: 64 << 10})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for _, id := range ids(fmt.Sprintf("g%02d-", g), each) {
				w.Record(testTrace(id))
			}
		})
	}
	wg.Wait()
	closeWriter(t, w)
	order, _, dups := store.snapshot()
	if len(order) != goroutines*each || dups != 0 {
		t.Fatalf("store has %d traces (%d dups), want %d", len(order), dups, goroutines*each)
	}
	// Each goroutine's traces arrive in the order it recorded them, spills included.
	last := map[string]string{}
	for _, id := range order {
		g := id[:4]
		if id <= last[g] {
			t.Fatalf("%s written after %s", id, last[g])
		}
		last[g] = id
	}
	if s := w.Stats(); s.Recorded != goroutines*each || s.Written != goroutines*each || s.Dropped != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestWriterStats(t *testing.T) {
	store := newWriterTestStore()
	w := newTestWriter(t, store, WriterOptions{QueueSize: 3, JournalDir: t.TempDir()})
	for _, id := range ids("s", 5) {
		w.Record(testTrace(id))
	}
	s := w.Stats()
	if s.Recorded != 5 || s.Queued != 3 || s.Spilled != 2 || s.Written != 0 || s.JournalBytes == 0 {
		t.Errorf("before Start: %+v", s)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 written", 5*time.Second, func() bool { return w.Stats().Written == 5 })
	s = w.Stats()
	if s.Queued != 0 || s.Spilled != 0 || s.Dropped != 0 || s.Retries != 0 || s.StoreDown || s.LastError != "" {
		t.Errorf("after writing: %+v", s)
	}
	closeWriter(t, w)

	// Without a journal a full queue is the documented drop.
	mem := newTestWriter(t, store, WriterOptions{QueueSize: 2})
	for _, id := range ids("m", 3) {
		mem.Record(testTrace(id))
	}
	s = mem.Stats()
	if s.Recorded != 3 || s.Queued != 2 || s.Dropped != 1 || !strings.Contains(s.LastError, "queue full") || s.JournalBytes != 0 {
		t.Errorf("memory-only writer: %+v", s)
	}
	closeWriter(t, mem)
}

func TestWriterUnencodableTraceStillQueued(t *testing.T) {
	store := newWriterTestStore()
	w := newTestWriter(t, store, WriterOptions{JournalDir: t.TempDir()})
	bad := testTrace("bad")
	bad.Input = []byte("{not json")
	w.Record(bad)
	w.Record(testTrace("good"))
	closeWriter(t, w)
	if store.count() != 2 {
		t.Errorf("store has %d, want both: a trace the journal cannot encode is kept in memory", store.count())
	}
}

func TestNewWriterValidates(t *testing.T) {
	if _, err := NewWriter(nil, WriterOptions{}); err == nil {
		t.Error("nil store accepted")
	}
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWriter(newWriterTestStore(), WriterOptions{JournalDir: file}); err == nil {
		t.Error("journal dir that is a file accepted")
	}
	w := newTestWriter(t, newWriterTestStore(), WriterOptions{})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); err == nil {
		t.Error("second Start accepted")
	}
	closeWriter(t, w)
}

// discardStore takes every batch at once, for benchmarks.
type discardStore struct{ writerTestStore }

func (*discardStore) Write(context.Context, []*Trace) error { return nil }

func BenchmarkRecord(b *testing.B) {
	w := newTestWriter(b, &discardStore{}, WriterOptions{JournalDir: b.TempDir()})
	if err := w.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	tr := testTrace("bench")
	b.ReportAllocs()
	for b.Loop() {
		w.Record(tr)
	}
	b.StopTimer()
	closeWriter(b, w)
	if s := w.Stats(); s.Dropped != 0 {
		b.Fatalf("dropped %d", s.Dropped)
	}
}

// BenchmarkWriterThroughput measures traces per second from Record to committed in a store that
// takes 1 ms per batch.
func BenchmarkWriterThroughput(b *testing.B) {
	store := newWriterTestStore()
	store.delay = time.Millisecond
	w := newTestWriter(b, store, WriterOptions{JournalDir: b.TempDir()})
	if err := w.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	n := 0
	for b.Loop() {
		w.Record(testTrace(fmt.Sprint(n)))
		n++
	}
	closeWriter(b, w)
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "traces/s")
}

func TestWriterSetsAsideRejectedTraces(t *testing.T) {
	store := newWriterTestStore()
	store.rejects = func(t *Trace) bool { return strings.HasPrefix(t.ID, "bad") }
	dir := t.TempDir()
	var (
		mu        sync.Mutex
		delivered []string
	)
	w := newTestWriter(t, store, WriterOptions{JournalDir: dir, BatchSize: 16, OnWritten: func(batch []*Trace) {
		mu.Lock()
		defer mu.Unlock()
		for _, tr := range batch {
			delivered = append(delivered, tr.ID)
		}
	}})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 40 {
		id := fmt.Sprintf("ok-%02d", i)
		if i == 5 || i == 22 {
			id = fmt.Sprintf("bad-%02d", i)
		} else {
			want = append(want, id)
		}
		w.Record(testTrace(id))
	}
	closeWriter(t, w)

	order, _, _ := store.snapshot()
	slices.Sort(order)
	if !slices.Equal(order, want) {
		t.Errorf("stored %v, want every good trace %v", order, want)
	}
	mu.Lock()
	slices.Sort(delivered)
	if !slices.Equal(delivered, want) {
		t.Errorf("OnWritten saw %v, want %v", delivered, want)
	}
	mu.Unlock()
	st := w.Stats()
	if st.Rejected != 2 || st.Dropped != 0 || st.Written != 38 {
		t.Errorf("stats = %+v, want 38 written, 2 rejected, 0 dropped", st)
	}
	raw, err := os.ReadFile(filepath.Join(dir, RejectedFile))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Error string `json:"error"`
			Trace Trace  `json:"trace"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("rejected line %q: %v", line, err)
		}
		if !strings.Contains(rec.Error, "rejected") || rec.Trace.Input == nil {
			t.Errorf("rejected record %+v lacks the error or the trace", rec)
		}
		ids = append(ids, rec.Trace.ID)
	}
	if !slices.Equal(ids, []string{"bad-05", "bad-22"}) {
		t.Errorf("rejected file holds %v", ids)
	}
	if info, err := os.Stat(filepath.Join(dir, RejectedFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("rejected file mode: %v %v", info.Mode(), err)
	}
	// The journal is empty: rejected traces are not replayed forever.
	w2 := newTestWriter(t, newWriterTestStore(), WriterOptions{JournalDir: dir})
	if err := w2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w2)
	if st := w2.Stats(); st.Written != 0 || st.Replayed != 0 {
		t.Errorf("restart replayed %+v", st)
	}
}

// An idle Writer has no timer running: run and syncLoop sleep until a trace wakes them, and
// that trace is still written and its journal fsynced.
func TestIdleWriterSleepsUntilTheNextTrace(t *testing.T) {
	store := newWriterTestStore()
	w := newTestWriter(t, store, WriterOptions{JournalDir: t.TempDir(), FlushInterval: 5 * time.Millisecond})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	asleep := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.idle.Load() && w.syncIdle
	}
	for round := range 3 {
		w.Record(testTrace(fmt.Sprint(round)))
		waitFor(t, "the trace written", 5*time.Second, func() bool { return store.count() == round+1 })
		waitFor(t, "the writer asleep", 5*time.Second, asleep)
		w.mu.Lock()
		unsynced := w.j.dirty || len(w.j.unsynced) > 0 || w.j.dirDirty
		w.mu.Unlock()
		if unsynced {
			t.Fatal("the journal sleeps with writes not fsynced")
		}
	}
	closeWriter(t, w)
}

// Traces recorded from many goroutines in bursts, each burst after the Writer fell asleep, are
// all written: no trace is left queued behind a missed wake-up.
func TestBurstsAcrossIdleAreAllWritten(t *testing.T) {
	store := newWriterTestStore()
	w := newTestWriter(t, store, WriterOptions{JournalDir: t.TempDir(), FlushInterval: time.Millisecond})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const bursts, goroutines, per = 20, 4, 5
	for b := range bursts {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range per {
					w.Record(testTrace(fmt.Sprintf("%d-%d-%d", b, g, i)))
				}
			})
		}
		wg.Wait()
		want := (b + 1) * goroutines * per
		waitFor(t, fmt.Sprintf("burst %d written", b), 5*time.Second, func() bool { return store.count() == want })
		time.Sleep(time.Duration(b%4) * time.Millisecond) // asleep for some bursts, about to be for others
	}
	closeWriter(t, w)
}
