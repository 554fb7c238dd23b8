package prog

import "math/bits"

// Helpers whose effect is on memory are emulated, the same Go code for the
// reference model and for the emulators (which run it at the helper stub's
// address): array lookups the verifier did not inline, array updates, and
// bpf_strtoul. The other helpers are stubs that return a fixed value.

// Helper IDs of the emulated helpers (include/uapi/linux/bpf.h).
const (
	HelperMapUpdate = 2
	HelperMapDelete = 3
	HelperStrtoul   = 106
)

// Errnos the emulated helpers return, as the kernel's negative values.
const (
	errEINVAL = 22
	errEFAULT = 14
	errE2BIG  = 7
	errEEXIST = 17
	errERANGE = 34
)

func negErrno(e int) uint64 { return uint64(-int64(e)) }

// HelperMemory is what an emulated helper reads and writes: a backend's
// memory, with its array maps at ArrayMapAddr.
type HelperMemory interface {
	Read(addr uint64, n int) ([]byte, bool)
	Write(addr uint64, b []byte) bool
}

// HelperNote is what a trace says of an emulated helper's call: its
// arguments and its result, since its reads and writes happen outside
// the program's instructions.
func HelperNote(id int32, args [5]uint64, r0 uint64) string {
	h, _ := HelperByID(id)
	n := map[int32]int{HelperMapLookup: 2, HelperMapUpdate: 4, HelperMapDelete: 2, HelperStrtoul: 4}[id]
	s := "bpf_" + h.Name + "("
	for i := 0; i < n; i++ {
		if i > 0 {
			s += ", "
		}
		s += "0x" + uhex(args[i])
	}
	return s + ") = 0x" + uhex(r0)
}

func uhex(v uint64) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v >>= 4 {
		b = append([]byte{digits[v&15]}, b...)
	}
	return string(b)
}

// Emulated reports whether helper id is emulated rather than a stub.
func Emulated(id int32) bool {
	return id == HelperMapLookup || id == HelperMapUpdate || id == HelperMapDelete || id == HelperStrtoul
}

// CallHelper runs emulated helper id with args R1–R5 in world w (whose
// layout places the values) on mem, and returns R0.
func CallHelper(id int32, args [5]uint64, w *World, mem HelperMemory) uint64 {
	switch id {
	case HelperMapDelete:
		// array_map_delete_elem(): an array's elements cannot go.
		return negErrno(errEINVAL)
	case HelperMapLookup, HelperMapUpdate:
		k := -1
		for i := range w.Maps {
			if ArrayMapAddr(i) == args[0] {
				k = i
			}
		}
		if k < 0 {
			// Not an array map (a prog array, whose lookup from a program
			// the verifier refuses): the stub's NULL, or -EINVAL.
			if id == HelperMapLookup {
				return 0
			}
			return negErrno(errEINVAL)
		}
		m := w.Maps[k]
		kb, ok := mem.Read(args[1], 4)
		if !ok {
			return lookupFault(id)
		}
		key := uint32(kb[0]) | uint32(kb[1])<<8 | uint32(kb[2])<<16 | uint32(kb[3])<<24
		value := ArrayMapAddr(k) + uint64(w.Layout.Ptrs) + uint64(key)*uint64(m.ElemSize())
		if id == HelperMapLookup {
			// array_map_lookup_elem()
			if key >= m.MaxEntries {
				return 0
			}
			return value
		}
		// array_map_update_elem(): flags BPF_ANY (0), BPF_NOEXIST (1),
		// BPF_EXIST (2), BPF_F_LOCK (4, for a value with a spin lock,
		// which tailsim's never have); every element exists.
		const lock = 4
		switch flags := args[3]; {
		case flags&^lock > 2:
			return negErrno(errEINVAL)
		case key >= m.MaxEntries:
			return negErrno(errE2BIG)
		case flags&1 != 0:
			return negErrno(errEEXIST)
		case flags&lock != 0:
			return negErrno(errEINVAL)
		}
		src, ok := mem.Read(args[2], int(m.ValueSize))
		if !ok || !mem.Write(value, src) {
			return negErrno(errEFAULT)
		}
		return 0
	case HelperStrtoul:
		return strtoul(args, mem)
	}
	return 0
}

func lookupFault(id int32) uint64 {
	if id == HelperMapLookup {
		return 0
	}
	return negErrno(errEFAULT)
}

// strtoul is bpf_strtoul(buf, buf_len, flags, res) of kernel/bpf/helpers.c
// (__bpf_strtoull, then the unsigned checks): leading spaces, an optional
// sign (a minus is EINVAL), the base from flags (0: by prefix, 8, 10,
// 16), at most 63 characters considered; *res is written and the number
// of characters consumed returned.
func strtoul(args [5]uint64, mem HelperMemory) uint64 {
	buf, n, flags, res := args[0], args[1], args[2], args[3]
	base := flags & 0x1f
	switch {
	case buf == 0 || n == 0 || res == 0:
		return negErrno(errEINVAL)
	case base != 0 && base != 8 && base != 10 && base != 16, flags&^0x1f != 0:
		return negErrno(errEINVAL)
	case n > 1<<20:
		return negErrno(errEFAULT) // tailsim reads at most 1 MiB
	}
	b, ok := mem.Read(buf, int(n))
	if !ok {
		return negErrno(errEFAULT)
	}
	// The kernel's isspace(): also 0xa0, a space in its Latin-1 table.
	isSpace := func(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' || c == 0xa0 }
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	negative := i < len(b) && b[i] == '-'
	if negative {
		i++
	}
	consumed := i
	if consumed == len(b) {
		return negErrno(errEINVAL)
	}
	str := b[i:min(len(b), i+63)]
	// The copy is NUL-terminated: parsing stops at a NUL.
	for j, c := range str {
		if c == 0 {
			str = str[:j]
			break
		}
	}
	s := 0
	lower := func(c byte) byte { return c | 0x20 }
	isXdigit := func(c byte) bool { return c >= '0' && c <= '9' || lower(c) >= 'a' && lower(c) <= 'f' }
	at := func(j int) byte {
		if j < len(str) {
			return str[j]
		}
		return 0
	}
	// _parse_integer_fixup_radix()
	if base == 0 {
		if at(0) == '0' {
			if lower(at(1)) == 'x' && isXdigit(at(2)) {
				base = 16
			} else {
				base = 8
			}
		} else {
			base = 10
		}
	}
	if base == 16 && at(0) == '0' && lower(at(1)) == 'x' {
		s = 2
	}
	// _parse_integer()
	var v uint64
	overflow := false
	j := s
	for ; j < len(str); j++ {
		c := str[j]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case lower(c) >= 'a' && lower(c) <= 'f':
			d = uint64(lower(c)-'a') + 10
		default:
			d = 99
		}
		if d >= base {
			break
		}
		hi, lo := bits.Mul64(v, base)
		sum, carry := bits.Add64(lo, d, 0)
		if hi != 0 || carry != 0 {
			overflow = true
		}
		v = sum
	}
	switch {
	case overflow:
		return negErrno(errERANGE)
	case j == s:
		return negErrno(errEINVAL)
	case negative:
		return negErrno(errEINVAL)
	}
	var out [8]byte
	for k := range out {
		out[k] = byte(v >> (8 * k))
	}
	if !mem.Write(res, out[:]) {
		return negErrno(errEFAULT)
	}
	return uint64(consumed + j)
}
