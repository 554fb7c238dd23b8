// Command gengolden writes the arm64 JIT's golden word tables
// (../tailcalls-*.txt, ../prologues.txt, ../extras.txt) by composing
// instruction fragments of arch/arm64/net/bpf_jit_comp.c (upstream
// prologue, epilogue and tail call; the patched series' static path; the
// structure offsets of the layout presets: docs/kernel.md §6, §7 and §8)
// the way the kernel strings them together: build_prologue() with
// prepare_bpf_tail_call_cnt(), push_callee_regs()/pop_callee_regs(),
// build_epilogue(), emit_bpf_tail_call() (upstream, and the series' 3/4
// with its dyn_array flag), emit_a64_mov_i()/emit_a64_mov_i64()/
// emit_a64_add_i() for the immediates.
//
// It deliberately imports nothing from tailsim: the tables must not be a
// copy of the emitter under test. The words come from the small A64
// encoders below, written from the A64 field layouts (not from
// tailsim/jit/arm64's insn.go); before writing anything, main checks them
// against words quoted verbatim from the kernel's prologue, epilogue and
// tail-call sequences (refCheck). Each word carries the text
// llvm-mc 14 prints for it (llvm-mc --disassemble -triple=aarch64
// -mattr=+bti,+pauth, whitespace normalised), so the same tables drive the
// word comparison (golden_table_test.go) and the llvm-mc oracle.
//
// The three branches to the sequence's "out" label are resolved from the
// sequence length, as the kernel's fix-up does: imm19 = out - branch, in
// instructions.
//
// Run from jit/arm64: go generate (see golden_table_test.go), or
//
//	go run ./testdata/gengolden testdata
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// insn is one A64 instruction of a golden sequence. toOut marks a branch to
// the sequence's out label, filled in once the length is known: 'c' b.cs,
// 'z' cbz x11.
type insn struct {
	w     uint32
	text  string
	toOut byte
}

// ---- A64 encoders (Arm ARM field layouts) ----

const (
	xzr = 31 // register 31 as the zero register
	sp  = 31 // register 31 as the stack pointer
)

func sfBit(sf bool) uint32 {
	if sf {
		return 1 << 31
	}
	return 0
}

// rX names register r as an X (or W) register where 31 is xzr/wzr.
func rX(sf bool, r int) string {
	switch {
	case r == 31 && sf:
		return "xzr"
	case r == 31:
		return "wzr"
	case sf:
		return fmt.Sprintf("x%d", r)
	}
	return fmt.Sprintf("w%d", r)
}

// rS names register r where 31 is sp/wsp (add/sub immediate, base registers).
func rS(sf bool, r int) string {
	switch {
	case r == 31 && sf:
		return "sp"
	case r == 31:
		return "wsp"
	}
	return rX(sf, r)
}

// addSubImm is ADD/SUB (immediate): sf op 0 100010 sh imm12 Rn Rd. imm is
// an imm12, or an imm12 << 12 (sh = 1).
func addSubImm(sub, sf bool, rd, rn int, imm uint32) insn {
	op, name := uint32(0x11000000), "add"
	if sub {
		op, name = 0x51000000, "sub"
	}
	var sh uint32
	v := imm
	if imm > 0xfff {
		if imm&0xfff != 0 || imm>>24 != 0 {
			panic(fmt.Sprintf("%s #%#x: not an add/sub immediate", name, imm))
		}
		sh, v = 1, imm>>12
	}
	w := op | sfBit(sf) | sh<<22 | v<<10 | uint32(rn)<<5 | uint32(rd)
	var text string
	switch {
	case !sub && imm == 0 && (rd == sp || rn == sp):
		text = fmt.Sprintf("mov %s, %s", rS(sf, rd), rS(sf, rn))
	case sh == 1:
		text = fmt.Sprintf("%s %s, %s, #%d, lsl #12 // =%d", name, rS(sf, rd), rS(sf, rn), v, imm)
	default:
		text = fmt.Sprintf("%s %s, %s, #%d", name, rS(sf, rd), rS(sf, rn), v)
	}
	return insn{w: w, text: text}
}

func addI(sf bool, rd, rn int, imm uint32) insn { return addSubImm(false, sf, rd, rn, imm) }
func subI(sf bool, rd, rn int, imm uint32) insn { return addSubImm(true, sf, rd, rn, imm) }

// A64_MOV(sf, rd, rn) is ADD (immediate) #0.
func movR(sf bool, rd, rn int) insn { return addI(sf, rd, rn, 0) }

