package emu

import (
	"encoding/binary"
	"strings"
	"testing"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/prog"
	"tailsim/scenarios"
)

// The reason a call fell through is the check whose branch the machine
// took, not one inferred from the index, max_entries and the counter:
// with the bounds branch gone, an index out of bounds meets the counter
// check, and a counter at the limit then stops the call there. The run
// says "limit" where the kernel's order (and an inference from the state)
// would say "bounds", so the model sees the departure.
func TestObservedFallThrough(t *testing.T) {
	for _, v := range prog.Kernels {
		m, w := loadX86(t, chain, v)
		m.PresetCount(prog.MaxTailCallCnt)
		r := m.Run(w.Prog("entry"), ctx(7))
		if len(r.Falls) != 1 || r.Falls[0] != prog.FallBounds {
			t.Fatalf("%s: index 7 of 4 at the limit: %+v", v, r)
		}
		l := entryImage(m)
		bounds := -1
		for _, ch := range l.Img.Sites[0].Checks {
			if ch.Guard == prog.FallBounds {
				bounds = ch.Off
			}
		}
		var nop []byte
		switch c := l.Img.Code[bounds]; {
		case c >= 0x70 && c <= 0x7f: // jcc rel8
			nop = []byte{0x66, 0x90}
		case c == 0x0f: // jcc rel32
			nop = []byte{0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00}
		default:
			t.Fatalf("%s: the bounds branch is % x", v, l.Img.Code[bounds:bounds+2])
		}
		if err := m.e.writeCode(l.Addr+uint64(bounds), nop); err != nil {
			t.Fatal(err)
		}
		r = m.Run(w.Prog("entry"), ctx(7))
		if r.Fault != nil || len(r.Falls) != 1 || r.Falls[0] != prog.FallLimit {
			t.Errorf("%s: index 7 of 4 at the limit, no bounds branch: falls %v, fault %v", v, r.Falls, r.Fault)
		}
	}
}

// The same on arm64: the bounds branch (a b.cond) turned into a nop.
func TestObservedFallThroughArm64(t *testing.T) {
	for _, v := range prog.Kernels {
		m, w := loadArm64(t, chain, v, false, false)
		m.PresetCount(prog.MaxTailCallCnt)
		l := entryImage(m)
		bounds := -1
		for _, ch := range l.Img.Sites[0].Checks {
			if ch.Guard == prog.FallBounds {
				bounds = ch.Off
			}
		}
		if err := m.e.writeCode(l.Addr+uint64(bounds), []byte{0x1f, 0x20, 0x03, 0xd5}); err != nil { // nop
			t.Fatal(err)
		}
		r := m.Run(w.Prog("entry"), ctx(7))
		if r.Fault != nil || len(r.Falls) != 1 || r.Falls[0] != prog.FallLimit {
			t.Errorf("%s: index 7 of 4 at the limit, no bounds branch: falls %v, fault %v", v, r.Falls, r.Fault)
		}
	}
}

