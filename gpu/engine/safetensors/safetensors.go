// Package safetensors reads and writes the safetensors format used by Hugging Face checkpoints
// and PEFT adapters: an 8-byte little-endian header length, a JSON header mapping tensor names to
// dtype, shape and byte offsets, then the raw little-endian tensor bytes with no gaps.
//
// Files are memory-mapped where the platform allows it, so opening a multi-gigabyte checkpoint
// costs nothing until a tensor's bytes are read; a Tensor's Data aliases the mapping and is valid
// only until the File (or Dir) is closed.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// DType is a safetensors dtype string, as written in the header.
type DType string

// The dtypes this package knows the element size of. Others are rejected on open.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size returns the size in bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// maxHeaderSize bounds the JSON header we are willing to parse (the reference implementation
// uses 100 MB); a larger value means a corrupt or hostile file.
const maxHeaderSize = 100 << 20

// Tensor is one named tensor. Data holds the raw little-endian bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// File is an open safetensors file.
type File struct {
	path     string
	data     []byte // the whole file (mapped or read)
	unmap    func() error
	base     int64 // offset of the data section
	entries  map[string]headerEntry
	metadata map[string]string
}

// Open memory-maps path and parses its header.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: open %s: %w", path, err)
	}
	f := &File{path: path, data: data, unmap: unmap}
	if err := f.parse(); err != nil {
		_ = unmap()
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return f, nil
}

func (f *File) parse() error {
	if len(f.data) < 8 {
		return errors.New("file too short for a header")
	}
	n := binary.LittleEndian.Uint64(f.data[:8])
	if n > maxHeaderSize || int64(n) > int64(len(f.data))-8 {
		return fmt.Errorf("header length %d out of range (file is %d bytes)", n, len(f.data))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(f.data[8:8+n], &raw); err != nil {
		return fmt.Errorf("parse header: %w", err)
	}
	f.base = 8 + int64(n)
	dataLen := int64(len(f.data)) - f.base
	f.entries = make(map[string]headerEntry, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.metadata); err != nil {
				return fmt.Errorf("parse __metadata__: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return fmt.Errorf("parse entry %q: %w", name, err)
		}
		size := e.DType.Size()
		if size == 0 {
			return fmt.Errorf("tensor %q: unsupported dtype %q", name, e.DType)
		}
		elems := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return fmt.Errorf("tensor %q: negative dimension in shape %v", name, e.Shape)
			}
			elems *= int64(d)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > dataLen {
			return fmt.Errorf("tensor %q: data offsets [%d,%d) outside data section of %d bytes", name, begin, end, dataLen)
		}
		if end-begin != elems*int64(size) {
			return fmt.Errorf("tensor %q: %d bytes for shape %v of %s", name, end-begin, e.Shape, e.DType)
		}
		f.entries[name] = e
	}
	return nil
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Metadata returns the free-form string metadata of the header (may be nil).
func (f *File) Metadata() map[string]string { return f.metadata }

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.entries))
	for n := range f.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether the file holds a tensor of that name.
func (f *File) Has(name string) bool {
	_, ok := f.entries[name]
	return ok
}

// Tensor returns the named tensor; its Data aliases the file mapping.
func (f *File) Tensor(name string) (Tensor, error) {
	e, ok := f.entries[name]
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors: %s: tensor %q not found", f.path, name)
	}
	b := f.base + e.DataOffsets[0]
	end := f.base + e.DataOffsets[1]
	return Tensor{Name: name, DType: e.DType, Shape: append([]int(nil), e.Shape...), Data: f.data[b:end:end]}, nil
}

// Close unmaps the file. Tensors obtained from it must not be used afterwards.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap, f.data = nil, nil
	return err
}

// ToFloat32 decodes a floating point tensor (F32, BF16, F16 or F64) into a new []float32.
func ToFloat32(t Tensor) ([]float32, error) {
	n := t.NumElements()
	if len(t.Data) != n*t.DType.Size() {
		return nil, fmt.Errorf("safetensors: tensor %q: %d bytes for %d elements of %s", t.Name, len(t.Data), n, t.DType)
	}
	out := make([]float32, n)
	d := t.Data
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = BF16ToFloat32(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToFloat32(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
		}
	default:
		return nil, fmt.Errorf("safetensors: tensor %q: dtype %s is not a float type", t.Name, t.DType)
	}
	return out, nil
}

// FromFloat32 encodes values as a tensor of dtype F32, BF16 (round to nearest even) or F16.
func FromFloat32(name string, shape []int, values []float32, dtype DType) (Tensor, error) {
	t := Tensor{Name: name, DType: dtype, Shape: append([]int(nil), shape...)}
	if t.NumElements() != len(values) {
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: %d values for shape %v", name, len(values), shape)
	}
	switch dtype {
	case F32:
		t.Data = make([]byte, 4*len(values))
		for i, v := range values {
			binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(v))
		}
	case BF16:
		t.Data = make([]byte, 2*len(values))
		for i, v := range values {
			binary.LittleEndian.PutUint16(t.Data[2*i:], Float32ToBF16(v))
		}
	case F16:
		t.Data = make([]byte, 2*len(values))
		for i, v := range values {
			binary.LittleEndian.PutUint16(t.Data[2*i:], Float32ToF16(v))
		}
	default:
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: cannot encode float32 values as %s", name, dtype)
	}
	return t, nil
}

// BF16ToFloat32 widens a bfloat16 bit pattern.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 rounds to the nearest bfloat16 (ties to even), as torch does; NaN stays NaN.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and non-zero
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToFloat32 widens an IEEE half-precision bit pattern.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToF16 rounds to the nearest IEEE half (ties to even), saturating to infinity.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rem := mant & (1<<shift - 1)
		m := mant >> shift
		if rem > half || (rem == half && m&1 == 1) {
			m++
		}
		return sign | uint16(m)
	}
	m := mant >> 13
	rem := mant & 0x1fff
	out := uint32(e)<<10 | m
	if rem > 0x1000 || (rem == 0x1000 && m&1 == 1) {
		out++ // may carry into the exponent, which is the correct rounding
	}
	return sign | uint16(out)
}