// Move wide: sf opc 100101 hw imm16 Rd; opc 00 movn, 10 movz, 11 movk.
func moveWide(opc uint32, sf bool, rd int, imm uint16, shift int) insn {
	if shift%16 != 0 || shift < 0 || (!sf && shift > 16) || shift > 48 {
		panic(fmt.Sprintf("move wide shift %d", shift))
	}
	hw := uint32(shift / 16)
	w := 0x12800000 | opc<<29 | sfBit(sf) | hw<<21 | uint32(imm)<<5 | uint32(rd)
	r := rX(sf, rd)
	lsl := ""
	if shift != 0 {
		lsl = fmt.Sprintf(", lsl #%d", shift)
	}
	var text string
	switch opc {
	case 2: // movz: the "mov" alias unless imm16 == 0 with a shift
		if imm == 0 && shift != 0 {
			text = fmt.Sprintf("movz %s, #0%s", r, lsl)
		} else if sf {
			text = fmt.Sprintf("mov %s, #%d", r, int64(uint64(imm)<<shift))
		} else {
			text = fmt.Sprintf("mov %s, #%d", r, int32(uint32(imm)<<shift))
		}
	case 0: // movn: "mov" of the inverted value, except imm16 == 0 with a shift, and 32-bit #0xffff
		switch {
		case imm == 0 && shift != 0, !sf && imm == 0xffff:
			text = fmt.Sprintf("movn %s, #%d%s", r, imm, lsl)
		case sf:
			text = fmt.Sprintf("mov %s, #%d", r, int64(^(uint64(imm) << shift)))
		default:
			text = fmt.Sprintf("mov %s, #%d", r, int32(^(uint32(imm) << shift)))
		}
	case 3:
		text = fmt.Sprintf("movk %s, #%d%s", r, imm, lsl)
	default:
		panic("opc")
	}
	return insn{w: w, text: text}
}

func movn(sf bool, rd int, imm uint16, shift int) insn { return moveWide(0, sf, rd, imm, shift) }
func movz(sf bool, rd int, imm uint16, shift int) insn { return moveWide(2, sf, rd, imm, shift) }
func movk(sf bool, rd int, imm uint16, shift int) insn { return moveWide(3, sf, rd, imm, shift) }

// addReg is ADD (shifted register), LSL #0: sf 0 0 01011 00 0 Rm imm6=0 Rn Rd.
func addReg(sf bool, rd, rn, rm int) insn {
	w := 0x0b000000 | sfBit(sf) | uint32(rm)<<16 | uint32(rn)<<5 | uint32(rd)
	return insn{w: w, text: fmt.Sprintf("add %s, %s, %s", rX(sf, rd), rX(sf, rn), rX(sf, rm))}
}

// cmpReg is SUBS (shifted register) to xzr: cmp Rn, Rm.
func cmpReg(sf bool, rn, rm int) insn {
	w := 0x6b000000 | sfBit(sf) | uint32(rm)<<16 | uint32(rn)<<5 | xzr
	return insn{w: w, text: fmt.Sprintf("cmp %s, %s", rX(sf, rn), rX(sf, rm))}
}

// lsl64 is LSL (immediate), 64-bit: UBFM Xd, Xn, #(64-s)%64, #63-s.
func lsl64(rd, rn int, s uint32) insn {
	w := 0xd3400000 | ((64-s)%64)<<16 | (63-s)<<10 | uint32(rn)<<5 | uint32(rd)
	return insn{w: w, text: fmt.Sprintf("lsl x%d, x%d, #%d", rd, rn, s)}
}

// Load/store sizes: 2 = 32-bit, 3 = 64-bit.
func szReg(size uint32, r int) string { return rX(size == 3, r) }

// ldrReg is LDR (register), LSL/UXTX without scaling: size 111 0 00 01 1 Rm 011 0 10 Rn Rt.
func ldrReg(size uint32, rt, rn, rm int) insn {
	w := 0x38606800 | size<<30 | uint32(rm)<<16 | uint32(rn)<<5 | uint32(rt)
	return insn{w: w, text: fmt.Sprintf("ldr %s, [%s, x%d]", szReg(size, rt), rS(true, rn), rm)}
}

// ldrImm/strImm are LDR/STR (immediate, unsigned offset): size 111 0 01 opc imm12 Rn Rt.
func lsImm(load bool, size uint32, rt, rn int, off uint32) insn {
	op, name := uint32(0x39000000), "str"
	if load {
		op, name = 0x39400000, "ldr"
	}
	if off%(1<<size) != 0 || off>>size > 0xfff {
		panic("ls offset")
	}
	w := op | size<<30 | (off>>size)<<10 | uint32(rn)<<5 | uint32(rt)
	mem := "[" + rS(true, rn) + "]"
	if off != 0 {
		mem = fmt.Sprintf("[%s, #%d]", rS(true, rn), off)
	}
	return insn{w: w, text: fmt.Sprintf("%s %s, %s", name, szReg(size, rt), mem)}
}

// stpPre / ldpPost are STP (pre-index) and LDP (post-index), 64-bit, with
// the #-16 / #16 of A64_PUSH / A64_POP: opc=10 101 0 0ii L imm7 Rt2 Rn Rt.
func stpPre(rt, rt2 int) insn {
	w := 0xa9800000 | uint32(-16/8&0x7f)<<15 | uint32(rt2)<<10 | sp<<5 | uint32(rt)
	return insn{w: w, text: fmt.Sprintf("stp %s, %s, [sp, #-16]!", rX(true, rt), rX(true, rt2))}
}

