package hub

import (
	"context"
	"errors"
	"testing"
)

func TestOneCallPerModelAtATime(t *testing.T) {
	h, err := New(Options{ModelsDir: t.TempDir(), Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !h.acquire("Qwen--Qwen3-0.6B") {
		t.Fatal("acquire failed")
	}
	if err := h.Delete("Qwen--Qwen3-0.6B"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Delete during a download: %v", err)
	}
	if _, err := h.Download(context.Background(), "Qwen/Qwen3-0.6B", "", nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Download: %v", err)
	}
	h.release("Qwen--Qwen3-0.6B")
	if err := h.Delete("Qwen--Qwen3-0.6B"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete after release: %v", err)
	}
}
