package fuzz

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

// presetCase is a site reached with the counter at n: either through a
// real chain of n tail calls (c0 → c1 → … → site) or, with
// prog.CountPresetter, by entering the site's program directly.
type presetCase struct {
	n          int    // tail calls before the site, 0..33
	maxEntries uint32 // the site's array
	index      uint64 // the site's index, maybe wider than 32 bits
	fromCtx    bool   // the index is read from ctx (indirect / dynamic)
	slot       string // what the indexed slot holds: leaf, site (itself), bounce (back to site) or ""
	neighbour  bool   // slot index+1 holds leaf too
	// inSub puts the site in a subprogram the site's program calls
	// (bpf2bpf): the counter is then reached through the pointer the
	// caller's frame passes down.
	inSub bool
	// poisoned lets a second map reach the site: the patched dynamic path.
	poisoned bool
	// Stack depths: the site's program and every other chain program's
	// (x86 keeps each program's counter cell below its own stack, so the
	// cell moves along a chain of different depths).
	stackSite, stackChain int
	config                string // the config line, "" for none
}

func (c presetCase) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "counter preset equivalence: %+v\n\n", c)
	if c.config != "" {
		fmt.Fprintf(&b, "-- config --\nconfig %s\n", c.config)
	}
	fmt.Fprintf(&b, "-- maps --\nchain max_entries=34\njt max_entries=%d\nother max_entries=2\nback max_entries=1\n", c.maxEntries)
	// bounce calls the site back from a deeper stack: a two-program cycle
	// whose counter cell moves on x86.
	fmt.Fprintf(&b, "-- prog bounce stack=%d --\n\tr2 = map[back]\n\tr3 = 0\n\tcall bpf_tail_call\n\tr0 = 5\n\texit\n", c.stackSite+64)
	b.WriteString("-- prog leaf --\n\tr0 = 7\n\texit\n")
	if c.inSub {
		b.WriteString("-- subprog tc --\n")
	} else {
		fmt.Fprintf(&b, "-- prog site stack=%d --\n", c.stackSite)
	}
	// The site is the generator's: the same maps (jt, other), the same
	// ctx (the index at +0, the map selector at +12).
	b.WriteString("\tr6 = r1\n")
	Case{Poisoned: c.poisoned, KeyConst: !c.fromCtx, Index: c.index}.site(&b)
	b.WriteString("\tr0 = 100\n\texit\n")
	if c.inSub {
		fmt.Fprintf(&b, "-- prog site stack=%d --\n\tr6 = r1\n\tcall tc\n\tr0 += 1\n\texit\n", c.stackSite)
	}
	for k := 0; k < c.n; k++ {
		stack := 0
		if k%2 == 0 {
			stack = c.stackChain
		}
		fmt.Fprintf(&b, "-- prog c%d stack=%d --\n\tr2 = map[chain]\n\tr3 = %d\n\tcall bpf_tail_call\n\tr0 = %d\n\texit\n", k, stack, k+1, 200+k)
	}
	b.WriteString("-- slots --\nback[0] = site\n")
	for k := 1; k < c.n; k++ {
		fmt.Fprintf(&b, "chain[%d] = c%d\n", k, k)
	}
	if c.n > 0 {
		fmt.Fprintf(&b, "chain[%d] = site\n", c.n)
	}
	if c.slot != "" && c.index < uint64(c.maxEntries) {
		fmt.Fprintf(&b, "jt[%d] = %s\n", c.index, c.slot)
	}
	if c.neighbour && c.index+1 < uint64(c.maxEntries) {
		fmt.Fprintf(&b, "jt[%d] = leaf\n", c.index+1)
	}
	fmt.Fprintf(&b, "-- ctx --\nu64 %d\nu32 0\nu32 0\n-- run --\nrun site\n", c.index)
	return b.String()
}

// samplePreset draws cases around the edges: the counter at 0, 1, 31–33 and
// between, indexes in and out of bounds (and past 32 bits, which the JITs
// truncate), slots leaf, self (the site calls itself up to the limit) and
// empty; a third of the sites in a subprogram, a third reached by two
// maps (the patched dynamic path); stack depths that differ along the
// chain; and control-flow protections and the distribution builds.
func samplePreset(r *rand.Rand) presetCase {
	ns := []int{0, 1, 2, 17, 30, 31, 32, 33}
	stacks := []int{0, 16, 64, 128}
	c := presetCase{n: ns[r.IntN(len(ns))], maxEntries: uint32(1 + r.IntN(8)), fromCtx: r.IntN(2) == 0, neighbour: r.IntN(2) == 0,
		inSub: r.IntN(3) == 0, poisoned: r.IntN(3) == 0, stackSite: stacks[r.IntN(4)], stackChain: stacks[r.IntN(4)],
		config: []string{"", "", "ibt,bti", "pac", "ibt,bti,pac", "distro", "distro-lfence"}[r.IntN(7)]}
	switch r.IntN(4) {
	case 0:
		c.index = uint64(c.maxEntries) + uint64(r.IntN(3)) // out of bounds
	case 1:
		c.index = 1<<32 + uint64(r.IntN(int(c.maxEntries))) // truncated into bounds
	default:
		c.index = uint64(r.IntN(int(c.maxEntries)))
	}
	if !c.fromCtx {
		c.index &= 0xffff_ffff // a constant key is the verifier's u32
	}
	c.slot = []string{"leaf", "site", "bounce", ""}[r.IntN(4)]
	return c
}

