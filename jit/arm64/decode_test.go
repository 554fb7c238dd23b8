package arm64_test

// Every image the JIT emits, for a program using every instruction form of
// the subset and for the scenario library, in both variants, with every
// BTI/PAC combination (and, for the library, every layout preset):
//
//   - the annotated instructions tile the code, 4 bytes each, with owners
//     in order (prologue, BPF instructions, epilogue);
//   - every word decodes with arm64asm (none is AARCH64_BREAK_FAULT);
//   - every branch lands where it must: the three tail-call branches on
//     Out, each conditional jump and goto on the first instruction of its
//     BPF target, each non-final exit on the epilogue, each bl on the
//     helper or subprogram it calls, each blr on the address its
//     movn/movk/movk built;
//   - each tail-call site's Start, Jump and Out match its instructions.

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/arch/arm64/arm64asm"

	"tailsim/jit"
	"tailsim/jit/arm64"
	"tailsim/prog"
	"tailsim/scenarios"
)

var allFlags = [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}}

// formsSource is one program using every instruction form of the modelled
// subset: ALU32/ALU64 K and X for every operation and register pairing,
// immediates that take each path (add/sub imm12 and lsl 12, the sub/cmn
// negation, bitmask immediates and their register fallback, movz/movk/movn
// of each shape), 64-bit immediates of each chunk pattern, loads and stores
// of each size on every base with offsets that encode, that need the
// register form (negative, unaligned, too large) and FP-relative ones that
// rebasing makes encodable, conditional jumps JMP and JMP32 (reg, imm,
// jset) near and far, gotos, exits that branch to the epilogue, helper
// calls in and out of bl range, the inlined helper, a bpf2bpf call and a
// tail call.
func formsSource() (main, sub string) {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, "\t"+format+"\n", args...) }
	for r := 0; r <= 9; r++ {
		w("r%d = %d", r, r+1)
	}
	w("r2 = map[progs]")
	w("r3 = *(u32 *)(r1 + 0)")
	w("call bpf_tail_call")
	w("call sub")
	w("call bpf_ktime_get_ns")    // out of bl range: movn/movk/movk + blr
	w("call bpf_get_prandom_u32") // bl
	w("call bpf_get_smp_processor_id")
	imms := []int64{0, 1, -1, 5, -5, 0xfff, 0x1000, 0x1001, 0xfff000, -0xfff000, 0x12345, -0x12345, 0xff, 0xff00,
		0x5555, 0x0f0f0f0f, -256, 0x7fffffff, -0x80000000, 0x10000, 0xffff, -0x10000}
	for _, p := range []string{"r", "w"} {
		for _, op := range []string{"+=", "-=", "&=", "|=", "^=", "*=", "/=", "%=", "<<=", ">>=", "s>>=", "="} {
			for d := 0; d <= 9; d++ {
				for s := 0; s <= 10; s++ {
					if s == 10 && op != "=" {
						continue
					}
					w("%s%d %s %s%d", p, d, op, p, s)
				}
				for _, imm := range imms {
					switch op {
					case "<<=", ">>=", "s>>=":
						continue
					case "/=", "%=":
						if imm == 0 {
							continue
						}
					}
					w("%s%d %s %d", p, d, op, imm)
				}
			}
		}
		width := 64
		if p == "w" {
			width = 32
		}
		for _, op := range []string{"<<=", ">>=", "s>>="} {
			for sh := 0; sh < width; sh++ {
				w("%s%d %s %d", p, sh%10, op, sh)
			}
		}
		for d := 0; d <= 9; d++ {
			w("%s%d = -%s%d", p, d, p, d)
		}
	}
	for d := 0; d <= 9; d++ {
		for _, v := range []string{"0", "1", "-1", "0x7fffffff", "0x80000000", "0xffffffff", "0x100000000",
			"0xffffffff80000000", "0x123456789abcdef0", "0xffff0000ffff0000", "0x0000ffff00000000", "-0x10000",
			"0xfedcba9876543210", "0x8000000000000000"} {
			w("r%d = %s ll", d, v)
		}
	}
	mem := func(sz string, d, s, off int) {
		sign := "+"
		if off < 0 {
			sign, off = "-", -off
		}
		if d != 10 {
			w("r%d = *(%s *)(r%d %s %d)", d, sz, s, sign, off)
		}
		w("*(%s *)(r%d %s %d) = r%d", sz, d, sign, off, s)
	}
	offs := []int{0, 1, 2, 3, 4, 8, -1, -2, -8, -16, -64, 127, -129, 300, 4095, 4096, 8190, 16380, 32760, 32767, -32768}
	for _, sz := range []string{"u8", "u16", "u32", "u64"} {
		for d := 0; d <= 10; d++ {
			for s := 0; s <= 10; s++ {
				for _, off := range []int{0, -8, 300} {
					mem(sz, d, s, off)
				}
			}
			for _, imm := range []int64{0, -1, 0x7f, 0x1234, 0x12345678, -0x12345678} {
				for _, off := range []int{-16, -3, 8, 5000} {
					sign := "+"
					if off < 0 {
						sign, off = "-", -off
					}
					w("*(%s *)(r%d %s %d) = %d", sz, d, sign, off, imm)
				}
			}
		}
		for _, base := range []int{1, 10} {
			for _, off := range offs {
				mem(sz, (base+4)%10, base, off)
			}
		}
	}
	for _, p := range []string{"r", "w"} {
		for _, op := range []string{"==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"} {
			for d := 0; d <= 9; d++ {
				s := (d + 3) % 10
				for _, target := range []string{"+1", "far", "back"} {
					w("if %s%d %s %s%d goto %s", p, d, op, p, s, target)
					w("r0 = 0")
					for _, imm := range []int64{0, 5, -200, 0x12345, 0xfff000, -0x1000, 0xff, 0x5555, -1} {
						w("if %s%d %s %d goto %s", p, d, op, imm, target)
						w("r0 = 0")
					}
				}
			}
		}
	}
	w("goto +1")
	w("r0 = 1")
	w("goto +0")
	w("if r0 == 0 goto near_exit")
	w("goto far")
	b.WriteString("near_exit:\n")
	w("exit")
	b.WriteString("far:\n")
	w("r0 = 0")
	w("if r0 != 0 goto back")
	w("exit")
	b.WriteString("back:\n")
	w("r0 = 2")
	w("exit")
	return "back0:\n" + strings.Replace(b.String(), "goto back\n", "goto back0\n", -1), "\tr6 = r1\n\tr0 = r6\n\texit\n"
}

