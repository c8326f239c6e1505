package local

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakePool is a pool whose engines are empty values: it tests the bookkeeping, not the models.
type fakePool struct {
	*pool
	mu     sync.Mutex
	opened []string
	closed []string
	names  map[*engine]string
	stamps map[string]string
	fail   map[string]error
	gate   chan struct{} // when set, opens wait for it
	clock  time.Time
}

func newFakePool(t *testing.T, max int) *fakePool {
	f := &fakePool{names: map[*engine]string{}, stamps: map[string]string{}, fail: map[string]error{}, clock: time.Unix(1000, 0)}
	open := func(ctx context.Context, m Model) (*engine, error) {
		f.mu.Lock()
		gate := f.gate
		f.opened = append(f.opened, m.Name)
		err := f.fail[m.Name]
		f.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if err != nil {
			return nil, err
		}
		e := &engine{}
		f.mu.Lock()
		f.names[e] = m.Name
		f.mu.Unlock()
		return e, nil
	}
	stamp := func(m Model) string {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.stamps[m.Name]
	}
	f.pool = newPool(max, time.Minute, open, stamp)
	f.now = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.clock }
	f.closeEngine = func(e *engine) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.closed = append(f.closed, f.names[e])
	}
	t.Cleanup(f.close)
	return f
}

// get acquires name, resolving it to a model with the current stamp.
func (f *fakePool) get(t *testing.T, name string) *entry {
	t.Helper()
	e, err := f.try(t.Context(), name)
	if err != nil {
		t.Fatalf("acquire %s: %v", name, err)
	}
	return e
}

func (f *fakePool) try(ctx context.Context, name string) (*entry, error) {
	return f.acquire(ctx, name, func() (Model, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, ok := f.stamps[name]
		if !ok {
			s = "v1"
			f.stamps[name] = s
		}
		return Model{Name: name, stamp: s}, nil
	})
}

func (f *fakePool) use(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		f.release(f.get(t, n))
	}
}

func (f *fakePool) loaded() []string {
	var out []string
	for _, m := range f.status() {
		out = append(out, m.Name)
	}
	return out
}

func (f *fakePool) record() (opened, closed []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.opened), slices.Clone(f.closed)
}

func TestPoolKeepsTheMostRecentlyUsed(t *testing.T) {
	f := newFakePool(t, 2)
	f.use(t, "a", "b", "a", "c") // b is the least recently used when c arrives
	if got := f.loaded(); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("loaded %v", got)
	}
	f.use(t, "a")
	opened, closed := f.record()
	if !slices.Equal(opened, []string{"a", "b", "c"}) || !slices.Equal(closed, []string{"b"}) {
		t.Errorf("opened %v closed %v", opened, closed)
	}
}

func TestPoolClosesAnEvictedModelAfterItsLastRequest(t *testing.T) {
	f := newFakePool(t, 1)
	a := f.get(t, "a")
	f.use(t, "b")
	if _, closed := f.record(); len(closed) != 0 {
		t.Fatalf("closed %v while a request uses it", closed)
	}
	f.release(a)
	if _, closed := f.record(); !slices.Equal(closed, []string{"a"}) {
		t.Errorf("closed %v after the last release", closed)
	}
}

func TestPoolLoadsOnceForConcurrentRequests(t *testing.T) {
	f := newFakePool(t, 1)
	f.gate = make(chan struct{})
	var wg sync.WaitGroup
	entries := make([]*entry, 5)
	for i := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			entries[i] = f.get(t, "a")
		}()
	}
	time.Sleep(10 * time.Millisecond)
	if st := f.status(); len(st) != 1 || !st[0].Loading {
		t.Errorf("status while loading %+v", st)
	}
	close(f.gate)
	wg.Wait()
	for _, e := range entries {
		if e != entries[0] {
			t.Error("two entries for one model")
		}
		f.release(e)
	}
	if opened, _ := f.record(); len(opened) != 1 {
		t.Errorf("opened %v", opened)
	}
}

func TestPoolLoadOutlivesAnImpatientRequest(t *testing.T) {
	f := newFakePool(t, 1)
	f.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.try(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	f.mu.Lock()
	close(f.gate) // the load completes for the next request
	f.gate = nil
	f.mu.Unlock()
	f.use(t, "a")
	if opened, closed := f.record(); len(opened) != 1 || len(closed) != 0 {
		t.Errorf("opened %v closed %v", opened, closed)
	}
}

func TestPoolRemembersFailuresPerVersion(t *testing.T) {
	f := newFakePool(t, 1)
	boom := errors.New("boom")
	f.fail["a"] = boom
	for range 2 {
		if _, err := f.try(t.Context(), "a"); !errors.Is(err, boom) {
			t.Fatalf("err %v", err)
		}
	}
	if opened, _ := f.record(); len(opened) != 1 {
		t.Fatalf("a failed load was tried again at once: %v", opened)
	}
	f.mu.Lock()
	f.clock = f.clock.Add(2 * time.Minute)
	f.mu.Unlock()
	f.try(t.Context(), "a")
	f.mu.Lock()
	f.stamps["a"] = "v2" // fixed on disk: tried at once
	delete(f.fail, "a")
	f.mu.Unlock()
	f.use(t, "a")
	if opened, _ := f.record(); len(opened) != 3 {
		t.Errorf("opened %v", opened)
	}
}

func TestPoolReloadsWhatChangedOnDisk(t *testing.T) {
	f := newFakePool(t, 2)
	f.use(t, "a")
	f.mu.Lock()
	f.stamps["a"] = "v2"
	f.mu.Unlock()
	f.use(t, "a")
	opened, closed := f.record()
	if !slices.Equal(opened, []string{"a", "a"}) || !slices.Equal(closed, []string{"a"}) {
		t.Errorf("opened %v closed %v", opened, closed)
	}
}

func TestPoolTurnsAndClose(t *testing.T) {
	f := newFakePool(t, 1)
	e := f.get(t, "a")
	if err := e.lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := f.status(); !st[0].Busy {
		t.Error("not busy during a turn")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := e.lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second turn: %v", err)
	}
	e.unlock()
	f.release(e)
	f.close()
	if _, closed := f.record(); !slices.Equal(closed, []string{"a"}) {
		t.Errorf("closed %v", closed)
	}
	if _, err := f.try(t.Context(), "a"); !errors.Is(err, errClosed) {
		t.Errorf("after close: %v", err)
	}
}
