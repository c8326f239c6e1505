// Package events is the in-process publish/subscribe hub behind /api/events. Feature packages
// publish (traces, job progress, GPU samples); the server streams to the UI as server-sent events.
//
// A slow subscriber never slows a publisher: each has a bounded buffer, and one that overflows is
// evicted (its channel closed) so that it reconnects and refetches, instead of silently missing
// events. Recent events are kept so a reconnecting client resumes from its Last-Event-ID.
package events

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
)

// Event is one published message with its JSON payload encoded once for all subscribers.
type Event struct {
	ID   uint64
	Type string
	Data json.RawMessage
}

// Options size the hub; zero values take the defaults.
type Options struct {
	// History is how many recent events are kept for resuming clients (default 256).
	History int
	// Buffer is how many events may wait for one subscriber before it is evicted (default 256).
	Buffer int
}

// Hub fans events out to subscribers. The zero value is not usable: call NewHub.
type Hub struct {
	buffer int

	mu      sync.Mutex
	nextID  uint64
	history []Event // ring, len == cap once full
	start   int     // index of the oldest event in history
	subs    map[*Subscription]struct{}
	closed  bool

	evicted atomic.Uint64
}

// NewHub returns an empty hub.
func NewHub(opts Options) *Hub {
	if opts.History <= 0 {
		opts.History = 256
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	return &Hub{
		buffer:  opts.Buffer,
		nextID:  1,
		history: make([]Event, 0, opts.History),
		subs:    make(map[*Subscription]struct{}),
	}
}

// Subscription receives events until it is closed, evicted or the hub closes.
type Subscription struct {
	hub     *Hub
	ch      chan Event
	evicted bool // guarded by hub.mu
}

// Events delivers events in publish order. It is closed when the subscription ends.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Evicted reports whether the subscription ended because the subscriber fell behind.
func (s *Subscription) Evicted() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.evicted
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s)
}

// Publish encodes v as JSON and delivers it to every subscriber without blocking.
func (h *Hub) Publish(eventType string, v any) (Event, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s event: %w", eventType, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return Event{}, ErrClosed
	}
	ev := Event{ID: h.nextID, Type: eventType, Data: data}
	h.nextID++
	if len(h.history) < cap(h.history) {
		h.history = append(h.history, ev)
	} else {
		h.history[h.start] = ev
		h.start = (h.start + 1) % len(h.history)
	}
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			s.evicted = true
			h.evicted.Add(1)
			h.removeLocked(s)
		}
	}
	return ev, nil
}

// Subscribe starts a subscription. With resume set, events published after lastID are delivered
// first; complete is false when some of them are no longer kept (the client must refetch).
func (h *Hub) Subscribe(lastID uint64, resume bool) (sub *Subscription, complete bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false, ErrClosed
	}
	sub = &Subscription{hub: h, ch: make(chan Event, h.buffer)}
	complete = true
	if resume {
		missed := h.sinceLocked(lastID)
		oldest := h.nextID
		if len(h.history) > 0 {
			oldest = h.history[h.start].ID
		}
		switch {
		case lastID >= h.nextID: // an ID from an earlier run of the server
			complete = false
		case lastID+1 < oldest || len(missed) > h.buffer:
			complete = false
		default:
			for _, ev := range missed {
				sub.ch <- ev
			}
		}
	}
	h.subs[sub] = struct{}{}
	return sub, complete, nil
}

func (h *Hub) sinceLocked(lastID uint64) []Event {
	var out []Event
	for i := range h.history {
		ev := h.history[(h.start+i)%len(h.history)]
		if ev.ID > lastID {
			out = append(out, ev)
		}
	}
	return out
}

func (h *Hub) removeLocked(s *Subscription) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// Stats returns the number of subscribers and how many were evicted since start.
func (h *Hub) Stats() (subscribers int, evicted uint64) {
	h.mu.Lock()
	n := len(h.subs)
	h.mu.Unlock()
	return n, h.evicted.Load()
}

// Close ends every subscription; later Publish and Subscribe calls fail with ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.removeLocked(s)
	}
}

// ErrClosed is returned after Close.
var ErrClosed = fmt.Errorf("event hub closed")
