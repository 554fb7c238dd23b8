package arm64_test

// Golden words. Every expected instruction is written here as bytes, with
// the text llvm-mc assembles to them (llvmmc_test.go checks each pair):
//
//   - docs/kernel.md §6 and §7 give most bytes verbatim (prologue, epilogue
//     counter instructions, the tail-call sequence, the patched example);
//   - the rest is derived by hand from the A64 encodings the notes quote
//     (insn.c base values and fields): branch placeholders once fixed up,
//     mov x0, x7, autiasp, PLT, callee-saved pairs, stack adjustments, the
//     static path's displacement for other max_entries, calls, loads,
//     stores and immediates.
//
// None of them comes from running the emitter.

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/jit"
	"tailsim/prog"
)

// gi is one golden instruction: little-endian bytes and llvm-mc text.
type gi struct{ hex, asm string }

func cat(parts ...[]gi) []gi {
	var out []gi
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// docs/kernel.md §6, main-program prologue.
var (
	gBtiJC   = []gi{{"df 24 03 d5", "bti jc"}}
	gMovX9LR = []gi{{"c9 03 00 91", "add x9, x30, #0"}}
	gNop     = []gi{{"1f 20 03 d5", "nop"}}
	gPaciasp = []gi{{"3f 23 03 d5", "paciasp"}}
	gFrame   = []gi{{"fd 7b bf a9", "stp x29, x30, [sp, #-16]!"}, {"fd 03 00 91", "mov x29, sp"}}
	gMainCnt = []gi{{"ff 6b bf a9", "stp xzr, x26, [sp, #-16]!"}, {"fa 03 00 91", "mov x26, sp"}}
	gSubCnt  = []gi{{"fa 6b bf a9", "stp x26, x26, [sp, #-16]!"}}
	gBtiJ    = []gi{{"9f 24 03 d5", "bti j"}}
)

// mainPrologue is the prologue up to PROLOGUE_OFFSET (and bti j).
func mainPrologue(bti, pac bool) []gi {
	var p []gi
	if bti {
		p = append(p, gBtiJC...)
	}
	p = cat(p, gMovX9LR, gNop)
	if pac {
		p = append(p, gPaciasp...)
	}
	p = cat(p, gFrame, gMainCnt)
	if bti {
		p = append(p, gBtiJ...)
	}
	return p
}

func subPrologue(bti, pac bool) []gi {
	var p []gi
	if bti {
		p = append(p, gBtiJC...)
	}
	p = cat(p, gMovX9LR, gNop)
	if pac {
		p = append(p, gPaciasp...)
	}
	return cat(p, gFrame, gSubCnt)
}

// docs/kernel.md §6 epilogue; mov x0, x7 (add x0, x7, #0) and autiasp derived.
func epilogueTail(pac bool) []gi {
	e := []gi{{"ff 6b c1 a8", "ldp xzr, x26, [sp], #16"}, {"fd 7b c1 a8", "ldp x29, x30, [sp], #16"},
		{"e0 00 00 91", "add x0, x7, #0"}}
	if pac {
		e = append(e, gi{"bf 23 03 d5", "autiasp"})
	}
	return append(e, gi{"c0 03 5f d6", "ret"})
}

// build_plt() (notes §2d): ldr x10, #8; br x10, after a nop when the
// instruction count so far is odd.
func gPLT(pad bool) []gi {
	p := []gi{{"4a 00 00 58", "ldr x10, #8"}, {"40 01 1f d6", "br x10"}}
	if pad {
		return cat(gNop, p)
	}
	return p
}

// docs/kernel.md §6 tail call, for off_max 0x44, off_ptrs 0x130, off_func 0x48:
// the three placeholders as fixed up for the sequence's own length.
func upstreamTail(b1, b2, b3 gi, unwind []gi, tailOff gi) []gi {
	return cat([]gi{
		{"8a 08 80 52", "mov w10, #0x44"},
		{"2a 68 6a b8", "ldr w10, [x1, x10]"},
		{"42 00 00 11", "add w2, w2, #0"},
		{"5f 00 0a 6b", "cmp w2, w10"},
		b1,
		{"2a 04 80 52", "mov w10, #33"},
		{"4c 03 40 f9", "ldr x12, [x26]"},
		{"9f 01 0a eb", "cmp x12, x10"},
		b2,
		{"8c 05 00 91", "add x12, x12, #1"},
		{"0a 26 80 52", "mov w10, #0x130"},
		{"2a 00 0a 8b", "add x10, x1, x10"},
		{"4b f0 7d d3", "lsl x11, x2, #3"},
		{"4b 69 6b f8", "ldr x11, [x10, x11]"},
		b3,
		{"4c 03 00 f9", "str x12, [x26]"},
	}, unwind, []gi{
		{"0a 09 80 52", "mov w10, #0x48"},
		{"6a 69 6a f8", "ldr x10, [x11, x10]"},
		tailOff,
		{"40 01 1f d6", "br x10"},
	})
}

// add x10, x10, #4*PROLOGUE_OFFSET: 24 (the kernel's), 28 and 32 (derived).
var gTailOff = map[int]gi{
	6: {"4a 61 00 91", "add x10, x10, #24"},
	7: {"4a 71 00 91", "add x10, x10, #28"},
	8: {"4a 81 00 91", "add x10, x10, #32"},
}

// The upstream sequence without stack or callee-saved registers: 20
// instructions, out at 20. b.cs at 4 and 8 skip 16 and 12 instructions,
// cbz at 14 skips 6.
func upstreamTailPlain(po int) []gi {
	return upstreamTail(gi{"02 02 00 54", "b.hs #64"}, gi{"82 01 00 54", "b.hs #48"}, gi{"cb 00 00 b4", "cbz x11, #24"}, nil, gTailOff[po])
}

// patchedStatic is docs/kernel.md §7's static path: bounds against the
// immediate, x11 = index*8 + off, ldr x11, [x1, x11], br x11. bounds and
// add are the parts that depend on max_entries; the placeholders are
// fixed up for the sequence's length.
func patchedStatic(bounds, add []gi) []gi {
	n1 := len(bounds) + 2 // mov w2; cmp
	mid := []gi{
		{"2a 04 80 52", "mov w10, #33"},
		{"4c 03 40 f9", "ldr x12, [x26]"},
		{"9f 01 0a eb", "cmp x12, x10"},
	}
	load := cat([]gi{{"4b f0 7d d3", "lsl x11, x2, #3"}}, add, []gi{{"2b 68 6b f8", "ldr x11, [x1, x11]"}})
	total := n1 + 1 + len(mid) + 1 + 1 + len(load) + 1 + 1 + 1
	b1 := total - n1
	b2 := total - (n1 + 1 + len(mid))
	b3 := total - (n1 + 1 + len(mid) + 1 + 1 + len(load))
	return cat(bounds, []gi{
		{"42 00 00 11", "add w2, w2, #0"},
		{"5f 00 0a 6b", "cmp w2, w10"},
		bcs(b1),
	}, mid, []gi{bcs(b2), {"8c 05 00 91", "add x12, x12, #1"}}, load, []gi{
		cbzX11(b3),
		{"4c 03 00 f9", "str x12, [x26]"},
		{"60 01 1f d6", "br x11"},
	})
}

// bcs and cbzX11 are the only hand-computed branches: b.cs = 0x54000002 |
// imm19 << 5, cbz x11 = 0xb400000b | imm19 << 5 (the table's text gives
// llvm-mc the byte offset to check them against).
func bcs(n int) gi {
	w := uint32(0x54000002) | uint32(n)<<5
	return gi{hexWord(w), "b.hs #" + itoa(4*n)}
}

func cbzX11(n int) gi {
	w := uint32(0xb400000b) | uint32(n)<<5
	return gi{hexWord(w), "cbz x11, #" + itoa(4*n)}
}

func hexWord(w uint32) string {
	return hexOf([]byte{byte(w), byte(w >> 8), byte(w >> 16), byte(w >> 24)})
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	s := ""
	for {
		s = string(rune('0'+n%10)) + s
		n /= 10
		if n == 0 {
			return s
		}
	}
}

// Shapes: the programs the cases build.
const (
	// tcConst: a constant key below max_entries. The verifier makes the site
	// direct (upstream imm = poke index + 1; the series sets bits 16–31);
	// arm64 ignores that: indirect upstream, static patched.
	tcConst = `	r2 = map[progs]
	r3 = 1
	call bpf_tail_call
	r0 = 0
	exit`
	// tcPoisoned: two maps reach R2: the series' dynamic path.
	tcPoisoned = `	r2 = map[progs]
	if r1 == 0 goto l
	r2 = map[other]
l:
	r3 = 0
	call bpf_tail_call
	r0 = 0
	exit`
	// tcFrame: R6–R8 and FP used, stack 40 (the notes' example frame).
	tcFrame = `	r6 = r1
	r7 = 0
	r8 = 0
	*(u64 *)(r10 - 8) = r6
	r2 = map[progs]
	r3 = 0
	call bpf_tail_call
	r0 = 0
	exit`
	// tcR6: one callee-saved register: paired with xzr.
	tcR6 = `	r6 = r1
	r2 = map[progs]
	r3 = 0
	call bpf_tail_call
	r0 = r6
	exit`
)

type goldenPart struct {
	name string
	fn   int
	sel  func(*jit.Image) []jit.Insn
	want []gi
}

type goldenCase struct {
	name  string
	spec  buildSpec
	parts []goldenPart
}

func site0(img *jit.Image) []jit.Insn { return tailSeq(img, 0) }

// owned selects the instructions of BPF instruction k.
func owned(k int) func(*jit.Image) []jit.Insn {
	return func(img *jit.Image) []jit.Insn {
		var out []jit.Insn
		for _, in := range img.Insns {
			if in.BPF == k {
				out = append(out, in)
			}
		}
		return out
	}
}

func goldenCases() []goldenCase {
	var cs []goldenCase
	po := func(bti, pac bool) int {
		n := 6
		if bti {
			n++
		}
		if pac {
			n++
		}
		return n
	}
	// Upstream, every BTI/PAC combination: prologue, §5 sequence, epilogue.
	// Pass 1's count: prologue + 3 (ld_imm64) + 1 + 20 + 1 + epilogue is
	// odd without BTI/PAC (35, 37 with one, 39 with both): the PLT is
	// padded whenever the total before it is odd.
	for _, bp := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		bti, pac := bp[0], bp[1]
		n := len(mainPrologue(bti, pac)) + 3 + 1 + 20 + 1 + len(epilogueTail(pac))
		cs = append(cs, goldenCase{
			name: "upstream/" + flags(bti, pac),
			spec: buildSpec{main: tcConst, variant: prog.Linux618, bti: bti, pac: pac},
			parts: []goldenPart{
				{"prologue", 0, prologue, mainPrologue(bti, pac)},
				{"tailcall", 0, site0, upstreamTailPlain(po(bti, pac))},
				{"epilogue", 0, epilogue, epilogueTail(pac)},
				{"plt", 0, plt, gPLT(n%2 == 1)},
			},
		})
	}
	// Patched: docs/kernel.md §7's max_entries 4 example (static: the constant key
	// site, whose poke field is set), and the dynamic path = upstream.
	gStatic4 := patchedStatic([]gi{{"8a 00 80 52", "mov w10, #4"}}, []gi{{"6b 41 05 91", "add x11, x11, #0x150"}})
	cs = append(cs,
		goldenCase{name: "patched/static/max4", spec: buildSpec{main: tcConst, variant: prog.Linux618Series},
			parts: []goldenPart{
				{"prologue", 0, prologue, mainPrologue(false, false)},
				{"tailcall", 0, site0, gStatic4},
				{"epilogue", 0, epilogue, epilogueTail(false)},
				{"plt", 0, plt, gPLT(false)}, // 6 + 3 + 1 + 15 + 1 + 4 = 30
			}},
		goldenCase{name: "patched/static/max4/noverifier", spec: buildSpec{main: tcConst, variant: prog.Linux618Series, fixup: prog.FixupOptions{NoVerifier: true}},
			parts: []goldenPart{{"tailcall", 0, site0, gStatic4}}},
		goldenCase{name: "patched/static/max4/bti+pac", spec: buildSpec{main: tcConst, variant: prog.Linux618Series, bti: true, pac: true},
			parts: []goldenPart{
				{"prologue", 0, prologue, mainPrologue(true, true)},
				{"tailcall", 0, site0, gStatic4}, // br x11: the cached target already includes the offset
				{"epilogue", 0, epilogue, epilogueTail(true)},
			}},
		goldenCase{name: "patched/dynamic", spec: buildSpec{main: tcPoisoned, variant: prog.Linux618Series},
			parts: []goldenPart{{"tailcall", 0, site0, upstreamTailPlain(6)}}},
		goldenCase{name: "upstream/poisoned", spec: buildSpec{main: tcPoisoned, variant: prog.Linux618},
			parts: []goldenPart{{"tailcall", 0, site0, upstreamTailPlain(6)}}},
	)
	// The static path's displacement, off = offsetof(ptrs) + max_entries*8
	// computed in size_t and passed to emit_a64_add_i()'s s32: add imm12,
	// add imm12 lsl 12, sub, mov + add (64-bit mov: sign-extended), and the
	// truncations.
	widths := []struct {
		max         uint32
		bounds, add []gi
	}{
		// 0x130 + 0x1ed0 = 0x2000: imm12 << 12.
		{0x3da, []gi{{"4a 7b 80 52", "mov w10, #0x3da"}}, []gi{{"6b 09 40 91", "add x11, x11, #2, lsl #12"}}},
		// 0x130 + 0x8000 = 0x8130: not an add/sub immediate: movz x10 + add.
		{0x1000, []gi{{"0a 00 82 52", "mov w10, #0x1000"}},
			[]gi{{"0a 26 90 d2", "mov x10, #0x8130"}, {"6b 01 0a 8b", "add x11, x11, x10"}}},
		// 0x130 + 0xfffffec8 = 0xfffffff8 = -8 as s32: sub #8.
		{0x1fffffd9, []gi{{"2a fb 9f 52", "mov w10, #0xffd9"}, {"ea ff a3 72", "movk w10, #0x1fff, lsl #16"}},
			[]gi{{"6b 21 00 d1", "sub x11, x11, #8"}}},
		// 0x130 + 0x80000000 = 0x80000130, negative as s32: x10 =
		// 0xffffffff80000130 (movn/movk), so x11 points 2 GiB below ptrs.
		{0x10000000, []gi{{"0a 00 80 52", "mov w10, #0"}, {"0a 00 a2 72", "movk w10, #0x1000, lsl #16"}},
			[]gi{{"ea ff af 92", "movn x10, #0x7fff, lsl #16"}, {"0a 26 80 f2", "movk x10, #0x130"}, {"6b 01 0a 8b", "add x11, x11, x10"}}},
		// 0x130 + 0x100000000: truncated to 0x130, the first half of ptrs[].
		{0x20000000, []gi{{"0a 00 80 52", "mov w10, #0"}, {"0a 00 a4 72", "movk w10, #0x2000, lsl #16"}},
			[]gi{{"6b c1 04 91", "add x11, x11, #0x130"}}},
		// max u32: 0x130 + 0x7fffffff8 = 0x800000128: 0x128. The bound is
		// movn w10, #0 (0xffffffff in a W register).
		{0xffffffff, []gi{{"0a 00 80 12", "movn w10, #0"}},
			[]gi{{"6b a1 04 91", "add x11, x11, #0x128"}}},
	}
	for _, wc := range widths {
		cs = append(cs, goldenCase{name: "patched/static/max" + itoa(int(wc.max)),
			spec:  buildSpec{main: tcConst, variant: prog.Linux618Series, maxEntries: wc.max},
			parts: []goldenPart{{"tailcall", 0, site0, patchedStatic(wc.bounds, wc.add)}}})
	}
	// A frame: R6–R8 and FP, stack 40 -> 48. The tail call unwinds the stack
	// and pops before loading bpf_func: 23 instructions, out at 23.
	frameUnwind := []gi{{"ff c3 00 91", "add sp, sp, #48"}, {"f5 67 c1 a8", "ldp x21, x25, [sp], #16"}, {"f3 53 c1 a8", "ldp x19, x20, [sp], #16"}}
	cs = append(cs, goldenCase{name: "upstream/frame", spec: buildSpec{main: tcFrame, stack: 40, variant: prog.Linux618},
		parts: []goldenPart{
			{"prologue", 0, prologue, cat(mainPrologue(false, false), []gi{
				{"f3 53 bf a9", "stp x19, x20, [sp, #-16]!"},
				{"f5 67 bf a9", "stp x21, x25, [sp, #-16]!"},
				{"f9 03 00 91", "mov x25, sp"},
				{"ff c3 00 d1", "sub sp, sp, #48"},
			})},
			{"fp-store", 0, owned(3), []gi{{"f3 17 00 f9", "str x19, [sp, #40]"}}}, // fp-8 + 48
			{"tailcall", 0, site0, upstreamTail(bcs(19), bcs(15), cbzX11(9), frameUnwind, gTailOff[6])},
			{"epilogue", 0, epilogue, cat(frameUnwind, epilogueTail(false))},
		}})
	// One callee-saved register, paired with xzr; no FP, no stack.
	cs = append(cs, goldenCase{name: "upstream/r6", spec: buildSpec{main: tcR6, variant: prog.Linux618},
		parts: []goldenPart{
			{"prologue", 0, prologue, cat(mainPrologue(false, false), []gi{{"f3 7f bf a9", "stp x19, xzr, [sp, #-16]!"}})},
			{"tailcall", 0, site0, upstreamTail(bcs(17), bcs(13), cbzX11(7), []gi{{"f3 7f c1 a8", "ldp x19, xzr, [sp], #16"}}, gTailOff[6])},
			{"epilogue", 0, epilogue, cat([]gi{{"f3 7f c1 a8", "ldp x19, xzr, [sp], #16"}}, epilogueTail(false))},
		}})
	// Subprograms: the counter pointer is inherited in x26 (stp x26, x26),
	// no PROLOGUE_OFFSET landing pad, and the same tail-call sequence. The
	// bpf2bpf call is a bl once the extra pass knows the callee's address.
	for _, bp := range [][2]bool{{false, false}, {true, true}} {
		bti, pac := bp[0], bp[1]
		callAt := len(mainPrologue(bti, pac)) * 4
		cs = append(cs, goldenCase{name: "sub/" + flags(bti, pac),
			spec: buildSpec{main: "\tcall sub\n\texit", sub: tcConst, variant: prog.Linux618, bti: bti, pac: pac},
			parts: []goldenPart{
				{"prologue", 0, prologue, mainPrologue(bti, pac)},
				{"call", 0, owned(0), []gi{blTo(callAt, funcStride), {"07 00 00 91", "add x7, x0, #0"}}},
				{"epilogue", 0, epilogue, epilogueTail(pac)},
				{"prologue", 1, prologue, subPrologue(bti, pac)},
				{"tailcall", 1, site0, upstreamTailPlain(po(bti, pac))},
				{"epilogue", 1, epilogue, epilogueTail(pac)},
			}})
	}
	// Layout offsets beyond 16 bits (beyond any real struct, and beyond
	// prog.Layout.Validate): the JIT has no limit, emit_a64_mov_i64 adds a
	// movk. 23 instructions, out at 23.
	big := prog.Layout{Name: "big", MaxEntries: 0x12344, Ptrs: 0x12350, BpfFunc: 0x10008}
	movk1 := gi{"2a 00 a0 72", "movk w10, #0x1, lsl #16"}
	cs = append(cs,
		goldenCase{name: "upstream/layout-big", spec: buildSpec{main: tcConst, variant: prog.Linux618, layout: big},
			parts: []goldenPart{{"tailcall", 0, site0, []gi{
				{"8a 68 84 52", "mov w10, #0x2344"}, movk1,
				{"2a 68 6a b8", "ldr w10, [x1, x10]"},
				{"42 00 00 11", "add w2, w2, #0"},
				{"5f 00 0a 6b", "cmp w2, w10"},
				bcs(18),
				{"2a 04 80 52", "mov w10, #33"},
				{"4c 03 40 f9", "ldr x12, [x26]"},
				{"9f 01 0a eb", "cmp x12, x10"},
				bcs(14),
				{"8c 05 00 91", "add x12, x12, #1"},
				{"0a 6a 84 52", "mov w10, #0x2350"}, movk1,
				{"2a 00 0a 8b", "add x10, x1, x10"},
				{"4b f0 7d d3", "lsl x11, x2, #3"},
				{"4b 69 6b f8", "ldr x11, [x10, x11]"},
				cbzX11(7),
				{"4c 03 00 f9", "str x12, [x26]"},
				{"0a 01 80 52", "mov w10, #0x8"}, movk1,
				{"6a 69 6a f8", "ldr x10, [x11, x10]"},
				gTailOff[6],
				{"40 01 1f d6", "br x10"},
			}}}},
		// 0x12350 + 4*8 = 0x12370: mov x10 (movz + movk) and add.
		goldenCase{name: "patched/static/layout-big", spec: buildSpec{main: tcConst, variant: prog.Linux618Series, layout: big},
			parts: []goldenPart{{"tailcall", 0, site0, patchedStatic([]gi{{"8a 00 80 52", "mov w10, #4"}},
				[]gi{{"0a 6e 84 d2", "mov x10, #0x2370"}, {"2a 00 a0 f2", "movk x10, #0x1, lsl #16"}, {"6b 01 0a 8b", "add x11, x11, x10"}})}}},
	)
	// Calls, inlined helpers, loads, stores and immediates.
	cs = append(cs, goldenCase{name: "extras", spec: buildSpec{main: extrasSrc, stack: 16, variant: prog.Linux618, fixup: prog.FixupOptions{NoVerifier: true}},
		parts: extrasParts()})
	return cs
}

