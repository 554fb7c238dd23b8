package emu

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"tailsim/prog"
	"tailsim/scenarios"
)

// The helper stubs, the thunks and the return sentinel share one page
// without overlapping.
func TestStubsPageLayout(t *testing.T) {
	if end := uint64(len(prog.Helpers)) * stubSize; end > thunksOff {
		t.Errorf("%d helper stubs end at %#x, past the thunks at %#x", len(prog.Helpers), end, uint64(thunksOff))
	}
	for i, th := range thunks {
		end := th.off + uint64(len(th.code))
		if th.off < thunksOff || end > sentinelOff || i > 0 && th.off < thunks[i-1].off+uint64(len(thunks[i-1].code)) {
			t.Errorf("thunk %s at [%#x, %#x) overlaps its neighbours", th.name, th.off, end)
		}
		at, ok := x86Addrs.thunkAddr(th.name)
		if name, named := ThunkAt(at); !ok || !named || name != th.name {
			t.Errorf("thunk %s: address %#x names %q", th.name, at, name)
		}
	}
	page := x86Stubs(x86Addrs)
	for _, th := range thunks {
		if !bytes.Equal(page[th.off:th.off+uint64(len(th.code))], th.code) {
			t.Errorf("thunk %s not in the stubs page", th.name)
		}
	}
}

// shifts is a program of register shifts of both widths in every
// pairing the encoding distinguishes (an extended register on either
// side, rcx as the count or the destination), with counts past the width
// (the CPU masks them as BPF's interpreter does), folded into r0.
const shifts = `shifts
-- prog entry --
	r6 = *(u64 *)(r1 + 0)
	r7 = *(u64 *)(r1 + 8)
	r0 = 0
	r1 = r6
	r2 = 5
	r1 <<= r2
	r0 ^= r1
	r9 = r6
	r8 = 67
	r9 >>= r8
	r0 += r9
	r4 = r7
	r2 = 13
	r4 s>>= r2
	r0 ^= r4
	r2 = r6
	r4 = 3
	r2 <<= r4
	r0 += r2
	w5 = w7
	w3 = 33
	w5 <<= w3
	r0 ^= r5
	w7 s>>= w4
	r0 += r7
	w6 >>= w9
	r0 ^= r6
	exit
-- ctx --
u64 0x8123456789abcdef
u64 0xfedcba9876543210
-- run --
run entry
`

// Under BMI2 the JIT emits shlx/shrx/sarx, which Unicorn 2.0.1's default
// x86-64 CPU runs (measured: it decodes them although its CPUID does not
// report BMI2), and the results are the reference model's, as without.
func TestBMI2Shifts(t *testing.T) {
	sc, err := scenarios.Parse("shifts.txtar", []byte(shifts))
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []prog.Config{0, prog.BMI2} {
		w, err := sc.Build()
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := CompileX86(w, prog.Linux618, cfg)
		if err != nil {
			t.Fatal(err)
		}
		vex := 0
		for _, in := range loaded[0].Img.Insns {
			if loaded[0].Img.Code[in.Off] == 0xc4 {
				vex++
			}
		}
		// Seven shifts, two of them by rcx (R4), which stay the cl form.
		if want := map[prog.Config]int{0: 0, prog.BMI2: 5}[cfg]; vex != want {
			t.Errorf("config %v: %d VEX-encoded shifts, want %d", cfg, vex, want)
		}
		for _, v := range prog.Kernels {
			rep := scenarios.Run(sc, NewX86(cfg), v, scenarios.Options{})
			if rep.Status != scenarios.Pass {
				t.Errorf("config %v, %s: %s %v", cfg, v, rep.Status, rep.Failures)
			}
		}
	}
}

const presetsSrc = `an indirect site, and a direct one in a subprogram
-- maps --
jt max_entries=4
-- prog entry --
	r6 = r1
	call sub
	r1 = r6
	r2 = map[jt]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 7
	exit
-- subprog sub --
	r2 = map[jt]
	r3 = 3
	call bpf_tail_call
	r0 = 0
	exit
-- prog leaf --
	r0 = 1
	exit
-- slots --
jt[1] = leaf
-- ctx --
u32 1
-- run --
run entry
expect r0 = 1
expect path = entry leaf
set ctx+0 u32 = 2
run entry
expect r0 = 7
`

