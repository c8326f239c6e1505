package gateway

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dripBody returns one byte per read after pause, n times, then EOF; with stall, it then blocks
// until closed instead.
type dripBody struct {
	pause time.Duration
	n     int
	stall chan struct{}
}

func (b *dripBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		if b.stall != nil {
			<-b.stall
		}
		return 0, io.EOF
	}
	time.Sleep(b.pause)
	b.n--
	p[0] = 'x'
	return 1, nil
}

func (b *dripBody) Close() error {
	if b.stall != nil {
		close(b.stall)
	}
	return nil
}

// A stream that keeps sending outlives its idle timeout many times over; one that goes silent
// is cancelled about a timeout after its last byte.
func TestIdleReader(t *testing.T) {
	t.Parallel()
	const timeout = 60 * time.Millisecond

	var cancelled atomic.Bool
	ir := newIdleReader(timeout, func() { cancelled.Store(true) })
	ir.attach(&dripBody{pause: timeout / 4, n: 24}) // 6 timeouts long
	if _, err := io.Copy(io.Discard, ir.reader()); err != nil {
		t.Fatal(err)
	}
	if cancelled.Load() || ir.expired() {
		t.Fatal("a stream sending every quarter of its idle timeout was cancelled")
	}
	ir.close()

	var at atomic.Int64
	start := time.Now()
	ir = newIdleReader(timeout, func() { at.Store(int64(time.Since(start))) })
	ir.attach(io.NopCloser(strings.NewReader("data")))
	if _, err := io.Copy(io.Discard, ir.reader()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for at.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := time.Duration(at.Load()); got < timeout || !ir.expired() {
		t.Errorf("silent stream cancelled after %v (expired %v), want after %v", got, ir.expired(), timeout)
	}
	ir.close()

	// Silence after a while of data, well past the first timeout: cut a timeout after the last byte.
	lastByte := make(chan time.Time, 1)
	var cutAt atomic.Int64
	ir = newIdleReader(timeout, func() { cutAt.Store(time.Now().UnixNano()) })
	body := &dripBody{pause: timeout / 4, n: 12, stall: make(chan struct{})}
	ir.attach(body)
	go func() {
		for range 12 {
			if _, err := ir.reader().ReadByte(); err != nil {
				return
			}
		}
		lastByte <- time.Now()
	}()
	last := <-lastByte
	for cutAt.Load() == 0 && time.Since(last) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if got := time.Unix(0, cutAt.Load()).Sub(last); cutAt.Load() == 0 || got < timeout-10*time.Millisecond {
		t.Errorf("stream silent after 3 timeouts of data cut %v after its last byte, want about %v", got, timeout)
	}
	ir.close()

	// Once stopped, it never fires.
	cancelled.Store(false)
	ir = newIdleReader(timeout, func() { cancelled.Store(true) })
	ir.stop()
	time.Sleep(2 * timeout)
	if cancelled.Load() {
		t.Error("a stopped idle timer cancelled its stream")
	}
}
