package emu

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/prog"
	"tailsim/scenarios"
)

const chain = `two programs, one indirect tail call
-- maps --
jt max_entries=4
-- prog entry --
	r6 = r1
	r2 = map[jt]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r1 = r6
	r0 = *(u32 *)(r1 + 4)
	exit
-- prog leaf --
	r0 = 1
	exit
-- slots --
jt[1] = leaf
-- ctx --
u32 1
u32 9
-- run --
run entry
`

func loadX86(t *testing.T, src string, v prog.Kernel) (*machine, *prog.World) {
	t.Helper()
	return loadOn(t, NewX86(0), src, v, prog.LoadOptions{})
}

// tamper replaces the first occurrence of old in entry's image.
func tamper(t *testing.T, m *machine, old, new []byte) {
	t.Helper()
	l := entryImage(m)
	i := bytes.Index(l.Img.Code, old)
	if i < 0 {
		t.Fatalf("% x not in the image", old)
	}
	if err := m.e.writeCode(l.Addr+uint64(i), new); err != nil {
		t.Fatal(err)
	}
}

func ctx(index uint32) []byte { return []byte{byte(index), 0, 0, 0, 9, 0, 0, 0} }

func TestX86CleanRun(t *testing.T) {
	for _, v := range prog.Kernels {
		m, w := loadX86(t, chain, v)
		r := m.Run(w.Prog("entry"), ctx(1))
		if r.Fault != nil || len(r.Violations) > 0 || r.R0 != 1 || r.Count != 1 || strings.Join(r.Path, " ") != "entry leaf" {
			t.Errorf("%s taken: %+v", v, r)
		}
		r = m.Run(w.Prog("entry"), ctx(2))
		wantCount := uint64(0)
		if v.CountsBeforeSlot() {
			wantCount = 1 // 6.1 counts the call into the empty slot
		}
		if r.Fault != nil || len(r.Violations) > 0 || r.R0 != 9 || r.Count != wantCount || len(r.Falls) != 1 || r.Falls[0] != prog.FallEmpty {
			t.Errorf("%s empty: %+v", v, r)
		}
		r = m.Run(w.Prog("entry"), ctx(4))
		if len(r.Falls) != 1 || r.Falls[0] != prog.FallBounds {
			t.Errorf("%s bounds: %+v", v, r)
		}
	}
}

func TestX86ChecksCatchBrokenCode(t *testing.T) {
	countCheck := []byte{0x48, 0x83, 0x38, 0x21} // cmp qword [rax], 33
	countInc := []byte{0x48, 0x83, 0x00, 0x01}   // add qword [rax], 1
	tests := []struct {
		name     string
		v        prog.Kernel
		old, new []byte
		index    uint32
		property string
	}{
		// Counting before the checks: a failed call changes the counter
		// and a taken one adds two.
		{"count on failure", prog.Linux618, countCheck, countInc, 2, "counter unchanged on fall-through"},
		{"count twice", prog.Linux618, []byte{0x48, 0x85, 0xC9}, []byte{0x48, 0xFF, 0x00}, 1, "counter incremented by one"}, // test rcx,rcx -> inc qword [rax]
		// Landing one byte past X86_TAIL_CALL_OFFSET.
		{"wrong landing", prog.Linux618, []byte{0x48, 0x83, 0xC1, 0x0C}, []byte{0x48, 0x83, 0xC1, 0x0D}, 1, "lands at the tail-call entry"},
		// Not unwinding the frame before the jump.
		{"frame not unwound", prog.Linux618Series, []byte{0x58, 0x58}, []byte{0x58, 0x90}, 1, "stack pointer where the callee expects it"},
		// R1 clobbered on the way.
		{"r1 clobbered", prog.Linux618Series, []byte{0x58, 0x58}, []byte{0x58, 0x5F}, 1, "R1 unchanged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, w := loadX86(t, chain, tt.v)
			tamper(t, m, tt.old, tt.new)
			r := m.Run(w.Prog("entry"), ctx(tt.index))
			found := false
			for _, v := range r.Violations {
				if v.Property.String() == tt.property {
					found = true
					if v.Machine == "" || v.Insn == "" || v.Insn == "?" || v.Addr == 0 || v.At.IsZero() {
						t.Errorf("violation not located: %+v", v)
					}
				}
			}
			if !found {
				t.Errorf("no %q violation; got %v (fault %v)", tt.property, r.Violations, r.Fault)
			}
		})
	}
}

