package emu

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/prog"
	"tailsim/scenarios"
)

// loadOn loads the scenario src's world on b; the machine closes with
// the test.
func loadOn(t *testing.T, b *Backend, src string, v prog.Kernel, o prog.LoadOptions) (*machine, *prog.World) {
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

func loadPlaced(t *testing.T, b *Backend, src string, v prog.Kernel, pl prog.Placement) (*machine, *prog.World) {
	t.Helper()
	return loadOn(t, b, src, v, prog.LoadOptions{Placement: pl})
}

// Every object sits at a kernel address: the high half of each pointer a
// tail call reads is never zero, and with PlaceAligned every struct
// bpf_prog's low half is.
func TestKernelAddresses(t *testing.T) {
	for _, b := range []*Backend{NewX86(0), NewArm64(0)} {
		for _, pl := range prog.Placements {
			m, w := loadPlaced(t, b, chain, prog.Linux618, pl)
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
			l := entryImage(m)
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
		{"x86 counter pointer from mov eax, esp", NewX86(0), prog.PlaceKernel, x86Tamper([]byte{0x48, 0x89, 0xE0}, []byte{0x89, 0xE0, 0x90}), true},
		// test rcx, rcx -> test ecx, ecx; nop
		{"x86 empty test of the low half", NewX86(0), prog.PlaceAligned, x86Tamper([]byte{0x48, 0x85, 0xC9}, []byte{0x85, 0xC9, 0x90}), false},
		// mov x26, sp (add x26, sp, #0) -> add w26, wsp, #0
		{"arm64 counter pointer from add w26, wsp", NewArm64(0), prog.PlaceKernel, arm64Tamper(0xffffffff, 0x910003fa, 0x80000000, 0), true},
		// cbz x11 -> cbz w11
		{"arm64 empty test of the low half", NewArm64(0), prog.PlaceAligned, arm64Tamper(0xff00001f, 0xb400000b, 0x80000000, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, w := loadPlaced(t, tt.b, chain, prog.Linux618, tt.pl)
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
	b := NewX86(0)
	first, _ := loadOn(t, b, chain, prog.Linux618, prog.LoadOptions{})
	first.Close()
	first.Close()
	if n := len(b.pool.free); n != 1 {
		t.Fatalf("%d idle engines after a load closed twice, want 1", n)
	}
	b.CloseIdleEngines()
	if n := len(b.pool.free); n != 0 {
		t.Fatalf("%d idle engines after CloseIdleEngines", n)
	}
	m, w := loadOn(t, b, chain, prog.Linux618, prog.LoadOptions{})
	if r := m.Run(w.Prog("entry"), ctx(1)); r.R0 != 1 {
		t.Errorf("a run after CloseIdleEngines: %+v", r)
	}
}

// No two regions of an arch's address map overlap, whatever the world
// holds up to its limits (maxProgs programs, aligned or not; maxArrays
// arrays of the largest max_entries): an array mapped over a struct
// bpf_prog page would answer its reads (found by review: array 258 of an
// x86 world sat on aligned program 2).
func TestAddressMapsDisjoint(t *testing.T) {
	for name, at := range map[string]addrMap{"x86_64": x86Addrs, "arm64": arm64Addrs} {
		regions := []struct {
			what       string
			start, end uint64 // [start, end)
		}{
			{"stubs", at.stubs, at.stubs + pageSize},
			{"code", at.code, at.codeEnd()},
			{"struct bpf_progs", at.progs, at.structAddr(maxProgs-1, prog.PlaceKernel) + pageSize},
			{"aligned struct bpf_progs", at.structAddr(1, prog.PlaceAligned), at.structAddr(maxProgs-1, prog.PlaceAligned) + pageSize},
			{"stack", at.stackLo(), at.stackHi},
			{"arrays", at.arrays, at.arrays + maxArrays*arrayStride},
			{"thread_info", at.threadInfo, at.threadInfo + pageSize},
			{"ctx", ctxBase, ctxBase + 64<<10},
			{"array maps", prog.ArrayMapBase, prog.ArrayMapAddr(prog.MaxArrayMaps)},
		}
		// The kernel data's pages, each once (objects share pages).
		seen := map[uint64]bool{}
		for _, o := range prog.KernelObjects() {
			if p := pageDown(o.Addr); !seen[p] {
				seen[p] = true
				regions = append(regions, struct {
					what       string
					start, end uint64
				}{"the page of " + o.Name, p, p + pageSize})
			}
		}
		for i, r := range regions {
			if r.start>>48 != 0xffff || r.end-1 < r.start {
				t.Errorf("%s: %s %#x..%#x is not in the kernel half or wraps", name, r.what, r.start, r.end)
			}
			for _, o := range regions[i+1:] {
				if r.start < o.end && o.start < r.end {
					t.Errorf("%s: %s %#x..%#x overlaps %s %#x..%#x", name, r.what, r.start, r.end, o.what, o.start, o.end)
				}
			}
		}
	}
}

// A store into a struct bpf_prog is the same read-only access fault
// whether the program sits in the engine's block or on an aligned page
// of its own.
func TestStoreIntoStructFaults(t *testing.T) {
	for _, pl := range prog.Placements {
		m, w := loadPlaced(t, NewX86(0), chain, prog.Linux618, pl)
		target := m.structs[w.Prog("leaf")]
		code := []byte{0x48, 0x89, 0x00} // mov qword ptr [rax], rax
		last := m.images[len(m.images)-1]
		at := last.Addr + uint64(len(last.Img.Code)) + 0x100
		if err := m.e.writeCode(at, code); err != nil {
			t.Fatal(err)
		}
		if err := m.e.setImages(append(slices.Clone(m.code), [2]uint64{at, at + uint64(len(code))})); err != nil {
			t.Fatal(err)
		}
		m.e.regWrite(uc.X86_REG_RAX, target)
		out := m.e.run(at, at+uint64(len(code)), 1000, time.Second)
		if out.Fault == nil || !out.Fault.Write || !out.Fault.ReadOnly || out.Fault.Addr != target {
			t.Errorf("%s: store into struct bpf_prog leaf at %#x: %+v, fault %+v", pl, target, out, out.Fault)
		}
	}
}

// A world with more arrays than the map has room for is refused.
func TestTooManyArrays(t *testing.T) {
	var b strings.Builder
	b.WriteString("too many maps\n-- maps --\n")
	for i := range maxArrays + 1 {
		fmt.Fprintf(&b, "m%d max_entries=1\n", i)
	}
	b.WriteString("-- prog p --\n\tr0 = 0\n\texit\n-- run --\nrun p\n")
	sc, err := scenarios.Parse("t.txtar", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewX86(0).Load(w, prog.Linux618, prog.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "more than 256 prog arrays") {
		t.Errorf("%d arrays: %v", maxArrays+1, err)
	}
}

// An access to unmapped memory is located at the instruction that made
// it on both arches. x86-64 used to report the last memory access before
// it ("push r15" in the prologue; Unicorn syncs its PC only there), then,
// found by review, an earlier load through a register changed since.
func TestUnmappedFaultLocated(t *testing.T) {
	const head = "unmapped read\n-- maps --\njt max_entries=1\n-- prog p --\n"
	for _, tc := range []struct {
		body string
		addr uint64
		at   string
	}{
		{"\tr6 = r1\n\tr7 = 1\n\tr8 = 2\n\tr9 = 3\n\tr0 = *(u32 *)(r6 + 8)\n\texit\n", 8, "p+4 (line 9)"},
		// The load at line 7 used r3 before line 8 changed it.
		{"\tr3 = r10\n\tr3 += -8\n\tr4 = *(u64 *)(r3 + 0)\n\tr3 = 0x1000\n\tr0 = *(u64 *)(r3 + 0)\n\texit\n", 0x1000, "p+4 (line 9)"},
		{"\tr3 = 0x1000\n\tr0 = *(u64 *)(r3 + 0)\n\tr3 = 0x2000\n\tr0 = *(u64 *)(r3 + 0)\n\texit\n", 0x1000, "p+1 (line 6)"},
		{"\tr3 = 0x1000\n\tr0 = *(u64 *)(r3 + 0)\n\tr0 = *(u64 *)(r3 + 0)\n\texit\n", 0x1000, "p+1 (line 6)"},
	} {
		src := head + strings.Replace(tc.body, "\tr3 = r10\n", "\tr3 = r10\n", 1) + "-- run --\nrun p\n"
		if strings.Contains(tc.body, "r10") {
			src = strings.Replace(src, "-- prog p --", "-- prog p stack=8 --", 1)
		}
		for _, b := range []*Backend{NewX86(0), NewArm64(0)} {
			m, w := loadOn(t, b, src, prog.Linux618, prog.LoadOptions{})
			r := m.Run(w.Prog("p"), nil)
			f := r.Fault
			if f == nil || f.Kind != prog.FaultAccess || f.Addr != tc.addr || f.At.String() != tc.at {
				t.Errorf("%s, %q: fault %+v, want one at %s", b.Name(), tc.body, f, tc.at)
			}
		}
	}
}
