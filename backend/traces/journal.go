package traces

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// The journal is the Writer's write-ahead log: every trace is appended before Record returns and
// the segments are deleted once the store has committed them, so a restart replays whatever the
// store had not taken.
//
// A segment is a file named after the sequence number of its first record (zero-padded so names
// sort), holding frames of
//
//	uint32 little-endian payload length | uint32 CRC-32C of length and payload | payload
//
// where the payload is one trace (see encodeRecord).
//
// Each frame is one write(2), so a killed process leaves complete frames in the page cache; a
// power loss may tear the last one, which the CRC detects and replay ignores. A new run never
// appends to an old segment: it starts a fresh one, so a torn tail is always the end of a file.

const (
	journalExt          = ".journal"
	frameHeaderBytes    = 8
	maxFrameBytes       = 512 << 20 // larger lengths can only be corruption
	defaultSegmentBytes = 16 << 20
)

// errTorn marks a frame that is incomplete or fails its checksum: the end of a segment's records.
var errTorn = errors.New("torn or corrupt journal record")

// segment is one journal file on disk.
type segment struct {
	base uint64 // sequence number of its first record
	size int64  // bytes of complete frames
}

// position locates a record: its segment, byte offset and sequence number.
type position struct {
	base uint64
	off  int64
	seq  uint64
}

// journal is not safe for concurrent use on its own: the Writer guards it with its mutex, except
// where a method says otherwise.
type journal struct {
	dir      string
	segBytes int64
	crc      *crc32.Table

	f        *os.File  // active segment (the last of segs); nil after a failed rotation or close
	segs     []segment // on disk, oldest first
	next     uint64    // sequence number of the next record
	buf      []byte    // frame being written
	unsynced []*os.File
	dirty    bool // active segment written since the last fsync
	dirDirty bool // a segment was created since the last directory fsync
}

// openJournal opens dir (creating it 0700), finds the segments a previous run left and starts a
// new active segment after them. It returns the position of the oldest record left behind and the
// sequence number the new run starts at; when nothing was left, both seqs are equal.
func openJournal(dir string, segBytes int64) (*journal, position, error) {
	if segBytes <= 0 {
		segBytes = defaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, position{}, fmt.Errorf("create journal dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, position{}, fmt.Errorf("read journal dir: %w", err)
	}
	j := &journal{dir: dir, segBytes: segBytes, crc: crc32.MakeTable(crc32.Castagnoli)}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), journalExt)
		if !ok || e.IsDir() {
			continue
		}
		base, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue // not ours
		}
		info, err := e.Info()
		if err != nil {
			return nil, position{}, fmt.Errorf("stat journal segment: %w", err)
		}
		j.segs = append(j.segs, segment{base: base, size: info.Size()})
	}
	slices.SortFunc(j.segs, func(a, b segment) int { return cmpUint(a.base, b.base) })

	// The next run numbers on from the last old segment's valid records; its torn tail, if any,
	// stays where it is and is skipped on replay.
	for len(j.segs) > 0 {
		last := &j.segs[len(j.segs)-1]
		count, valid, err := j.scan(last.base)
		if err != nil {
			return nil, position{}, err
		}
		if count > 0 {
			last.size = valid
			j.next = last.base + uint64(count)
			break
		}
		// Nothing readable: remove it so the new segment can never reuse its name.
		if err := os.Remove(j.path(last.base)); err != nil {
			return nil, position{}, fmt.Errorf("remove empty journal segment: %w", err)
		}
		j.segs = j.segs[:len(j.segs)-1]
	}
	start := position{seq: j.next}
	if len(j.segs) > 0 {
		start = position{base: j.segs[0].base, seq: j.segs[0].base}
	}
	if err := j.rotate(); err != nil {
		return nil, position{}, err
	}
	return j, start, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (j *journal) path(base uint64) string {
	return filepath.Join(j.dir, fmt.Sprintf("%020d%s", base, journalExt))
}