type namedImage struct {
	name string
	img  *jit.Image
	b    *built
	fn   int
	k    prog.Kernel
}

// formsCache holds formsImages' result: the fix-up of the forms program
// is the slow part, and three tests use the images.
var formsCache []namedImage

func formsImages(t *testing.T) []namedImage {
	t.Helper()
	if formsCache != nil {
		return formsCache
	}
	mainSrc, subSrc := formsSource()
	// Without the verifier: helper clobbers do not matter here.
	b0 := build(t, buildSpec{main: mainSrc, sub: subSrc, stack: 64, subStack: 8, fixup: prog.FixupOptions{NoVerifier: true}})
	var out []namedImage
	for _, v := range prog.Kernels {
		for _, f := range allFlags {
			b, err := b0.compile(arm64.Options{Kernel: v, Layout: prog.DefaultLayout, BTI: f[0], PAC: f[1]})
			if err != nil {
				t.Fatalf("%s/%s: %v", v, flags(f[0], f[1]), err)
			}
			for fn, img := range b.imgs {
				out = append(out, namedImage{fmt.Sprintf("forms/%s [%s/%s]", img.Func.Name, v, flags(f[0], f[1])), img, b, fn, v})
			}
		}
	}
	if n := len(out[0].img.Insns); n < 20000 {
		t.Fatalf("forms program has only %d machine instructions", n)
	}
	formsCache = out
	return out
}

