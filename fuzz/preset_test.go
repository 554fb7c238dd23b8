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
	slot       string // what the indexed slot holds: leaf, site (itself) or ""
	neighbour  bool   // slot index+1 holds leaf too
	// inSub puts the site in a subprogram the site's program calls
	// (bpf2bpf): the counter is then reached through the pointer the
	// caller's frame passes down.
	inSub bool
}

func (c presetCase) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "counter preset equivalence: %+v\n\n-- maps --\nchain max_entries=34\njt max_entries=%d\n", c, c.maxEntries)
	b.WriteString("-- prog leaf --\n\tr0 = 7\n\texit\n")
	if c.inSub {
		b.WriteString("-- subprog tc --\n")
	} else {
		b.WriteString("-- prog site --\n")
	}
	b.WriteString("\tr6 = r1\n\tr2 = map[jt]\n")
	if c.fromCtx {
		b.WriteString("\tr3 = *(u64 *)(r6 + 0)\n")
	} else {
		fmt.Fprintf(&b, "\tr3 = %d ll\n", c.index)
	}
	b.WriteString("\tr1 = r6\n\tcall bpf_tail_call\n\tr0 = 100\n\texit\n")
	if c.inSub {
		b.WriteString("-- prog site --\n\tr6 = r1\n\tcall tc\n\tr0 += 1\n\texit\n")
	}
	for k := 0; k < c.n; k++ {
		fmt.Fprintf(&b, "-- prog c%d --\n\tr2 = map[chain]\n\tr3 = %d\n\tcall bpf_tail_call\n\tr0 = %d\n\texit\n", k, k+1, 200+k)
	}
	b.WriteString("-- slots --\n")
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
	fmt.Fprintf(&b, "-- ctx --\nu64 %d\n-- run --\nrun site\n", c.index)
	return b.String()
}

// samplePreset draws cases around the edges: the counter at 0, 1, 31–33 and
// between, indexes in and out of bounds (and past 32 bits, which the JITs
// truncate), slots leaf, self (the site calls itself up to the limit) and
// empty; a third of the sites in a subprogram.
func samplePreset(r *rand.Rand) presetCase {
	ns := []int{0, 1, 2, 17, 30, 31, 32, 33}
	c := presetCase{n: ns[r.IntN(len(ns))], maxEntries: uint32(1 + r.IntN(8)), fromCtx: r.IntN(2) == 0, neighbour: r.IntN(2) == 0, inSub: r.IntN(3) == 0}
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
	c.slot = []string{"leaf", "site", ""}[r.IntN(3)]
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

func runPreset(t *testing.T, b prog.Backend, v prog.Variant, c presetCase, preset bool) *prog.Result {
	t.Helper()
	_, w := buildText(t, "preset.txtar", c.text())
	m, err := b.Load(w, v, prog.LoadOptions{})
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
// tail calls; sites in the main function and behind a bpf2bpf call.
func TestCountPresetEquivalence(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(false), emu.NewArm64(false, false), scenarios.Ref{}, scenarios.Ref{NoDirectTailCalls: true}}
	r := rand.New(rand.NewPCG(12, 2))
	cases := 60
	if testing.Short() {
		cases = 20
	}
	reached := map[string]bool{}
	for i := 0; i < cases; i++ {
		c := samplePreset(r)
		if i < 4 { // the limit's edges, whatever the sampler draws
			c.n = []int{0, 31, 32, 33}[i]
		}
		for _, b := range backends {
			for _, v := range prog.Variants {
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
				}
			}
		}
	}
	// The sample is not vacuous: the shortcut took calls, fell through at
	// the limit and out of bounds at 32 and 33 on every arch.
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