// scan counts the complete records of a segment and the bytes they take.
func (j *journal) scan(base uint64) (count int, valid int64, err error) {
	f, err := os.Open(j.path(base))
	if err != nil {
		return 0, 0, fmt.Errorf("open journal segment: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var buf []byte
	for {
		var n int
		buf, n, err = j.readFrame(br, buf)
		if errors.Is(err, io.EOF) || errors.Is(err, errTorn) {
			return count, valid, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("scan journal segment %d: %w", base, err)
		}
		count++
		valid += int64(n)
	}
}

// readFrame reads one frame into buf, returning the payload and the frame's size. It returns
// io.EOF at a clean end and errTorn for an incomplete or corrupt frame.
func (j *journal) readFrame(br *bufio.Reader, buf []byte) ([]byte, int, error) {
	var hdr [frameHeaderBytes]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return buf, 0, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return buf, 0, errTorn
		}
		return buf, 0, err
	}
	n := binary.LittleEndian.Uint32(hdr[0:4])
	if n > maxFrameBytes {
		return buf, 0, errTorn
	}
	if n <= 1<<20 {
		buf = slices.Grow(buf[:0], int(n))[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return buf, 0, errTorn
			}
			return buf, 0, err
		}
	} else {
		// Grow with the data actually there: a corrupt length must not allocate half a gigabyte.
		b := bytes.NewBuffer(buf[:0])
		got, err := io.CopyN(b, br, int64(n))
		if err != nil && !errors.Is(err, io.EOF) {
			return buf, 0, err
		}
		if buf = b.Bytes(); got < int64(n) {
			return buf, 0, errTorn
		}
	}
	sum := crc32.Update(crc32.Checksum(hdr[0:4], j.crc), j.crc, buf)
	if sum != binary.LittleEndian.Uint32(hdr[4:8]) {
		return buf, 0, errTorn
	}
	return buf, frameHeaderBytes + int(n), nil
}

// append writes payload as one frame and returns where it went. A failed write is cut off again
// so later frames never follow garbage.
func (j *journal) append(payload []byte) (position, error) {
	if len(payload) > maxFrameBytes {
		return position{}, fmt.Errorf("journal record of %d bytes is too large", len(payload))
	}
	if j.f == nil {
		if err := j.rotate(); err != nil {
			return position{}, err
		}
	}
	active := &j.segs[len(j.segs)-1]
	j.buf = binary.LittleEndian.AppendUint32(j.buf[:0], uint32(len(payload)))
	j.buf = binary.LittleEndian.AppendUint32(j.buf, crc32.Update(crc32.Checksum(j.buf[0:4], j.crc), j.crc, payload))
	j.buf = append(j.buf, payload...)
	if _, err := j.f.Write(j.buf); err != nil {
		if terr := j.f.Truncate(active.size); terr != nil {
			// The segment may end in garbage now: retire it and start a fresh one next time.
			j.unsynced = append(j.unsynced, j.f)
			j.f = nil
		}
		return position{}, fmt.Errorf("append to journal: %w", err)
	}
	pos := position{base: active.base, off: active.size, seq: j.next}
	active.size += int64(len(j.buf))
	j.next++
	j.dirty = true
	if active.size >= j.segBytes {
		// A failed rotation is retried on the next append; this record is written either way.
		_ = j.rotate()
	}
	if cap(j.buf) > 1<<20 {
		j.buf = nil // do not pin one huge trace's buffer
	}
	return pos, nil
}

// rotate starts a new active segment at the next sequence number. The old file is fsynced and
// closed later, off the caller's path.
func (j *journal) rotate() error {
	if j.f != nil && len(j.segs) > 0 && j.segs[len(j.segs)-1].size == 0 {
		return nil // the active segment is still empty
	}
	if n := len(j.segs); n > 0 && j.segs[n-1].base == j.next {
		// An empty retired segment has this name: reuse the file.
		if err := os.Remove(j.path(j.next)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove journal segment: %w", err)
		}
		j.segs = j.segs[:n-1]
	}
	f, err := os.OpenFile(j.path(j.next), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create journal segment: %w", err)
	}
	if j.f != nil {
		j.unsynced = append(j.unsynced, j.f)
	}
	j.f = f
	j.segs = append(j.segs, segment{base: j.next})
	j.dirDirty = true
	return nil
}

// syncFiles is what one fsync round needs, taken under the Writer's lock and synced outside it so
// that Record never waits for the disk.
type syncFiles struct {
	active  *os.File
	retired []*os.File
	dir     string
}

func (j *journal) takeSync() syncFiles {
	s := syncFiles{retired: j.unsynced}
	j.unsynced = nil
	if j.dirty {
		s.active = j.f
		j.dirty = false
	}
	if j.dirDirty {
		s.dir = j.dir
		j.dirDirty = false
	}
	return s
}

