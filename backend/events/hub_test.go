package events

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func publish(t *testing.T, h *Hub, n int) {
	t.Helper()
	for i := range n {
		if _, err := h.Publish("tick", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
}

func receive(t *testing.T, s *Subscription, n int) []Event {
	t.Helper()
	out := make([]Event, 0, n)
	for range n {
		ev, ok := <-s.Events()
		if !ok {
			t.Fatalf("subscription ended after %d of %d events", len(out), n)
		}
		out = append(out, ev)
	}
	return out
}

func TestPublishFansOutInOrder(t *testing.T) {
	h := NewHub(Options{})
	a, _, _ := h.Subscribe(0, false)
	b, _, _ := h.Subscribe(0, false)
	publish(t, h, 3)
	for _, s := range []*Subscription{a, b} {
		evs := receive(t, s, 3)
		for i, ev := range evs {
			if ev.ID != uint64(i+1) || ev.Type != "tick" || string(ev.Data) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Errorf("event %d = %+v", i, ev)
			}
		}
	}
}

func TestSlowSubscriberIsEvictedNotBlocking(t *testing.T) {
	h := NewHub(Options{Buffer: 4})
	slow, _, _ := h.Subscribe(0, false)
	fast, _, _ := h.Subscribe(0, false)
	for i := range 10 {
		publish(t, h, 1) // must not block on the slow subscriber
		if ev := receive(t, fast, 1)[0]; ev.ID != uint64(i+1) {
			t.Fatalf("fast subscriber got id %d, want %d", ev.ID, i+1)
		}
	}
	n := 0
	for range slow.Events() {
		n++
	}
	if n != 4 || !slow.Evicted() {
		t.Errorf("slow subscriber: received %d buffered events, evicted=%v; want 4 and evicted", n, slow.Evicted())
	}
	if clients, evicted := h.Stats(); clients != 1 || evicted != 1 {
		t.Errorf("Stats = %d clients, %d evicted; want 1, 1", clients, evicted)
	}
}

func TestResume(t *testing.T) {
	h := NewHub(Options{History: 8, Buffer: 8})
	publish(t, h, 5)

	s, complete, _ := h.Subscribe(3, true)
	if !complete {
		t.Fatal("resume within history must be complete")
	}
	if evs := receive(t, s, 2); evs[0].ID != 4 || evs[1].ID != 5 {
		t.Errorf("resumed events %d,%d; want 4,5", evs[0].ID, evs[1].ID)
	}

	publish(t, h, 10) // ids 6..15; history keeps 8..15
	if _, complete, _ := h.Subscribe(2, true); complete {
		t.Error("resume from an id older than the history must report missed events")
	}
	if _, complete, _ := h.Subscribe(7, true); !complete {
		t.Error("resume from the id just before the oldest kept event is complete")
	}
	if _, complete, _ := h.Subscribe(99, true); complete {
		t.Error("an id from a previous server run must report missed events")
	}
	if s, complete, _ := h.Subscribe(15, true); !complete || len(s.Events()) != 0 {
		t.Error("resume at the newest id: complete, nothing queued")
	}
}

func TestResumeLargerThanBufferIsIncomplete(t *testing.T) {
	h := NewHub(Options{History: 32, Buffer: 4})
	publish(t, h, 10)
	if _, complete, _ := h.Subscribe(1, true); complete {
		t.Error("missed events that do not fit the buffer must report missed events")
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	h := NewHub(Options{})
	s, _, _ := h.Subscribe(0, false)
	h.Close()
	if _, ok := <-s.Events(); ok {
		t.Error("subscription still open after hub Close")
	}
	s.Close() // idempotent after the hub closed it
	if _, err := h.Publish("x", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if _, _, err := h.Subscribe(0, false); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}

func TestPublishUnencodable(t *testing.T) {
	h := NewHub(Options{})
	if _, err := h.Publish("bad", func() {}); err == nil {
		t.Error("want an encode error")
	}
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	h := NewHub(Options{Buffer: 1024})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				_, _ = h.Publish("x", 1)
			}
		})
		wg.Go(func() {
			for range 50 {
				s, _, err := h.Subscribe(0, false)
				if err != nil {
					return
				}
				s.Close()
			}
		})
	}
	wg.Wait()
	if clients, _ := h.Stats(); clients != 0 {
		t.Errorf("%d subscriptions leaked", clients)
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, subs := range []int{0, 1, 16} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			h := NewHub(Options{Buffer: 1 << 16})
			for range subs {
				s, _, _ := h.Subscribe(0, false)
				go func() {
					for range s.Events() {
					}
				}()
			}
			payload := map[string]any{"trace": "0190f0e8", "model": "gpt-4o-mini", "latency_ms": 412}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Publish("trace.created", payload); err != nil {
					b.Fatal(err)
				}
			}
			h.Close()
		})
	}
}