func TestDecodeInstructionForms(t *testing.T) {
	n := 0
	for _, ni := range formsImages(t) {
		checkImage(t, ni)
		n += len(ni.img.Insns)
	}
	t.Logf("%d instructions checked", n)
}

// TestDecodeLibrary JITs every program of every scenario.
func TestDecodeLibrary(t *testing.T) {
	scs, err := scenarios.LoadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) == 0 {
		t.Fatal("empty scenario library")
	}
	images, insns, sites := 0, 0, 0
	for _, sc := range scs {
		layouts := []prog.Layout{sc.Layout}
		for _, l := range prog.Presets {
			if l != sc.Layout {
				layouts = append(layouts, l)
			}
		}
		for _, l := range layouts {
			for _, v := range prog.Kernels {
				for _, f := range allFlags {
					o := arm64.Options{Kernel: v, Layout: l, BTI: f[0], PAC: f[1]}
					w, err := sc.BuildFor(v, &l, "")
					if err != nil {
						t.Errorf("%s: build: %v", sc.File, err)
						continue
					}
					for pi, p := range w.Progs {
						b := &built{p: p, fx: w.Fixups[p]}
						for fn := range p.Funcs {
							b.res.funcs = append(b.res.funcs, imageBase+uint64(pi*16+fn)*funcStride)
						}
						for fn := range p.Funcs {
							img, err := arm64.Compile(p, fn, b.fx, b.res.funcs[fn], b.res, o)
							if err != nil {
								t.Errorf("%s %s/%s [%s/%s/%s]: %v", sc.File, p.Name, p.Funcs[fn].Name, l.Name, v, flags(f[0], f[1]), err)
								continue
							}
							b.imgs = append(b.imgs, img)
						}
						if len(b.imgs) != len(p.Funcs) {
							continue
						}
						for fn, img := range b.imgs {
							checkImage(t, namedImage{fmt.Sprintf("%s %s/%s [%s/%s/%s]", sc.File, p.Name, img.Func.Name, l.Name, v, flags(f[0], f[1])), img, b, fn, v})
							images++
							insns += len(img.Insns)
							sites += len(img.Sites)
						}
					}
				}
			}
		}
	}
	t.Logf("%d scenarios: %d images, %d instructions, %d tail-call sites checked", len(scs), images, insns, sites)
}

func decode(t *testing.T, name string, img *jit.Image, in jit.Insn) (arm64asm.Inst, bool) {
	t.Helper()
	inst, err := arm64asm.Decode(img.Code[in.Off : in.Off+4])
	if err != nil {
		t.Errorf("%s: %#x %08x (%s): arm64asm: %v", name, in.Off, word(img, in), in.Note, err)
		return inst, false
	}
	return inst, true
}

// branchTarget is the image offset a pc-relative branch at in goes to.
func branchTarget(inst arm64asm.Inst, in jit.Insn) (int, bool) {
	for _, a := range inst.Args {
		if r, ok := a.(arm64asm.PCRel); ok {
			return in.Off + int(r), true
		}
	}
	return 0, false
}