func ldpPost(rt, rt2 int) insn {
	w := 0xa8c00000 | uint32(16/8)<<15 | uint32(rt2)<<10 | sp<<5 | uint32(rt)
	return insn{w: w, text: fmt.Sprintf("ldp %s, %s, [sp], #16", rX(true, rt), rX(true, rt2))}
}

// bcs is B.cond with cond CS (llvm-mc prints its synonym hs), imm19 instructions.
func bcs(n int) insn {
	return insn{w: 0x54000000 | (uint32(n)&0x7ffff)<<5 | 0x2, text: fmt.Sprintf("b.hs #%d", 4*n)}
}

// cbz64 is CBZ Xt: 1 011010 0 imm19 Rt.
func cbz64(rt, n int) insn {
	return insn{w: 0xb4000000 | (uint32(n)&0x7ffff)<<5 | uint32(rt), text: fmt.Sprintf("cbz x%d, #%d", rt, 4*n)}
}

// bl is BL: 1 00101 imm26 (instructions); text in bytes.
func bl(n int) insn {
	return insn{w: 0x94000000 | uint32(n)&0x3ffffff, text: fmt.Sprintf("bl #%d", 4*n)}
}

// br is BR Xn: 1101011 0000 11111 000000 Rn 00000.
func br(rn int) insn { return insn{w: 0xd61f0000 | uint32(rn)<<5, text: fmt.Sprintf("br x%d", rn)} }

var (
	ret     = insn{w: 0xd65f0000 | 30<<5, text: "ret"}
	nop     = hint(0x00, "nop")
	paciasp = hint(0x19, "paciasp")
	autiasp = hint(0x1d, "autiasp")
	btiJ    = hint(0x24, "bti j")
	btiJC   = hint(0x26, "bti jc")
)

// hint is HINT #op: 1101 0101 0000 0011 0010 CRm:op2 11111.
func hint(op uint32, text string) insn { return insn{w: 0xd503201f | op<<5, text: text} }

// ---- the kernel's immediate helpers (notes §4a, ported) ----

// movI is emit_a64_mov_i(is64, reg, val).
func movI(is64 bool, rd int, val int32) []insn {
	hi := uint16(uint32(val) >> 16)
	lo := uint16(uint32(val))
	if hi&0x8000 != 0 {
		if hi == 0xffff {
			return []insn{movn(is64, rd, ^lo, 0)}
		}
		s := []insn{movn(is64, rd, ^hi, 16)}
		if lo != 0xffff {
			s = append(s, movk(is64, rd, lo, 0))
		}
		return s
	}
	s := []insn{movz(is64, rd, lo, 0)}
	if hi != 0 {
		s = append(s, movk(is64, rd, hi, 16))
	}
	return s
}

func i16Blocks(v uint64, inverse bool) int {
	fill := uint64(0)
	if inverse {
		fill = 0xffff
	}
	n := 0
	for s := 0; s < 64; s += 16 {
		if v>>s&0xffff != fill {
			n++
		}
	}
	return n
}

func fls64(v uint64) int {
	n := 0
	for ; v != 0; v >>= 1 {
		n++
	}
	return n
}

// movI64 is emit_a64_mov_i64(reg, val).
func movI64(rd int, val uint64) []insn {
	if val>>32 == 0 {
		return movI(false, rd, int32(uint32(val)))
	}
	inverse := i16Blocks(val, true) < i16Blocks(val, false)
	top := fls64(val) - 1
	if inverse {
		top = fls64(^val) - 1
	}
	shift := max(top&^15, 0) // max(round_down(top, 16), 0)
	var s []insn
	if inverse {
		s = append(s, movn(true, rd, uint16(^val>>shift), shift))
	} else {
		s = append(s, movz(true, rd, uint16(val>>shift), shift))
	}
	fill := uint64(0)
	if inverse {
		fill = 0xffff
	}
	for shift -= 16; shift >= 0; shift -= 16 {
		if val>>shift&0xffff != fill {
			s = append(s, movk(true, rd, uint16(val>>shift), shift))
		}
	}
	return s
}

func isAddsubImm(imm uint32) bool { return imm&^0xfff == 0 || imm&^0xfff000 == 0 }

// addIKernel is emit_a64_add_i(is64, dst, src, tmp, imm) with the s32 imm.
func addIKernel(is64 bool, dst, src, tmp int, imm int32) []insn {
	switch {
	case isAddsubImm(uint32(imm)):
		return []insn{addI(is64, dst, src, uint32(imm))}
	case isAddsubImm(-uint32(imm)):
		return []insn{subI(is64, dst, src, -uint32(imm))}
	}
	return append(movI(is64, tmp, imm), addReg(is64, dst, src, tmp))
}

// ---- docs/kernel.md §6 / §6 ----

