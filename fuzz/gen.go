// Package fuzz generates tail-call cases over the parameters that shape a
// tail call and checks each on every backend against the reference model.
// A case is generated as scenario text, so every finding is already a
// scenario file that "tailsim run" reproduces.
package fuzz

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"

	"tailsim/prog"
)

// Case is one generated tail-call situation: a fuzzed tail-call site in
// entry (or in a subprogram entry calls), reached after Chain tail calls.
type Case struct {
	Seed uint64
	// Input is which input of the seed's stream this case is (Stream);
	// input 0 is the case Generate draws for the seed.
	Input      int
	MaxEntries uint32
	Index      uint64 // R3 at the fuzzed site
	KeyConst   bool   // R3 is a constant (direct-capable) rather than read from ctx
	// KeyALU builds R3 at run time from ctx's two 32-bit halves (a shift
	// and an or) instead of one 64-bit load: an index the verifier cannot
	// know, computed by the ALU. Only when KeyConst is false.
	KeyALU   bool
	Poisoned bool // a second map reaches R2
	// Other makes the run pick the second map at a poisoned site (ctx's
	// selector word is 1): the dynamic path then meets a map other than
	// the one it usually sees, whose slot 0 holds the decoy.
	Other  bool
	Target Target // what jt[u32(Index)] holds when filled
	Fill   Fill   // which slots around the index hold programs
	InSub  bool   // the site is in a subprogram: the tail call unwinds a bpf2bpf frame
	Chain  int    // tail calls made before the site: the counter's value there
	// Preset starts the counter there instead, with no chain run
	// (tail_call_cnt=N on the run step: prog.CountPresetter). Only when
	// Chain is 0, so that chains still exercise the machinery of real
	// consecutive tail calls and presets reach the limit cheaply.
	Preset int
	Stack  int // entry's stack depth
	Saved  int // callee-saved registers the entry uses (1–4: r6 holds ctx, then r7–r9)
	Layout prog.Layout
	Config prog.Config
	// Placement is where the emulators put the struct bpf_progs: with
	// PlaceAligned every filled slot's pointer has its low half zero.
	Placement prog.Placement
	NoDirect  bool // config "direct off": no direct tail calls
	// Unprivileged loads the programs as an unprivileged user (config
	// "privileged off", socket_filter programs): the verifier's bounds
	// check and index mask before each tail call, never direct. Never
	// with Poisoned (the verifier refuses an unprivileged site two maps
	// reach) nor InSub (no bpf2bpf calls without CAP_BPF), and max_entries
	// at most 2^31.
	Unprivileged bool
	// Noise, when not 0, seeds a few ALU instructions on r7 before the
	// site (the instruction differential test's forms, in a tail-call
	// program): their result reaches R0 when the call falls through.
	Noise uint64
	// Window runs the case in the middle of a change of the indexed slot
	// (only when the slot holds the target, which is a leaf or entry, no
	// chain comes first and the run takes jt: every tail call of the run
	// is then one through the slot in flight, which coverage counts).
	Window Window
	// Stream declares every program and map any input of the seed's
	// stream uses, so that one world serves them all and an input differs
	// from the next only in data: the jt slots, ctx and the counter preset.
	Stream bool
}

// Target is the program the fuzzed slot holds.
type Target uint8

//go:generate go tool stringer -type=Target,Fill,Window -linecomment -output=gen_string.go

const (
	// Leaf returns 42.
	Leaf Target = iota // target
	// Self is entry itself: a loop that runs into the limit.
	Self // entry
	// Bounce tail-calls entry back: a two-program cycle.
	Bounce // bounce
)

// Fill is how the slots around the index are populated.
type Fill uint8

const (
	// FillIndex fills the indexed slot only.
	FillIndex Fill = iota // index
	// FillNone fills nothing: the call falls through on empty.
	FillNone // none
	// FillNeighbours puts a decoy at index-1 and index+1; the index is empty.
	FillNeighbours // neighbours
	// FillAround fills the index and both neighbours.
	FillAround // index and neighbours
)

