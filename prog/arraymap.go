package prog

import (
	"fmt"
	"math/bits"
)

// Map is a map a program uses: a prog array or an array of values. The
// verifier's used_maps[] holds both kinds, in the order the program first
// loads them, and the patched series' tail-call imm indexes that list.
type Map interface {
	MapName() string
}

// MapName implements Map.
func (a *ProgArray) MapName() string { return a.Name }

// ArrayMap is a BPF_MAP_TYPE_ARRAY: max_entries values of value_size
// bytes, each elem_size = round_up(value_size, 8) apart in struct
// bpf_array's value[] (at the offset of ptrs[], with which it shares a
// union). Global data (.bss, .data, .rodata) is an array of one value.
type ArrayMap struct {
	Name       string
	MaxEntries uint32
	ValueSize  uint32
	Line       int
	// Values are the elements, ElemSize apart, as they are now.
	Values []byte
	// Vars name parts of the value, for global data: a variable's name,
	// offset and size in element 0.
	Vars []Var
}

// Var is a global variable in an array's first element.
type Var struct {
	Name   string
	Offset uint32
	Size   uint32
}

// MaxArrayBytes bounds an array map's values in tailsim (the kernel's bound
// is far larger): they live in the model and in each emulator, 16 MiB
// apart (ArrayMapAddr).
const MaxArrayBytes = 16<<20 - 4096

// MapName implements Map.
func (m *ArrayMap) MapName() string { return m.Name }

// NewArrayMap is array_map_alloc_check() for the sizes tailsim models.
func NewArrayMap(name string, maxEntries, valueSize uint32) (*ArrayMap, error) {
	switch {
	case maxEntries == 0 || valueSize == 0:
		return nil, fmt.Errorf("array %s: max_entries %d, value_size %d: %w", name, maxEntries, valueSize, ErrEINVAL)
	case uint64(maxEntries)*uint64(roundUp8(valueSize)) > MaxArrayBytes:
		return nil, fmt.Errorf("array %s: %d values of %d bytes are more than the %d MiB tailsim keeps for one array", name, maxEntries, valueSize, (MaxArrayBytes+4096)>>20)
	}
	m := &ArrayMap{Name: name, MaxEntries: maxEntries, ValueSize: valueSize}
	m.Values = make([]byte, uint64(maxEntries)*uint64(m.ElemSize()))
	return m, nil
}

func roundUp8(n uint32) uint32 { return (n + 7) &^ 7 }

// ElemSize is round_up(value_size, 8).
func (m *ArrayMap) ElemSize() uint32 { return roundUp8(m.ValueSize) }

// IndexMask is roundup_pow_of_two(max_entries) - 1, the mask an
// unprivileged lookup applies.
func (m *ArrayMap) IndexMask() uint32 {
	if m.MaxEntries <= 1 {
		return 0
	}
	return 1<<bits.Len32(m.MaxEntries-1) - 1
}

// Var finds a global variable by name.
func (m *ArrayMap) Var(name string) (Var, bool) {
	for _, v := range m.Vars {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// Clone is a copy whose values later runs leave alone.
func (m *ArrayMap) Clone() *ArrayMap {
	c := *m
	c.Values = append([]byte(nil), m.Values...)
	return &c
}

// ArrayMapAddr is where array map k's struct bpf_array is, on every
// backend and in the model: a program may keep or return a value's
// address, so it must not differ between them. In the direct map below
// the prog arrays on x86-64, and where arm64's vmalloc area has room.
func ArrayMapAddr(k int) uint64 { return ArrayMapBase + uint64(k)*ArrayMapStride }

const (
	ArrayMapBase   = 0xffff_8881_8000_0000
	ArrayMapStride = 16 << 20
	MaxArrayMaps   = 64
)
