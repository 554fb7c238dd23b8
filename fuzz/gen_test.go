package fuzz

import (
	"fmt"
	"testing"

	"tailsim/prog"
	"tailsim/scenarios"
)

// Every generated case is a valid scenario the verifier-like fix-ups
// accept, and a seed always gives the same text.
func TestGeneratedCasesBuild(t *testing.T) {
	for seed := uint64(0); seed < 2000; seed++ {
		c := Generate(seed)
		if c.Text() != Generate(seed).Text() {
			t.Fatalf("seed %d is not deterministic", seed)
		}
		sc, err := scenarios.Parse("case.txtar", []byte(c.Text()))
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, c.Text())
		}
		if _, err := sc.Build(); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, c.Text())
		}
	}
}

// The generator reaches every value of every ingredient the issue lists,
// and the max_entries and index biases hit their edges.
func TestGeneratorCoverage(t *testing.T) {
	seen := map[string]bool{}
	see := func(k string, v any) { seen[fmt.Sprintf("%s=%v", k, v)] = true }
	for seed := uint64(0); seed < 5000; seed++ {
		c := Generate(seed)
		see("target", c.Target)
		see("fill", c.Fill)
		see("insub", c.InSub)
		see("chain", c.Chain)
		see("preset", c.Preset)
		if c.Chain > 0 && c.Preset > 0 {
			t.Errorf("seed %d: a chain of %d and a preset of %d", seed, c.Chain, c.Preset)
		}
		see("config", c.Config)
		see("nodirect", c.NoDirect)
		see("placement", c.Placement)
		see("unprivileged", c.Unprivileged)
		if c.Unprivileged && c.Poisoned {
			t.Errorf("seed %d: an unprivileged site two maps reach", seed)
		}
		see("poisoned", c.Poisoned)
		see("keyconst", c.KeyConst)
		see("keyalu", c.KeyALU)
		see("other", c.Other)
		see("noise", c.Noise != 0)
		if c.Noise != 0 && c.Saved < 2 {
			t.Errorf("seed %d: noise without r7", seed)
		}
		if c.KeyALU && c.KeyConst || c.Other && !c.Poisoned {
			t.Errorf("seed %d: %+v", seed, c)
		}
		see("stack", c.Stack)
		see("odd stack", c.Stack%2 == 1)
		if c.Stack < 0 || c.Stack > 512 {
			t.Errorf("seed %d: stack %d", seed, c.Stack)
		}
		see("saved", c.Saved)
		see("layout", c.Layout.Name)
		see("max_entries=1", c.MaxEntries == 1)
		see("max_entries=2^32-1", c.MaxEntries == 1<<32-1)
		see("disp32 edge", c.MaxEntries == Disp32Limit(c.Layout))
		see("index=max_entries", c.Index == uint64(c.MaxEntries))
		see("index=max_entries-1", c.Index == uint64(c.MaxEntries)-1)
		see("index negative", int64(c.Index) < 0)
		see("index truncates", c.Index > 1<<32 && c.Index < 1<<33)
		see("in range", uint64(uint32(c.Index)) < uint64(c.MaxEntries))
		for k := 1; k <= 32; k++ {
			if c.MaxEntries>>(k-1) == 1 {
				see("max_entries bits", k)
			}
		}
	}
	want := append(dataValues(), fmtAll("chain", chains[:])...)
	want = append(want, "odd stack=true", "odd stack=false")
	for _, v := range configs {
		want = append(want, "config="+v.String())
	}
	for _, v := range stacks {
		if v != anyStack {
			want = append(want, fmt.Sprint("stack=", v))
		}
	}
	for _, l := range prog.Presets {
		want = append(want, "layout="+l.Name)
	}
	for _, p := range prog.Placements {
		want = append(want, "placement="+p.String())
	}
	for k := 1; k <= 32; k++ {
		want = append(want, fmt.Sprint("max_entries bits=", k))
	}
	want = append(want, "layout=custom", "saved=1", "saved=4")
	for _, k := range []string{"insub", "nodirect", "unprivileged", "poisoned", "keyconst", "keyalu", "other", "noise", "max_entries=1", "max_entries=2^32-1",
		"disp32 edge", "index=max_entries", "index=max_entries-1", "index negative", "index truncates", "in range"} {
		want = append(want, k+"=true", k+"=false")
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("5000 seeds never give %s", w)
		}
	}
}

// dataValues names every value of the data an input redraws, as the
// coverage tests record them.
func dataValues() []string {
	var out []string
	for _, v := range []Target{Leaf, Self, Bounce} {
		out = append(out, "target="+v.String())
	}
	for _, v := range []Fill{FillIndex, FillNone, FillNeighbours, FillAround} {
		out = append(out, "fill="+v.String())
	}
	return append(out, fmtAll("preset", presets[:])...)
}

func fmtAll(key string, vs []int) []string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprint(key, "=", v))
	}
	return out
}