// With IBT or BTI on, a tail call must land on a landing pad (Unicorn
// enforces neither): the leaf's endbr64 or "bti j" at its tail-call entry
// turned into a nop is a broken property.
func TestLandingPads(t *testing.T) {
	tests := []struct {
		name string
		load func(t *testing.T, v prog.Kernel) (*machine, *prog.World)
		nop  []byte
	}{
		{"x86_64 IBT", func(t *testing.T, v prog.Kernel) (*machine, *prog.World) {
			sc, err := scenarios.Parse("t.txtar", []byte(chain))
			if err != nil {
				t.Fatal(err)
			}
			w, _ := sc.Build()
			m, err := NewX86(prog.IBT).Load(w, v, prog.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(m.Close)
			return m.(*machine), w
		}, []byte{0x0F, 0x1F, 0x40, 0x00}},
		{"arm64 BTI", func(t *testing.T, v prog.Kernel) (*machine, *prog.World) {
			return loadArm64(t, chain, v, true, false)
		}, []byte{0x1f, 0x20, 0x03, 0xd5}},
	}
	for _, tt := range tests {
		for _, v := range prog.Kernels {
			m, w := tt.load(t, v)
			if r := m.Run(w.Prog("entry"), ctx(1)); len(r.Violations) > 0 || r.R0 != 1 {
				t.Fatalf("%s/%s: %+v", tt.name, v, r)
			}
			for _, l := range m.images {
				if l.Img.Func.Name == "leaf" {
					if err := m.e.writeCode(l.Addr+uint64(l.Img.TailEntry), tt.nop); err != nil {
						t.Fatal(err)
					}
				}
			}
			r := m.Run(w.Prog("entry"), ctx(1))
			if len(r.Violations) != 1 || r.Violations[0].Property != prog.PropLandingPad {
				t.Errorf("%s/%s: landing pad gone: violations %v", tt.name, v, r.Violations)
			}
		}
	}
}

// With PAC, Unicorn runs paciasp and autiasp as nops; the machine pairs
// them. A tail call reuses the frame: entry signs, leaf authenticates. The
// leaf's autiasp gone leaves a signed address at the return; entry's
// paciasp gone leaves the leaf authenticating what nothing signed.
func TestPACPairs(t *testing.T) {
	for _, tt := range []struct{ prog, want string }{{"leaf", "never authenticated"}, {"entry", "which no paciasp signed"}} {
		for _, v := range prog.Kernels {
			m, w := loadArm64(t, chain, v, false, true)
			if r := m.Run(w.Prog("entry"), ctx(1)); len(r.Violations) > 0 || r.R0 != 1 {
				t.Fatalf("%s: %+v", v, r)
			}
			for _, l := range m.images {
				if l.Img.Func.Name != tt.prog {
					continue
				}
				for off := 0; off+4 <= len(l.Img.Code); off += 4 {
					if w := binary.LittleEndian.Uint32(l.Img.Code[off:]); w == a64Paciasp || w == a64Autiasp {
						if err := m.e.writeCode(l.Addr+uint64(off), []byte{0x1f, 0x20, 0x03, 0xd5}); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			r := m.Run(w.Prog("entry"), ctx(1))
			if len(r.Violations) != 1 || r.Violations[0].Property != prog.PropAuthenticated || !strings.Contains(r.Violations[0].Detail, tt.want) {
				t.Errorf("%s/%s without its PAC instructions: violations %v", tt.prog, v, r.Violations)
			}
		}
	}
}

// A stale watchdog stop that lands just after the budget hook recorded the
// block at out (the window resumeAt exists for) has the resumed run record
// out's block again: the block it came from must stay the check's, or the
// reason becomes another check's. (Found by review.)
func TestObservedAfterResume(t *testing.T) {
	for _, arch := range []string{"x86", "arm64"} {
		var m *machine
		var w *prog.World
		if arch == "x86" {
			m, w = loadX86(t, chain, prog.Linux618)
		} else {
			m, w = loadArm64(t, chain, prog.Linux618, false, false)
		}
		s := entryImage(m).Img.Sites[0]
		out := entryImage(m).Addr + uint64(s.Out)
		stopped := 0
		if _, err := m.e.u.HookAdd(uc.HOOK_BLOCK, func(u uc.Unicorn, addr uint64, size uint32) {
			if stopped == 0 {
				stopped++
				u.Stop() // as the watchdog's late Stop would, just after the budget hook
			}
		}, out, out); err != nil {
			t.Fatal(err)
		}
		r := m.Run(w.Prog("entry"), ctx(7)) // index 7 of max_entries 4
		if stopped != 1 {
			t.Fatalf("%s: the stop hook ran %d times", arch, stopped)
		}
		if len(r.Falls) != 1 || r.Falls[0] != prog.FallBounds {
			t.Errorf("%s: want bounds, got %v", arch, r.Falls)
		}
	}
}

// A run records at most prog.MaxRecorded fall-throughs, on the emulators
// as in the model, so a program with more sites than that compares equal
// (it used to fail: "fall-throughs bounds*1024 instead of bounds*1030").
func TestRecordBoundedAlike(t *testing.T) {
	const sites = prog.MaxRecorded + 6
	var b strings.Builder
	b.WriteString("more sites than a run records\n-- maps --\njt max_entries=4\n-- prog entry --\n\tr6 = r1\n")
	for range sites {
		b.WriteString("\tr1 = r6\n\tr2 = map[jt]\n\tr3 = *(u32 *)(r6 + 0)\n\tcall bpf_tail_call\n")
	}
	b.WriteString("\tr0 = 7\n\texit\n-- ctx --\nu32 9\n-- run --\nrun entry\n")
	sc, err := scenarios.Parse("sites.txtar", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range []prog.Backend{NewX86(0), NewArm64(0)} {
		rep := scenarios.Run(sc, be, prog.Linux618, scenarios.Options{Keep: func(scenarios.Step, int) bool { return true }})
		if rep.Status != scenarios.Pass {
			t.Errorf("%s: %s %v", be.Name(), rep.Status, rep.Failures)
			continue
		}
		if n := len(rep.Runs[0].Result.Falls); n != prog.MaxRecorded {
			t.Errorf("%s: %d fall-throughs recorded, want %d", be.Name(), n, prog.MaxRecorded)
		}
	}
}

// A run records at most maxViolations violations of each property, and
// every property it broke.
func TestViolationsBounded(t *testing.T) {
	m, _ := loadX86(t, chain, prog.Linux618)
	m.res = &prog.Result{}
	for range 3 * maxViolations {
		m.violatef(prog.PropR1, prog.Loc{}, 0, "r1")
	}
	m.violatef(prog.PropSP, prog.Loc{}, 0, "sp")
	if n := len(m.res.Violations); n != maxViolations+1 || m.res.Violations[n-1].Property != prog.PropSP {
		t.Errorf("%d violations recorded, the last %v", n, m.res.Violations[n-1])
	}
}