// Window is a run in the middle of a change of the indexed slot: the
// kernel's steps of the update or delete (ptrs, the cached half, the
// pokes) applied up to one of them, the rest not yet. Each kind of site
// reads its own part (prog.Effect), so the window shows which program each
// reaches.
type Window uint8

const (
	// NoWindow: every change finished before the run.
	NoWindow Window = iota // none
	// UpdatePtrs: jt[index] = target stopped after ptrs.
	UpdatePtrs // update stop=ptrs
	// UpdateCached: stopped after the cached half, before the pokes.
	UpdateCached // update stop=cached
	// DeletePtrs: delete jt[index] stopped after ptrs.
	DeletePtrs // delete stop=ptrs
	// DeleteCached: stopped after the cached half, before the pokes.
	DeleteCached // delete stop=cached
)

// stop is the step a window's change stops after; its String is the
// scenario's "stop=" word.
func (w Window) stop() prog.EffectKind {
	if w == UpdatePtrs || w == DeletePtrs {
		return prog.EffectPtr
	}
	return prog.EffectCached
}

// windows are the windows a run can be in.
var windows = []Window{UpdatePtrs, UpdateCached, DeletePtrs, DeleteCached}

// update reports whether the window's change is an update (else a delete).
func (w Window) update() bool { return w == UpdatePtrs || w == UpdateCached }

// selector is ctx's word at offset 12: 1 when the run takes the second map.
func (c Case) selector() uint32 {
	if c.Other {
		return 1
	}
	return 0
}

// The constants of the generated programs: what each returns, so a wrong
// jump shows in R0.
const (
	r0Target   = 42
	r0Decoy    = 99
	r0Fell     = 1 // the fuzzed site fell through (plus the callee-saved values)
	r0Bounce   = 5 // bounce's own tail call fell through
	r0PreChain = 3 // a tail call of the leading chain fell through
)

// anyStack in stacks draws any stack depth from 1 to 512.
const anyStack = -1

// shape bit fields; FromParams documents their meaning.
func bits(shape uint64, at, n uint) uint64 { return shape >> at & (1<<n - 1) }

var (
	stacks  = [8]int{0, 8, 24, 64, 512, 256, 128, anyStack}
	chains  = [8]int{0, 0, 0, 0, 0, 0, 1, 32}
	presets = [8]int{0, 0, 0, 0, 1, 31, 32, 33}
	targets = [4]Target{Leaf, Leaf, Self, Bounce}
	fills   = [8]Fill{FillIndex, FillIndex, FillIndex, FillIndex, FillIndex, FillNone, FillNeighbours, FillAround}
	// configs: half the cases the default build, the rest landing pads
	// and the distribution presets (thunks, int3s, lfence, BMI2 on x86;
	// BTI and PAC on arm64).
	configs = [8]prog.Config{0, 0, 0, 0, prog.IBT | prog.BTI, prog.Configs[1].Config, prog.Configs[2].Config | prog.IBT, prog.Configs[3].Config}
)