func (s syncFiles) empty() bool { return s.active == nil && len(s.retired) == 0 && s.dir == "" }

// do fsyncs and closes the retired segments, fsyncs the active one and the directory. It runs
// without the lock; the active file is only closed once no fsync can be running.
func (s syncFiles) do() error {
	var errs []error
	for _, f := range s.retired {
		errs = append(errs, f.Sync(), f.Close())
	}
	if s.active != nil {
		errs = append(errs, s.active.Sync())
	}
	if s.dir != "" {
		errs = append(errs, syncDir(s.dir))
	}
	return errors.Join(errs...)
}

// syncDir makes created and removed file names durable. Windows cannot fsync a directory.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// trimmable returns the segments whose records are all at or below committed, and forgets them;
// the active segment is never among them. The caller removes the files.
func (j *journal) trimmable(committed uint64) []string {
	var paths []string
	for len(j.segs) > 1 && j.segs[1].base <= committed+1 {
		paths = append(paths, j.path(j.segs[0].base))
		j.segs = j.segs[1:]
	}
	return paths
}

// bytes is the size of the journal on disk.
func (j *journal) bytes() int64 {
	var n int64
	for _, s := range j.segs {
		n += s.size
	}
	return n
}

// close fsyncs and closes every open segment, keeping the files for the next run.
func (j *journal) close() error {
	s := j.takeSync()
	s.active = j.f
	j.f = nil
	err := s.do()
	if s.active != nil {
		err = errors.Join(err, s.active.Close())
	}
	return err
}

// removeAll closes the journal and deletes its segments: everything in them is committed.
func (j *journal) removeAll() error {
	s := j.takeSync()
	errs := []error{s.do()}
	if j.f != nil {
		errs = append(errs, j.f.Close())
		j.f = nil
	}
	for _, seg := range j.segs {
		if err := os.Remove(j.path(seg.base)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	j.segs = nil
	errs = append(errs, syncDir(j.dir))
	return errors.Join(errs...)
}

// journalRecord is one record read back for the store.
type journalRecord struct {
	seq   uint64
	trace *Trace
}

// read returns up to max records from pos onwards, stopping before end, and advances pos. segs
// is a snapshot of the segments taken under the lock together with end; read itself runs without
// the lock, since records below end are complete on disk and nobody else moves pos. skipped counts
// records that could not be read (corruption before end) and are lost.
func (j *journal) read(pos *position, end uint64, segs []segment, max int) (recs []journalRecord, skipped uint64, err error) {
	var (
		f   *os.File
		br  *bufio.Reader
		buf []byte
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for len(recs) < max && pos.seq < end {
		if f == nil {
			f, err = os.Open(j.path(pos.base))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return recs, skipped, fmt.Errorf("open journal segment: %w", err)
			}
			if err == nil {
				if _, err = f.Seek(pos.off, io.SeekStart); err != nil {
					return recs, skipped, fmt.Errorf("seek journal segment: %w", err)
				}
				br = bufio.NewReaderSize(f, 1<<16)
			}
		}
		var n int
		if f != nil {
			buf, n, err = j.readFrame(br, buf)
		} else {
			err = errTorn // a missing segment is read as empty
		}
		if err == nil {
			t, derr := decodeRecord(buf)
			if derr != nil {
				t = nil // checksummed but not a trace: cannot happen short of a bug; skip it
				skipped++
			}
			if t != nil {
				recs = append(recs, journalRecord{seq: pos.seq, trace: t})
			}
			pos.off += int64(n)
			pos.seq++
			continue
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, errTorn) {
			return recs, skipped, fmt.Errorf("read journal segment: %w", err)
		}
		// End of this segment's readable records: go on with the next one.
		i, _ := slices.BinarySearchFunc(segs, pos.base+1, func(s segment, b uint64) int { return cmpUint(s.base, b) })
		if i == len(segs) {
			// Corruption in the newest segment before end: those records are lost.
			return recs, skipped + (end - pos.seq), fmt.Errorf("journal segment %d: %w", pos.base, errTorn)
		}
		if segs[i].base > pos.seq {
			skipped += min(segs[i].base, end) - pos.seq
		}
		if f != nil {
			f.Close()
			f = nil
		}
		*pos = position{base: segs[i].base, seq: segs[i].base}
	}
	return recs, skipped, nil
}
