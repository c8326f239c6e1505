package traces

import (
	"fmt"
	"testing"
)

func TestMemorySinkKeepsNewest(t *testing.T) {
	m := NewMemorySink(3)
	if got := m.Recent(10); len(got) != 0 {
		t.Fatalf("empty sink returned %d", len(got))
	}
	for i := range 5 {
		changed := m.Changed()
		m.Record(&Trace{ID: fmt.Sprint(i)})
		<-changed
		got := m.Recent(10)
		want := min(i+1, 3)
		if len(got) != want || got[0].ID != fmt.Sprint(i) {
			t.Fatalf("after %d records: %d traces, newest %q", i+1, len(got), got[0].ID)
		}
	}
	ids := ""
	for _, tr := range m.Recent(0) {
		ids += tr.ID
	}
	if ids != "432" || m.Total() != 5 {
		t.Errorf("recent = %q total %d, want 432 and 5", ids, m.Total())
	}
	if got := m.Recent(2); len(got) != 2 || got[1].ID != "3" {
		t.Errorf("Recent(2) = %v", got)
	}
}

func TestMemorySinkBoundsPayloadBytes(t *testing.T) {
	m := NewMemorySink(100)
	m.maxBytes = 1000
	big := make([]byte, 400)
	for i := range 5 {
		m.Record(&Trace{ID: fmt.Sprint(i), Input: big})
	}
	ids := ""
	for _, tr := range m.Recent(0) {
		ids += tr.ID
	}
	if ids != "43" || m.bytes != 800 {
		t.Errorf("kept %q (%d bytes), want the newest two traces (800 bytes)", ids, m.bytes)
	}
	// One trace larger than the budget is still kept: the newest is never dropped.
	m.Record(&Trace{ID: "huge", Input: make([]byte, 5000)})
	if got := m.Recent(0); len(got) != 1 || got[0].ID != "huge" {
		t.Errorf("after a huge trace: %d traces", len(got))
	}
	m.Record(&Trace{ID: "small"})
	if got := m.Recent(0); len(got) != 1 || got[0].ID != "small" {
		t.Errorf("the huge trace should go first: %v", got)
	}
}