func TestX86ReturnChecks(t *testing.T) {
	m, w := loadX86(t, chain, prog.Linux618)
	// The epilogue's "pop rbx" before leave: drop it.
	l := entryImage(m)
	for _, in := range l.Img.Insns {
		if in.BPF == -2 && l.Img.Code[in.Off] == 0x5B {
			m.e.writeCode(l.Addr+uint64(in.Off), []byte{0x90})
		}
	}
	r := m.Run(w.Prog("entry"), ctx(2))
	var props []string
	for _, v := range r.Violations {
		props = append(props, v.Property.String())
	}
	if !strings.Contains(strings.Join(props, ","), "callee-saved registers restored") {
		t.Errorf("violations %q, fault %v", props, r.Fault)
	}
}

// With IBT the JIT adds endbr64 at entry and at the landing pad (+16);
// Unicorn must run it, and every check must hold.
func TestX86IBT(t *testing.T) {
	for _, v := range prog.Kernels {
		sc, err := scenarios.Parse("t.txtar", []byte(chain))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := sc.Build()
		mm, err := NewX86(prog.IBT).Load(w, v, prog.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := mm.(*machine)
		want := 16 // X86_TAIL_CALL_OFFSET, 11 + 4 in 6.1
		if v == prog.Linux61 {
			want = 15
		}
		if m.tailEntry != want || !bytes.HasPrefix(entryImage(m).Img.Code, []byte{0xF3, 0x0F, 0x1E, 0xFA}) {
			t.Fatalf("IBT image: entry %d, code % x", m.tailEntry, entryImage(m).Img.Code[:8])
		}
		r := m.Run(w.Prog("entry"), ctx(1))
		if r.Fault != nil || len(r.Violations) > 0 || r.R0 != 1 || strings.Join(r.Path, " ") != "entry leaf" {
			t.Errorf("%s: %+v", v, r)
		}
		m.Close()
	}
}

// LoadOptions.Config adds to what a backend was built with: each arch
// takes its own protections and ignores the other arch's.
func TestHardeningOption(t *testing.T) {
	sc, err := scenarios.Parse("t.txtar", []byte(chain))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := sc.Build()
	for _, tc := range []struct {
		b     *Backend
		h     prog.Config
		entry int
	}{
		{NewX86(0), 0, 12},
		{NewX86(0), prog.IBT | prog.BTI | prog.PAC, 16},
		{NewX86(0), prog.BTI, 12},
		{NewX86(prog.IBT), 0, 16},
		{NewArm64(0), prog.IBT, 24},
		{NewArm64(0), prog.PAC, 28},
		{NewArm64(0), prog.BTI | prog.PAC, 32},
		{NewArm64(prog.BTI), prog.PAC, 32},
	} {
		mm, err := tc.b.Load(w, prog.Linux618Series, prog.LoadOptions{Config: tc.h})
		if err != nil {
			t.Fatal(err)
		}
		m := mm.(*machine)
		if m.tailEntry != tc.entry {
			t.Errorf("%s built %v, load %v: tail entry %d, want %d", tc.b.Name(), tc.b.hard, tc.h, m.tailEntry, tc.entry)
		}
		r := m.Run(w.Prog("entry"), ctx(1))
		if r.Fault != nil || len(r.Violations) > 0 || r.R0 != 1 || strings.Join(r.Path, " ") != "entry leaf" {
			t.Errorf("%s %v: %+v", tc.b.Name(), tc.h, r)
		}
		m.Close()
	}
}

// A wild run may leave anything in the CPU; the next run starts from the
// state the engine was set up with. Here the residue is the trap flag,
// which made every later run on the engine stop with #DB (found by fuzzing
// after a run that executed data).
func TestWildRunResidueCleared(t *testing.T) {
	m, w := loadX86(t, chain, prog.Linux618)
	if err := m.e.regWrite(uc.X86_REG_EFLAGS, 0x302); err != nil { // TF and IF
		t.Fatal(err)
	}
	m.e.ran(m.code, true)
	r := m.Run(w.Prog("entry"), ctx(1))
	if r.Fault != nil || r.R0 != 1 {
		t.Fatalf("run after a wild one: %+v", r)
	}
}

// JITed code is read-only: a store into the code arena is an access fault.
func TestStoreIntoCodeFaults(t *testing.T) {
	m, _ := loadX86(t, chain, prog.Linux618)
	target := entryImage(m).Addr + 0x10
	// mov qword ptr [rax], rax; at the entry of a scratch page of the arena.
	code := []byte{0x48, 0x89, 0x00}
	at := m.images[len(m.images)-1].Addr + uint64(len(m.images[len(m.images)-1].Img.Code)) + 0x100
	if err := m.e.writeCode(at, code); err != nil {
		t.Fatal(err)
	}
	// The scratch code is code: inside the fence.
	if err := m.e.setImages(append(slices.Clone(m.code), [2]uint64{at, at + uint64(len(code))})); err != nil {
		t.Fatal(err)
	}
	m.e.regWrite(uc.X86_REG_RAX, target)
	before, _ := m.e.memRead(target, 8)
	out := m.e.run(at, at+uint64(len(code)), 1000, time.Second)
	if out.Fault == nil || !out.Fault.Write || !out.Fault.ReadOnly || out.Fault.Addr != target {
		t.Fatalf("store into code: %+v, fault %+v", out, out.Fault)
	}
	// The store did not happen: Unicorn makes it after the hook, the
	// engine undoes it.
	if after, _ := m.e.memRead(target, 8); !bytes.Equal(before, after) {
		t.Errorf("code at %#x was % x, is % x after the blocked store", target, before, after)
	}
}

// A jump into the arena's unused space ends at its first block there, as
// at the kernel's trap-filled holes: no run of zeros is translated and run
// (a fuzz case once ran and translated megabytes of "add [rax], al").
// A block that starts in an image and runs off its end stops too.
func TestWildJumpIntoArenaStops(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		var m *machine
		if arch == "x86_64" {
			m, _ = loadX86(t, chain, prog.Linux618)
		} else {
			m, _ = loadArm64(t, chain, prog.Linux618, false, false)
		}
		last := m.images[len(m.images)-1]
		end := last.Addr + uint64(len(last.Img.Code))
		for _, at := range []uint64{end + 0x40, pageUp(end) + 3*pageSize, m.spec.at.codeEnd() - pageSize} {
			m.e.restoreCPU()
			out := m.e.run(at, m.spec.at.sentinel(), 1_000_000, 10*time.Second)
			if out.Fault == nil || !out.Fault.Fetch || out.Fault.Addr != at || out.PC != at {
				t.Errorf("%s: jump to %#x: %+v, fault %+v", arch, at, out, out.Fault)
			}
			if n := uint64(m.e.budget.c.blocks); n != 1 {
				t.Errorf("%s: jump to %#x entered %d blocks, want 1", arch, at, n)
			}
		}
		// A block of nops, fenced in after its first two, runs on into
		// the zeros: it stops where the fenced code ends.
		nop := []byte{0x90, 0x90, 0x90, 0x90}
		if arch == "arm64" {
			nop = []byte{0x1f, 0x20, 0x03, 0xd5}
		}
		scratch := pageUp(end) + pageSize
		if err := m.e.writeCode(scratch, bytes.Repeat(nop, 4)); err != nil {
			t.Fatal(err)
		}
		if err := m.e.setImages(append(slices.Clone(m.code), [2]uint64{scratch, scratch + 8})); err != nil {
			t.Fatal(err)
		}
		out := m.e.run(scratch, m.spec.at.sentinel(), 1_000_000, 10*time.Second)
		if out.Fault == nil || !out.Fault.Fetch || out.Fault.Addr != scratch+8 {
			t.Errorf("%s: running off fenced code: %+v, fault %+v", arch, out, out.Fault)
		}
		if err := m.e.setImages(m.code); err != nil {
			t.Fatal(err)
		}
		// The stubs and the sentinel stay code.
		if r := m.Run(m.w.Prog("entry"), ctx(1)); r.Fault != nil {
			t.Errorf("%s: a run after the fence moved: %+v", arch, r)
		}
	}
}