// presetSeen is what the shortcut must reproduce of a real chain: from the
// site on, every tail call's path, counter and outcome, the programs
// entered, R0, the final counter, the fault and the broken properties.
type presetSeen struct {
	Calls      []prog.TailOutcome
	Path       []string
	R0         uint64
	Count      uint64
	Fault      string
	Violations []string
}

func seenFrom(res *prog.Result, skip int) presetSeen {
	s := presetSeen{R0: res.R0, Count: res.Count}
	if len(res.Calls) >= skip {
		s.Calls = res.Calls[skip:]
	}
	if len(res.Path) >= skip {
		s.Path = res.Path[skip:]
	}
	if res.Fault != nil {
		s.Fault = res.Fault.Kind.String()
	}
	for _, v := range res.Violations {
		s.Violations = append(s.Violations, v.Property.String())
	}
	return s
}

func runPreset(t *testing.T, b prog.Backend, v prog.Kernel, c presetCase, preset bool) *prog.Result {
	t.Helper()
	sc, w := buildText(t, "preset.txtar", c.text())
	m, err := b.Load(w, v, prog.LoadOptions{Config: sc.Config})
	if err != nil {
		t.Fatalf("%s/%s: %v\n%s", b.Name(), v, err, c.text())
	}
	defer m.Close()
	entry := w.Prog("c0")
	if preset || c.n == 0 {
		entry = w.Prog("site")
	}
	if preset {
		p, ok := m.(prog.CountPresetter)
		if !ok {
			t.Fatalf("%s: no PresetCount", b.Name())
		}
		p.PresetCount(uint64(c.n))
	}
	return m.Run(entry, append([]byte(nil), w.Ctx...))
}

// TestCountPresetEquivalence proves issue 12's shortcut: for sampled
// sites, entering the site with the counter preset to n gives the same
// verdicts as a real chain of n tail calls ending there, on both emulated
// arches, both variants, and the reference model with and without direct
// tail calls and with the kernel interpreter's counting rule; sites in
// the main function and behind a bpf2bpf call.
func TestCountPresetEquivalence(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0), scenarios.Ref{}, scenarios.Ref{NoDirectTailCalls: true},
		scenarios.Ref{Rule: prog.RuleInterp}}
	r := rand.New(rand.NewPCG(12, 2))
	cases := 60
	if testing.Short() {
		cases = 20
	}
	reached := map[string]bool{}
	for i := 0; i < cases; i++ {
		c := samplePreset(r)
		switch { // the limit's edges, whatever the sampler draws
		case i < 4:
			c.n = []int{0, 31, 32, 33}[i]
		case i == 4:
			c.n, c.index = 33, uint64(c.maxEntries)
		}
		for _, b := range backends {
			for _, v := range prog.Kernels {
				chain := runPreset(t, b, v, c, false)
				if len(chain.Calls) < c.n || chain.Fault != nil && len(chain.Calls) == c.n {
					t.Fatalf("%s/%s: the chain did not reach the site: %+v\n%s", b.Name(), v, chain, c.text())
				}
				short := runPreset(t, b, v, c, true)
				want, got := seenFrom(chain, c.n), seenFrom(short, 0)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s/%s: the shortcut differs from the chain (-chain +shortcut):\n%s\n%s", b.Name(), v, diff, c.text())
				}
				if len(got.Calls) > 0 {
					o := got.Calls[0]
					reached[fmt.Sprintf("%s/%s %s@%d", b.Name(), v, outcomeName(o.Reason), o.Count)] = true
					reached[fmt.Sprintf("%s/%s path %s", b.Name(), v, o.Path)] = true
				}
			}
		}
	}
	// The sample is not vacuous: every path each arch emits was taken
	// first, and the shortcut took calls, fell through at the limit and
	// out of bounds at 32 and 33 on every arch.
	for _, want := range []string{"x86_64/v6.18 path indirect", "x86_64/v6.18 path direct", "x86_64/v6.18+series path static",
		"x86_64/v6.18+series path dynamic", "x86_64/v6.18+series path direct", "arm64/v6.18 path indirect", "arm64/v6.18+series path static",
		"arm64/v6.18+series path dynamic", "x86_64/v6.1 path indirect", "x86_64/v6.1 path direct", "arm64/v6.1 path indirect"} {
		if !reached[want] {
			t.Errorf("no sampled site on %s", want)
		}
	}
	for _, b := range backends[:2] {
		for _, want := range []string{"limit@33", "taken@32", "bounds@33"} {
			found := false
			for k := range reached {
				if strings.HasPrefix(k, b.Name()+"/") && strings.HasSuffix(k, " "+want) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no sampled site reached %s", b.Name(), want)
			}
		}
	}
}

// A counter preset to the limit stops the fuzzed call before the patched
// static path loads its cached target, so the disp32 finding cannot be
// what such a case shows (Known must not claim it).
func TestPresetAtLimitLoadsNothing(t *testing.T) {
	c := FromParams(Disp32Limit(prog.DefaultLayout), 1, 7<<41)
	if c.Preset != 33 || c.Chain != 0 {
		t.Fatalf("shape 7<<41: preset %d, chain %d", c.Preset, c.Chain)
	}
	if c.loadsCachedTarget("arm64") {
		t.Error("a call at the limit loads the cached target")
	}
	c.Preset = 32
	if !c.loadsCachedTarget("arm64") {
		t.Error("a call below the limit does not load the cached target")
	}
	if !strings.Contains(c.Text(), "run entry tail_call_cnt=32\n") {
		t.Errorf("the reproducer does not carry the preset:\n%s", c.Text())
	}
}