// checkImage checks one image's records against its words.
func checkImage(t *testing.T, ni namedImage) {
	t.Helper()
	name, img, b := ni.name, ni.img, ni.b
	code := img.Code
	if len(code)%4 != 0 || len(img.Insns) != len(code)/4 {
		t.Errorf("%s: %d bytes, %d instructions", name, len(code), len(img.Insns))
		return
	}
	f := img.Func
	pos, nslots := f.Slots()
	slotIdx := make([]int, nslots+1)
	for k := range slotIdx {
		slotIdx[k] = -1
	}
	for k, p := range pos {
		slotIdx[p] = k
	}
	// start[k]: the first instruction of BPF k (or what follows, when it
	// emits nothing); start[len] = the epilogue.
	start := make([]int, len(f.Insns)+1)
	for k := range start {
		start[k] = -1
	}
	epi := -1
	lastOwner := jit.Prologue
	insts := make([]arm64asm.Inst, len(img.Insns))
	ok := make([]bool, len(img.Insns))
	for k, in := range img.Insns {
		if in.Off != 4*k || in.Len != 4 {
			t.Errorf("%s: instruction %d at %#x len %d", name, k, in.Off, in.Len)
			return
		}
		if in.Note == "" {
			t.Errorf("%s: %#x %08x: no annotation", name, in.Off, word(img, in))
		}
		if word(img, in) == 0xd4202000 {
			t.Errorf("%s: %#x: AARCH64_BREAK_FAULT (%s)", name, in.Off, in.Note)
		}
		insts[k], ok[k] = decode(t, name, img, in)
		switch {
		case in.BPF == jit.Prologue:
			if lastOwner != jit.Prologue {
				t.Errorf("%s: %#x: prologue instruction after BPF code", name, in.Off)
			}
		case in.BPF == jit.Epilogue:
			if epi < 0 {
				epi = in.Off
			}
		case in.BPF < 0 || in.BPF >= len(f.Insns):
			t.Errorf("%s: %#x: owner %d is not an instruction of %s", name, in.Off, in.BPF, f.Name)
			continue
		case lastOwner == jit.Epilogue || in.BPF < lastOwner:
			t.Errorf("%s: %#x: owner %d after %d", name, in.Off, in.BPF, lastOwner)
		}
		if in.BPF >= 0 && start[in.BPF] < 0 {
			start[in.BPF] = in.Off
		}
		lastOwner = in.BPF
	}
	if epi < 0 {
		t.Errorf("%s: no epilogue", name)
		return
	}
	start[len(f.Insns)] = epi
	for k := len(f.Insns) - 1; k >= 0; k-- {
		if start[k] < 0 {
			start[k] = start[k+1]
		}
	}
	// Tail calls land right after mov x26, sp (6.1: mov x26, #0), on
	// bti j with BTI.
	if ni.fn == 0 {
		te := img.TailEntry
		last, lastName := uint32(0x910003fa), "mov x26, sp"
		if ni.k == prog.Linux61 {
			last, lastName = 0xd280001a, "mov x26, #0"
		}
		if te < 4 || te >= len(code) || img.Insns[te/4-1].BPF != jit.Prologue || word(img, img.Insns[te/4-1]) != last {
			t.Errorf("%s: the instruction before the tail-call entry %#x is not %s", name, te, lastName)
		} else if bti := word(img, img.Insns[0]) == 0xd50324df; bti && word(img, img.Insns[te/4]) != 0xd503249f {
			t.Errorf("%s: BTI on but no bti j at the tail-call entry %#x", name, te)
		}
	}
	// Branches of BPF jumps, exits and calls.
	owned := make([][]int, len(f.Insns))
	for x, in := range img.Insns {
		if in.BPF >= 0 && in.BPF < len(f.Insns) {
			owned[in.BPF] = append(owned[in.BPF], x)
		}
	}
	inSite := map[int]bool{}
	for _, s := range img.Sites {
		inSite[s.Site.Insn] = true
	}
	calls := 0
	for k, ins := range f.Insns {
		own := owned[k]
		op := ins.OpCode
		switch {
		case inSite[k]:
		case op.IsJA() || op.IsCondJump():
			if len(own) == 0 {
				t.Errorf("%s: BPF %d (%s) emitted nothing", name, k, op)
				continue
			}
			x := own[len(own)-1]
			in := img.Insns[x]
			if !ok[x] {
				continue
			}
			to, isBr := branchTarget(insts[x], in)
			tslot := pos[k] + 1 + int(ins.Off)
			want := start[slotIdx[tslot]]
			switch {
			case !isBr || insts[x].Op != arm64asm.B:
				t.Errorf("%s: BPF %d ends in %s, not a branch", name, k, arm64asm.GNUSyntax(insts[x]))
			case to != want:
				t.Errorf("%s: BPF %d (line %d): %s at %#x goes to %#x, want %#x (BPF %d)", name, k, ins.Line, arm64asm.GNUSyntax(insts[x]), in.Off, to, want, slotIdx[tslot])
			}
			if op.IsCondJump() {
				if c, isCond := insts[x].Args[0].(arm64asm.Cond); !isCond || uint32(c.Value) != wantCond[op.JumpOp()] {
					t.Errorf("%s: BPF %d (%s): %s, want condition %#x", name, k, op.JumpOp(), arm64asm.GNUSyntax(insts[x]), wantCond[op.JumpOp()])
				}
				prev := insts[x-1].Op
				if want := map[bool]arm64asm.Op{true: arm64asm.TST, false: arm64asm.CMP}[op.JumpOp() == prog.OpJSET]; prev != want &&
					!(prev == arm64asm.CMN && op.JumpOp() != prog.OpJSET) {
					t.Errorf("%s: BPF %d: branch after %s", name, k, arm64asm.GNUSyntax(insts[x-1]))
				}
			}
		case op.IsExit():
			if pos[k] == nslots-1 {
				if len(own) != 0 {
					t.Errorf("%s: final exit emitted %d instructions", name, len(own))
				}
				continue
			}
			if len(own) != 1 {
				t.Errorf("%s: exit %d emitted %d instructions", name, k, len(own))
				continue
			}
			if to, isBr := branchTarget(insts[own[0]], img.Insns[own[0]]); !isBr || to != epi {
				t.Errorf("%s: exit %d: %s goes to %#x, want the epilogue %#x", name, k, arm64asm.GNUSyntax(insts[own[0]]), to, epi)
			}
		case op.IsCall():
			calls++
			checkCall(t, name, img, b, ni.fn, ni.k, k, ins, own, insts)
		}
	}
	for k, s := range img.Sites {
		checkSite(t, fmt.Sprintf("%s site %d (BPF %d, %s)", name, k, s.Site.Insn, s.Kind), img, s, insts)
	}
}

