package emu

import (
	"encoding/binary"
	"testing"

	"tailsim/prog"
	"tailsim/scenarios"
)

// loadOn loads the scenario src's world on b; the machine closes with
// the test.
func loadOn(t *testing.T, b *Backend, src string, v prog.Variant, o prog.LoadOptions) (*machine, *prog.World) {
	t.Helper()
	sc, err := scenarios.Parse("t.txtar", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.Build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.Load(w, v, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m.(*machine), w
}

func loadPlaced(t *testing.T, b *Backend, src string, v prog.Variant, pl prog.Placement) (*machine, *prog.World) {
	t.Helper()
	return loadOn(t, b, src, v, prog.LoadOptions{Placement: pl})
}

// Every object sits at a kernel address: the high half of each pointer a
// tail call reads is never zero, and with PlaceAligned every struct
// bpf_prog's low half is.
func TestKernelAddresses(t *testing.T) {
	for _, b := range []*Backend{NewX86(false), NewArm64(false, false)} {
		for _, pl := range prog.Placements {
			m, w := loadPlaced(t, b, chain, prog.Upstream, pl)
			for i, p := range w.Progs {
				addr := m.structs[p]
				if addr>>32 == 0 || (pl == prog.PlaceAligned || i == 0) != (uint32(addr) == 0) {
					t.Errorf("%s %s: struct bpf_prog %s at %#x", b.Name(), pl, p.Name, addr)
				}
			}
			for _, l := range m.images {
				if l.Addr>>48 != 0xffff {
					t.Errorf("%s: %s's image at %#x, not a kernel address", b.Name(), l.Prog.Name, l.Addr)
				}
			}
			if a := m.arrays[w.Array("jt")].base; a>>48 != 0xffff {
				t.Errorf("%s: the array at %#x", b.Name(), a)
			}
			// The runs see the same programs wherever their structs are.
			if r := m.Run(w.Prog("entry"), ctx(1)); r.Fault != nil || len(r.Violations) > 0 || r.R0 != 1 {
				t.Errorf("%s %s: %+v", b.Name(), pl, r)
			}
			if r := m.Run(w.Prog("entry"), ctx(2)); r.R0 != 9 || len(r.Falls) != 1 || r.Falls[0] != prog.FallEmpty {
				t.Errorf("%s %s empty: %+v", b.Name(), pl, r)
			}
		}
	}
}

// Code that truncates a pointer to 32 bits, which ran correctly while
// every object sat below 4 GiB: a counter pointer built with a 32-bit
// mov faults, and an empty-slot test of a pointer's low half takes a
// filled slot for an empty one when the struct bpf_prog is 4 GiB aligned.
func TestTruncatedPointersCaught(t *testing.T) {
	x86Tamper := func(old, new []byte) func(t *testing.T, m *machine) {
		return func(t *testing.T, m *machine) { tamper(t, m, old, new) }
	}
	// arm64: the first word w with w&mask == want becomes w&^clear|set.
	arm64Tamper := func(mask, want, clear, set uint32) func(t *testing.T, m *machine) {
		return func(t *testing.T, m *machine) {
			l := m.images[0]
			for off := 0; off+4 <= len(l.Img.Code); off += 4 {
				if w := binary.LittleEndian.Uint32(l.Img.Code[off:]); w&mask == want {
					var b [4]byte
					binary.LittleEndian.PutUint32(b[:], w&^clear|set)
					if err := m.e.writeCode(l.Addr+uint64(off), b[:]); err != nil {
						t.Fatal(err)
					}
					return
				}
			}
			t.Fatalf("no word %08x under mask %08x in the image", want, mask)
		}
	}
	tests := []struct {
		name   string
		b      *Backend
		pl     prog.Placement
		tamper func(t *testing.T, m *machine)
		fault  bool // the run faults; else it falls through as empty
	}{
		// mov rax, rsp -> mov eax, esp; nop
		{"x86 counter pointer from mov eax, esp", NewX86(false), prog.PlaceKernel, x86Tamper([]byte{0x48, 0x89, 0xE0}, []byte{0x89, 0xE0, 0x90}), true},
		// test rcx, rcx -> test ecx, ecx; nop
		{"x86 empty test of the low half", NewX86(false), prog.PlaceAligned, x86Tamper([]byte{0x48, 0x85, 0xC9}, []byte{0x85, 0xC9, 0x90}), false},
		// mov x26, sp (add x26, sp, #0) -> add w26, wsp, #0
		{"arm64 counter pointer from add w26, wsp", NewArm64(false, false), prog.PlaceKernel, arm64Tamper(0xffffffff, 0x910003fa, 0x80000000, 0), true},
		// cbz x11 -> cbz w11
		{"arm64 empty test of the low half", NewArm64(false, false), prog.PlaceAligned, arm64Tamper(0xff00001f, 0xb400000b, 0x80000000, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, w := loadPlaced(t, tt.b, chain, prog.Upstream, tt.pl)
			tt.tamper(t, m)
			r := m.Run(w.Prog("entry"), ctx(1)) // jt[1] holds leaf: r0 = 1 when correct
			switch {
			case tt.fault && (r.Fault == nil || r.Fault.Kind != prog.FaultAccess):
				t.Errorf("no access fault: %+v", r)
			case !tt.fault && (r.R0 == 1 || len(r.Falls) != 1 || r.Falls[0] != prog.FallEmpty):
				t.Errorf("the filled slot was taken: %+v", r)
			}
		})
	}
}

// CloseIdleEngines empties the pool, and the backend still loads. A
// machine closed twice gives its engine back once.
func TestCloseIdleEngines(t *testing.T) {
	b := NewX86(false)
	first, _ := loadOn(t, b, chain, prog.Upstream, prog.LoadOptions{})
	first.Close()
	first.Close()
	if n := len(b.pool.free); n != 1 {
		t.Fatalf("%d idle engines after a load closed twice, want 1", n)
	}
	b.CloseIdleEngines()
	if n := len(b.pool.free); n != 0 {
		t.Fatalf("%d idle engines after CloseIdleEngines", n)
	}
	m, w := loadOn(t, b, chain, prog.Upstream, prog.LoadOptions{})
	if r := m.Run(w.Prog("entry"), ctx(1)); r.R0 != 1 {
		t.Errorf("a run after CloseIdleEngines: %+v", r)
	}
}