// Registers (docs/kernel.md §6): R1 x0, R2 x1, R3 x2, R0 x7, R6–R9 x19–x22, FP
// x25, tmp1 x10, tmp2 x11, tmp3 x12, counter pointer x26; x29 frame
// pointer, x30 link register.
const (
	x0, x1, x2, x7        = 0, 1, 2, 7
	x9, x10, x11, x12     = 9, 10, 11, 12
	x25, x26, fpReg, lrRg = 25, 26, 29, 30
)

const maxTailCallCnt = 33

// refCheck: every word docs/kernel.md §6/§7 quotes, as bytes verbatim, against
// the encoder call that must produce it. A mismatch stops the generator.
func refCheck() {
	checks := []struct {
		bytes string
		got   insn
	}{
		// §5 prologue and epilogue
		{"df 24 03 d5", btiJC}, {"c9 03 00 91", movR(true, x9, lrRg)}, {"1f 20 03 d5", nop},
		{"3f 23 03 d5", paciasp}, {"fd 7b bf a9", stpPre(fpReg, lrRg)}, {"fd 03 00 91", movR(true, fpReg, sp)},
		{"ff 6b bf a9", stpPre(xzr, x26)}, {"fa 03 00 91", movR(true, x26, sp)}, {"9f 24 03 d5", btiJ},
		{"fa 6b bf a9", stpPre(x26, x26)}, {"ff 6b c1 a8", ldpPost(xzr, x26)}, {"fd 7b c1 a8", ldpPost(fpReg, lrRg)},
		{"c0 03 5f d6", ret},
		// §5 tail call (off_max 0x44, off_ptrs 0x130, off_func 0x48, PROLOGUE_OFFSET 6)
		{"8a 08 80 52", movI64(x10, 0x44)[0]}, {"2a 68 6a b8", ldrReg(2, x10, x1, x10)},
		{"42 00 00 11", movR(false, x2, x2)}, {"5f 00 0a 6b", cmpReg(false, x2, x10)},
		{"2a 04 80 52", movI64(x10, maxTailCallCnt)[0]}, {"4c 03 40 f9", lsImm(true, 3, x12, x26, 0)},
		{"9f 01 0a eb", cmpReg(true, x12, x10)}, {"8c 05 00 91", addI(true, x12, x12, 1)},
		{"0a 26 80 52", movI64(x10, 0x130)[0]}, {"2a 00 0a 8b", addReg(true, x10, x1, x10)},
		{"4b f0 7d d3", lsl64(x11, x2, 3)}, {"4b 69 6b f8", ldrReg(3, x11, x10, x11)},
		{"4c 03 00 f9", lsImm(false, 3, x12, x26, 0)}, {"0a 09 80 52", movI64(x10, 0x48)[0]},
		{"6a 69 6a f8", ldrReg(3, x10, x11, x10)}, {"4a 61 00 91", addI(true, x10, x10, 24)},
		{"40 01 1f d6", br(x10)},
		// §6, max_entries 4
		{"6b 41 05 91", addIKernel(true, x11, x11, x10, 0x130+4*8)[0]}, {"2b 68 6b f8", ldrReg(3, x11, x1, x11)},
		{"60 01 1f d6", br(x11)},
	}
	for _, c := range checks {
		var b [4]byte
		for k, h := range strings.Fields(c.bytes) {
			v, err := strconv.ParseUint(h, 16, 8)
			if err != nil {
				panic(err)
			}
			b[k] = byte(v)
		}
		want := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		if c.got.w != want {
			fmt.Fprintf(os.Stderr, "gengolden: kernel word %s (%08x) but the encoder gives %08x for %q\n", c.bytes, want, c.got.w, c.got.text)
			os.Exit(1)
		}
	}
}

// Structure offsets, docs/kernel.md §8 (written out again here on purpose).
type layout struct {
	name                     string
	maxEntries, ptrs, bpfFun uint32
}

var (
	v618      = layout{"v6.18", 0x44, 0x130, 0x48}
	v618nosec = layout{"v6.18-nosec", 0x3c, 0x128, 0x48}
	prev618   = layout{"pre-v6.18", 0x24, 0x110, 0x30}
	presets   = []layout{v618, v618nosec, prev618}
	// Offsets beyond 16 bits: emit_a64_mov_i64 adds a movk (no real kernel).
	big = layout{"custom:0x12344:0x12350:0x10008", 0x12344, 0x12350, 0x10008}
)

// regs: the callee-saved registers a function names, in
// find_used_callee_regs() order (x19, x20, x21, x22, x25 for FP).
type regs struct {
	name string
	list []int
	fp   bool
}

var (
	regsNone  = regs{"none", nil, false}
	regs6     = regs{"r6", []int{19}, false}
	regs67    = regs{"r6,r7", []int{19, 20}, false}
	regs678   = regs{"r6,r7,r8", []int{19, 20, 21}, false}
	regs6789  = regs{"r6,r7,r8,r9", []int{19, 20, 21, 22}, false}
	regsFP    = regs{"fp", []int{25}, true}
	regs6FP   = regs{"r6,fp", []int{19, 25}, true}
	regsAllFP = regs{"r6,r7,r8,r9,fp", []int{19, 20, 21, 22, 25}, true}
	regSets   = []regs{regsNone, regs6, regs67, regs678, regs6789, regsFP}
)