// FromParams builds the case for max_entries, the index and a shape word
// whose bit fields choose everything else, so a coverage-guided fuzzer
// (FuzzParams) mutates the three directly. Each field is biased the way
// Generate wants it: most cases have a plain leaf target, no chain and
// a preset layout, and the rest come often enough to be covered. Shape 0
// is the plainest case: one site in entry, a run-time key, one map, the
// indexed slot holding a leaf, the default layout.
func FromParams(maxEntries uint32, index, shape uint64) Case {
	c := Case{MaxEntries: max(maxEntries, 1), Index: index}
	c.KeyConst = bits(shape, 0, 1) == 1
	c.Poisoned = bits(shape, 1, 2) == 3
	c.Target = targets[bits(shape, 3, 2)]
	c.Fill = fills[bits(shape, 5, 3)]
	if c.Stack = stacks[bits(shape, 8, 3)]; c.Stack < 0 {
		// Any depth 1..512, odd ones included: the JITs round it (x86
		// to 8, arm64 to 16), and a rounding slip in a prologue or a
		// tail call's unwind shows only at depths that need it.
		c.Stack = 1 + int(bits(shape, 48, 9))
	}
	c.Saved = 1 + int(bits(shape, 11, 3)%4)
	if l := bits(shape, 14, 3); l < 6 {
		c.Layout = prog.Presets[l%uint64(len(prog.Presets))]
	} else {
		// A custom layout. x86 encodes the max_entries and bpf_func
		// offsets as disp8 (the JIT refuses others); ptrs goes either side
		// of the disp8 limit.
		me := uint32(bits(shape, 17, 5)) * 4
		c.Layout = prog.Layout{Name: "custom", MaxEntries: me,
			Ptrs:    (me+4+7)&^7 + uint32(bits(shape, 22, 5))*8,
			BpfFunc: uint32(bits(shape, 27, 4)) * 8}
	}
	c.Chain = chains[bits(shape, 31, 3)]
	if c.Chain == 0 {
		c.Preset = presets[bits(shape, 41, 3)]
	}
	c.InSub = bits(shape, 34, 2) == 3
	if c.InSub && (c.Stack+15)&^15 >= 256 {
		// The verifier refuses a tail call from a subprogram when the
		// frames above it hold 256 bytes or more, each rounded up to 16
		// (checkMaxStackDepth): 240 is the deepest it accepts.
		c.Stack = 240
	}
	c.Config = configs[bits(shape, 36, 3)]
	c.NoDirect = bits(shape, 39, 2) == 3
	if bits(shape, 59, 2) == 3 {
		c.Placement = prog.PlaceAligned
	}
	// What an unprivileged load allows (see Unprivileged): no bpf2bpf
	// call, a prog array of at most 2^31 entries.
	c.Unprivileged = !c.Poisoned && !c.InSub && bits(shape, 61, 3) == 7
	c.MaxEntries = c.maxEntriesFor(c.MaxEntries)
	c.KeyALU = !c.KeyConst && bits(shape, 44, 2) == 3
	c.Other = c.Poisoned && bits(shape, 46, 2) == 3
	if bits(shape, 57, 2) == 3 {
		// Seeded by the whole shape word (mixed), so mutating any field
		// draws other instructions.
		c.Noise = shape*0x9e3779b97f4a7c15 | 1
		c.Saved = max(c.Saved, 2) // r7 holds the noise
	}
	return c
}

// biasedU32 favours the values where bounds checks go wrong. disp32 is
// where the patched static path's displacement ptrs + 8 * max_entries
// stops fitting an s32 for this layout.
func biasedU32(r *rand.Rand, disp32 uint32) uint32 {
	switch r.IntN(7) {
	case 0:
		return uint32(1 + r.IntN(4))
	case 1:
		k := uint(r.IntN(32))
		return uint32(uint64(1)<<k) + uint32(r.IntN(3)) - 1
	case 2:
		return 0xffffffff - uint32(r.IntN(3))
	case 3:
		return disp32 + uint32(r.IntN(3)) - 1
	case 4:
		// every bit width
		k := uint(1 + r.IntN(32))
		return uint32(uint64(1)<<(k-1) | r.Uint64()&(uint64(1)<<(k-1)-1))
	default:
		return r.Uint32()
	}
}

// biasedIndex favours indexes around max_entries and the u32 edges.
func biasedIndex(r *rand.Rand, max uint32) uint64 {
	switch r.IntN(10) {
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
	case 7:
		return 1<<32 + uint64(max) - 1 // truncates to the last slot
	case 8:
		return uint64(r.IntN(int(min(max, 1<<20))))
	default:
		return uint64(-int64(1 + r.IntN(3))) // negative
	}
}

// Disp32Limit is the smallest max_entries for which the patched static
// path's displacement (offsetof(ptrs) + 8 * max_entries) overflows an s32
// in layout l (library/findings/patched_static_disp32.txtar).
func Disp32Limit(l prog.Layout) uint32 { return uint32((1<<31 - uint64(l.Ptrs) + 7) / 8) }

// Generate draws the case for a seed; the same seed gives the same case.
func Generate(seed uint64) Case {
	r := rand.New(rand.NewPCG(seed, 0x7a11ca11))
	c := FromParams(1, 0, r.Uint64())
	c.Seed = seed
	c.MaxEntries = c.maxEntriesFor(max(biasedU32(r, Disp32Limit(c.Layout)), 1))
	c.Index = biasedIndex(r, c.MaxEntries)
	return c
}