// blTo is bl from image offset at (image at imageBase) to imageBase+to.
func blTo(at, to int) gi {
	n := (to - at) / 4
	return gi{hexWord(0x94000000 | uint32(n)&0x3ffffff), "bl #" + itoa(to-at)}
}

func flags(bti, pac bool) string {
	s := "bti=off"
	if bti {
		s = "bti=on"
	}
	if pac {
		return s + ",pac=on"
	}
	return s + ",pac=off"
}

// extrasSrc: the main prologue is 6 instructions, then stp x25, xzr (FP
// used), mov x25, sp, sub sp, sp, #16: BPF code starts at +0x24.
const extrasSrc = `	call bpf_get_prandom_u32
	call bpf_ktime_get_ns
	call bpf_get_smp_processor_id
	r0 = *(u32 *)(r1 + 4)
	r0 = *(u64 *)(r1 - 8)
	*(u16 *)(r10 - 2) = 0x1234
	*(u32 *)(r10 - 3) = r1
	r0 &= 0xff
	w0 &= 0x12345
	r0 |= -256
	w0 += -5
	r0 s>>= 3
	w0 <<= 5
	r0 %= r1
	r0 = 0x123456789 ll
	r0 = -2 ll
	if r1 s> -200 goto +1
	r0 = 1
	if w1 & 0x12345 goto +0
	exit`