// pushCallee is push_callee_regs(): pairs, an odd last one with xzr.
func pushCallee(r regs) []insn {
	var s []insn
	i := 0
	for ; i+1 < len(r.list); i += 2 {
		s = append(s, stpPre(r.list[i], r.list[i+1]))
	}
	if i < len(r.list) {
		s = append(s, stpPre(r.list[i], xzr))
	}
	return s
}

// popCallee is pop_callee_regs(): the odd one first, then the pairs backwards.
func popCallee(r regs) []insn {
	var s []insn
	i := len(r.list) - 1
	if len(r.list)%2 != 0 {
		s = append(s, ldpPost(r.list[i], xzr))
		i--
	}
	for ; i > 0; i -= 2 {
		s = append(s, ldpPost(r.list[i-1], r.list[i]))
	}
	return s
}

func stackSize(depth int) uint32 { return uint32((depth + 15) / 16 * 16) }

// prologueOffset is PROLOGUE_OFFSET: BTI_INSNS + 2 + PAC_INSNS + 4.
func prologueOffset(bti, pac bool) int {
	n := 6
	if bti {
		n++
	}
	if pac {
		n++
	}
	return n
}

// prologue is docs/kernel.md §6's prologue: [bti jc] · mov x9, lr · nop ·
// [paciasp] · stp x29, x30 · mov x29, sp · (main) stp xzr, x26 · mov x26, sp
// · [bti j] | (subprogram) stp x26, x26 · callee-saved pushes · [mov x25, sp]
// · [sub sp, sp, #round_up(stack, 16)].
func prologue(sub, bti, pac bool, stack int, r regs) []insn {
	var s []insn
	if bti {
		s = append(s, btiJC)
	}
	s = append(s, movR(true, x9, lrRg), nop)
	if pac {
		s = append(s, paciasp)
	}
	s = append(s, stpPre(fpReg, lrRg), movR(true, fpReg, sp))
	if sub {
		s = append(s, stpPre(x26, x26))
	} else {
		s = append(s, stpPre(xzr, x26), movR(true, x26, sp))
		if len(s) != prologueOffset(bti, pac) {
			panic("PROLOGUE_OFFSET")
		}
		if bti {
			s = append(s, btiJ)
		}
	}
	s = append(s, pushCallee(r)...)
	if r.fp {
		s = append(s, movR(true, x25, sp))
	}
	if ss := stackSize(stack); ss != 0 {
		s = append(s, subI(true, sp, sp, ss))
	}
	return s
}

// epilogue is docs/kernel.md §6's: [add sp] · pops · ldp xzr, x26 · ldp x29, x30
// · mov x0, x7 · [autiasp] · ret.
func epilogue(pac bool, stack int, r regs) []insn {
	var s []insn
	if ss := stackSize(stack); ss != 0 {
		s = append(s, addI(true, sp, sp, ss))
	}
	s = append(s, popCallee(r)...)
	s = append(s, ldpPost(xzr, x26), ldpPost(fpReg, lrRg), movR(true, x0, x7))
	if pac {
		s = append(s, autiasp)
	}
	return append(s, ret)
}

type form int

const (
	indirect form = iota // upstream
	dynamic              // patched, dyn_array
	static               // patched, !dyn_array
)

func (f form) kind() string { return [...]string{"indirect", "dynamic", "static"}[f] }

// tailCall is emit_bpf_tail_call(): docs/kernel.md §6 (indirect, and the
// series' dynamic path, unchanged) and §6 (static). maxEntries is the
// static path's used_maps[map_index]->max_entries.
func tailCall(f form, l layout, maxEntries uint32, stack int, r regs, po int) []insn {
	var s []insn
	if f == static {
		s = append(s, movI64(x10, uint64(maxEntries))...)
	} else {
		s = append(s, movI64(x10, uint64(l.maxEntries))...)
		s = append(s, ldrReg(2, x10, x1, x10))
	}
	s = append(s, movR(false, x2, x2), cmpReg(false, x2, x10), insn{toOut: 'c'})
	s = append(s, movI64(x10, maxTailCallCnt)...)
	s = append(s, lsImm(true, 3, x12, x26, 0), cmpReg(true, x12, x10), insn{toOut: 'c'}, addI(true, x12, x12, 1))
	if f == static {
		// off = offsetof(ptrs) + max_entries * sizeof(void *), a size_t,
		// passed to emit_a64_add_i()'s s32.
		off := int32(uint32(uint64(l.ptrs) + uint64(maxEntries)*8))
		s = append(s, lsl64(x11, x2, 3))
		s = append(s, addIKernel(true, x11, x11, x10, off)...)
		s = append(s, ldrReg(3, x11, x1, x11))
	} else {
		s = append(s, movI64(x10, uint64(l.ptrs))...)
		s = append(s, addReg(true, x10, x1, x10), lsl64(x11, x2, 3), ldrReg(3, x11, x10, x11))
	}
	s = append(s, insn{toOut: 'z'}, lsImm(false, 3, x12, x26, 0))
	if ss := stackSize(stack); ss != 0 {
		s = append(s, addI(true, sp, sp, ss))
	}
	s = append(s, popCallee(r)...)
	if f == static {
		s = append(s, br(x11))
	} else {
		s = append(s, movI64(x10, uint64(l.bpfFun))...)
		s = append(s, ldrReg(3, x10, x11, x10), addI(true, x10, x10, uint32(4*po)), br(x10))
	}
	// out: the fix-up, off = &image[out] - branch.
	for k := range s {
		switch s[k].toOut {
		case 'c':
			s[k] = bcs(len(s) - k)
		case 'z':
			s[k] = cbz64(x11, len(s)-k)
		}
	}
	return s
}