var wantCond = map[prog.JumpOp]uint32{
	prog.OpJEQ: 0, prog.OpJNE: 1, prog.OpJSET: 1, prog.OpJGE: 2, prog.OpJLT: 3, prog.OpJGT: 8, prog.OpJLE: 9,
	prog.OpJSGE: 10, prog.OpJSLT: 11, prog.OpJSGT: 12, prog.OpJSLE: 13,
}

// checkCall: a bl lands on the callee; a blr follows movn/movk/movk x10
// building the callee's address; both are followed by mov x7, x0. The
// inlined helpers read sp_el0. 6.1 inlines none and always calls with blr.
func checkCall(t *testing.T, name string, img *jit.Image, b *built, fn int, kernel prog.Kernel, k int, ins prog.Instruction, own []int, insts []arm64asm.Inst) {
	t.Helper()
	var target uint64
	if ins.IsSubprogCall() {
		target = b.res.Func(b.p.FuncIndex(ins.Reference))
	} else {
		if ins.Imm == 8 && kernel != prog.Linux61 {
			if len(own) != 2 || insts[own[0]].Op != arm64asm.MRS || insts[own[1]].Op != arm64asm.LDR {
				t.Errorf("%s: BPF %d: bpf_get_smp_processor_id is not mrs + ldr", name, k)
			}
			return
		}
		a, ok := b.res.Helper(int32(ins.Imm))
		if !ok {
			t.Errorf("%s: BPF %d: unknown helper %d", name, k, ins.Imm)
			return
		}
		target = a
	}
	if len(own) < 2 || word(img, img.Insns[own[len(own)-1]]) != 0x91000007 {
		t.Errorf("%s: BPF %d: call not followed by mov x7, x0", name, k)
		return
	}
	base := b.res.funcs[fn]
	switch len(own) {
	case 2: // bl
		x := own[0]
		to, isBr := branchTarget(insts[x], img.Insns[x])
		if insts[x].Op != arm64asm.BL || !isBr || base+uint64(to) != target {
			t.Errorf("%s: BPF %d: %s from %#x, want bl %#x", name, k, arm64asm.GNUSyntax(insts[x]), base+uint64(img.Insns[x].Off), target)
		}
		if d := int64(target) - int64(base+uint64(img.Insns[x].Off)); d < -128<<20 || d >= 128<<20 {
			t.Errorf("%s: BPF %d: bl over %#x bytes", name, k, d)
		}
	case 5: // movn, movk, movk, blr
		w := make([]uint32, 4)
		for j := range w {
			w[j] = word(img, img.Insns[own[j]])
		}
		// movn x10, #a; movk x10, #b, lsl 16; movk x10, #c, lsl 32; blr x10
		got := ^uint64(w[0]>>5&0xffff) &^ (0xffff << 16) &^ (0xffff << 32)
		got |= uint64(w[1]>>5&0xffff)<<16 | uint64(w[2]>>5&0xffff)<<32
		if w[0]&0xffe0001f != 0x9280000a || w[1]&0xffe0001f != 0xf2a0000a || w[2]&0xffe0001f != 0xf2c0000a || w[3] != 0xd63f0140 || got != target {
			t.Errorf("%s: BPF %d: indirect call builds %#x (%08x %08x %08x %08x), want %#x", name, k, got, w[0], w[1], w[2], w[3], target)
		}
		if d := int64(target) - int64(base+uint64(img.Insns[own[0]].Off)); d >= -128<<20 && d < 128<<20 && kernel != prog.Linux61 {
			t.Errorf("%s: BPF %d: indirect call to %#x, within bl range", name, k, target)
		}
	default:
		t.Errorf("%s: BPF %d: call of %d instructions", name, k, len(own))
	}
}