// maxEntriesFor is n, or 2^31 for an unprivileged case with more: an
// unprivileged prog array rounds its size up to a power of two, which
// overflows past 2^31 (array_map_alloc(): E2BIG).
func (c Case) maxEntriesFor(n uint32) uint32 {
	if c.Unprivileged && n > 1<<31 {
		return 1 << 31
	}
	return n
}

func (c Case) runOptions() string {
	if c.Preset > 0 {
		return fmt.Sprintf(" tail_call_cnt=%d", c.Preset)
	}
	return ""
}

// uses* say which programs and maps the case's text declares.
func (c Case) usesBack() bool  { return c.Chain > 0 || c.Target == Bounce && c.fills(uint32(c.Index)) }
func (c Case) usesDecoy() bool { return c.Fill == FillNeighbours || c.Fill == FillAround }

// fills reports whether jt[i] holds the target program.
func (c Case) fills(i uint32) bool {
	return (c.Fill == FillIndex || c.Fill == FillAround) && uint64(i) < uint64(c.MaxEntries)
}

func (c Case) layoutLine() string {
	for _, p := range prog.Presets {
		if c.Layout == p {
			return p.Name
		}
	}
	return fmt.Sprintf("custom max_entries=%#x ptrs=%#x bpf_func=%#x", c.Layout.MaxEntries, c.Layout.Ptrs, c.Layout.BpfFunc)
}

// Describe says in words what the case is.
func (c Case) Describe() string {
	var b strings.Builder
	key := "run-time"
	switch {
	case c.KeyConst:
		key = "constant"
	case c.KeyALU:
		key = "computed"
	}
	fmt.Fprintf(&b, "max_entries %#x, index %#x (%s key), ", c.MaxEntries, c.Index, key)
	idx := uint32(c.Index)
	switch {
	case c.Fill == FillNone:
		b.WriteString("no slot filled")
	case c.Fill == FillNeighbours:
		b.WriteString("decoys beside the index, the index empty")
	case !c.fills(idx):
		b.WriteString("the index is beyond max_entries")
	case c.Fill == FillAround:
		fmt.Fprintf(&b, "jt[%d] holds %s, decoys beside it", idx, c.Target)
	default:
		fmt.Fprintf(&b, "jt[%d] holds %s", idx, c.Target)
	}
	if c.Poisoned {
		b.WriteString(", a second map reaches the site")
	}
	if c.Other {
		b.WriteString(" and this run takes it")
	}
	if c.InSub {
		b.WriteString(", the site is in a subprogram")
	}
	if c.Chain > 0 {
		fmt.Fprintf(&b, ", %d tail calls before the site", c.Chain)
	}
	if c.Preset > 0 {
		fmt.Fprintf(&b, ", the counter preset to %d", c.Preset)
	}
	fmt.Fprintf(&b, ",\nstack %d, callee-saved %d, layout %s", c.Stack, c.Saved, c.layoutLine())
	if c.Config != 0 {
		fmt.Fprintf(&b, ", config %s", c.Config)
	}
	if c.NoDirect {
		b.WriteString(", no direct calls")
	}
	if c.Placement != prog.PlaceKernel {
		fmt.Fprintf(&b, ", placement %s", c.Placement)
	}
	if c.Unprivileged {
		b.WriteString(", unprivileged")
	}
	if c.Noise != 0 {
		b.WriteString(", ALU noise on r7")
	}
	if w := c.window(); w != NoWindow {
		change := "delete"
		if w.update() {
			change = "update"
		}
		fmt.Fprintf(&b, ",\nthe run between the steps of jt[%d]'s %s, stopped after %s", uint32(c.Index), change, w.stop())
	}
	return b.String() + "."
}