// ---- cases ----

// funcStride: golden_table_test.go places function k at imageBase + k *
// 0x100000 (helpers_test.go), so main's bl to sub at instruction n is
// bl #(0x100000 - 4n).
const funcStride = 0x100000

type section struct {
	name  string // "main.prologue", ...
	attrs string // "kind=static sites=1"
	insns []insn
}

type gcase struct {
	params   []string
	comment  string
	sections []section
}

// spec is one program the test builds (golden_table_test.go's shapes) and
// what the kernel emits for it.
type spec struct {
	name     string
	shape    string
	variant  string
	fixup    string // default, noverifier
	layout   layout
	stack    int
	regs     regs
	bti, pac bool
	max      uint32 // max_entries of "progs"
	imm      uint32 // max_entries the static path encodes (default max)
	form     form
	sites    int    // sites in the function holding the tail call(s)
	tcIn     string // "main", "sub", or "" (no tail call)
	hasSub   bool   // main is "{regs} call sub; exit"
	comment  string
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (sp spec) build() gcase {
	if sp.fixup == "" {
		sp.fixup = "default"
	}
	if sp.layout.name == "" {
		sp.layout = v618
	}
	if sp.max == 0 {
		sp.max = 4
	}
	if sp.imm == 0 {
		sp.imm = sp.max
	}
	if sp.sites == 0 {
		sp.sites = 1
	}
	po := prologueOffset(sp.bti, sp.pac)
	c := gcase{comment: sp.comment, params: []string{
		"name=" + sp.name,
		"shape=" + sp.shape,
		"variant=" + sp.variant,
		"fixup=" + sp.fixup,
		"layout=" + sp.layout.name,
		fmt.Sprintf("stack=%d", sp.stack),
		"regs=" + sp.regs.name,
		"bti=" + onOff(sp.bti),
		"pac=" + onOff(sp.pac),
		fmt.Sprintf("max=%d", sp.max),
	}}
	fns := []string{"main"}
	if sp.hasSub {
		fns = append(fns, "sub")
	}
	for _, fn := range fns {
		isSub := fn == "sub"
		pro := prologue(isSub, sp.bti, sp.pac, sp.stack, sp.regs)
		c.sections = append(c.sections, section{name: fn + ".prologue", insns: pro})
		if fn == "main" && sp.hasSub {
			// {regs} is one instruction per register, then the call: bl
			// (the extra pass knows sub's address) and mov x7, x0. No
			// instruction passes the counter: sub inherits x26.
			at := len(pro) + len(sp.regs.list)
			c.sections = append(c.sections, section{name: "main.call", insns: []insn{bl(funcStride/4 - at), movR(true, x7, x0)}})
		}
		if sp.tcIn == fn {
			c.sections = append(c.sections, section{name: fn + ".tailcall", attrs: fmt.Sprintf("kind=%s sites=%d", sp.form.kind(), sp.sites),
				insns: tailCall(sp.form, sp.layout, sp.imm, sp.stack, sp.regs, po)})
		} else {
			c.sections = append(c.sections, section{name: fn + ".tailcall", attrs: "sites=0"})
		}
		c.sections = append(c.sections, section{name: fn + ".epilogue", insns: epilogue(sp.pac, sp.stack, sp.regs)})
	}
	return c
}

// forms of the cross product: the program shape and variant that make the
// verifier and JIT take each path (docs/kernel.md §3, §6, §7). arm64 has no
// direct tail calls.
var forms = []struct {
	name, shape, subShape, variant string
	form                           form
}{
	{"upstream-indirect", "tc-var", "sub-tc-var", "upstream", indirect},
	{"patched-static", "tc-var", "sub-tc-var", "patched", static},
	{"patched-dynamic", "tc-poisoned", "sub-tc-poisoned", "patched", dynamic},
}

var stacks = []int{0, 24}

var btiPac = [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}}

func flagName(bp [2]bool) string { return fmt.Sprintf("bti-%s/pac-%s", onOff(bp[0]), onOff(bp[1])) }