// Every preset runs a chain through both kinds of site and a subprogram's
// return on both arches as the reference model does, and the x86 code
// ends each tail call and return as the preset says.
func TestPresetsRun(t *testing.T) {
	sc, err := scenarios.Parse("presets.txtar", []byte(presetsSrc))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range prog.Configs {
		for _, b := range []*Backend{NewX86(0), NewArm64(0)} {
			for _, v := range prog.Kernels {
				rep := scenarios.Run(sc, b, v, scenarios.Options{Config: p.Config})
				if rep.Status != scenarios.Pass {
					t.Errorf("%s %s/%s: %s %v", p.Name, b.Name(), v, rep.Status, rep.Failures)
				}
			}
		}
		w, _ := sc.Build()
		loaded, err := CompileX86(w, prog.Linux618, p.Config)
		if err != nil {
			t.Fatal(err)
		}
		var jumps, rets []string
		for _, l := range loaded {
			for _, s := range l.Img.Sites {
				if s.Kind != prog.Direct {
					jumps = append(jumps, fmt.Sprintf("% x", l.Img.Code[s.Jump:s.Out]))
				}
			}
			code := l.Img.Code
			rets = append(rets, fmt.Sprintf("% x", code[len(code)-min(5, len(code)):]))
		}
		want := map[string][2]string{
			"default":       {"ff e1", "c3"},
			"distro":        {"e9 ", ""},
			"distro-eibrs":  {"ff e1 cc", "c9 c3 cc"},
			"distro-lfence": {"ff e1", ""},
		}[p.Name]
		for _, j := range jumps {
			if !strings.HasPrefix(j, want[0]) {
				t.Errorf("%s: a tail call ends % s, want %s", p.Name, j, want[0])
			}
		}
		for _, l := range loaded {
			for _, s := range l.Img.Sites {
				lfence := s.Jump >= 3 && bytes.Equal(l.Img.Code[s.Jump-3:s.Jump], []byte{0x0f, 0xae, 0xe8})
				if s.Kind != prog.Direct && lfence != (p.Config&prog.Lfence != 0) {
					t.Errorf("%s: lfence before the jump: %v", p.Name, lfence)
				}
			}
		}
		for _, r := range rets {
			if want[1] == "" && !strings.HasPrefix(r, "e9") || !strings.HasSuffix(r, want[1]) {
				t.Errorf("%s: a function ends %s, want %q (or a jump to the return thunk)", p.Name, r, want[1])
			}
		}
	}
}

// A jump through the retpoline thunk reaches its target with "ret", which
// indirect-branch tracking does not check: with IBT and the thunk, a jump
// to a wrong place is "lands at the tail-call entry" only, while with IBT
// and "jmp rcx" it also misses the endbr64 (the disp32 finding's wrapped
// displacement jumps into a struct bpf_prog).
func TestLandingPadThroughThunk(t *testing.T) {
	data, err := os.ReadFile("../scenarios/library/findings/patched_static_disp32.txtar")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Parse("disp32.txtar", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg     prog.Config
		landing bool
	}{{prog.IBT, true}, {prog.Configs[1].Config | prog.IBT, false}} {
		rep := scenarios.Run(sc, NewX86(0), prog.Linux618Series, scenarios.Options{Config: tc.cfg, Keep: func(scenarios.Step, int) bool { return true }})
		lands, pads := 0, 0
		for _, r := range rep.Runs {
			for _, v := range r.Result.Violations {
				switch v.Property {
				case prog.PropLands:
					lands++
				case prog.PropLandingPad:
					pads++
				}
			}
		}
		if lands == 0 || (pads > 0) != tc.landing {
			t.Errorf("config %v: %d wrong landings, %d missed landing pads (want some: %v)", tc.cfg, lands, pads, tc.landing)
		}
	}
}

// An emulated helper's call shows in the trace after the helper event,
// with its result, on the emulators as in the model.
func TestHelperDoneEvents(t *testing.T) {
	data, err := os.ReadFile("../scenarios/library/edges/array_map_helpers.txtar")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Parse("helpers.txtar", data)
	if err != nil {
		t.Fatal(err)
	}
	keep := func(scenarios.Step, int) bool { return true }
	for _, b := range []scenarios.Backend{NewX86(0), NewArm64(0), scenarios.Ref{}} {
		for _, step := range []bool{false, true} {
			rep := scenarios.Run(sc, b, prog.Linux618, scenarios.Options{Trace: true, Step: step, Keep: keep})
			var got []string
			for k, e := range rep.Runs[0].Result.Trace {
				if e.Kind == prog.EvHelperDone {
					got = append(got, e.Text[strings.LastIndex(e.Text, " = "):])
					if step && b.Name() != "ref" && (k == 0 || rep.Runs[0].Result.Trace[k-1].Kind != prog.EvHelper) {
						t.Errorf("%s: the result of %s does not follow its helper event", b.Name(), e.Text)
					}
				}
			}
			if fmt.Sprint(got) != "[ = 0x5  = 0x0  = 0xffffffffffffffea  = 0xffff888181000148]" {
				t.Errorf("%s (step %v): helper results %q", b.Name(), step, got)
			}
		}
	}
}
