package server

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"opentracy/backend/api"
)

// Timings of /api/events.
const (
	// sseRetry tells EventSource how soon to reconnect after a stream ends.
	sseRetry = 2 * time.Second
	// sseKeepAlive sends a comment line so idle proxies and sleeping laptops notice dead streams.
	sseKeepAlive = 15 * time.Second
)

// streamEvents serves the event hub as server-sent events. A client reconnecting with
// Last-Event-ID gets what it missed, or a "reset" event when that is no longer kept.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	lastID, resume := lastEventID(r)
	sub, complete, err := s.hub.Subscribe(lastID, resume)
	if err != nil {
		openAIErrors.write(w, http.StatusServiceUnavailable, "server_error", "shutting_down", "the server is shutting down")
		return
	}
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx and friends: do not buffer
	w.WriteHeader(http.StatusOK)

	bw := bufio.NewWriter(w)
	bw.WriteString("retry: " + strconv.FormatInt(sseRetry.Milliseconds(), 10) + "\n\n")
	writeEvent(bw, 0, string(api.EventHello), mustJSON(api.Hello{Version: s.opts.Version, StartedAt: s.startedAt.UTC()}))
	if !complete {
		writeEvent(bw, 0, string(api.EventReset), []byte("{}"))
	}
	if flush(bw, rc) != nil {
		return
	}

	keepAlive := time.NewTicker(sseKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			bw.WriteString(": keep-alive\n\n")
		case ev, ok := <-sub.Events():
			if !ok {
				return // evicted or shutting down: the client reconnects and resumes or resets
			}
			writeEvent(bw, ev.ID, ev.Type, ev.Data)
			// Drain what is already queued so a burst costs one flush.
			for drained := false; !drained; {
				select {
				case ev, ok := <-sub.Events():
					if !ok {
						_ = flush(bw, rc)
						return
					}
					writeEvent(bw, ev.ID, ev.Type, ev.Data)
				default:
					drained = true
				}
			}
		}
		if flush(bw, rc) != nil {
			return
		}
	}
}

// lastEventID reads the resume point: the header EventSource sends on reconnect, or a query
// parameter for a fresh EventSource that wants to resume.
func lastEventID(r *http.Request) (uint64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	if v == "" {
		return 0, false
	}
	id, err := strconv.ParseUint(v, 10, 64)
	return id, err == nil
}

// writeEvent writes one event; data is one line of JSON (encoding/json never emits newlines).
func writeEvent(bw *bufio.Writer, id uint64, eventType string, data []byte) {
	if id != 0 {
		bw.WriteString("id: " + strconv.FormatUint(id, 10) + "\n")
	}
	bw.WriteString("event: " + eventType + "\ndata: ")
	bw.Write(data)
	bw.WriteString("\n\n")
}

// flush sends what is buffered. A writer that cannot flush (the desktop AssetServer's) writes
// straight through to the webview, so that is no reason to end the stream.
func flush(bw *bufio.Writer, rc *http.ResponseController) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// publishStats sends a server.stats sample while anyone is listening.
func (s *Server) publishStats(ctx context.Context) {
	t := time.NewTicker(s.opts.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			clients, evicted := s.hub.Stats()
			if clients == 0 {
				continue
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if _, err := s.hub.Publish(string(api.EventServerStats), api.ServerStats{
				Time:          now.UTC(),
				UptimeSeconds: now.Sub(s.startedAt).Seconds(),
				RSSBytes:      residentBytes(),
				HeapBytes:     ms.HeapAlloc,
				Goroutines:    runtime.NumGoroutine(),
				EventClients:  clients,
				EventsEvicted: evicted,
			}); err != nil {
				return // hub closed: shutting down
			}
		}
	}
}