// A run that meets the wall-clock safety net is run again with four times
// the time, which gives the right result; one that meets it twice is a
// slow machine (FaultSlow), never a budget fault.
func TestTimeoutConfirmed(t *testing.T) {
	m, w := loadX86(t, chain, prog.Linux618)
	real := engineRun
	t.Cleanup(func() { engineRun = real })
	calls, stalls := 0, 1
	engineRun = func(e *engine, pc, until, blocks uint64, limit time.Duration) outcome {
		calls++
		if calls <= stalls {
			// The stalled attempt had already changed ctx: index 2.
			e.memWrite(ctxBase, []byte{2, 0, 0, 0})
			return outcome{Timeout: true, PC: pc}
		}
		return real(e, pc, until, blocks, limit)
	}
	r := m.Run(w.Prog("entry"), ctx(1))
	if calls != 2 || r.Fault != nil || r.R0 != 1 || strings.Join(r.Path, " ") != "entry leaf" {
		t.Errorf("one stall: %d calls, %+v", calls, r)
	}
	calls, stalls = 0, 2
	r = m.Run(w.Prog("entry"), ctx(1))
	if calls != 2 || r.Fault == nil || r.Fault.Kind != prog.FaultSlow || !strings.Contains(r.Fault.Msg, "too slow") {
		t.Errorf("two stalls: %d calls, %+v", calls, r.Fault)
	}
}

// entryImage is the image of the program named entry: placement orders
// the images by a hash, not by the scenario.
func entryImage(m *machine) *Loaded {
	for _, l := range m.images {
		if l.Prog.Name == "entry" && l.Fn == 0 {
			return l
		}
	}
	panic("no program named entry")
}
