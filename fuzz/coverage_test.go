package fuzz

import (
	"strings"
	"testing"

	"tailsim/emu"
	"tailsim/prog"
)

func TestCoverage(t *testing.T) {
	x86, arm64 := emu.NewX86(false), emu.NewArm64(false, false)
	// x86: upstream indirect and direct, patched static, dynamic and
	// direct; arm64: no direct calls. 14 cells a path, 9 a direct one.
	wanted := Wanted([]prog.Backend{x86, arm64}, prog.Variants)
	if len(wanted) != 5*14-2*5+3*14 {
		t.Errorf("%d cells wanted", len(wanted))
	}
	cv := Coverage{}
	cv.add("x86_64", "upstream", []prog.TailOutcome{{Path: prog.Indirect, Count: 0}, {Path: prog.Indirect, Count: 33, Reason: prog.FallLimit},
		{Path: prog.Indirect, Count: 7, Reason: prog.FallBounds}, {Path: prog.Indirect, Count: 0}})
	if n := cv[Cell{"x86_64", "upstream", "indirect", "taken", "0"}]; n != 2 {
		t.Errorf("taken@0 counted %d times", n)
	}
	if cv[Cell{"x86_64", "upstream", "indirect", "bounds", "2-30"}] != 1 || len(cv.Missing(wanted)) != len(wanted)-2 {
		t.Errorf("coverage %v, %d missing", cv, len(cv.Missing(wanted)))
	}
	back := FromRows(cv.Rows())
	back.merge(cv)
	if back[Cell{"x86_64", "upstream", "indirect", "limit", "33"}] != 2 {
		t.Errorf("rows and merge: %v", back)
	}
	var b strings.Builder
	cv.add("x86_64", "upstream", []prog.TailOutcome{{Path: prog.Indirect, Count: 33}})
	if err := cv.WriteText(&b, wanted); err != nil || !strings.Contains(b.String(), "x86_64/upstream indirect: taken@0=2 taken@1=0") ||
		!strings.Contains(b.String(), "unexpected: x86_64/upstream indirect taken@33=1\n") {
		t.Errorf("%v:\n%s", err, b.String())
	}
}

// A short campaign reaches cells on every arch and variant, and its
// findings index carries them.
func TestCampaignCoverage(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(false), emu.NewArm64(false, false)}
	c := &Campaign{Backends: backends, Variants: prog.Variants, Seed: 1, Cases: 60, Out: t.TempDir()}
	sum, err := c.Run()
	if err != nil {
		t.Fatal(err)
	}
	wanted := Wanted(backends, prog.Variants)
	reached := len(wanted) - len(sum.Coverage.Missing(wanted))
	seen := map[string]bool{}
	for cell := range sum.Coverage {
		seen[cell.Arch+"/"+cell.Variant] = true
	}
	if reached < len(wanted)/2 || len(seen) != 4 {
		t.Errorf("60 cases reached %d of %d cells, on %v", reached, len(wanted), seen)
	}
	x, err := readIndex(c.Out)
	if err != nil || len(FromRows(x.Coverage)) != len(sum.Coverage) {
		t.Errorf("index coverage: %v, %d rows", err, len(x.Coverage))
	}
}
