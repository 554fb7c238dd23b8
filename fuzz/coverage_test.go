package fuzz

import (
	"slices"
	"strings"
	"testing"

	"tailsim/emu"
	"tailsim/prog"
)

func TestCoverage(t *testing.T) {
	x86, arm64 := emu.NewX86(0), emu.NewArm64(0)
	// x86: v6.1's and v6.18's indirect and direct, the series' static,
	// dynamic and direct; arm64: no direct calls. 14 cells a path, 9 a
	// direct one, and each path's four windows.
	wanted := Wanted([]prog.Backend{x86, arm64}, prog.Kernels)
	if len(wanted) != 8*14+3*9+11*4 {
		t.Errorf("%d cells wanted", len(wanted))
	}
	cv := Coverage{}
	cv.add("x86_64", "v6.18", NoWindow, []prog.TailOutcome{{Path: prog.Indirect, Count: 0}, {Path: prog.Indirect, Count: 33, Reason: prog.FallLimit},
		{Path: prog.Indirect, Count: 7, Reason: prog.FallBounds}, {Path: prog.Indirect, Count: 0}})
	if n := cv[Cell{"x86_64", "v6.18", "indirect", "taken", "0", ""}]; n != 2 {
		t.Errorf("taken@0 counted %d times", n)
	}
	if cv[Cell{"x86_64", "v6.18", "indirect", "bounds", "2-30", ""}] != 1 || len(cv.Missing(wanted)) != len(wanted)-2 {
		t.Errorf("coverage %v, %d missing", cv, len(cv.Missing(wanted)))
	}
	back := FromRows(cv.Rows())
	back.merge(cv)
	if back[Cell{"x86_64", "v6.18", "indirect", "limit", "33", ""}] != 2 {
		t.Errorf("rows and merge: %v", back)
	}
	var b strings.Builder
	cv.add("x86_64", "v6.18", NoWindow, []prog.TailOutcome{{Path: prog.Indirect, Count: 33}})
	// In a window: the patched static path reads the cached half, which
	// an update stopped after ptrs has not written yet: empty is wanted,
	// taken is not; bounds and other counters are ordinary.
	cv.add("arm64", "v6.18+series", UpdatePtrs, []prog.TailOutcome{{Path: prog.Static, Reason: prog.FallEmpty}, {Path: prog.Static, Count: 5},
		{Path: prog.Static, Count: 1, Reason: prog.FallBounds}, {Path: prog.Static, Count: 31, Reason: prog.FallEmpty}})
	if err := cv.WriteText(&b, wanted); err != nil || !strings.Contains(b.String(), "x86_64/v6.18 indirect: taken@0=2 taken@1=0") ||
		!strings.Contains(b.String(), " [update stop=ptrs]empty@0=1 [update stop=cached]taken@0=0 [delete stop=ptrs]taken@0=0 [delete stop=cached]empty@0=0\n") ||
		!strings.Contains(b.String(), "unexpected: arm64/v6.18+series static [update stop=ptrs]taken@2-30=1 x86_64/v6.18 indirect taken@33=1\n") {
		t.Errorf("%v:\n%s", err, b.String())
	}
	for _, tt := range []struct {
		path prog.SiteKind
		w    Window
		want prog.Reason
	}{
		{prog.Indirect, UpdatePtrs, 0}, {prog.Dynamic, UpdatePtrs, 0}, {prog.Static, UpdatePtrs, prog.FallEmpty}, {prog.Direct, UpdatePtrs, prog.FallEmpty},
		{prog.Static, UpdateCached, 0}, {prog.Direct, UpdateCached, prog.FallEmpty},
		{prog.Indirect, DeletePtrs, prog.FallEmpty}, {prog.Static, DeletePtrs, 0}, {prog.Direct, DeletePtrs, 0},
		{prog.Static, DeleteCached, prog.FallEmpty}, {prog.Direct, DeleteCached, 0},
	} {
		if got := windowOutcome(tt.path, tt.w); got != tt.want {
			t.Errorf("%s in %s: %v, want %v", tt.path, tt.w, got, tt.want)
		}
	}
}

// A short campaign reaches cells on every arch and variant, and its
// findings index carries them.
func TestCampaignCoverage(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	c := &Campaign{Backends: backends, Kernels: prog.Kernels, Seed: 1, Cases: 128, Inputs: 16, Out: t.TempDir()}
	sum, err := c.Run()
	if err != nil {
		t.Fatal(err)
	}
	wanted := Wanted(backends, prog.Kernels)
	reached := len(wanted) - len(sum.Coverage.Missing(wanted))
	seen := map[string]bool{}
	for cell := range sum.Coverage {
		seen[cell.Arch+"/"+cell.Kernel] = true
	}
	if reached < len(wanted)/2 || len(seen) != 2*len(prog.Kernels) {
		t.Errorf("128 cases reached %d of %d cells, on %v", reached, len(wanted), seen)
	}
	x, err := readIndex(c.Out)
	if err != nil || len(FromRows(x.Coverage)) != len(sum.Coverage) {
		t.Errorf("index coverage: %v, %d rows", err, len(x.Coverage))
	}
}

// No call of a correct backend reaches an unexpected cell: in a window,
// every call through the slot in flight does what windowOutcome says its
// path's part of the slot gives; outside one, no call is taken at the
// limit and no limit stops one below it. Only a machine with a known
// finding on the input (its code reads the wrong place) is left out, so
// the "unexpected" cells a campaign prints are the known findings'.
func TestNothingUnexpected(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	s := newStream(backends, prog.Kernels)
	defer s.close()
	cv := Coverage{}
	windows, skipped := 0, 0
	for seed := uint64(1); seed <= 80; seed++ {
		for k := range DefaultInputs {
			c := StreamCase(seed, k)
			fs, slow, err := s.check(c, nil)
			if err != nil || slow {
				t.Fatalf("seed %d input %d: %v %v", seed, k, slow, err)
			}
			if c.window() != NoWindow {
				windows++
			}
			// The same input again, counted: the machines are where the
			// check left them (window steps included).
			for _, m := range s.machines {
				if slices.ContainsFunc(fs, func(f Finding) bool {
					return f.Arch == m.b.Name() && f.Kernel == m.v.String() && Known(f) != ""
				}) {
					skipped++
					continue
				}
				m.m.(prog.CountPresetter).PresetCount(uint64(c.Preset))
				cv.add(m.b.Name(), m.v.String(), c.window(), m.m.Run(s.entry, s.input(c)).Calls)
			}
		}
	}
	for cell, n := range cv {
		if cell.unexpected() && !slices.Contains(Wanted(backends, prog.Kernels), cell) {
			t.Errorf("%s/%s %s %s: %d calls", cell.Arch, cell.Kernel, cell.Path, cell, n)
		}
	}
	if windows < 100 || skipped > 80*DefaultInputs {
		t.Errorf("%d window inputs in the sample, %d machine runs left out", windows, skipped)
	}
}
