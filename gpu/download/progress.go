package download

import (
	"sync"
	"time"
)

// tracker turns byte counts into throttled Progress reports for one Fetch. A report held back by
// the throttle is sent by a timer shortly after, so a stalled transfer still shows its last bytes;
// the mutex keeps reports from that timer and from the download one at a time.
type tracker struct {
	mu       sync.Mutex
	trailing *time.Timer // pending report held back by the throttle
	closed   bool
	names    []string
	total    []int64 // per file; 0 while unknown
	done     []int64 // per file
	report   func(Progress)
	every    time.Duration
	last     time.Time // of the last report
	wire     int64     // bytes received since the last rate sample
	sampled  time.Time // when the rate was last sampled
	rate     float64   // smoothed bytes per second
	hasRate  bool
	nowFunc  func() time.Time
	current  int
	reported bool // whether the current file has been reported since it started
}

func newTracker(files []File, report func(Progress), every time.Duration) *tracker {
	t := &tracker{
		names:   make([]string, len(files)),
		total:   make([]int64, len(files)),
		done:    make([]int64, len(files)),
		report:  report,
		every:   every,
		nowFunc: time.Now,
	}
	for i, f := range files {
		t.names[i], t.total[i] = f.Name, max(f.Size, 0)
	}
	return t
}

// close stops reports: none may arrive after Fetch returns.
func (t *tracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.trailing != nil {
		t.trailing.Stop()
	}
}

// start begins file i (size 0 when unknown).
func (t *tracker) start(i int, size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.current, t.reported = i, false
	if size > 0 {
		t.total[i] = size
	}
	t.sampled = t.nowFunc()
	t.wire = 0
}

// resume records that file i continues from have bytes out of total (0 when unknown).
func (t *tracker) resume(i int, have, total int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done[i] = have
	if total > 0 {
		t.total[i] = total
	}
	t.emit(false, true)
}

// add counts n bytes received for file i.
func (t *tracker) add(i int, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done[i] += n
	t.wire += n
	t.emit(false, false)
}

// reset forgets the bytes of file i (its .part file was thrown away).
func (t *tracker) reset(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done[i] = 0
}

// finishAt marks file i, found in place with size bytes, as done.
func (t *tracker) finishAt(i int, size int64) {
	t.mu.Lock()
	t.done[i] = size
	t.mu.Unlock()
	t.finish(i)
}

// finish marks file i verified and in place.
func (t *tracker) finish(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total[i] == 0 {
		t.total[i] = t.done[i]
	}
	t.done[i] = t.total[i]
	t.emit(true, true)
}

// emit reports, or schedules a trailing report when the throttle holds this one back. The caller
// holds t.mu.
func (t *tracker) emit(complete, force bool) {
	if t.report == nil || t.closed {
		return
	}
	now := t.nowFunc()
	if wait := t.every - now.Sub(t.last); !force && t.reported && wait > 0 {
		if t.trailing == nil {
			t.trailing = time.AfterFunc(wait, t.flush)
		} else {
			t.trailing.Reset(wait)
		}
		return
	}
	if t.trailing != nil {
		t.trailing.Stop()
	}
	if dt := now.Sub(t.sampled).Seconds(); dt >= 0.05 || complete {
		if dt > 0 {
			inst := float64(t.wire) / dt
			// Smoothed so a burst or a short pause does not swing the shown rate and ETA.
			if t.hasRate {
				t.rate = 0.3*inst + 0.7*t.rate
			} else if t.wire > 0 {
				t.rate, t.hasRate = inst, true
			}
		}
		t.sampled, t.wire = now, 0
	}
	t.last, t.reported = now, true
	i := t.current
	p := Progress{
		File:         t.names[i],
		Index:        i,
		Count:        len(t.names),
		FileDone:     t.done[i],
		FileTotal:    t.total[i],
		BytesPerSec:  t.rate,
		FileComplete: complete,
	}
	for k := range t.names {
		p.Done += t.done[k]
		p.Total += t.total[k]
	}
	t.report(p)
}

// flush sends a report the throttle held back.
func (t *tracker) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.emit(false, true)
}
