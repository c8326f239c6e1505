package traces

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// journalAppend appends traces with the given IDs and returns the byte offset of each frame.
func journalAppend(t *testing.T, j *journal, ids ...string) []int64 {
	t.Helper()
	var offs []int64
	for _, id := range ids {
		payload := fmt.Appendf(nil, `{"id":%q,"endpoint":"chat.completions","input":[{"role":"user","content":"hello %s"}]}`, id, id)
		pos, err := j.append(payload)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, pos.off)
	}
	return offs
}

// journalReadAll opens dir as a new run would and reads back every record left in it.
func journalReadAll(t *testing.T, dir string, appendAfterOpen ...string) []string {
	t.Helper()
	j, start, err := openJournal(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer j.f.Close() // no fsync: this runs hundreds of times
	journalAppend(t, j, appendAfterOpen...)
	pos := start
	recs, skipped, err := j.read(&pos, j.next, j.segs, 1000)
	if err != nil || skipped != 0 {
		t.Fatalf("read: %v, skipped %d", err, skipped)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.trace.ID)
	}
	return ids
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+journalExt))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestJournalTornTailIsIgnored(t *testing.T) {
	src := t.TempDir()
	j, _, err := openJournal(src, 0)
	if err != nil {
		t.Fatal(err)
	}
	offs := journalAppend(t, j, "a", "b", "c")
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	files := segmentFiles(t, src)
	if len(files) != 1 {
		t.Fatalf("segments = %v", files)
	}
	whole, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	last := offs[2]
	// Every length of the last frame short of complete, from nothing of it to all but one byte.
	for cut := last; cut < int64(len(whole)); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(files[0])), whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(journalReadAll(t, dir, "d"), ",")
		if got != "a,b,d" {
			t.Fatalf("cut at %d of %d: replayed %q, want a,b,d", cut, len(whole), got)
		}
	}
	// A flipped bit anywhere in the last frame fails its checksum (or its length check).
	for i := last; i < int64(len(whole)); i++ {
		dir := t.TempDir()
		bad := bytes.Clone(whole)
		bad[i] ^= 0x10
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(files[0])), bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(journalReadAll(t, dir), ","); got != "a,b" {
			t.Fatalf("bit flipped at %d: replayed %q, want a,b", i, got)
		}
	}
	if got := strings.Join(journalReadAll(t, src), ","); got != "a,b,c" {
		t.Errorf("intact journal replayed %q", got)
	}
}

func TestJournalRotatesAndTrims(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j, _, err := openJournal(dir, 300)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	journalAppend(t, j, ids...)
	if len(j.segs) < 4 {
		t.Fatalf("%d segments after 20 records of ~100 bytes with 300-byte segments", len(j.segs))
	}
	if err := j.takeSync().do(); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		info, err := os.Stat(dir)
		if err != nil || info.Mode().Perm() != 0o700 {
			t.Errorf("journal dir mode %v, %v", info.Mode(), err)
		}
		for _, f := range segmentFiles(t, dir) {
			if info, err := os.Stat(f); err != nil || info.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, %v", f, info.Mode(), err)
			}
		}
	}
	// Records 0..9 committed: the segments holding nothing above 9 go, the one holding 10 stays.
	paths := j.trimmable(9)
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	oldest := j.segs[0].base
	if len(paths) == 0 || oldest > 10 || j.segs[1].base <= 10 {
		t.Errorf("trimmed %d segments, left %v", len(paths), j.segs)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(journalReadAll(t, dir), ","), strings.Join(ids[oldest:], ","); got != want {
		t.Errorf("after trimming replayed %s, want %s", got, want)
	}
}

func TestJournalEmptyLeftoverSegmentIsRemoved(t *testing.T) {
	dir := t.TempDir()
	// A previous run died right after creating a segment.
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 7, journalExt)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := journalReadAll(t, dir, "x"); strings.Join(got, ",") != "x" {
		t.Errorf("replayed %v", got)
	}
}

func TestJournalLargeRecord(t *testing.T) {
	dir := t.TempDir()
	j, _, err := openJournal(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 3<<20)
	if _, err := j.append(fmt.Appendf(nil, `{"id":"big","error":%q}`, big)); err != nil {
		t.Fatal(err)
	}
	journalAppend(t, j, "small")
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(journalReadAll(t, dir), ","); got != "big,small" {
		t.Errorf("replayed %q", got)
	}
}
