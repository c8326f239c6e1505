package traces

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// WriterOptions configure a Writer; zero values take the defaults.
type WriterOptions struct {
	// QueueSize bounds the traces held in memory for the store (default 10,000). Beyond it traces
	// wait in the journal only and are read back from disk.
	QueueSize int
	// BatchSize is the most traces per Store.Write (default 5,000). Batches are what arrived in a
	// FlushInterval, so they grow only under load, when fewer, larger transactions are what keep
	// up: each SQLite commit rewrites the index pages it touched and flushes a full-text segment,
	// and at 1M traces batches of 5,000 sustain 15–30% more traces/s than batches of 500.
	BatchSize int
	// FlushInterval is how long a partial batch may wait for more traces, and how often the
	// journal is fsynced (default 200 ms).
	FlushInterval time.Duration
	// JournalDir holds the write-ahead journal (created 0700, files 0600). Without it nothing
	// survives a crash and a full queue drops traces (counted in Stats).
	JournalDir string
	// SegmentBytes is the size at which the journal starts a new file (default 16 MiB).
	SegmentBytes int64
	// RetryBase and RetryMax bound the backoff between failed writes (defaults 100 ms and 10 s).
	RetryBase time.Duration
	RetryMax  time.Duration
	Logger    *slog.Logger
	// OnWritten, when set, is called on the writing goroutine with each batch the store has just
	// committed (the live trace feed). It must return quickly and not keep the slice.
	OnWritten func(batch []*Trace)
}

