package fuzz

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

func TestSignature(t *testing.T) {
	differs := func(fs ...scenarios.Field) scenarios.Failure {
		f := scenarios.Failure{Kind: scenarios.FailDiffers, Line: 20, Step: "run entry", Iter: 1, Repeat: 1, Arch: "x86_64"}
		for _, field := range fs {
			f.Diffs = append(f.Diffs, scenarios.Diff{Field: field, Got: "a", Want: "b"})
		}
		return f
	}
	faultDiff := differs()
	faultDiff.Diffs = []scenarios.Diff{{Field: scenarios.FieldFault, GotFault: prog.FaultAccess}, {Field: scenarios.FieldCount}}
	noFaultDiff := differs()
	noFaultDiff.Diffs = []scenarios.Diff{{Field: scenarios.FieldFault}}
	fault := func(k prog.FaultKind) scenarios.Failure {
		return scenarios.Failure{Kind: scenarios.FailFault, Line: 9, Step: "run entry", Fault: &prog.Fault{Kind: k, Machine: "entry+0xc"}}
	}
	for _, tt := range []struct {
		failures []scenarios.Failure
		want     string
	}{
		{[]scenarios.Failure{differs(scenarios.FieldR0, scenarios.FieldCount, scenarios.FieldPath, scenarios.FieldFalls)},
			"differs(r0,count,path,fall-throughs)"},
		{[]scenarios.Failure{{Kind: scenarios.FailBroken, Violation: &prog.Violation{Property: prog.PropCountedOnce, Addr: 0x10100a4, Machine: "entry+0xa4", Insn: "jmp rcx"}}},
			"broken(counter incremented by one)"},
		{[]scenarios.Failure{fault(prog.FaultAccess), fault(prog.FaultAccess)},
			"fault(access)"},
		{[]scenarios.Failure{faultDiff, fault(prog.FaultAccess)},
			"differs(access fault,count) fault(access)"},
		{[]scenarios.Failure{noFaultDiff, differs(scenarios.FieldCtx)},
			"differs(ctx) differs(no fault)"},
		{[]scenarios.Failure{{Kind: scenarios.FailHeld, Property: prog.PropR1}, fault(prog.FaultBudget)},
			"fault(budget) other"},
		{[]scenarios.Failure{{Kind: scenarios.FailBroken}, {Kind: scenarios.FailFault}}, "other"},
	} {
		if got := signature(tt.failures); got != tt.want {
			t.Errorf("signature(%v) = %q, want %q", tt.failures, got, tt.want)
		}
	}
}

// Rewording a failure's text changes no signature: the fuzzer reads the
// typed fields, so a failure whose message would once have matched
// another kind's pattern keeps its own.
func TestSignatureIgnoresText(t *testing.T) {
	f := scenarios.Failure{Kind: scenarios.FailChange, Line: 3, Step: "delete jt[1]", Err: errors.New("access fault: counter incremented by one broken at 0x1")}
	if got := signature([]scenarios.Failure{f}); got != "other" {
		t.Errorf("signature = %q, want other", got)
	}
}

// checkOnlyKnown checks a case on every backend and variant and fails on
// any finding Known does not explain.
func checkOnlyKnown(t *testing.T, c Case, backends []prog.Backend) {
	t.Helper()
	fs, err := Check(c, backends, prog.Kernels)
	switch {
	case errors.Is(err, prog.ErrTooSlow):
		// Unchecked, so not a pass; the findings of the runs that did
		// finish are still judged below.
		t.Errorf("seed %d: a run did not finish within its wall-time budget (machine overloaded?): %v", c.Seed, err)
	case err != nil:
		t.Fatalf("seed %d does not parse: %v\n%s", c.Seed, err, c.Text())
	}
	for _, f := range fs {
		if Known(f) == "" {
			t.Errorf("seed %d: new finding %s/%s %s:\n%v\n%s", c.Seed, f.Arch, f.Kernel, f.Signature, f.Failures, c.Text())
		}
	}
}

// A short campaign over both emulated arches: the only findings are the
// kernel code's known behaviour (Known).
func TestShortCampaign(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	for seed := uint64(0); seed < 200; seed++ {
		checkOnlyKnown(t, Generate(seed), backends)
	}
}

// FuzzCase drives the generator from a seed (go test -fuzz FuzzCase): any
// finding that is not a known one fails.
func FuzzCase(f *testing.F) {
	for _, s := range []uint64{0, 6, 12, 21, 22, 30, 1 << 40, 0xdeadbeef} {
		f.Add(s)
	}
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkOnlyKnown(t, Generate(seed), backends)
	})
}

// The known findings are found, recognised, and named after a library file
// that exists; the same cases without their cause are clean.
func TestKnownFindings(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	disp := FromParams(Disp32Limit(prog.DefaultLayout), 1, 0)
	disp.Fill = FillIndex
	mixed := FromParams(4, 9, 0)
	mixed.Chain, mixed.NoDirect, mixed.Poisoned = 1, true, true
	for _, tc := range []struct {
		c     Case
		file  string
		clean func(*Case)
	}{
		{disp, "patched_static_disp32.txtar", func(c *Case) { c.MaxEntries-- }},
		{disp, "patched_static_disp32.txtar", func(c *Case) { c.Poisoned = true }},
		{disp, "patched_static_disp32.txtar", func(c *Case) { c.Index = uint64(c.MaxEntries) }},
		{mixed, "patched_x86_mixed_sites.txtar", func(c *Case) { c.NoDirect = false }},
		{mixed, "patched_x86_mixed_sites.txtar", func(c *Case) { c.InSub = true }},
	} {
		fs, err := Check(tc.c, backends, prog.Kernels)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) == 0 {
			t.Errorf("%s: no finding for\n%s", tc.file, tc.c.Text())
		}
		for _, f := range fs {
			known := Known(f)
			if !strings.HasSuffix(known, "/"+tc.file) {
				t.Errorf("%s/%s %s: known as %q, want %s", f.Arch, f.Kernel, f.Signature, known, tc.file)
				continue
			}
			if _, err := os.Stat(filepath.Join("..", known)); err != nil {
				t.Error(err)
			}
		}
		c := tc.c
		tc.clean(&c)
		for _, f := range fs {
			// The same failure on a case that cannot show the cause is new.
			f.Case = c
			if k := Known(f); k != "" {
				t.Errorf("%s: a finding on a case without the cause is known as %s", tc.file, k)
			}
		}
		if fs, _ := Check(c, backends, prog.Kernels); len(fs) > 0 {
			t.Errorf("%s: without its cause the case still has %d findings: %s", tc.file, len(fs), fs[0].Signature)
		}
	}
}

// FuzzParams lets the coverage-guided fuzzer mutate max_entries, the index
// and the shape word directly (go test -fuzz FuzzParams); the seed corpus
// under testdata/fuzz/FuzzParams runs in every go test.
func FuzzParams(f *testing.F) {
	for _, s := range []struct {
		max          uint32
		index, shape uint64
	}{
		{4, 1, 0}, {4, 4, 0}, {1, 1 << 32, 1}, {0xffffffff, 0xfffffffe, 3 << 3},
		{8, 9, 5<<31 | 3<<34 | 3<<39 | 3<<1}, // a chain into a poisoned site in a subprogram
	} {
		f.Add(s.max, s.index, s.shape)
	}
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	f.Fuzz(func(t *testing.T, maxEntries uint32, index, shape uint64) {
		checkOnlyKnown(t, FromParams(maxEntries, index, shape), backends)
	})
}