// Text renders the case as a scenario with no expectations: every backend
// is checked against the reference model and by its machine-level checks.
func (c Case) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fuzz case %d%s\n%s\n\n", c.Seed, c.inputName(), c.Describe())
	fmt.Fprintf(&b, "-- config --\nlayout %s\n", c.layoutLine())
	if c.Config != 0 {
		fmt.Fprintf(&b, "config %s\n", c.Config)
	}
	if c.NoDirect {
		b.WriteString("direct off\n")
	}
	if c.Placement != prog.PlaceKernel {
		fmt.Fprintf(&b, "placement %s\n", c.Placement)
	}
	if c.Unprivileged {
		b.WriteString("privileged off\n")
	}
	fmt.Fprintf(&b, "-- maps --\njt max_entries=%d\n", c.MaxEntries)
	if c.Poisoned {
		b.WriteString("other max_entries=2\n")
	}
	if c.usesBack() || c.Stream {
		b.WriteString("back max_entries=1\n")
	}
	fmt.Fprintf(&b, "-- prog target --\n\tr0 = %d\n\texit\n", r0Target)
	if c.usesDecoy() || c.Other || c.Stream {
		fmt.Fprintf(&b, "-- prog decoy --\n\tr0 = %d\n\texit\n", r0Decoy)
	}
	if c.Target == Bounce && c.usesBack() || c.Stream {
		fmt.Fprintf(&b, "-- prog bounce --\n\tr2 = map[back]\n\tr3 = 0\n\tcall bpf_tail_call\n\tr0 = %d\n\texit\n", r0Bounce)
	}

	fmt.Fprintf(&b, "-- prog entry stack=%d --\n", c.Stack)
	b.WriteString("\tr6 = r1\n")
	for i := 1; i < c.Saved; i++ {
		fmt.Fprintf(&b, "\tr%d = %d\n", 6+i, i)
	}
	b.WriteString(c.noise())
	if c.Stack >= 8 {
		fmt.Fprintf(&b, "\t*(u64 *)(r10 - %d) = 7\n", c.Stack-c.Stack%8)
	}
	if c.Stack%8 != 0 {
		// The deepest byte the depth allows.
		fmt.Fprintf(&b, "\t*(u8 *)(r10 - %d) = 7\n", c.Stack)
	}
	b.WriteString("\tr2 = *(u32 *)(r6 + 8)\n\tr2 += 1\n\t*(u32 *)(r6 + 8) = r2\n") // count entries
	if c.Chain > 0 {
		// Entries 1..Chain tail-call entry again through back[0]; the
		// next one reaches the site with the counter at Chain.
		fmt.Fprintf(&b, "\tif r2 > %d goto site\n\tr1 = r6\n\tr2 = map[back]\n\tr3 = 0\n\tcall bpf_tail_call\n\tr0 = %d\n\texit\nsite:\n", c.Chain, r0PreChain)
	}
	if c.InSub {
		b.WriteString("\tr1 = r6\n\tcall sub\n")
	} else {
		c.site(&b)
		fmt.Fprintf(&b, "\tr0 = %d\n", r0Fell)
	}
	for i := 1; i < c.Saved; i++ {
		fmt.Fprintf(&b, "\tr0 += r%d\n", 6+i)
	}
	b.WriteString("\texit\n")
	if c.InSub {
		b.WriteString("-- subprog sub --\n\tr6 = r1\n")
		c.site(&b)
		fmt.Fprintf(&b, "\tr0 = %d\n\texit\n", r0Fell)
	}

	var slots []string
	for _, s := range c.settled() {
		slots = append(slots, fmt.Sprintf("jt[%d] = %s", s.index, s.prog))
	}
	if c.Poisoned && (c.Other || c.Stream) {
		slots = append(slots, "other[0] = decoy")
	}
	if c.usesBack() || c.Stream {
		slots = append(slots, "back[0] = entry")
	}
	if len(slots) > 0 {
		fmt.Fprintf(&b, "-- slots --\n%s\n", strings.Join(slots, "\n"))
	}
	fmt.Fprintf(&b, "-- ctx --\nu64 %#x\nu32 0\nu32 %d\n-- run --\n", c.Index, c.selector())
	switch c.window() {
	case UpdatePtrs, UpdateCached:
		fmt.Fprintf(&b, "update jt[%d] = %s stop=%s\n", uint32(c.Index), c.Target, c.Window.stop())
	case DeletePtrs, DeleteCached:
		fmt.Fprintf(&b, "delete jt[%d] stop=%s\n", uint32(c.Index), c.Window.stop())
	}
	fmt.Fprintf(&b, "run entry%s\n", c.runOptions())
	if c.Unprivileged {
		// Unprivileged loads take socket_filter programs (bpf_prog_load).
		return progHeader.ReplaceAllString(b.String(), "-- prog $1 type=socket_filter$2 --")
	}
	return b.String()
}