func tailcallTable(fi int) []gcase {
	f := forms[fi]
	var out []gcase
	for _, l := range presets {
		for _, st := range stacks {
			for _, r := range regSets {
				for _, bp := range btiPac {
					sp := spec{shape: f.shape, variant: f.variant, layout: l, stack: st, regs: r, bti: bp[0], pac: bp[1],
						form: f.form, tcIn: "main"}
					sp.name = fmt.Sprintf("%s/%s/stack%d/%s/%s", f.name, l.name, st, r.name, flagName(bp))
					out = append(out, sp.build())
				}
			}
		}
	}
	return out
}

func prologueTable() []gcase {
	var out []gcase
	// Every stack x callee-saved x BTI x PAC combination once, the form
	// rotating: the subprogram's prologue does not depend on the form, and
	// its tail-call sequence is the main program's (tailcalls-*.txt hold
	// the full product for those).
	k := 0
	for _, st := range stacks {
		for _, r := range regSets {
			for _, bp := range btiPac {
				f := forms[k%len(forms)]
				k++
				sp := spec{shape: f.subShape, variant: f.variant, stack: st, regs: r, bti: bp[0], pac: bp[1],
					form: f.form, tcIn: "sub", hasSub: true,
					comment: "main calls sub, which tail-calls: main's prologue is the same as without a tail call; sub's keeps x26 (stp x26, x26), has no mov x26, sp and no bti j; its tail call still adds 4*PROLOGUE_OFFSET"}
				sp.name = fmt.Sprintf("subprog-%s/stack%d/%s/%s", f.name, st, r.name, flagName(bp))
				out = append(out, sp.build())
			}
		}
	}
	for _, st := range stacks {
		for _, r := range []regs{regsNone, regs6, regs678, regsFP} {
			for _, bp := range btiPac {
				sp := spec{shape: "notail-sub", variant: "upstream", stack: st, regs: r, bti: bp[0], pac: bp[1], hasSub: true,
					comment: "no tail call anywhere: the same prologues (arm64 has no tail_call_reachable distinction)"}
				sp.name = fmt.Sprintf("notail-sub/stack%d/%s/%s", st, r.name, flagName(bp))
				out = append(out, sp.build())
				sp = spec{shape: "notail-leaf", variant: "upstream", stack: st, regs: r, bti: bp[0], pac: bp[1],
					comment: "a leaf program with no tail call and no call: the same prologue"}
				sp.name = fmt.Sprintf("notail-leaf/stack%d/%s/%s", st, r.name, flagName(bp))
				out = append(out, sp.build())
			}
		}
	}
	return out
}

