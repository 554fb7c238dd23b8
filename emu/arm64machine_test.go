package emu

import (
	"encoding/binary"
	"strings"
	"testing"

	"tailsim/prog"
)

func loadArm64(t *testing.T, src string, v prog.Kernel, bti, pac bool) (*machine, *prog.World) {
	t.Helper()
	return loadOn(t, NewArm64(armConfig(bti, pac)), src, v, prog.LoadOptions{})
}

// With every BTI/PAC combination the landing offset moves (6, 7, 8
// instructions) and the hint instructions must run as the CPU's nops.
func TestArm64CleanRunsAllOptions(t *testing.T) {
	for _, v := range prog.Kernels {
		for _, opt := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			m, w := loadArm64(t, chain, v, opt[0], opt[1])
			want := 24 // PROLOGUE_OFFSET: BTI_INSNS + 2 + PAC_INSNS + 4
			if v == prog.Linux61 {
				want = 40 // 6.1's: BTI_INSNS + 2 + PAC_INSNS + 8
			}
			if opt[0] || opt[1] {
				want += 4
			}
			if opt[0] && opt[1] {
				want += 4
			}
			if m.tailEntry != want {
				t.Errorf("bti=%v pac=%v: tail entry %d, want %d", opt[0], opt[1], m.tailEntry, want)
			}
			for _, tc := range []struct {
				index uint32
				r0    uint64
				count uint64
				fall  prog.Reason
			}{{1, 1, 1, 0}, {2, 9, 0, prog.FallEmpty}, {4, 9, 0, prog.FallBounds}} {
				if tc.fall == prog.FallEmpty && v.CountsBeforeSlot() {
					tc.count = 1 // 6.1 counts the call into the empty slot
				}
				r := m.Run(w.Prog("entry"), ctx(tc.index))
				if r.Fault != nil || len(r.Violations) > 0 || r.R0 != tc.r0 || r.Count != tc.count ||
					(tc.fall == 0) != (len(r.Falls) == 0) || (tc.fall != 0 && r.Falls[0] != tc.fall) {
					t.Errorf("%s bti=%v pac=%v index %d: %+v", v, opt[0], opt[1], tc.index, r)
				}
			}
		}
	}
}

// tamperWord replaces the first instruction word old in entry's image.
func tamperWord(t *testing.T, m *machine, old, new uint32) {
	t.Helper()
	l := entryImage(m)
	for off := 0; off+4 <= len(l.Img.Code); off += 4 {
		if binary.LittleEndian.Uint32(l.Img.Code[off:]) == old {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], new)
			if err := m.e.writeCode(l.Addr+uint64(off), b[:]); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("word %08x not in the image", old)
}

func TestArm64ChecksCatchBrokenCode(t *testing.T) {
	const (
		addX12One = 0x9100058c // add x12, x12, #1
		addX12Two = 0x9100098c // add x12, x12, #2
		addX10_24 = 0x9100614a // add x10, x10, #24 (4 * PROLOGUE_OFFSET)
		addX10_28 = 0x9100714a // add x10, x10, #28
		strX12    = 0xf900034c // str x12, [x26]
		strX12X0  = 0xf9000340 // str x0, [x26]: stores R1 as the counter
	)
	tests := []struct {
		name     string
		v        prog.Kernel
		old, new uint32
		index    uint32
		property string
	}{
		{"count twice", prog.Linux618, addX12One, addX12Two, 1, "counter incremented by one"},
		{"wrong landing", prog.Linux618, addX10_24, addX10_28, 1, "lands at the tail-call entry"},
		{"counter garbage", prog.Linux618Series, strX12, strX12X0, 1, "counter incremented by one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, w := loadArm64(t, chain, tt.v, false, false)
			tamperWord(t, m, tt.old, tt.new)
			r := m.Run(w.Prog("entry"), ctx(tt.index))
			var props []string
			for _, v := range r.Violations {
				props = append(props, v.Property.String())
				if v.Property.String() == tt.property && (v.Machine == "" || v.Insn == "" || v.Insn == "?" || v.At.IsZero()) {
					t.Errorf("violation not located: %+v", v)
				}
			}
			if !strings.Contains(strings.Join(props, ","), tt.property) {
				t.Errorf("no %q violation; got %q (fault %v)", tt.property, props, r.Fault)
			}
		})
	}
}

// An R1 changed between the start of the tail call and the jump is
// caught: the sequence must leave x0 alone.
func TestArm64R1Check(t *testing.T) {
	m, w := loadArm64(t, chain, prog.Linux618, false, false)
	// On the taken path, "str x12, [x26]" becomes "add x0, x0, #1".
	tamperWord(t, m, 0xf900034c, 0x91000400)
	r := m.Run(w.Prog("entry"), ctx(1))
	found := false
	for _, v := range r.Violations {
		found = found || v.Property == prog.PropR1
	}
	if !found {
		t.Errorf("violations %v, fault %v", r.Violations, r.Fault)
	}
}

// Unicorn gives the block's first PC inside memory hooks on arm64; the
// report must still name the load that faulted.
func TestArm64FaultNamesTheInstruction(t *testing.T) {
	src := `fault
-- prog entry --
	r6 = r1
	r0 = 1
	r0 += 2
	r0 = *(u32 *)(r1 + 4)
	exit
-- ctx --
u32 7
-- run --
run entry
`
	m, w := loadArm64(t, src, prog.Linux618, false, false)
	r := m.Run(w.Prog("entry"), []byte{7, 0, 0, 0})
	if r.Fault == nil || r.Fault.Insn != "ldr w7, [x0,#4]" || r.Fault.Addr != ctxBase+4 {
		t.Fatalf("fault %+v", r.Fault)
	}
	// And the BPF instruction, by the name traces and listings use.
	if want := w.Prog("entry").Loc(0, 3); r.Fault.At != want || want.String() != "entry+3 (line 6)" {
		t.Errorf("fault at %v, want %v", r.Fault.At, want)
	}
}

func armConfig(bti, pac bool) prog.Config {
	var c prog.Config
	if bti {
		c |= prog.BTI
	}
	if pac {
		c |= prog.PAC
	}
	return c
}
