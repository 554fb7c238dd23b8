// Package fuzz generates tail-call cases over the parameters that shape a
// tail call and checks each on every backend against the reference model.
// A case is generated as scenario text, so every finding is already a
// scenario file that "tailsim run" reproduces.
package fuzz

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"tailsim/prog"
)

// Case is one generated tail-call situation.
type Case struct {
	Seed       uint64
	MaxEntries uint32
	Index      uint64 // R3 at the tail call
	KeyConst   bool   // R3 is a constant (direct-capable) rather than read from ctx
	Poisoned   bool   // a second map reaches R2
	SelfLoop   bool   // the slot holds the entry itself: runs into the limit
	Filled     bool   // the slot u32(Index) holds a program (when in range)
	Stack      int    // entry's stack depth
	Saved      int    // callee-saved registers the entry uses (0–4)
	Layout     string // preset name
}

// biasedU32 favours the values where bounds checks go wrong.
func biasedU32(r *rand.Rand) uint32 {
	switch r.IntN(6) {
	case 0:
		return uint32(1 + r.IntN(4))
	case 1:
		k := uint(r.IntN(32))
		return uint32(uint64(1)<<k) + uint32(r.IntN(3)) - 1
	case 2:
		return 0xffffffff - uint32(r.IntN(3))
	case 3:
		return 1<<28 - 38 + uint32(r.IntN(3)) - 1 // where the patched disp32 starts to overflow
	default:
		return r.Uint32()
	}
}

// biasedIndex favours indexes around max_entries and the u32 edges.
func biasedIndex(r *rand.Rand, max uint32) uint64 {
	switch r.IntN(8) {
	case 0:
		return 0
	case 1:
		return uint64(max) - 1
	case 2:
		return uint64(max)
	case 3:
		return uint64(max) + 1
	case 4:
		return 1 << 31
	case 5:
		return 1<<32 - 1
	case 6:
		return 1<<32 + uint64(r.IntN(4)) // truncates to a small index
	default:
		return uint64(-int64(1 + r.IntN(3))) // negative
	}
}

var layouts = func() []string {
	var out []string
	for _, l := range prog.Presets {
		out = append(out, l.Name)
	}
	return out
}()

// Generate draws the case for a seed; the same seed gives the same case.
func Generate(seed uint64) Case {
	r := rand.New(rand.NewPCG(seed, 0x7a11ca11))
	c := Case{Seed: seed, MaxEntries: biasedU32(r)}
	if c.MaxEntries == 0 {
		c.MaxEntries = 1
	}
	c.Index = biasedIndex(r, c.MaxEntries)
	c.KeyConst = r.IntN(2) == 0
	c.Poisoned = r.IntN(5) == 0
	c.SelfLoop = r.IntN(4) == 0
	c.Filled = r.IntN(5) != 0
	c.Stack = []int{0, 8, 24, 64, 512}[r.IntN(5)]
	c.Saved = r.IntN(5)
	c.Layout = layouts[r.IntN(len(layouts))]
	return c
}

// Text renders the case as a scenario with no expectations: every backend
// is checked against the reference model and by its machine-level checks.
func (c Case) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fuzz case %d\n", c.Seed)
	fmt.Fprintf(&b, "max_entries %#x, index %#x, constant key %v, poisoned %v, self loop %v, slot filled %v,\n",
		c.MaxEntries, c.Index, c.KeyConst, c.Poisoned, c.SelfLoop, c.Filled)
	fmt.Fprintf(&b, "stack %d, callee-saved %d, layout %s.\n\n", c.Stack, c.Saved, c.Layout)
	fmt.Fprintf(&b, "-- config --\nlayout %s\n-- maps --\njt max_entries=%d\n", c.Layout, c.MaxEntries)
	if c.Poisoned {
		b.WriteString("other max_entries=2\n")
	}
	b.WriteString("-- prog target --\n\tr0 = 42\n\texit\n")
	fmt.Fprintf(&b, "-- prog entry stack=%d --\n", c.Stack)
	b.WriteString("\tr6 = r1\n")
	for i := 1; i < c.Saved; i++ {
		fmt.Fprintf(&b, "\tr%d = %d\n", 6+i, i)
	}
	if c.Stack > 0 {
		fmt.Fprintf(&b, "\t*(u64 *)(r10 - %d) = 7\n", c.Stack-c.Stack%8)
	}
	b.WriteString("\tr2 = *(u32 *)(r1 + 8)\n\tr2 += 1\n\t*(u32 *)(r1 + 8) = r2\n") // count entries
	if c.Poisoned {
		b.WriteString("\tr0 = *(u32 *)(r1 + 12)\n\tr2 = map[jt]\n\tif r0 == 0 goto key\n\tr2 = map[other]\nkey:\n")
	} else {
		b.WriteString("\tr2 = map[jt]\n")
	}
	if c.KeyConst {
		fmt.Fprintf(&b, "\tr3 = %#x ll\n", c.Index)
	} else {
		b.WriteString("\tr3 = *(u64 *)(r1 + 0)\n")
	}
	b.WriteString("\tr1 = r6\n\tcall bpf_tail_call\n\tr0 = 1\n")
	for i := 1; i < c.Saved; i++ {
		fmt.Fprintf(&b, "\tr0 += r%d\n", 6+i)
	}
	b.WriteString("\texit\n")
	idx := uint32(c.Index)
	if c.Filled && uint64(idx) < uint64(c.MaxEntries) {
		who := "target"
		if c.SelfLoop {
			who = "entry"
		}
		fmt.Fprintf(&b, "-- slots --\njt[%d] = %s\n", idx, who)
	}
	fmt.Fprintf(&b, "-- ctx --\nu64 %#x\nu32 0\nu32 0\n-- run --\nrun entry\n", c.Index)
	return b.String()
}