// checkSite: the site's instructions are owned by its tail call, it has
// exactly three branches (b.cs, b.cs, cbz x11), all to Out, and ends in
// the br at Jump.
func checkSite(t *testing.T, name string, img *jit.Image, s jit.TailSite, insts []arm64asm.Inst) {
	t.Helper()
	if !(0 <= s.Start && s.Start < s.Jump && s.Jump+4 == s.Out && s.Out <= len(img.Code)) || s.Start%4 != 0 {
		t.Errorf("%s: Start %#x, Jump %#x, Out %#x", name, s.Start, s.Jump, s.Out)
		return
	}
	var kinds []string
	for off := s.Start; off < s.Out; off += 4 {
		x := off / 4
		in := img.Insns[x]
		if in.BPF != s.Site.Insn {
			t.Errorf("%s: instruction at %#x owned by %d", name, off, in.BPF)
		}
		inst := insts[x]
		if to, isBr := branchTarget(inst, in); isBr {
			kinds = append(kinds, inst.Op.String())
			if to != s.Out {
				t.Errorf("%s: %s at %#x goes to %#x, want out %#x", name, arm64asm.GNUSyntax(inst), off, to, s.Out)
			}
			if !strings.HasPrefix(in.Note, "branch placeholder fixed up") {
				t.Errorf("%s: branch at %#x annotated %q", name, off, in.Note)
			}
		}
	}
	if strings.Join(kinds, " ") != "B B CBZ" {
		t.Errorf("%s: branches %v, want b.cs, b.cs, cbz", name, kinds)
	}
	jump := binary.LittleEndian.Uint32(img.Code[s.Jump:])
	want := uint32(0xd61f0140) // br x10
	if s.Kind == prog.Static {
		want = 0xd61f0160 // br x11
	}
	if jump != want {
		t.Errorf("%s: jump at %#x is %08x, want %08x", name, s.Jump, jump, want)
	}
	if s.Kind == prog.Direct {
		t.Errorf("%s: arm64 has no direct tail calls", name)
	}
}