func extrasParts() []goldenPart {
	x := func(k int, want ...gi) goldenPart { return goldenPart{"insn" + itoa(k), 0, owned(k), want} }
	movX7X0 := gi{"07 00 00 91", "add x7, x0, #0"}
	const body = 0x24
	return []goldenPart{
		{"prologue", 0, prologue, cat(mainPrologue(false, false), []gi{
			{"f9 7f bf a9", "stp x25, xzr, [sp, #-16]!"},
			{"f9 03 00 91", "mov x25, sp"},
			{"ff 43 00 d1", "sub sp, sp, #16"},
		})},
		// helper 7, 1 MiB below the image, 7*64 bytes in: in bl range.
		x(0, blTo(body, -0x100000+7*64), movX7X0),
		// helper 5 (far, 1 GiB up): movn/movk/movk x10 = 0xffff800050000000; blr.
		x(1, gi{"ea ff 9f 92", "movn x10, #0xffff"}, gi{"0a 00 aa f2", "movk x10, #0x5000, lsl #16"},
			gi{"0a 00 d0 f2", "movk x10, #0x8000, lsl #32"}, gi{"40 01 3f d6", "blr x10"}, movX7X0),
		// bpf_get_smp_processor_id inlined: no call, no mov x7, x0.
		x(2, gi{"0a 41 38 d5", "mrs x10, SP_EL0"}, gi{"47 11 40 b9", "ldr w7, [x10, #16]"}),
		x(3, gi{"07 04 40 b9", "ldr w7, [x0, #4]"}),
		// negative offset: register form, off in x10 (emit_a64_mov_i(1, ...)).
		x(4, gi{"ea 00 80 92", "mov x10, #-8"}, gi{"07 68 6a f8", "ldr x7, [x0, x10]"}),
		// ST: imm in x10, fp-2 rebased to sp+14.
		x(5, gi{"8a 46 82 d2", "mov x10, #0x1234"}, gi{"ea 1f 00 79", "strh w10, [sp, #14]"}),
		// fp-3 + 16 = 13 is not 4-aligned: x25 + x10 with the unadjusted off.
		x(6, gi{"4a 00 80 92", "mov x10, #-3"}, gi{"20 6b 2a b8", "str w0, [x25, x10]"}),
		x(7, gi{"e7 1c 40 92", "and x7, x7, #0xff"}),
		// 0x12345 is no bitmask immediate: through w10.
		x(8, gi{"aa 68 84 52", "mov w10, #0x2345"}, gi{"2a 00 a0 72", "movk w10, #0x1, lsl #16"}, gi{"e7 00 0a 0a", "and w7, w7, w10"}),
		// -256 sign-extends to 0xffffffffffffff00, a bitmask immediate.
		x(9, gi{"e7 dc 78 b2", "orr x7, x7, #0xffffffffffffff00"}),
		x(10, gi{"e7 14 00 51", "sub w7, w7, #5"}),
		x(11, gi{"e7 fc 43 93", "asr x7, x7, #3"}),
		x(12, gi{"e7 68 1b 53", "lsl w7, w7, #5"}),
		x(13, gi{"ea 08 c0 9a", "udiv x10, x7, x0"}, gi{"47 9d 00 9b", "msub x7, x10, x0, x7"}),
		// emit_a64_mov_i64: movz from the highest non-zero chunk, movk the rest.
		x(14, gi{"27 00 c0 d2", "movz x7, #0x1, lsl #32"}, gi{"a7 68 a4 f2", "movk x7, #0x2345, lsl #16"}, gi{"27 f1 8c f2", "movk x7, #0x6789"}),
		// -2: more 0xffff chunks than zero ones: one movn.
		x(15, gi{"27 00 80 92", "mov x7, #-2"}),
		// cmn for a negative imm; b.gt over one instruction.
		x(16, gi{"1f 20 03 b1", "cmn x0, #200"}, gi{"4c 00 00 54", "b.gt #8"}),
		// jset with no bitmask encoding: tst w0, w10; b.ne to the next
		// instruction (goto +0), the final exit, which emits nothing.
		x(18, gi{"aa 68 84 52", "mov w10, #0x2345"}, gi{"2a 00 a0 72", "movk w10, #0x1, lsl #16"},
			gi{"1f 00 0a 6a", "tst w0, w10"}, gi{"21 00 00 54", "b.ne #4"}),
		x(19),
		{"epilogue", 0, epilogue, cat([]gi{{"ff 43 00 91", "add sp, sp, #16"}, {"f9 7f c1 a8", "ldp x25, xzr, [sp], #16"}}, epilogueTail(false))},
	}
}