func extrasTable() []gcase {
	var out []gcase
	add := func(sp spec) {
		if sp.tcIn == "" {
			sp.tcIn = "main"
		}
		out = append(out, sp.build())
	}
	// The static path's displacement, offsetof(ptrs) + max_entries*8 as a
	// size_t truncated to emit_a64_add_i()'s s32 (v6.18: ptrs = 0x130), and
	// the bound's emit_a64_mov_i64 shapes.
	for _, m := range []struct {
		max  uint32
		note string
	}{
		{1, "off 0x138: add imm12"},
		{0x1da, "off 0x1000: add #1, lsl #12"},
		{0x1db, "off 0x1008: neither imm12 form: mov x10 + add"},
		{0x0fffffd9, "off 0x7ffffff8, the largest positive s32: movz/movk x10 + add"},
		{0x0fffffda, "off 0x80000000: negative as s32, x10 = 0xffffffff80000000 (movn/movk, 64-bit): 2 GiB below ptrs"},
		{0x1fffffd9, "off 0xfffffff8 = -8 as s32: sub #8"},
		{0x20000000, "off 0x100000130 truncated to 0x130: the cached slot aliases ptrs[index]"},
		{0x80000000, "bound 0x80000000: movn w10, #0x7fff, lsl #16 + movk; off 0x400000130 truncated to 0x130"},
		{0xffffffff, "bound u32 max: mov w10, #-1 (movn); off 0x800000128 truncated to 0x128"},
	} {
		add(spec{name: fmt.Sprintf("static-max-%#x", m.max), shape: "tc-var", variant: "patched", max: m.max, regs: regsNone, form: static,
			comment: "patched static path, max_entries " + fmt.Sprint(m.max) + ": " + m.note})
	}
	for _, l := range presets[1:] {
		add(spec{name: "static-max-0xffffffff/" + l.name, shape: "tc-var", variant: "patched", layout: l, max: 0xffffffff, regs: regs67, form: static,
			comment: fmt.Sprintf("u32 max on %s: off %#x + 0x7fffffff8, truncated", l.name, l.ptrs)})
	}
	add(spec{name: "static-map-index-1", shape: "tc-var-mapidx1", variant: "patched", regs: regsNone, form: static,
		comment: "progs is used_maps[1] (other, max_entries 7, is loaded first): the immediate is progs' max_entries, 4"})
	for _, v := range []struct {
		variant string
		form    form
	}{{"upstream", indirect}, {"patched", static}} {
		add(spec{name: "const-key/" + v.variant, shape: "tc-const", variant: v.variant, regs: regs678, stack: 24, bti: true, pac: true, form: v.form,
			comment: "a constant key: the verifier makes the site direct (poke index in imm); arm64 ignores it: indirect upstream, static patched"})
		add(spec{name: "noverifier-const-key/" + v.variant, shape: "tc-const", variant: v.variant, fixup: "noverifier", regs: regsNone, form: v.form,
			comment: "lib/test_bpf builds without the verifier: upstream indirect, patched static with map index 0"})
	}
	add(spec{name: "noverifier-poisoned/patched", shape: "tc-poisoned", variant: "patched", fixup: "noverifier", regs: regsNone, form: static,
		comment: "without the verifier even a two-map site is static on used_maps[0] = progs"})
	add(spec{name: "poisoned/upstream", shape: "tc-poisoned", variant: "upstream", regs: regs6789, form: indirect,
		comment: "two maps reach the site: upstream has one form for it"})
	for _, f := range forms {
		add(spec{name: "layout-big/" + f.name, shape: f.shape, variant: f.variant, layout: big, regs: regs6, form: f.form,
			comment: "offsets beyond 16 bits: emit_a64_mov_i64 adds a movk; the JIT has no limit"})
	}
	for _, st := range []int{8, 40, 512, 4096} {
		for _, f := range forms[:2] {
			sp := spec{name: fmt.Sprintf("stack%d/%s", st, f.name), shape: f.shape, variant: f.variant, stack: st, regs: regsAllFP, bti: true, form: f.form,
				comment: fmt.Sprintf("round_up(%d, 16) = %d in sub sp, the tail call's add sp and the epilogue's; five callee-saved registers: x19,x20 / x21,x22 / x25,xzr", st, stackSize(st))}
			if st > 512 {
				// Beyond MAX_BPF_STACK only a program built without the
				// verifier reaches the JIT; the site kind is the same.
				sp.fixup = "noverifier"
				sp.comment += "; beyond MAX_BPF_STACK, so built without the verifier"
			}
			add(sp)
		}
	}
	add(spec{name: "r6-fp/upstream-indirect", shape: "tc-var", variant: "upstream", stack: 24, regs: regs6FP, pac: true, form: indirect,
		comment: "R6 and FP: one pair, stp x19, x25"})
	for _, f := range forms {
		add(spec{name: "two-sites/" + f.name, shape: strings.Replace(f.shape, "tc-", "tc2-", 1), variant: f.variant, regs: regs6789, stack: 16,
			form: f.form, sites: 2, comment: "two sites in one function: the same words, each branch resolved against its own sequence"})
	}
	return out
}

func write(path, title string, cases []gcase) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# %s\n", title)
	fmt.Fprintf(w, "# GENERATED by testdata/gengolden from docs/kernel.md §6, §7 and §8 fragments (not by the JIT). DO NOT EDIT.\n")
	fmt.Fprintf(w, "#\n# case <key=value ...>: the program golden_table_test.go builds (shape) and the JIT options.\n")
	fmt.Fprintf(w, "# <func>.<part> [attrs]: a section; each following tab-indented line is one instruction:\n")
	fmt.Fprintf(w, "#   A64 word (hex) | text as llvm-mc 14 prints it (-triple=aarch64 -mattr=+bti,+pauth --disassemble)\n")
	fmt.Fprintf(w, "# %d cases.\n", len(cases))
	for _, c := range cases {
		fmt.Fprintln(w)
		if c.comment != "" {
			fmt.Fprintf(w, "# %s\n", c.comment)
		}
		fmt.Fprintf(w, "case %s\n", strings.Join(c.params, " "))
		for _, s := range c.sections {
			if s.attrs != "" {
				fmt.Fprintf(w, "%s %s\n", s.name, s.attrs)
			} else {
				fmt.Fprintf(w, "%s\n", s.name)
			}
			for _, x := range s.insns {
				if x.toOut != 0 {
					panic("unresolved branch")
				}
				fmt.Fprintf(w, "\t%08x | %s\n", x.w, x.text)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func main() {
	refCheck()
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	tables := []struct {
		file, title string
		cases       []gcase
	}{}
	for fi, f := range forms {
		tables = append(tables, struct {
			file, title string
			cases       []gcase
		}{"tailcalls-" + f.name + ".txt",
			"Tail calls, " + f.name + ": layout x stack x callee-saved registers x BTI x PAC, with the program's prologue and epilogue.",
			tailcallTable(fi)})
	}
	tables = append(tables, []struct {
		file, title string
		cases       []gcase
	}{
		{"prologues.txt", "Main-program vs subprogram prologues and epilogues, the bpf2bpf call, programs without tail calls.", prologueTable()},
		{"extras.txt", "Boundaries: the static path's s32 displacement and bounds, map index, verifier options, big offsets, stack sizes, five callee-saved registers, two sites.", extrasTable()},
	}...)
	for _, t := range tables {
		if err := write(filepath.Join(dir, t.file), t.title, t.cases); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