// TestFormsCoverage checks that the forms program reaches every encoding
// path build_insn() has for the subset, by mnemonic and by annotation.
func TestFormsCoverage(t *testing.T) {
	mnemonics := map[string]bool{}
	notes := map[string]bool{}
	for _, ni := range formsImages(t) {
		for _, in := range ni.img.Insns {
			inst, err := arm64asm.Decode(ni.img.Code[in.Off : in.Off+4])
			if err != nil {
				continue
			}
			mnemonics[strings.Fields(arm64asm.GNUSyntax(inst))[0]] = true
			notes[in.Note] = true
		}
	}
	for _, m := range strings.Fields(`add sub neg mul udiv msub and orr eor lsl lsr asr mov movk
		cmp cmn tst b b.eq b.ne b.cs b.cc b.hi b.ls b.ge b.lt b.gt b.le bl blr br cbz ret mrs
		ldr ldrb ldrh str strb strh stp ldp nop hint`) {
		if !mnemonics[m] {
			t.Errorf("no %s in the forms images", m)
		}
	}
	for _, sub := range []string{
		"(bitmask immediate)", "(no bitmask encoding)", ": register form", // logical immediates and fallback
		"jset: tst #", "jset: tst tmp", "cmn", "cmp64 tmp", "cmp32 tmp", // compares
		"(sub)", "(add)", ": add tmp", ": sub tmp", // add/sub immediates
		"rebased on sp", "[base, tmp]", "[base, tmp2]", // memory
		"(movz)", "(movn)", "(movk)", // immediates
		"inlined", ": bl", ": blr x10", "exit: b epilogue", "goto", // control
		"tail call: br x10", "tail call: br x11", "PLT: br x10", "bti j:", "paciasp", "autiasp",
	} {
		found := false
		for n := range notes {
			if strings.Contains(n, sub) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no instruction annotated %q in the forms images", sub)
		}
	}
}

func TestDecode(t *testing.T) {
	const pc = 0x1000
	word := func(w uint32) []byte { return binary.LittleEndian.AppendUint32(nil, w) }
	tests := []struct {
		name string
		code []byte
		want arm64.Inst
	}{
		{"add", word(0x91062160), arm64.Inst{Len: 4, Text: "add x0, x11, #0x188"}},
		{"b forward", word(0x14000010), arm64.Inst{Len: 4, Text: "b 0x1040", Target: 0x1040, Branch: true}},
		{"b back", word(0x17FFFFFE), arm64.Inst{Len: 4, Text: "b 0xff8", Target: 0xff8, Branch: true}},
		{"b.cs", word(0x54000082), arm64.Inst{Len: 4, Text: "b.cs 0x1010", Target: 0x1010, Branch: true}},
		{"br", word(0xD61F0140), arm64.Inst{Len: 4, Text: "br x10"}},
		{"bti jc", word(0xD50324DF), arm64.Inst{Len: 4, Text: "hint #0x26"}},
		{"extra bytes", append(word(0xD65F03C0), 0xFF), arm64.Inst{Len: 4, Text: "ret"}},
		// The operands a tracer follows pointer chases by.
		{"ldr register", word(0xF86B682B), arm64.Inst{Len: 4, Text: "ldr x11, [x1,x11]", AddrRegs: []string{"x1", "x11"}, Loads: []string{"x11"}}},
		{"ldr counter", word(0xF940034C), arm64.Inst{Len: 4, Text: "ldr x12, [x26]", AddrRegs: []string{"x26"}, Loads: []string{"x12"}}},
		{"str counter", word(0xF900034C), arm64.Inst{Len: 4, Text: "str x12, [x26]", AddrRegs: []string{"x26"}}},
		{"ldp post-index", word(0xA8C17FF3), arm64.Inst{Len: 4, Text: "ldp x19, xzr, [sp],#16", AddrRegs: []string{"sp"}, Loads: []string{"x19"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := arm64.Decode(tt.code, pc)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(% x) = %+v, %v; want %+v", tt.code, got, err, tt.want)
			}
		})
	}
	for _, code := range [][]byte{nil, {0xC0, 0x03, 0x5F}, word(0)} {
		if got, err := arm64.Decode(code, pc); err == nil {
			t.Errorf("Decode(% x) = %+v, want an error", code, got)
		}
	}
}
