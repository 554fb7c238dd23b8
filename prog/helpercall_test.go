package prog

import "testing"

// flatMemory is one writable region for the helpers' unit tests.
type flatMemory struct {
	base uint64
	b    []byte
}

func (m *flatMemory) Read(addr uint64, n int) ([]byte, bool) {
	if addr < m.base || addr+uint64(n) > m.base+uint64(len(m.b)) {
		return nil, false
	}
	return append([]byte(nil), m.b[addr-m.base:][:n]...), true
}

func (m *flatMemory) Write(addr uint64, b []byte) bool {
	if addr < m.base || addr+uint64(len(b)) > m.base+uint64(len(m.b)) {
		return false
	}
	copy(m.b[addr-m.base:], b)
	return true
}

// bpf_strtoul as kernel/bpf/helpers.c parses: spaces, prefixes by base,
// the count of characters consumed, and its errors.
func TestStrtoul(t *testing.T) {
	const base, res = 0x1000, 0x1100
	for _, tc := range []struct {
		in    string
		flags uint64
		ret   int64
		want  uint64
	}{
		{"42", 0, 2, 42},
		{"  42x", 0, 4, 42},
		{"0x1f", 0, 4, 31},
		{"0x1f", 16, 4, 31},
		{"017", 0, 3, 15},
		{"017", 10, 3, 17},
		{"ff", 16, 2, 255},
		{"0xg", 0, 1, 0}, // base 8 from the 0; x is not a digit
		{"-5", 0, -22, 0},
		{"", 0, -22, 0},
		{"   ", 0, -22, 0},
		{"z", 0, -22, 0},
		{"18446744073709551615", 10, 20, 18446744073709551615},
		{"18446744073709551616", 10, -34, 0},
		{"1", 3, -22, 0},
		{"1", 0x20, -22, 0},
	} {
		mem := &flatMemory{base: base, b: make([]byte, 0x200)}
		copy(mem.b, tc.in)
		n := uint64(len(tc.in))
		got := int64(CallHelper(HelperStrtoul, [5]uint64{base, n, tc.flags, res}, &World{}, mem))
		if n == 0 {
			got = int64(CallHelper(HelperStrtoul, [5]uint64{base, 0, tc.flags, res}, &World{}, mem))
		}
		v, _ := mem.Read(res, 8)
		val := uint64(0)
		for i := 7; i >= 0; i-- {
			val = val<<8 | uint64(v[i])
		}
		if got != tc.ret || val != tc.want {
			t.Errorf("strtoul(%q, flags %#x) = %d, *res %d; want %d, %d", tc.in, tc.flags, got, val, tc.ret, tc.want)
		}
	}
}

// Array lookups and updates as array_map_lookup_elem() and
// array_map_update_elem() do them.
func TestArrayHelpers(t *testing.T) {
	m, _ := NewArrayMap("vals", 2, 4)
	w := &World{Layout: DefaultLayout, Maps: []*ArrayMap{m}}
	values := ArrayMapAddr(0) + uint64(DefaultLayout.Ptrs)
	stack := &flatMemory{base: 0x2000, b: make([]byte, 64)}
	mem := splitMemory{stack, &flatMemory{base: values, b: m.Values}}
	stack.b[0] = 1                                    // key 1
	copy(stack.b[8:], []byte{0xaa, 0xbb, 0xcc, 0xdd}) // the value
	if got := CallHelper(HelperMapLookup, [5]uint64{ArrayMapAddr(0), 0x2000}, w, mem); got != values+8 {
		t.Errorf("lookup of key 1: %#x, want %#x", got, values+8)
	}
	for _, tc := range []struct {
		key   byte
		flags uint64
		want  uint64
	}{{1, 0, 0}, {1, 2, 0}, {1, 1, negErrno(errEEXIST)}, {2, 0, negErrno(errE2BIG)}, {0, 3, negErrno(errEINVAL)}} {
		stack.b[0] = tc.key
		if got := CallHelper(HelperMapUpdate, [5]uint64{ArrayMapAddr(0), 0x2000, 0x2008, tc.flags}, w, mem); got != tc.want {
			t.Errorf("update key %d flags %d: %#x, want %#x", tc.key, tc.flags, got, tc.want)
		}
	}
	if m.Values[8] != 0xaa || m.Values[11] != 0xdd || m.Values[0] != 0 {
		t.Errorf("values after the updates: % x", m.Values)
	}
	stack.b[0] = 2
	if got := CallHelper(HelperMapLookup, [5]uint64{ArrayMapAddr(0), 0x2000}, w, mem); got != 0 {
		t.Errorf("lookup past max_entries: %#x, want NULL", got)
	}
}

// splitMemory is several flat regions.
type splitMemory []*flatMemory

func (s splitMemory) Read(addr uint64, n int) ([]byte, bool) {
	for _, m := range s {
		if b, ok := m.Read(addr, n); ok {
			return b, true
		}
	}
	return nil, false
}

func (s splitMemory) Write(addr uint64, b []byte) bool {
	for _, m := range s {
		if m.Write(addr, b) {
			return true
		}
	}
	return false
}