// WriterStats are the Writer's counters, for /api/stats and the UI.
type WriterStats struct {
	// Recorded counts Record calls; Written the traces the store committed, Replayed among them
	// those recovered from a previous run's journal.
	Recorded uint64 `json:"recorded"`
	Written  uint64 `json:"written"`
	Replayed uint64 `json:"replayed"`
	// Queued is the in-memory queue's depth; Spilled the traces waiting in the journal only,
	// because the queue was full (or a previous run left them).
	Queued  int    `json:"queued"`
	Spilled uint64 `json:"spilled"`
	// JournalBytes is the journal's size on disk.
	JournalBytes int64 `json:"journal_bytes"`
	// Retries counts failed store writes that were retried.
	Retries uint64 `json:"retries"`
	// Dropped counts traces lost: queue full with the journal failing or absent, Record after
	// Close, or journal records found corrupt.
	Dropped uint64 `json:"dropped"`
	// Rejected counts traces the store refused as invalid (ErrRejected); each is appended to
	// RejectedFile in the journal folder instead of blocking the traces behind it.
	Rejected    uint64    `json:"rejected"`
	StoreDown   bool      `json:"store_down"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// ErrRejected marks a store error caused by the traces themselves, which no retry can fix: the
// Writer then isolates the traces the store refuses and sets them aside (see RejectedFile).
var ErrRejected = errors.New("traces: rejected by the store")

// RejectedFile, in the journal folder, keeps every trace the store rejected, one JSON object per
// line: {"rejected_at", "error", "trace"}. Nothing is silently lost, and a fixed build can
// re-import them.
const RejectedFile = "rejected.jsonl"

// ErrWriterClosed is returned by Start and Close on a closed Writer.
var ErrWriterClosed = errors.New("traces: writer closed")

// Writer is the Sink between the gateway and a Store: Record journals the trace and queues it
// without waiting for the store; one goroutine writes batches, retrying while the store is down.
//
// Durability: every trace is appended to the journal (one write(2), no fsync) before Record
// returns, so a killed process loses nothing it acknowledged; the journal is fsynced every
// FlushInterval, which bounds what an OS crash or power loss can take. Segments are deleted once
// the store has committed all their traces, and a new Writer replays what is left (the store
// ignores traces it already has).
type Writer struct {
	store BatchWriter
	opts  WriterOptions
	log   *slog.Logger

	ch       chan queued
	wake     chan struct{} // a batch is full, traces were journaled without being queued, or run is idle
	drain    chan struct{} // closed by Close
	done     chan struct{} // run has returned
	syncWake chan struct{} // the journal was written while syncLoop was idle
	syncDone chan struct{} // syncLoop has returned
	cancel   context.CancelFunc

	// idle is set by run when it has nothing to write and no flush pending: it then sleeps until
	// Record wakes it, so an idle app has no timer firing.
	idle atomic.Bool

	// replayEnd is the first sequence number of this run: lower ones came from a previous one.
	replayEnd uint64

	mu        sync.Mutex
	j         *journal // nil without JournalDir
	started   bool
	closed    bool
	drained   bool
	spilling  bool     // traces go to the journal only, until run has read them all back
	spillFrom position // the first of them
	storeDown bool
	downSince time.Time
	lastErr   string
	lastErrAt time.Time
	syncIdle  bool // syncLoop found nothing to fsync and waits for syncWake

	// Owned by run.
	reading bool
	cur     position // next journal record run reads while spilling

	readSeq   atomic.Uint64 // cur.seq, for Stats
	recorded  atomic.Uint64
	written   atomic.Uint64
	replayed  atomic.Uint64
	retries   atomic.Uint64
	dropped   atomic.Uint64
	rejected  atomic.Uint64
	dropLogAt atomic.Int64 // unix nanos of the last drop warning
	jErrLogAt atomic.Int64 // and of the last journal warning
}

// queued is a trace on its way to the store and, when it was journaled, its sequence number.
type queued struct {
	t         *Trace
	seq       uint64
	journaled bool
}

// NewWriter opens the journal, if any, and takes note of traces a previous run left in it; they
// are written first once Start is called. Record may be called before Start.
func NewWriter(store BatchWriter, opts WriterOptions) (*Writer, error) {
	if store == nil {
		return nil, errors.New("traces: NewWriter: nil store")
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10_000
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 5000
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 200 * time.Millisecond
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = defaultSegmentBytes
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 100 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 10 * time.Second
	}
	opts.RetryMax = max(opts.RetryMax, opts.RetryBase)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{
		store:    store,
		opts:     opts,
		log:      opts.Logger,
		ch:       make(chan queued, opts.QueueSize),
		wake:     make(chan struct{}, 1),
		drain:    make(chan struct{}),
		done:     make(chan struct{}),
		syncWake: make(chan struct{}, 1),
		syncDone: make(chan struct{}),
	}
	if opts.JournalDir != "" {
		j, start, err := openJournal(opts.JournalDir, opts.SegmentBytes)
		if err != nil {
			return nil, fmt.Errorf("traces: open journal: %w", err)
		}
		w.j = j
		w.replayEnd = j.next
		if start.seq < j.next {
			// Leftovers are read back like a spill, so traces recorded meanwhile queue behind them.
			w.spilling, w.spillFrom = true, start
			w.log.Info("replaying trace journal", "dir", opts.JournalDir, "traces", j.next-start.seq, "bytes", j.bytes())
		}
	}
	return w, nil
}

// Start runs the goroutines that write to the store and fsync the journal. Cancelling ctx stops
// them without draining (the journal keeps what was not written); Close drains.
func (w *Writer) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrWriterClosed
	}
	if w.started {
		return errors.New("traces: writer already started")
	}
	w.startLocked(ctx)
	return nil
}

func (w *Writer) startLocked(ctx context.Context) {
	w.started = true
	ctx, w.cancel = context.WithCancel(ctx)
	go w.run(ctx)
	if w.j != nil {
		go w.syncLoop(ctx)
	} else {
		close(w.syncDone)
	}
}

// Record journals t and queues it for the store. It never waits for the store: with the queue
// full the trace waits in the journal only. It drops (and counts) t only when it can be neither
// journaled nor queued, or after Close. t must not be modified afterwards.
func (w *Writer) Record(t *Trace) {
	if t == nil {
		return
	}
	w.recorded.Add(1)
	var (
		payload []byte
		jerr    error
	)
	if w.j != nil {
		// Encoded outside the lock: it is the expensive part and needs no ordering.
		if payload, jerr = encodeRecord(t); jerr != nil {
			jerr = fmt.Errorf("encode trace: %w", jerr)
		}
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.drop(t, ErrWriterClosed)
		return
	}
	q := queued{t: t}
	if w.j != nil && jerr == nil {
		var pos position
		if pos, jerr = w.j.append(payload); jerr == nil {
			q.seq, q.journaled = pos.seq, true
			w.journalWrittenLocked()
			if !w.spilling {
				select {
				case w.ch <- q:
					full := len(w.ch) >= w.opts.BatchSize
					w.mu.Unlock()
					if full || w.wakeIdle() {
						w.poke()
					}
					return
				default:
				}
				// Queue full: from here on traces wait in the journal until run catches up.
				w.spilling, w.spillFrom = true, pos
			}
			w.mu.Unlock()
			w.poke()
			return
		}
	}
	// Not journaled (no journal, or it failed): the queue is all that is left.
	select {
	case w.ch <- q:
		full := len(w.ch) >= w.opts.BatchSize
		w.mu.Unlock()
		if full || w.wakeIdle() {
			w.poke()
		}
		if jerr != nil {
			w.warnLimited(&w.jErrLogAt, "trace journal write failed; trace kept in memory only", "id", t.ID, "err", jerr)
		}
		return
	default:
	}
	w.mu.Unlock()
	if jerr == nil {
		jerr = errors.New("queue full and no journal")
	}
	w.drop(t, jerr)
}

func (w *Writer) poke() { signal(w.wake) }

// signal wakes the goroutine waiting on ch, or leaves a wake-up it will find.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// wakeIdle says whether run is idle, and takes it out of idle: the caller pokes it. Record
// sends to the queue before it reads idle, and run sets idle before it reads the queue, so one
// of the two sees the other's write (atomics and channels are sequentially consistent).
func (w *Writer) wakeIdle() bool {
	return w.idle.Load() && w.idle.CompareAndSwap(true, false)
}

// journalWrittenLocked wakes syncLoop if it sleeps: the journal has something to fsync.
func (w *Writer) journalWrittenLocked() {
	if w.syncIdle {
		w.syncIdle = false
		signal(w.syncWake)
	}
}

func (w *Writer) drop(t *Trace, reason error) {
	n := w.dropped.Add(1)
	w.noteError(reason)
	w.warnLimited(&w.dropLogAt, "dropping traces", "id", t.ID, "reason", reason, "dropped_total", n)
}

// warnLimited logs at most once a minute per at: a full disk must not flood the log too.
func (w *Writer) warnLimited(at *atomic.Int64, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := at.Load()
	if last != 0 && now-last < int64(time.Minute) {
		return
	}
	if at.CompareAndSwap(last, now) {
		w.log.Warn(msg, args...)
	}
}

func (w *Writer) noteError(err error) {
	w.mu.Lock()
	w.lastErr, w.lastErrAt = err.Error(), time.Now()
	w.mu.Unlock()
}

// Close stops accepting traces, writes everything queued or journaled to the store and closes
// the journal, which is then empty. If ctx ends first, Close stops writing and keeps the journal
// for the next start, and returns ctx's error. Close does not close the store.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrWriterClosed
	}
	w.closed = true
	if !w.started {
		w.startLocked(context.Background())
	}
	w.mu.Unlock()

	close(w.drain)
	var cause error
	select {
	case <-w.done:
	case <-ctx.Done():
		cause = ctx.Err()
		w.cancel()
		<-w.done
	}
	w.cancel()
	<-w.syncDone

	w.mu.Lock()
	defer w.mu.Unlock()
	var jerr error
	if w.j != nil {
		if w.drained {
			jerr = w.j.removeAll()
		} else {
			jerr = w.j.close()
		}
	} else if !w.drained {
		w.dropped.Add(uint64(len(w.ch)))
	}
	if jerr != nil {
		jerr = fmt.Errorf("traces: close journal: %w", jerr)
	}
	if !w.drained {
		if cause == nil {
			cause = errors.New("writer was stopped")
		}
		where := "they are lost"
		if w.j != nil {
			where = "the journal keeps them for the next start"
		}
		return errors.Join(fmt.Errorf("traces: closed before all traces were written (%s): %w", where, cause), jerr)
	}
	return jerr
}

// Stats returns the current counters.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	s := WriterStats{StoreDown: w.storeDown, LastError: w.lastErr, LastErrorAt: w.lastErrAt}
	if w.j != nil {
		s.JournalBytes = w.j.bytes()
		if w.spilling {
			s.Spilled = w.j.next - max(w.spillFrom.seq, w.readSeq.Load())
		}
	}
	w.mu.Unlock()
	s.Recorded = w.recorded.Load()
	s.Written = w.written.Load()
	s.Replayed = w.replayed.Load()
	s.Queued = len(w.ch)
	s.Retries = w.retries.Load()
	s.Dropped = w.dropped.Load()
	s.Rejected = w.rejected.Load()
	return s
}

// run writes batches to the store, one at a time, until ctx ends or a drain completes. It is
// not woken per trace: a partial batch is flushed FlushInterval after it began, and Record wakes
// run only when a batch is full or when run is idle (nothing queued, no flush pending), so a busy
// gateway costs one wake-up per batch, not per request, and an idle one none at all. It runs at a
// lower priority than the request path (runAtLowPriority).
func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	runAtLowPriority(w.log, func() { w.loop(ctx) })
}

// loop is run's body.
func (w *Writer) loop(ctx context.Context) {
	var (
		batch    []queued
		traces   []*Trace
		draining bool
		flushDue bool
		armed    bool // flush runs
	)
	drain := w.drain
	flush := time.NewTimer(w.opts.FlushInterval)
	flush.Stop()
	defer flush.Stop()
	defer func() {
		if w.j == nil {
			w.dropped.Add(uint64(len(batch))) // nowhere else to keep them
		}
	}()
	for {
		var rerr error
		batch, rerr = w.fill(batch)
		if len(batch) > 0 && (len(batch) >= w.opts.BatchSize || draining || flushDue) {
			if !w.commit(ctx, batch, &traces) {
				return
			}
			clear(batch)
			batch = batch[:0]
			continue
		}
		flushDue = false
		if draining && len(batch) == 0 && rerr == nil && w.finishDrain() {
			return
		}
		if !armed && (len(batch) > 0 || rerr != nil) {
			flush.Reset(w.opts.FlushInterval) // a failed journal read is retried then too
			armed = true
		}
		if !armed && !draining {
			w.idle.Store(true)
			// Record queues a trace and then reads idle: one queued before idle was set did not
			// wake run, and is found here.
			if batch, rerr = w.fill(batch); len(batch) > 0 || rerr != nil {
				w.idle.Store(false)
				continue
			}
		}
		select {
		case <-w.wake:
		case <-flush.C:
			armed, flushDue = false, true
		case <-drain:
			draining, drain = true, nil
		case <-ctx.Done():
			return
		}
		w.idle.Store(false)
	}
}

// fill tops batch up from the queue and then, while spilling, from the journal.
func (w *Writer) fill(batch []queued) ([]queued, error) {
	for {
		for len(batch) < w.opts.BatchSize {
			select {
			case q := <-w.ch:
				batch = append(batch, q)
				continue
			default:
			}
			break
		}
		if len(batch) >= w.opts.BatchSize || w.j == nil {
			return batch, nil
		}
		w.mu.Lock()
		if !w.spilling {
			w.mu.Unlock()
			return batch, nil
		}
		// Records may have filled the queue since it was emptied above; those come first. Once
		// spilling, nothing journaled enters the queue, so the check under the lock is final.
		if len(w.ch) == 0 {
			break
		}
		w.mu.Unlock()
	}
	if !w.reading {
		// batch has (or the store already has) everything journaled before spillFrom.
		w.cur, w.reading = w.spillFrom, true
		w.readSeq.Store(w.cur.seq)
	}
	end := w.j.next
	if w.cur.seq >= end {
		w.spilling, w.reading = false, false // caught up: Record queues again
		w.mu.Unlock()
		return batch, nil
	}
	segs := slices.Clone(w.j.segs)
	w.mu.Unlock()

	recs, skipped, err := w.j.read(&w.cur, end, segs, w.opts.BatchSize-len(batch))
	w.readSeq.Store(w.cur.seq)
	for _, r := range recs {
		batch = append(batch, queued{t: r.trace, seq: r.seq, journaled: true})
	}
	if skipped > 0 {
		w.dropped.Add(skipped)
		w.log.Error("trace journal: skipped unreadable records", "count", skipped)
	}
	if err != nil {
		w.noteError(err)
		w.warnLimited(&w.jErrLogAt, "trace journal read failed", "err", err)
		if errors.Is(err, errTorn) {
			// Corruption in the active segment: retire it so the next read can move past it.
			w.mu.Lock()
			if n := len(w.j.segs); n > 0 && w.j.segs[n-1].base == w.cur.base {
				if rerr := w.j.rotate(); rerr != nil {
					err = errors.Join(err, rerr)
				}
				w.journalWrittenLocked()
			}
			w.mu.Unlock()
		}
		return batch, err
	}
	return batch, nil
}

// finishDrain reports whether nothing is left to write, and marks the drain complete.
func (w *Writer) finishDrain() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ch) > 0 || w.spilling {
		return false
	}
	w.drained = true
	return true
}

// commit writes batch until the store takes it, backing off between failures. It returns false
// when ctx ends first.
func (w *Writer) commit(ctx context.Context, batch []queued, traces *[]*Trace) bool {
	ts := (*traces)[:0]
	var (
		maxSeq    uint64
		journaled bool
	)
	for _, q := range batch {
		ts = append(ts, q.t)
		if q.journaled {
			maxSeq, journaled = max(maxSeq, q.seq), true
		}
	}
	defer func() {
		clear(ts)
		*traces = ts[:0]
	}()
	if !w.isolate(ctx, ts, batch) {
		return false
	}
	w.storeRecovered()
	if journaled {
		w.trim(maxSeq)
	}
	return true
}

// isolate writes ts (the traces of batch); when the store rejects them it writes each half on
// its own, down to single traces, which are then set aside: one bad trace costs log2(batch)
// extra writes and never blocks the others. It returns false when ctx ends first.
func (w *Writer) isolate(ctx context.Context, ts []*Trace, batch []queued) bool {
	err := w.writeRetrying(ctx, ts)
	switch {
	case err == nil:
		var replayed uint64
		for _, q := range batch {
			if q.journaled && q.seq < w.replayEnd {
				replayed++
			}
		}
		w.replayed.Add(replayed)
		w.written.Add(uint64(len(ts)))
		if w.opts.OnWritten != nil {
			w.opts.OnWritten(ts)
		}
		return true
	case ctx.Err() != nil:
		return false
	case len(ts) == 1:
		w.reject(ts[0], err)
		return true
	}
	half := len(ts) / 2
	return w.isolate(ctx, ts[:half], batch[:half]) && w.isolate(ctx, ts[half:], batch[half:])
}

// writeRetrying writes ts until the store takes it or rejects it (ErrRejected), backing off
// between failures; it returns nil, the rejection, or ctx's error.
func (w *Writer) writeRetrying(ctx context.Context, ts []*Trace) error {
	for attempt := 0; ; attempt++ {
		err := w.store.Write(ctx, ts)
		if err == nil || errors.Is(err, ErrRejected) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.retries.Add(1)
		w.storeFailed(err)
		t := time.NewTimer(w.backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// reject appends t to RejectedFile; without a journal folder (or when that fails) it is dropped.
func (w *Writer) reject(t *Trace, cause error) {
	w.noteError(cause)
	if w.j == nil {
		w.drop(t, cause)
		return
	}
	line, err := json.Marshal(struct {
		RejectedAt time.Time `json:"rejected_at"`
		Error      string    `json:"error"`
		Trace      *Trace    `json:"trace"`
	}{time.Now().UTC(), cause.Error(), t})
	if err == nil {
		err = appendLine(filepath.Join(w.opts.JournalDir, RejectedFile), line)
	}
	if err != nil {
		w.drop(t, fmt.Errorf("%w; and keeping it failed: %w", cause, err))
		return
	}
	n := w.rejected.Add(1)
	w.log.Error("trace store rejected a trace; kept in "+RejectedFile, "id", t.ID, "err", cause, "rejected_total", n)
}

func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(append(line, '\n'))
	return errors.Join(werr, f.Sync(), f.Close())
}

// backoff is exponential from RetryBase to RetryMax with jitter, so several writers (or a
// restarted store) do not retry in lockstep.
func (w *Writer) backoff(attempt int) time.Duration {
	d := w.opts.RetryMax
	if attempt < 30 {
		d = min(w.opts.RetryBase<<attempt, w.opts.RetryMax)
	}
	return d/2 + rand.N(d/2+1)
}

// storeFailed records err and logs the start of an outage once.
func (w *Writer) storeFailed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastErr, w.lastErrAt = err.Error(), time.Now()
	if !w.storeDown {
		w.storeDown, w.downSince = true, time.Now()
		w.log.Warn("trace store unavailable; keeping traces in the queue and journal and retrying", "err", err)
	}
}

func (w *Writer) storeRecovered() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.storeDown {
		w.storeDown = false
		w.log.Info("trace store recovered", "after", time.Since(w.downSince).Round(time.Millisecond), "retries", w.retries.Load())
	}
}

// trim deletes the journal segments the store has now committed entirely.
func (w *Writer) trim(committed uint64) {
	w.mu.Lock()
	paths := w.j.trimmable(committed)
	var s syncFiles
	if len(paths) > 0 {
		s = w.j.takeSync() // closes retired files before they are removed
	}
	w.mu.Unlock()
	if len(paths) == 0 {
		return
	}
	errs := []error{s.do()}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		w.warnLimited(&w.jErrLogAt, "trace journal cleanup failed", "err", err)
	}
}

// syncLoop fsyncs the journal every FlushInterval, off the Record path, while it is written:
// a round with nothing to fsync puts it to sleep until the next append.
func (w *Writer) syncLoop(ctx context.Context) {
	defer close(w.syncDone)
	t := time.NewTimer(w.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		s := w.j.takeSync()
		w.syncIdle = s.empty()
		w.mu.Unlock()
		if s.empty() {
			select {
			case <-ctx.Done():
				return
			case <-w.syncWake:
			}
		} else if err := s.do(); err != nil && !errors.Is(err, os.ErrClosed) {
			w.noteError(err)
			w.warnLimited(&w.jErrLogAt, "trace journal fsync failed", "err", err)
		}
		t.Reset(w.opts.FlushInterval)
	}
}

// Compile-time check that the Writer is a Sink.
var _ Sink = (*Writer)(nil)