var progHeader = regexp.MustCompile(`(?m)^-- prog (\S+)((?: \S+)*) --$`)

// windowed reports whether the case can run in a window: the indexed slot
// holds the target, and every tail call of the run goes through it.
func (c Case) windowed() bool {
	return c.fills(uint32(c.Index)) && c.Target != Bounce && c.Chain == 0 && !c.Other
}

// window is the case's window where it can have one.
func (c Case) window() Window {
	if c.windowed() {
		return c.Window
	}
	return NoWindow
}

// settled lists what jt holds before the run's steps: the slots, less the
// indexed one when an update in flight is bringing it.
func (c Case) settled() []slot {
	out := c.slots()
	if c.window().update() {
		out = slices.DeleteFunc(out, func(s slot) bool { return s.index == uint32(c.Index) })
	}
	return out
}

// noise renders Noise: 2 to 8 ALU instructions on r7, of every operation
// but division (whose zero divisor the verifier would rewrite), either
// width, with immediates at the imm8/imm32 and sign edges; shifts stay
// within the width.
func (c Case) noise() string {
	if c.Noise == 0 {
		return ""
	}
	r := rand.New(rand.NewPCG(c.Noise, 0x0a15e))
	ops := []string{"+=", "-=", "*=", "|=", "&=", "^=", "<<=", ">>=", "s>>=", "=", "neg"}
	imms := []int64{0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0x7fff, 0x12345678, 0x7fffffff, -0x80000000}
	var b strings.Builder
	for range 2 + r.IntN(7) {
		reg, width := "r7", 64
		if r.IntN(2) == 0 {
			reg, width = "w7", 32
		}
		op, imm := ops[r.IntN(len(ops))], imms[r.IntN(len(imms))]
		switch op {
		case "neg":
			fmt.Fprintf(&b, "\t%s = -%s\n", reg, reg)
			continue
		case "<<=", ">>=", "s>>=":
			imm = int64(uint64(imm) % uint64(width))
		}
		fmt.Fprintf(&b, "\t%s %s %d\n", reg, op, imm)
	}
	return b.String()
}

// slot is a jt slot a case fills.
type slot struct {
	index uint32
	prog  string
}

// slots lists what jt holds: the target at the index, then decoys beside
// it (modulo 2^32, as the u32 index wraps), as Fill says.
func (c Case) slots() []slot {
	var out []slot
	idx := uint32(c.Index)
	if c.fills(idx) {
		out = append(out, slot{idx, c.Target.String()})
	}
	if c.usesDecoy() {
		for _, n := range []uint32{idx - 1, idx + 1} {
			if uint64(n) < uint64(c.MaxEntries) && n != idx {
				out = append(out, slot{n, "decoy"})
			}
		}
	}
	return out
}

func (c Case) inputName() string {
	if c.Stream {
		return fmt.Sprintf(" input %d", c.Input)
	}
	return ""
}

// site writes the fuzzed tail call; R6 holds ctx.
func (c Case) site(b *strings.Builder) {
	if c.Poisoned {
		b.WriteString("\tr0 = *(u32 *)(r6 + 12)\n\tr2 = map[jt]\n\tif r0 == 0 goto key\n\tr2 = map[other]\nkey:\n")
	} else {
		b.WriteString("\tr2 = map[jt]\n")
	}
	switch {
	case c.KeyConst:
		fmt.Fprintf(b, "\tr3 = %#x ll\n", c.Index)
	case c.KeyALU:
		b.WriteString("\tr3 = *(u32 *)(r6 + 4)\n\tr3 <<= 32\n\tr4 = *(u32 *)(r6 + 0)\n\tr3 |= r4\n")
	default:
		b.WriteString("\tr3 = *(u64 *)(r6 + 0)\n")
	}
	b.WriteString("\tr1 = r6\n\tcall bpf_tail_call\n")
}