func wantHex(g []gi) []string {
	out := make([]string, len(g))
	for k, x := range g {
		out[k] = x.hex
	}
	return out
}

func TestGolden(t *testing.T) {
	n := 0
	for _, gc := range goldenCases() {
		b := build(t, gc.spec)
		for _, part := range gc.parts {
			img := b.imgs[part.fn]
			sel := part.sel(img)
			if diff := cmp.Diff(wantHex(part.want), insnHex(img, sel)); diff != "" {
				t.Errorf("%s: %s.%s (-want +got):\n%s\ngot:\n%s", gc.name, img.Func.Name, part.name, diff, listing(img, sel))
			}
			n += len(part.want)
		}
	}
	t.Logf("%d golden instructions", n)
}

// TestReferenceWords pins the docs/kernel.md §6/§7 words themselves: the table
// above must keep quoting them (a typo there would otherwise move both
// sides of TestGolden).
func TestReferenceWords(t *testing.T) {
	ref := []string{
		// §5 prologue/epilogue
		"df 24 03 d5", "c9 03 00 91", "1f 20 03 d5", "3f 23 03 d5", "fd 7b bf a9", "fd 03 00 91",
		"ff 6b bf a9", "fa 03 00 91", "9f 24 03 d5", "fa 6b bf a9", "ff 6b c1 a8", "fd 7b c1 a8", "c0 03 5f d6",
		// §5 tail call
		"8a 08 80 52", "2a 68 6a b8", "42 00 00 11", "5f 00 0a 6b", "2a 04 80 52", "4c 03 40 f9", "9f 01 0a eb",
		"8c 05 00 91", "0a 26 80 52", "2a 00 0a 8b", "4b f0 7d d3", "4b 69 6b f8", "4c 03 00 f9", "0a 09 80 52",
		"6a 69 6a f8", "4a 61 00 91", "40 01 1f d6",
		// §6
		"6b 41 05 91", "2b 68 6b f8", "60 01 1f d6",
	}
	have := map[string]bool{}
	for _, gc := range goldenCases() {
		for _, p := range gc.parts {
			for _, x := range p.want {
				have[x.hex] = true
			}
		}
	}
	for _, h := range ref {
		if !have[h] {
			t.Errorf("kernel word %s is in no golden case", h)
		}
	}
}
