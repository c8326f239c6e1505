package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handMade builds a file byte by byte, independent of Write, to check that Open reads the
// format as specified (and not merely whatever Write produces).
func handMade(t *testing.T, header string, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, uint64(len(header)))
	buf.WriteString(header)
	buf.Write(data)
	p := filepath.Join(t.TempDir(), "x.safetensors")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenHandMade(t *testing.T) {
	data := make([]byte, 12)
	binary.LittleEndian.PutUint32(data[0:], math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(data[4:], math.Float32bits(-2))
	binary.LittleEndian.PutUint16(data[8:], 0x3f80)  // bf16 1.0
	binary.LittleEndian.PutUint16(data[10:], 0xc000) // bf16 -2.0
	p := handMade(t, `{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}`, data)
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := strings.Join(f.Names(), ","); got != "b,w" {
		t.Fatalf("names = %s", got)
	}
	if f.Metadata()["format"] != "pt" {
		t.Fatalf("metadata = %v", f.Metadata())
	}
	w, _ := f.Tensor("w")
	wv, err := ToFloat32(w)
	if err != nil || wv[0] != 1.5 || wv[1] != -2 {
		t.Fatalf("w = %v, %v", wv, err)
	}
	b, _ := f.Tensor("b")
	bv, err := ToFloat32(b)
	if err != nil || bv[0] != 1 || bv[1] != -2 || len(b.Shape) != 2 {
		t.Fatalf("b = %v %v, %v", bv, b.Shape, err)
	}
}

func TestOpenRejectsCorruptHeaders(t *testing.T) {
	for name, header := range map[string]string{
		"offsets past end": `{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`,
		"size mismatch":    `{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`,
		"unknown dtype":    `{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}`,
		"not json":         `{"w":`,
	} {
		t.Run(name, func(t *testing.T) {
			p := handMade(t, header, make([]byte, 8))
			if f, err := Open(p); err == nil {
				f.Close()
				t.Fatal("expected an error")
			}
		})
	}
	p := filepath.Join(t.TempDir(), "huge.safetensors")
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], 1<<40)
	_ = os.WriteFile(p, hdr[:], 0o644)
	if _, err := Open(p); err == nil {
		t.Fatal("expected an error for an absurd header length")
	}
}

func TestWriteRoundTripAndAlignment(t *testing.T) {
	vals := []float32{0, 1, -1, 3.14159, 1e-3, 65504, -0.5, 7}
	var ts []Tensor
	for _, dt := range []DType{BF16, F32, F16} {
		tt, err := FromFloat32("t_"+string(dt), []int{2, 4}, vals, dt)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tt)
	}
	ts = append(ts, Tensor{Name: "odd", DType: U8, Shape: []int{3}, Data: []byte{1, 2, 3}})
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(p, ts, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, dt := range []DType{BF16, F32, F16} {
		tt, err := f.Tensor("t_" + string(dt))
		if err != nil {
			t.Fatal(err)
		}
		if (f.base+f.entries[tt.Name].DataOffsets[0])%int64(dt.Size()) != 0 {
			t.Errorf("%s is not aligned", tt.Name)
		}
		got, _ := ToFloat32(tt)
		for i, v := range vals {
			tol := 0.0
			switch dt {
			case BF16:
				tol = math.Abs(float64(v)) / 128
			case F16:
				tol = math.Abs(float64(v)) / 1024
			}
			if math.Abs(float64(got[i]-v)) > tol {
				t.Errorf("%s[%d] = %v, want %v", dt, i, got[i], v)
			}
		}
	}
	if f.Metadata()["k"] != "v" {
		t.Errorf("metadata lost: %v", f.Metadata())
	}
	// The header must be valid JSON padded to 8 bytes, as other readers expect.
	raw, _ := os.ReadFile(p)
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 || !json.Valid(raw[8:8+n]) {
		t.Errorf("header length %d or JSON invalid", n)
	}
}

func TestHalfConversions(t *testing.T) {
	cases := []struct {
		f    float32
		bf16 uint16
		f16  uint16
	}{
		{1, 0x3f80, 0x3c00},
		{-2, 0xc000, 0xc000},
		{0.5, 0x3f00, 0x3800},
		{65504, 0x4780, 0x7bff},
		{float32(math.Inf(1)), 0x7f80, 0x7c00},
		{1.0 / 3, 0x3eab, 0x3555},
		{5.960464477539063e-08, 0x3380, 0x0001}, // smallest f16 subnormal
	}
	for _, c := range cases {
		if got := Float32ToBF16(c.f); got != c.bf16 {
			t.Errorf("bf16(%v) = %#x, want %#x", c.f, got, c.bf16)
		}
		if got := Float32ToF16(c.f); got != c.f16 {
			t.Errorf("f16(%v) = %#x, want %#x", c.f, got, c.f16)
		}
		if c.f16 != 0x3555 { // 1/3 is not exact in half
			if got := F16ToFloat32(c.f16); got != c.f {
				t.Errorf("f16 %#x -> %v, want %v", c.f16, got, c.f)
			}
		}
	}
	if !math.IsNaN(float64(BF16ToFloat32(Float32ToBF16(float32(math.NaN()))))) {
		t.Error("NaN did not survive bf16")
	}
}

func TestShardedDir(t *testing.T) {
	dir := t.TempDir()
	var ts []Tensor
	for _, name := range []string{"a", "b", "c", "d"} {
		tt, _ := FromFloat32(name, []int{16}, make([]float32, 16), F32) // 64 bytes each
		ts = append(ts, tt)
	}
	if err := WriteSharded(dir, ts, 128, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, IndexFile)); err != nil {
		t.Fatalf("no index: %v", err)
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "model-*-of-00002.safetensors"))
	if len(shards) != 2 {
		t.Fatalf("shards = %v", shards)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := strings.Join(d.Names(), ""); got != "abcd" {
		t.Fatalf("names = %s", got)
	}
	if _, err := d.Tensor("d"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Tensor("zz"); err == nil {
		t.Fatal("expected not found")
	}
}

func TestOpenDirSingleFile(t *testing.T) {
	dir := t.TempDir()
	tt, _ := FromFloat32("x", []int{1}, []float32{2}, F32)
	if err := WriteSharded(dir, []Tensor{tt}, 1<<30, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Has("x") {
		t.Fatal("x missing")
	}
	if _, err := OpenDir(t.TempDir()); err == nil {
		t.Fatal("expected an error for an empty folder")
	}
}
