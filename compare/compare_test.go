package compare_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"tailsim/compare"
	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

func load(t *testing.T, path string) *scenarios.Scenario {
	t.Helper()
	data, err := os.ReadFile("../" + path)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// Upstream beside patched on lib/test_bpf's first tail call: one site,
// indirect against static, the loads from the array and programs as the
// two runs measured them (three upstream, one patched), the same results.
func TestUpstreamBesidePatched(t *testing.T) {
	sc := load(t, "scenarios/library/test_bpf/01_tail_call_2.txtar")
	for _, b := range []scenarios.Backend{emu.NewX86(0), emu.NewArm64(0)} {
		c, err := compare.Compare(sc, compare.Side{Backend: b, Kernel: prog.Linux618}, compare.Side{Backend: b, Kernel: prog.Linux618Series}, compare.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Sites) != 1 || c.Sites[0].Left == nil || c.Sites[0].Right == nil {
			t.Fatalf("%s: sites %+v", b.Name(), c.Sites)
		}
		s := c.Sites[0]
		if !strings.HasPrefix(s.Left.Kind, "indirect") || !strings.HasPrefix(s.Right.Kind, "static") {
			t.Errorf("%s: kinds %q, %q", b.Name(), s.Left.Kind, s.Right.Kind)
		}
		if len(s.LeftCosts) != 1 || len(s.RightCosts) != 1 || s.LeftCosts[0].ArrayProgLoads != 3 || s.RightCosts[0].ArrayProgLoads != 1 ||
			s.LeftCosts[0].Times != 1000 || s.RightCosts[0].Insns >= s.LeftCosts[0].Insns {
			t.Errorf("%s: costs %+v | %+v", b.Name(), s.LeftCosts, s.RightCosts)
		}
		if !c.Equivalent() || len(c.Runs) != 1 || c.Runs[0].Same != 1000 {
			t.Errorf("%s: runs %+v", b.Name(), c.Runs)
		}
		var out strings.Builder
		if err := c.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"tail call tail_call_2+4 (line 21)", b.Name() + "/v6.18", b.Name() + "/v6.18+series", "the same in all 1000 iterations", "loads 3 array/prog", "loads 1 array/prog"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: text lacks %q:\n%s", b.Name(), want, out.String())
			}
		}
		// Relative offsets: no absolute code address (the arena is at
		// 0x1000000 and up) in the code.
		if regexp.MustCompile(`0x1[0-9a-f]{6}\b`).MatchString(out.String()) {
			t.Errorf("%s: an absolute address in:\n%s", b.Name(), out.String())
		}
	}
}

// The patched displacement overflow: the runs differ, and say how.
func TestDifferentRuns(t *testing.T) {
	sc := load(t, "scenarios/library/findings/patched_static_disp32.txtar")
	x86 := emu.NewX86(0)
	c, err := compare.Compare(sc, compare.Side{Backend: x86, Kernel: prog.Linux618}, compare.Side{Backend: x86, Kernel: prog.Linux618Series}, compare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Equivalent() {
		t.Fatalf("runs %+v", c.Runs)
	}
	diffs := map[string]bool{}
	for _, r := range c.Runs {
		if r.Same != r.Iterations {
			diffs[r.Diff] = true
		}
	}
	if !diffs["no fault vs access fault"] || !diffs["r0 0x2a vs 0x1"] {
		t.Errorf("diffs %v", diffs)
	}
}

// Two arches on one variant.
func TestArchBesideArch(t *testing.T) {
	sc := load(t, "scenarios/library/edges/index_2pow32_plus_1.txtar")
	c, err := compare.Compare(sc, compare.Side{Backend: emu.NewX86(0), Kernel: prog.Linux618Series},
		compare.Side{Backend: emu.NewArm64(0), Kernel: prog.Linux618Series}, compare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equivalent() || len(c.Sites) != 1 || c.Sites[0].LeftCosts[0].ArrayProgLoads != 1 || c.Sites[0].RightCosts[0].ArrayProgLoads != 1 {
		t.Errorf("sites %+v runs %+v", c.Sites, c.Runs)
	}
}

// The arches' programs need not have the same slots: x86's verifier
// inlines bpf_get_smp_processor_id() in three instructions, arm64 keeps
// the call. The tail calls still pair up, each with its own costs.
func TestArchBesideArchAfterARewrite(t *testing.T) {
	sc := load(t, "scenarios/library/edges/smp_processor_id_inlined.txtar")
	c, err := compare.Compare(sc, compare.Side{Backend: emu.NewX86(0), Kernel: prog.Linux618Series},
		compare.Side{Backend: emu.NewArm64(0), Kernel: prog.Linux618Series}, compare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sites) != 1 {
		t.Fatalf("%d sites, want 1: %+v", len(c.Sites), c.Sites)
	}
	s := c.Sites[0]
	if s.Left == nil || s.Right == nil || len(s.LeftCosts) != 1 || len(s.RightCosts) != 1 || !c.Equivalent() {
		t.Errorf("site %+v, runs %+v", s, c.Runs)
	}
	if s.Left != nil && s.Right != nil && s.Left.Group.Loc.Slot != s.Right.Group.Loc.Slot+2 {
		t.Errorf("x86's tail call at slot %d, arm64's at %d: want two slots apart", s.Left.Group.Loc.Slot, s.Right.Group.Loc.Slot)
	}
}
